"""The quickstart: the whole method, end to end, on a small Type I data set.

Anneal train and test lattices → train the ×4 networks on LR maps only → score them against the
interpolation baselines → table, JSON and a figure. Each step reuses its finished output, so an
interrupted quickstart resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from .errors import UserError

#: The networks the quickstart trains: the paper's, and the unsupervised variant that starts at
#: aligned bicubic + normalization and learns a correction (docs/variants.md).
NETWORKS = {
    "sr": {"label": "the paper's network", "output": "linear", "residual": False,
           "learning_rate": 0.01},
    "sr_residual_unit": {"label": "residual on aligned bicubic, unit-vector output",
                         "output": "unit", "residual": True, "learning_rate": 0.001},
}


def quickstart(out_dir: str | os.PathLike = "quickstart", n_train: int = 48, n_test: int = 8,
               size: int = 64, scale: int = 4, epochs: int = 60, batch_size: int = 16,
               sweeps: int | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Run the quickstart into ``out_dir``; return the evaluation result (see
    :func:`spinsr_tf.evaluation.evaluate`).

    Files: ``train.h5``, ``test.h5`` (annealed Type I lattices, seeds ``seed`` and ``seed + 1``),
    ``run_NAME/`` (one training run per network of :data:`NETWORKS`: model, history,
    checkpoints), ``results.json``, ``table.md`` and ``figure.png`` (first test image: LR |
    baselines | networks | ground truth).
    """
    from .data.generate import generate_dataset, read_spins
    from .evaluation import evaluate, format_table, write_json
    from .physics import Schedule, TypeI
    from .training import train

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {str(out)!r}: {exc}") from None
    schedule = Schedule() if sweeps is None else dataclasses.replace(Schedule(), sweeps=sweeps)
    say = print if progress else (lambda *a, **k: None)

    say(f"[1/4] annealing {n_train} + {n_test} Type I lattices of {size}x{size} "
        f"({schedule.sweeps} sweeps each)", flush=True)
    train_file = generate_dataset(out / "train.h5", TypeI(), n=n_train, size=size, seed=seed,
                                  schedule=schedule, progress=progress)
    test_file = generate_dataset(out / "test.h5", TypeI(), n=n_test, size=size, seed=seed + 1,
                                 schedule=schedule, progress=progress)

    models = {}
    for k, (name, options) in enumerate(NETWORKS.items(), start=1):
        say(f"[2/4] training network {k}/{len(NETWORKS)} ({name}: {options['label']}) x{scale} on "
            f"{size // scale}x{size // scale} LR maps, {epochs} epochs; the HR maps only feed "
            "the monitored val_sr_mse", flush=True)
        run_dir = out / f"run_{name}"
        train(train_file, scale=scale, out_dir=run_dir, epochs=epochs, batch_size=batch_size,
              learning_rate=options["learning_rate"], output=options["output"],
              residual=options["residual"], seed=seed,
              resume=(run_dir / "config.json").exists(), progress=progress)
        models[name] = run_dir / "model.keras"

    say("[3/4] scoring the networks and the interpolation baselines on the test set", flush=True)
    from .model import load_sr_model

    models = {name: load_sr_model(path) for name, path in models.items()}
    hr = read_spins(test_file)
    result = evaluate(hr, models)
    write_json(result, out / "results.json")
    table = format_table(result, title=f"Quickstart: Type I, x{scale}")
    tmp = out / f"table.md.tmp-{os.getpid()}"
    tmp.write_text(table)
    os.replace(tmp, out / "table.md")

    say("[4/4] drawing the figure", flush=True)
    _figure(models, hr[:1], result["degradation"], out / "figure.png")
    say(table)
    say(f"wrote {out / 'table.md'}, {out / 'results.json'}, {out / 'figure.png'}")
    return result


def _figure(models: dict, hr: np.ndarray, degradation: dict, path: Path) -> None:
    from .baselines import BASELINES
    from .data.degradation import gaussian_downsample
    from .evaluation import predict_sr
    from .plotting import comparison_panel

    f = degradation["factor"]
    lr = gaussian_downsample(hr, f, kernel_size=degradation["kernel_size"],
                             sigma=degradation["sigma"], padding=degradation["padding"])
    columns = {"LR": lr[0]}
    for name in ("gaussian", "bilinear", "bicubic", "bicubic_norm"):
        columns[name] = BASELINES[name](lr, f)[0]
    for name, model in models.items():
        columns[name] = predict_sr(model, lr)[0]
    columns["ground truth"] = hr[0]
    comparison_panel(columns, path, title=f"x{f}: LR | interpolation | SR | ground truth")
