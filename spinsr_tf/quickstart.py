"""The quickstart: the whole method, end to end, on a small Type I data set.

Anneal train and test lattices → train the ×4 network on LR maps only → score it against the
interpolation baselines → table, JSON and a figure. Each step reuses its finished output, so an
interrupted quickstart resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from .errors import UserError


def quickstart(out_dir: str | os.PathLike = "quickstart", n_train: int = 48, n_test: int = 8,
               size: int = 64, scale: int = 4, epochs: int = 60, batch_size: int = 16,
               sweeps: int | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Run the quickstart into ``out_dir``; return the evaluation result (see
    :func:`spinsr_tf.evaluation.evaluate`).

    Files: ``train.h5``, ``test.h5`` (annealed Type I lattices, seeds ``seed`` and ``seed + 1``),
    ``run/`` (the training run: model, history, checkpoints), ``results.json``, ``table.md`` and
    ``figure.png`` (first test image: LR | baselines | SR | ground truth).
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

    say(f"[2/4] training the x{scale} network on {size // scale}x{size // scale} LR maps "
        f"({epochs} epochs; the HR maps only feed the monitored val_sr_mse)", flush=True)
    run_dir = out / "run"
    train(train_file, scale=scale, out_dir=run_dir, epochs=epochs, batch_size=batch_size,
          seed=seed, resume=(run_dir / "config.json").exists(), progress=progress)

    say("[3/4] scoring network and interpolation baselines on the test set", flush=True)
    from .model import load_sr_model

    model = load_sr_model(run_dir / "model.keras")
    hr = read_spins(test_file)
    result = evaluate(hr, {"sr": model})
    write_json(result, out / "results.json")
    table = format_table(result, title=f"Quickstart: Type I, x{scale}")
    tmp = out / f"table.md.tmp-{os.getpid()}"
    tmp.write_text(table)
    os.replace(tmp, out / "table.md")

    say("[4/4] drawing the figure", flush=True)
    _figure(model, hr[:1], result["degradation"], out / "figure.png")
    say(table)
    say(f"wrote {out / 'table.md'}, {out / 'results.json'}, {out / 'figure.png'}")
    return result


def _figure(model, hr: np.ndarray, degradation: dict, path: Path) -> None:
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
    columns["SR (network)"] = predict_sr(model, lr)[0]
    columns["ground truth"] = hr[0]
    comparison_panel(columns, path, title=f"x{f}: LR | interpolation | SR | ground truth")
