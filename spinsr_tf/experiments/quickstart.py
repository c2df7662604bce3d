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
    checkpoints), ``results.json``, ``table.md`` and ``figure.png`` (first test image: LR |
    baselines | networks | ground truth). ``jit_compile``: XLA for the training steps (pays
    off beyond a few epochs).
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

    say(f"[1/3] annealing {n_train} + {n_test} Type I lattices of {size}x{size}", flush=True)
    train_file, test_file = make_data(out, "I", preset, seed, progress)
    say(f"[2/3] training {len(NETWORKS)} networks x{scale} on {size // scale}x{size // scale} LR "
        "maps (the HR maps only feed the monitored val_sr_mse), then scoring them and the "
        "interpolation baselines on the test set", flush=True)
    result = run_setting(out, train_file, test_file, scale, preset, seed=seed, networks=NETWORKS,
                         progress=progress, title="Quickstart, Type I")
    say("[3/3] writing the table", flush=True)
    table = format_table(result, title=f"Quickstart: Type I, x{scale}")
    write_text_atomic(out / "table.md", table)
    say(table)
    say(f"wrote {out / 'table.md'}, {out / 'results.json'}, {out / 'figure.png'}")
    return result
