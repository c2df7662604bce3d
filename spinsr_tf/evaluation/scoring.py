"""Score SR networks and interpolation baselines against ground truth on the HR grid.

The test set's HR maps are degraded with the *network's own* degradation (factor, kernel, σ,
padding read from its ``lr`` layer), so network and baselines see the same LR input. A
conditioned network (trained across drawn degradations, ``build_sr_model(...,
conditioned=True)``) is told the degradation of the test LR maps: its nominal one, or another
given to :func:`evaluate`. Every
baseline is reported aligned with the sampling grid and in the image-``resize`` convention, each
with and without unit-vector normalization (:data:`spinsr_tf.evaluation.baselines.BASELINES`);
scalar maps (one channel, Sz) with and without clipping to [-1, 1] instead
(:data:`~spinsr_tf.evaluation.baselines.SCALAR_BASELINES`: a normalized scalar is its sign).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from spinsr_tf.evaluation.baselines import (aligned_baselines, baselines_for, clip_unit,
                                            unit_normalize)
from spinsr_tf.data.degradation import Degradation, as_degradation
from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import write_text_atomic
from spinsr_tf.evaluation.metrics import corr, mse, psnr, summarize

_METRICS = (("mse", mse), ("psnr", psnr), ("corr", corr))


def degradation_of(model) -> dict:
    """The degradation a SR model re-applies: ``{"factor", "kernel_size", "sigma", "padding",
    "pixel"}`` (:meth:`~spinsr_tf.data.degradation.Degradation.to_dict` of its ``lr`` layer)."""
    try:
        layer = model.get_layer("lr")
    except ValueError:
        raise UserError("model has no 'lr' layer: not a spinsr model") from None
    return layer.degradation.to_dict()


def score_method(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Mean, std and per-image values of MSE, PSNR (MAX=2) and Corr."""
    out, per_image = {}, {}
    for name, fn in _METRICS:
        values = fn(pred, truth)
        stats = summarize(values)
        out[name], out[f"{name}_std"] = stats["mean"], stats["std"]
        per_image[name] = [float(v) for v in values]
    out["per_image"] = per_image
    return out


def _outputs_unit_vectors(model) -> bool:
    """Whether the SR layer already normalizes (``output="unit"``): then ``_norm`` adds nothing."""
    return type(model.get_layer("sr")).__name__ == "UnitVectors"


def predict_sr(model, lr: np.ndarray, batch_size: int = 16,
               degradation: Degradation | None = None) -> np.ndarray:
    """SR maps of an LR batch through the model's ``sr`` layer.

    Called directly, batch by batch (inference mode), not through ``Model.predict``: each call
    builds a new sub-model, whose ``predict`` would trace a new ``tf.function`` (TensorFlow
    then warns of retracing after a few models); the values are the same.

    ``degradation``: how ``lr`` was made; a conditioned network is told it (required there),
    another network ignores it (it inverts its own).
    """
    import keras

    from spinsr_tf.data.degradation_generator import condition_vector
    from spinsr_tf.nn.network import CONDITION_INPUT, is_conditioned, sr_submodel

    sub = sr_submodel(model)
    lr = np.asarray(lr, dtype=np.float32)
    condition = None
    if is_conditioned(model):
        if degradation is None:
            raise UserError(f"model {model.name!r} is conditioned on the degradation: "
                            "predict_sr needs the one of the LR maps")
        condition = condition_vector(as_degradation(degradation))

    def inputs(x):
        if condition is None:
            return x
        return {"lr_input": x, CONDITION_INPUT: np.tile(condition, (len(x), 1))}

    return np.concatenate([np.asarray(keras.ops.convert_to_numpy(
        sub(inputs(lr[i:i + batch_size]), training=False)), dtype=np.float32)
        for i in range(0, len(lr), batch_size)])


def evaluate(hr: np.ndarray, models: dict | None = None, *,
             degradation: Degradation | int | None = None, factor: int | None = None,
             baselines=None, normalized_sr: bool = True, batch_size: int = 16,
             progress: bool = False) -> dict:
    """Score baselines and networks on a test set of HR maps.

    Parameters
    ----------
    hr : ``(N, L, L, C)`` ground truth.
    models : ``{name: keras.Model}`` SR models (names ``sr``, ``sr_*``); without
        ``degradation`` they must all share one, which makes the test LR maps (the baselines
        place LR pixels where that pixel model puts them).
    degradation : :class:`~spinsr_tf.data.degradation.Degradation` of the test LR maps; with
        models, a network with one input must invert exactly this one, and a conditioned
        network (told it) must share its factor and boundary. ``factor`` alone (no model)
        stands for ``Degradation(factor)`` (the paper's σ = 1, 23 taps, point samples,
        periodic).
    baselines : ``{name: fn}`` (default: by the maps' channel count,
        :func:`~spinsr_tf.evaluation.baselines.baselines_for`: ``_norm`` baselines for
        vectors, ``_clip`` ones for scalar maps).
    normalized_sr : also report each network's output normalized to unit vectors (``NAME_norm``),
        for networks whose output is not unit vectors already; for scalar maps, clipped to
        [-1, 1] instead (``NAME_clip``).
    progress : a progress bar on stderr, one step per baseline and network (a network over
        many images takes long).

    Returns
    -------
    ``{"scale", "n_images", "degradation", "methods": {NAME: {"mse", "psnr", "corr", "mse_std",
    "psnr_std", "corr_std", "per_image": {...}}}}``.
    """
    hr = np.asarray(hr, dtype=np.float32)
    if hr.ndim != 4:
        raise UserError(f"test maps must have shape (N, H, W, C), got {hr.shape}")
    from spinsr_tf.nn.export import lr_input_shape
    from spinsr_tf.nn.network import is_conditioned

    models = dict(models or {})
    degradations = {name: degradation_of(m) for name, m in models.items()}
    for name, model in models.items():
        channels = lr_input_shape(model)[-1]
        if channels != hr.shape[-1]:
            raise UserError(f"model {name!r} takes {channels} channels, test maps have "
                            f"{hr.shape[-1]}")
    if degradations and degradation is not None:
        if factor is not None:
            raise UserError("give degradation or factor, not both")
        deg = as_degradation(degradation)
        for name, own in degradations.items():
            told = is_conditioned(models[name])
            keys = ("factor", "padding") if told else tuple(own)
            wrong = [k for k in keys if own[k] != deg.to_dict()[k]]
            if wrong:
                raise UserError(f"model {name!r} " + (
                    "is told σ and pixel model, but its " if told else "inverts ")
                    + ", ".join(f"{k}={own[k]}" for k in wrong) + ", not the test maps' "
                    + ", ".join(f"{k}={deg.to_dict()[k]}" for k in wrong))
    elif degradations:
        first = next(iter(degradations.values()))
        for name, deg in degradations.items():
            if deg != first:
                raise UserError(f"model {name!r} degrades with {deg}, unlike {first}")
        deg = Degradation.from_dict(first)
    elif degradation is not None and factor is not None:
        raise UserError("give degradation or factor, not both")
    elif degradation is not None:
        deg = as_degradation(degradation)
    elif factor is not None:
        deg = as_degradation(factor, "factor")
    else:
        raise UserError("factor is required when no model is given")
    factor, padding, pixel = deg.factor, deg.padding, deg.pixel
    if hr.shape[1] % factor or hr.shape[2] % factor:
        raise UserError(f"test maps of size {hr.shape[1]}x{hr.shape[2]} are not divisible by the "
                        f"model's scale {factor}")
    lr = deg.apply(hr)
    scalar = hr.shape[-1] == 1
    if baselines is None:
        baselines = baselines_for(hr.shape[-1])

    methods = {}
    bar = _progress(progress, len(baselines) + len(models))
    for name, fn in baselines.items():
        bar(name)
        methods[name] = score_method(fn(lr, factor, padding=padding, pixel=pixel), hr)
    for name, model in models.items():
        bar(name)
        sr = predict_sr(model, lr, batch_size=batch_size, degradation=deg)
        methods[name] = score_method(sr, hr)
        if normalized_sr and scalar:
            methods[f"{name}_clip"] = score_method(clip_unit(sr), hr)
        elif normalized_sr and not _outputs_unit_vectors(model):
            methods[f"{name}_norm"] = score_method(unit_normalize(sr), hr)
    bar(None)
    return {"scale": int(factor), "n_images": int(len(hr)),
            "degradation": deg.to_dict(),
            "methods": methods}


def _progress(progress: bool, total: int):
    """``step(name)`` before each method, ``step(None)`` at the end: a tqdm bar on a terminal,
    one line in a log file, or nothing."""
    if not progress:
        return lambda name: None
    import sys

    from spinsr_tf.base.console import bars_fit

    if not bars_fit(sys.stderr):   # a log file: one line, not a redrawn bar
        print(f"scoring {total} methods", file=sys.stderr, flush=True)
        return lambda name: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="method", desc="scoring", dynamic_ncols=True)
    state = {"started": False}

    def step(name):
        if state["started"]:
            bar.update(1)
        state["started"] = True
        if name is None:
            bar.close()
        else:
            bar.set_postfix_str(name, refresh=True)

    return step


def _json_number(x):
    return x if math.isfinite(x) else str(x)  # strict JSON has no inf/nan


def write_json(result: dict, path: str | os.PathLike) -> Path:
    """Write an :func:`evaluate` result as strict JSON (inf/nan as strings), atomically."""
    def clean(obj):
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        if isinstance(obj, float):
            return _json_number(obj)
        return obj

    return write_text_atomic(path, json.dumps(clean(result), indent=1))


def key_rows(result: dict) -> list[str]:
    """The rows a reader compares first: the networks (``sr``, ``sr_*``; their ``_norm`` or
    ``_clip`` variants only where the network's own output is not among them), the best
    aligned baseline by mean PSNR (:func:`~spinsr_tf.evaluation.baselines.aligned_baselines`
    of the result's channel count: vector or scalar), then the supervised oracle(s) (an upper
    bound, not part of the method). Empty without a network or an oracle."""
    methods = result["methods"]

    def variant(n):
        return any(n.endswith(s) and n[:-len(s)] in methods for s in ("_norm", "_clip"))

    nets = [n for n in methods if n.startswith("sr") and not variant(n)]
    oracles = [n for n in methods if n.startswith("oracle")
               and not n.endswith(("_norm", "_clip"))]
    if not nets and not oracles:
        return []
    aligned = [n for n in dict.fromkeys(aligned_baselines(3) + aligned_baselines(1))
               if n in methods and math.isfinite(methods[n]["psnr"])]
    best = [max(aligned, key=lambda n: methods[n]["psnr"])] if aligned else []
    return nets + best + oracles


def _row(name: str, m: dict) -> str:
    return (f"| {name} | {m['mse']:.2e} ± {m['mse_std']:.2e} | "
            f"{m['psnr']:.2f} ± {m['psnr_std']:.2f} | {m['corr']:.4f} ± {m['corr_std']:.4f} |")


def format_table(result: dict, title: str | None = None) -> str:
    """Markdown: the rows of :func:`key_rows` first, then every method, each with mean ± std
    over the test images of MSE (scientific notation: small values keep their digits), PSNR
    (dB) and Corr, and a line saying what ± is."""
    head = ["| method | MSE | PSNR (dB) | Corr |", "|---|---|---|---|"]
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines += [f"×{result['scale']}, {result['n_images']} test images, "
              f"σ = {result['degradation']['sigma']:g} HR px. Aligned = LR pixel k at HR k·f; "
              "resize = block-centre convention; "
              + ("_clip = clipped to [-1, 1]." if "bicubic_clip" in result["methods"]
                 else "_norm = unit vectors."), ""]
    key = key_rows(result)
    if key:
        lines += ["Networks, best aligned baseline (by PSNR)"
                  + (", supervised oracle (upper bound)" if any(n.startswith("oracle")
                                                                for n in key) else "") + ":",
                  "", *head, *(_row(n, result["methods"][n]) for n in key), "",
                  "All methods:", ""]
    lines += [*head, *(_row(name, m) for name, m in result["methods"].items())]
    lines += ["", f"± = standard deviation over the {result['n_images']} test images (of the "
              "per-image values; not the error of the mean)."]
    return "\n".join(lines) + "\n"


def compare_with_truth(run_dir, truth) -> dict:
    """Score a run's SR and bicubic results against the HR ground truth (stand-ins only).

    Parameters
    ----------
    run_dir : str or PathLike
        A finished :func:`~spinsr_tf.inference.fit_image.fit_image` run (its ``sr_values.npy`` and ``bicubic_values.npy``).
    truth : array_like or path, shape (H·scale, W·scale, 3) or (..., 1)
        The HR spins; for a one-channel run its Sz (last component) is used.

    Returns
    -------
    dict: ``{"sr", "bicubic", "bicubic_norm"}`` → ``{"mse", "psnr", "corr"}``
    (:mod:`spinsr_tf.evaluation.metrics`), in network units. A one-channel (grey-level) result
    is first mapped by the affine fit ``a·pred + b`` that best matches the truth's Sz (least
    squares): the grey-level mapping of a camera image is the user's choice, so only what no
    mapping can fix is scored; its entries add ``pearson`` (Pearson's r, mapping-free).
    """
    from spinsr_tf.data.interpolation import unit_normalize
    from spinsr_tf.evaluation.metrics import corr, mse, psnr

    run_dir = Path(run_dir)
    t = np.load(truth) if isinstance(truth, (str, os.PathLike)) else np.asarray(truth)
    sr = np.load(run_dir / "sr_values.npy")
    bicubic = np.load(run_dir / "bicubic_values.npy")
    if sr.shape[-1] == 1 and t.shape[-1] == 3:
        t = t[..., 2:3]
    if t.shape != sr.shape:
        raise UserError(f"truth of shape {t.shape} does not match the SR image {sr.shape}")
    out = {}
    for name, pred in (("sr", sr), ("bicubic", bicubic), ("bicubic_norm", unit_normalize(bicubic))):
        extra = {}
        if pred.shape[-1] == 1:
            p, q = pred.astype(np.float64).ravel(), t.astype(np.float64).ravel()
            a, b = np.polyfit(p, q, 1) if np.ptp(p) > 0 else (0.0, float(q.mean()))
            pred = (a * pred + b).astype(np.float32)
            extra = {"pearson": float(np.corrcoef(p, q)[0, 1]) if np.ptp(p) > 0 else 0.0,
                     "affine": [float(a), float(b)]}
        out[name] = {"mse": float(mse(pred[None], t[None])[0]),
                     "psnr": float(psnr(pred[None], t[None])[0]),
                     "corr": float(corr(pred[None], t[None])[0]), **extra}
    return out
