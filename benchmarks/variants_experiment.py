"""Experiment (not a speed benchmark): which network variant beats aligned interpolation?

Anneals small train/test sets (Type I or II), trains each variant of
:func:`spinsr_tf.nn.network.build_sr_model` with :func:`spinsr_tf.nn.training.train` on LR maps only
(same epochs, batch, seed, data for all), and scores them on the test set with
:func:`spinsr_tf.evaluation.scoring.evaluate` against aligned bicubic with and without unit
normalisation. The HR maps enter no loss: they are degraded into the LR inputs and otherwise
feed only the monitored ``val_sr_mse`` and the final scores.

Variants (name: ``build_sr_model`` arguments):

- ``sr``: the paper's network (``output="linear"``);
- ``sr_unit``: ``output="unit"``;
- ``sr_residual_unit``: ``residual=True, output="unit"``;
- ``sr_residual``: ``residual=True`` (linear).

Every finished step is reused when the command is run again (data files, finished runs), so an
interrupted experiment continues. Prints one markdown table per scale and writes
``OUT/results_<tag>.json``.

Example (the numbers of ``docs/variants.md``)::

    python benchmarks/variants_experiment.py --out /tmp/varexp --type I --scales 4 8 \\
        --epochs 60 --variants sr sr_unit sr_residual_unit
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

VARIANTS = {
    "sr": dict(output="linear", residual=False),
    "sr_unit": dict(output="unit", residual=False),
    "sr_residual_unit": dict(output="unit", residual=True),
    "sr_residual": dict(output="linear", residual=True),
}
BASELINE_NAMES = ("bilinear", "bilinear_norm", "bicubic", "bicubic_norm")


def run_experiment(out: Path, kind: str, scales, epochs: int, variants, n_train: int,
                   n_test: int, size: int, batch_size: int, sigma: str, seed: int,
                   learning_rate: float = 0.01) -> dict:
    """Train and score every variant at every scale; return ``{scale: evaluate-result}``."""
    from spinsr_tf.evaluation.baselines import BASELINES
    from spinsr_tf.data import generate_dataset
    from spinsr_tf.data.generate import read_spins
    from spinsr_tf.evaluation.scoring import evaluate
    from spinsr_tf.nn.network import load_sr_model
    from spinsr_tf.physics import TypeI, TypeII
    from spinsr_tf.nn.training import train

    hamiltonian = TypeI() if kind == "I" else TypeII()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    train_file = generate_dataset(out / f"type{kind}_train.h5", hamiltonian, n=n_train,
                                  size=size, seed=seed, progress=False)
    test_file = generate_dataset(out / f"type{kind}_test.h5", hamiltonian, n=n_test, size=size,
                                 seed=seed + 1, progress=False)
    print(f"data: Type {kind}, {n_train} train + {n_test} test of {size}x{size} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    hr = read_spins(test_file)
    baselines = {name: BASELINES[name] for name in BASELINE_NAMES}
    results = {}
    for scale in scales:
        sig = float(scale) if sigma == "f" else float(sigma)
        models, seconds = {}, {}
        for name in variants:
            run_dir = out / f"type{kind}_x{scale}_sigma{sigma}_e{epochs}_lr{learning_rate:g}_{name}"
            t = time.perf_counter()
            history = train(train_file, scale, run_dir, epochs=epochs, batch_size=batch_size,
                            seed=seed, sigma=sig, learning_rate=learning_rate, resume=(run_dir / "config.json").exists(),
                            progress=False, **VARIANTS[name])
            seconds[name] = time.perf_counter() - t
            models[name] = load_sr_model(run_dir / "model.keras", compile=False)
            print(f"x{scale} {name}: {seconds[name]:.0f} s, loss {history['loss'][-1]:.3g}, "
                  f"val_sr_mse {history.get('val_sr_mse', [float('nan')])[-1]:.3g}", flush=True)
        result = evaluate(hr, models, baselines=baselines)
        result["train_seconds"] = seconds
        results[scale] = result
        print(table(result, epochs, learning_rate), flush=True)
    tag = f"type{kind}_sigma{sigma}_e{epochs}_lr{learning_rate:g}"
    (out / f"results_{tag}.json").write_text(json.dumps(
        {str(k): {kk: vv for kk, vv in v.items()} for k, v in results.items()}, indent=1))
    return results


def table(result: dict, epochs: int, learning_rate: float) -> str:
    """Markdown rows: method, PSNR and Corr mean ± std over the test images, and the paired
    per-image PSNR difference to ``bicubic_norm`` (mean ± std, images where it is > 0)."""
    import numpy as np

    ref = result["methods"]["bicubic_norm"]
    ref_psnr = np.asarray(ref["per_image"]["psnr"])
    lines = [f"x{result['scale']}, sigma = {result['degradation']['sigma']:g} HR px, "
             f"{result['n_images']} test images, {epochs} epochs, Adam lr {learning_rate:g}", "",
             "| method | PSNR (dB) | Corr | ΔPSNR vs bicubic_norm (paired) | wins | train s |",
             "|---|---|---|---|---|---|"]
    for name, m in result["methods"].items():
        if name.endswith("_unit_norm"):
            continue  # identical to the unit-output network itself
        delta = np.asarray(m["per_image"]["psnr"]) - ref_psnr
        secs = result.get("train_seconds", {}).get(name)
        lines.append(f"| {name} | {m['psnr']:.2f} ± {m['psnr_std']:.2f} | "
                     f"{m['corr']:.4f} ± {m['corr_std']:.4f} | "
                     f"{delta.mean():+.2f} ± {delta.std():.2f} | "
                     f"{int((delta > 0).sum())}/{delta.size} | "
                     f"{'' if secs is None else f'{secs:.0f}'} |")
    return "\n".join(lines) + "\n"


def report(path: Path) -> None:
    """Print the tables of a finished ``results_<tag>.json``."""
    tag = path.stem
    epochs = int(tag.split("_e")[1].split("_")[0])
    learning_rate = float(tag.split("_lr")[1])
    for result in json.loads(path.read_text()).values():
        print(table(result, epochs, learning_rate))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="working folder (data, runs, results)")
    p.add_argument("--report", type=Path, help="only print the tables of a results_*.json")
    p.add_argument("--type", choices=["I", "II"], default="I")
    p.add_argument("--scales", type=int, nargs="+", default=[4, 8])
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS),
                   default=["sr", "sr_unit", "sr_residual_unit"])
    p.add_argument("--n-train", type=int, default=96)
    p.add_argument("--n-test", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--sigma", default="1", help="degradation width in HR px, or 'f' (= scale)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--learning-rate", type=float, default=0.01, help="Adam (paper: 0.01)")
    a = p.parse_args(argv)
    if a.report:
        return report(a.report)
    if not a.out:
        p.error("--out is required")
    run_experiment(Path(a.out), a.type, a.scales, a.epochs, a.variants, a.n_train, a.n_test,
                   a.size, a.batch_size, a.sigma, a.seed, a.learning_rate)


if __name__ == "__main__":
    main()
