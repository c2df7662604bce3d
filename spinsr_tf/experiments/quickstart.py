"""The quickstart: the whole method, end to end, on a small Type I data set.

Anneal train and test lattices → train the ×4 networks on LR maps only → score them against the
interpolation baselines → table, JSON and a figure. Each step reuses its finished output, so an
interrupted quickstart resumes where it stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import check_output_folder, write_text_atomic
from spinsr_tf.experiments.presets import NETWORKS as NETWORKS_ALL
from spinsr_tf.experiments.presets import Preset, check_sizes
from spinsr_tf.experiments.reproduce import make_data, run_setting

#: The networks the quickstart trains: the paper's, and the default recipe (the residual
#: unit-vector network with the lattice-symmetry term, docs/results.md).
NETWORKS = {name: NETWORKS_ALL[name] for name in ("sr", "sr_equivariant")}


def quickstart(out_dir: str | os.PathLike = "quickstart", n_train: int = 48, n_test: int = 8,
               size: int = 64, scale: int = 4, epochs: int = 60, batch_size: int = 16,
               sweeps: int | None = None, seed: int = 0, progress: bool = True,
               jit_compile: bool = True) -> dict:
    """Run the quickstart into ``out_dir``; return the evaluation result (see
    :func:`spinsr_tf.evaluation.scoring.evaluate`).

    Files: ``train.h5``, ``test.h5`` (annealed Type I lattices, seeds ``seed`` and ``seed + 1``),
    ``run_NAME/`` (one training run per network of :data:`NETWORKS`: model, history,
    checkpoints), ``results.json``, ``table.md`` and ``figure.png`` (first test image, see
    :func:`quickstart_figure`). ``jit_compile``: XLA for the training steps (pays off beyond a
    few epochs).
    """
    from spinsr_tf.evaluation.scoring import format_table

    out = Path(out_dir)
    preset = Preset(size=size, n_train=n_train, n_test=n_test, epochs=epochs,
                    batch_size=batch_size, sweeps=sweeps, jit_compile=jit_compile)
    check_sizes(preset, (scale,), NETWORKS, seed=seed)   # before the first lattice is annealed
    check_output_folder(out, ("train.h5", "train.h5.partial"), "a quickstart")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {str(out)!r}: {exc}") from None
    say = print if progress else (lambda *a, **k: None)

    reused = all((out / f"{name}.h5").is_file() for name in ("train", "test"))
    say(f"[1/3] {'reusing the' if reused else 'annealing'} {n_train} + {n_test} Type I lattices "
        f"of {size}x{size}" + (f" in {out}" if reused else ""), flush=True)
    train_file, test_file = make_data(out, "I", preset, seed, progress)
    done = _scored(out, preset)
    say(f"[2/3] {'reusing the' if done else 'training'} {len(NETWORKS)} networks x{scale} "
        + (f"and their scores in {out / 'results.json'}" if done else
           f"on {size // scale}x{size // scale} LR maps (the HR maps only feed the monitored "
           "val_sr_mse), then scoring them and the interpolation baselines on the test set"),
        flush=True)
    result = run_setting(out, train_file, test_file, scale, preset, seed=seed, networks=NETWORKS,
                         progress=progress, title="Quickstart, Type I")
    figure = out / "figure.png"
    say("[3/3] writing the table" + ("" if done and figure.is_file() else " and the figure"),
        flush=True)
    if not (done and figure.is_file()):   # a rerun leaves every finished file untouched
        quickstart_figure(out, result, test_file, title=f"Quickstart: Type I, x{scale}")
    table = format_table(result, title=f"Quickstart: Type I, x{scale}")
    write_text_atomic(out / "table.md", table)
    say(table)
    say(f"wrote {out / 'table.md'}, {out / 'results.json'}, {figure}")
    return result


def _scored(out: Path, preset: Preset) -> bool:
    """Whether ``run_setting`` will reuse the stored scores (it says nothing itself); a damaged
    file is left for ``run_setting`` to report."""
    import dataclasses
    import json

    try:
        result = json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(result, dict) and isinstance(result.get("methods"), dict)
            and result.get("preset_sizes") == dataclasses.asdict(preset)
            and set(NETWORKS) <= set(result["methods"]))


def quickstart_figure(out: Path, result: dict, test_file, title: str = "",
                      index: int = 0) -> Path:
    """Draw ``out/figure.png`` for test image ``index``: LR input | best network | best aligned
    baseline | ground truth | other networks, with Sz and in-plane rows (colour bar, colour-wheel
    key), the error ``|map − truth|`` of each on one scale, and a zoom on the strongest walls.
    Each title carries that image's PSNR and Corr (``result``'s per-image values)."""
    from spinsr_tf.data.degradation import gaussian_downsample
    from spinsr_tf.data.generate import read_spins
    from spinsr_tf.data.render import comparison_panel
    from spinsr_tf.evaluation.baselines import BASELINES, unit_normalize
    from spinsr_tf.evaluation.scoring import predict_sr
    from spinsr_tf.experiments.reproduce import figure_methods
    from spinsr_tf.nn.network import load_sr_model

    deg = result["degradation"]
    hr = read_spins(test_file)[index:index + 1]
    f = deg["factor"]
    lr = gaussian_downsample(hr, f, kernel_size=deg["kernel_size"], sigma=deg["sigma"],
                             padding=deg["padding"], pixel=deg.get("pixel", "sample"))
    padding = "periodic" if deg["padding"] == "periodic" else "reflect"
    maps, scores = {"LR input": lr[0]}, {}
    for name in figure_methods(result):
        base = name[:-len("_norm")] if name.endswith("_norm") else name
        if name in BASELINES:
            img = BASELINES[name](lr, f, padding=padding, pixel=deg.get("pixel", "sample"))[0]
        else:
            img = predict_sr(load_sr_model(Path(out) / f"run_{base}" / "model.keras",
                                           compile=False), lr)[0]
            if base != name:
                img = unit_normalize(img)
        maps[name] = img
        per = result["methods"][name]["per_image"]
        scores[name] = f"PSNR {per['psnr'][index]:.1f} dB, Corr {per['corr'][index]:.4f}"
        if len(maps) == 3:
            maps["ground truth"] = hr[0]
    caption = (f"Test image {index + 1} of {result['n_images']} (x{f}, Gaussian PSF σ = "
               f"{deg['sigma']:g} HR px). PSNR (MAX = 2) and Corr of this image; table.md holds "
               "the means over the test set. Best network and best aligned baseline by mean PSNR.")
    return comparison_panel(maps, Path(out) / "figure.png", title=title, truth=hr[0],
                            scores=scores, caption=caption, zoom=max(8, hr.shape[1] // 4))
