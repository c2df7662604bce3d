"""What the napari widget runs, without napari or Qt: super-resolution of a layer's maps with a
shipped model (the functions ``spinsr-tf upscale`` uses) or with a network fitted to the image
(``spinsr-tf fit-image``'s :func:`~spinsr_tf.inference.fit_image.fit_image`, in a child process),
and where the finer grid lies.

Both take ``progress(fraction or None, text)`` and ``cancelled()`` callables: the widget's
progress bar and its cancel button. A shipped model is cancelled between batches; a fit runs in a
child process under the command line's signal handling (:mod:`spinsr_tf.base.interrupts`), so
cancelling sends it SIGINT and training stops after its current batch. The child also keeps
TensorFlow's training threads and memory out of the viewer's process.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from spinsr_tf.base.errors import UserError

#: The choice of the widget that fits a network to the image instead of a shipped model.
FIT = "fit to this image"
#: Line prefix of the fit process's result (JSON).
RESULT = "spinsr-tf-napari-result: "
_EPOCH = re.compile(r"epoch (\d+)/(\d+)")

Progress = Callable[[float | None, str], None]


class Cancelled(Exception):
    """The user cancelled the run; nothing is added to the viewer."""


def model_choices() -> list[str]:
    """The widget's methods: ``pretrained:NAME`` of each shipped model, then :data:`FIT`."""
    from spinsr_tf.base.pretrained import PREFIX, known_models

    return [PREFIX + name for name in known_models()] + [FIT]


def finer_grid(layer_scale, layer_translate, factor: int,
               pixel: str) -> tuple[np.ndarray, np.ndarray]:
    """napari ``scale`` and ``translate`` of the SR layer of a layer whose napari ``scale``
    (world units per pixel) and ``translate`` are ``layer_scale`` and ``layer_translate`` (the
    last two axes are y, x; world units). ``layer_scale`` is a pixel size, not the SR scale.

    The HR pixel is ``factor`` times smaller. Where LR pixel ``k`` sits on the HR grid is the
    model's pixel model (:mod:`spinsr_tf.data.degradation`): ``"sample"`` puts it on HR pixel
    ``k·f``, so both grids start at the same point; ``"integrate"`` (camera pixels) on the block
    centre ``k·f + (f − 1)/2``, so the HR grid starts ``(f − 1)/2`` HR pixels earlier.
    """
    from spinsr_tf.base.checks import check_choice, check_int
    from spinsr_tf.data.degradation import PIXEL_MODELS

    factor = check_int("factor", factor, 1)
    check_choice("pixel", pixel, PIXEL_MODELS)
    hr_scale = np.array(layer_scale, float)
    hr_translate = np.array(layer_translate, float)
    hr_scale[-2:] /= factor
    if pixel == "integrate":
        hr_translate[-2:] -= (factor - 1) / 2 * hr_scale[-2:]
    return hr_scale, hr_translate


def layer_maps(data, rgb: bool) -> np.ndarray:
    """A layer's data as ``(N, H, W, C)`` float32 maps: an RGB layer ``(..., H, W, 3)`` is a
    vector map (C = 3), any other ``(..., H, W)`` a scalar one (C = 1); leading axes are
    flattened into N."""
    x = np.asarray(data, np.float32)
    if not rgb:
        x = x[..., None]
    if x.ndim < 3 or x.shape[-1] not in (1, 3):
        raise UserError(f"a layer of shape {np.shape(data)} is neither a scalar image nor an "
                        "RGB spin map")
    maps = x.reshape((-1,) + x.shape[-3:])
    if not np.all(np.isfinite(maps)):
        raise UserError("the layer holds NaN or infinite values")
    return maps


def _check(cancelled: Callable[[], bool]) -> None:
    if cancelled():
        raise Cancelled("cancelled")


def upscale_with_model(maps, model_spec: str, uncertainty: bool = False, batch_size: int = 8,
                       progress: Progress | None = None,
                       cancelled: Callable[[], bool] = lambda: False,
                       single_pass: bool = False) -> dict:
    """Super-resolve ``maps`` (N, H, W, C) with a trained model, as ``spinsr-tf upscale`` does:
    the mean over the symmetric copies
    (:func:`~spinsr_tf.inference.uncertainty.symmetric_mean`; with ``uncertainty`` their
    spread too), or with ``single_pass`` one pass of the network.

    Returns ``{"sr": (N, H·f, W·f, C), "uncertainty": (N, H·f, W·f) or None, "factor",
    "pixel"}``, in the model's units (spins: unit vectors).
    """
    from spinsr_tf.base.pretrained import resolve_model
    from spinsr_tf.cli.upscale import MIN_SIZE
    from spinsr_tf.inference.uncertainty import trained_hamiltonian
    from spinsr_tf.nn.export import serving_model
    from spinsr_tf.nn.network import LR_OUTPUT, is_conditioned, load_sr_model

    say = progress or (lambda fraction, text: None)
    maps = np.asarray(maps, np.float32)
    n, h, w, c = maps.shape
    if min(h, w) < MIN_SIZE:
        raise UserError(f"the layer is {h}x{w}; the network needs at least {MIN_SIZE}x{MIN_SIZE}")
    path = resolve_model(model_spec)
    say(None, f"loading {model_spec}")
    model = load_sr_model(path, compile=False)
    _check(cancelled)
    degradation = model.get_layer(LR_OUTPUT)
    channels = int(model.input_shape[-1])
    if c != channels:
        kind = {1: "a grey image", 3: "a spin map (RGB layer)"}
        raise UserError(f"{model_spec} expects {kind.get(channels, f'{channels} channels')}, "
                        f"the layer is {kind.get(c, f'{c} channels')}; choose "
                        f"{FIT!r} for this layer")
    factor, pixel = int(degradation.factor), str(degradation.pixel)
    spread = None
    if uncertainty and single_pass:
        raise UserError("the uncertainty needs the symmetric copies, not a single pass")
    if is_conditioned(model):   # told its imaging: served once, as upscale serves it
        if uncertainty:
            raise UserError(f"{model_spec} is a conditioned model: no uncertainty map for it yet")
        single_pass = True
    if not single_pass:
        from spinsr_tf.inference.uncertainty import symmetric_mean

        def member(text):
            _check(cancelled)
            say(None, text)

        sr, spread, _ = symmetric_mean(model, maps, None, trained_hamiltonian(path),
                                       uncertainty=uncertainty, batch_size=batch_size,
                                       progress=member)
    else:
        serve, parts = serving_model(model), []
        for start in range(0, n, batch_size):
            _check(cancelled)
            parts.append(np.asarray(serve.predict(maps[start:start + batch_size],
                                                  batch_size=batch_size, verbose=0)))
            say(min(start + batch_size, n) / n, f"x{factor}: {min(start + batch_size, n)}/{n} "
                "map(s)")
        sr = np.concatenate(parts)
    return {"sr": np.asarray(sr, np.float32), "factor": factor, "pixel": pixel,
            "uncertainty": None if spread is None else np.asarray(spread, np.float32)}


def fit_settings(image, out_dir, factor: int, epochs: int | None, uncertainty: bool,
                 seed: int = 0) -> dict:
    """The :func:`~spinsr_tf.inference.fit_image.fit_image` keyword arguments of a widget run:
    the one place that maps the widget's choices onto a :class:`FitConfig`."""
    return {"image": str(image), "out_dir": str(out_dir), "scale": int(factor),
            "epochs": epochs, "uncertainty": bool(uncertainty), "seed": int(seed),
            "progress": True}


def _lines(stream, sink: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        sink.put(line)
    sink.put(None)


def fit_to_image(image, factor: int = 4, epochs: int | None = None, uncertainty: bool = True,
                 seed: int = 0, progress: Progress | None = None,
                 cancelled: Callable[[], bool] = lambda: False, poll: float = 0.2) -> dict:
    """Fit a network to one image ``(H, W)`` or ``(H, W, C)`` (C = 1 or 3, in its own units)
    and super-resolve it: ``spinsr-tf fit-image`` in a child process (module docstring), in a
    temporary run folder removed afterwards.

    Returns ``{"sr": (H·f, W·f[, C]) in the image's units, "uncertainty": (H·f, W·f) network
    units or None, "factor", "pixel"}``. Raises :class:`Cancelled` after a cancel (the child
    stopped), :class:`UserError` with the child's message when it refuses the image or the
    settings.
    """
    say = progress or (lambda fraction, text: None)
    image = np.asarray(image, np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    with tempfile.TemporaryDirectory(prefix="spinsr-napari-") as tmp:
        np.save(Path(tmp) / "image.npy", image)
        settings = fit_settings(Path(tmp) / "image.npy", Path(tmp) / "run", factor, epochs,
                                uncertainty, seed)
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        child = subprocess.Popen([sys.executable, "-m", "spinsr_tf.napari.fit_process",
                                  json.dumps(settings)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_lines, args=(child.stdout, lines), daemon=True).start()
        errors: list[str] = []
        err = threading.Thread(target=lambda: errors.extend(child.stderr), daemon=True)
        err.start()
        result, stopping = None, False
        say(None, "fit: starting")
        while True:
            if cancelled() and not stopping:
                child.send_signal(signal.SIGINT)   # stops after the current training batch
                stopping = True
                say(None, "fit: cancelling")
            try:
                line = lines.get(timeout=poll)
            except queue.Empty:
                continue
            if line is None:
                break
            line = line.strip()
            if line.startswith(RESULT):
                result = json.loads(line[len(RESULT):])
            elif line:
                epoch = _EPOCH.search(line)
                say(int(epoch[1]) / int(epoch[2]) if epoch else None, line)
        code = child.wait()
        err.join(timeout=5)
        if stopping:
            raise Cancelled("fit cancelled")
        if code != 0 or result is None:
            last = [e.strip() for e in errors if e.strip()]
            raise UserError(last[-1] if last else f"fit-image stopped with exit status {code}")
        sr = np.load(result["sr"]).astype(np.float32)
        spread = (None if result["uncertainty"] is None
                  else np.load(result["uncertainty"]).astype(np.float32))
    return {"sr": sr, "uncertainty": spread, "factor": int(result["factor"]),
            "pixel": result["pixel"]}
