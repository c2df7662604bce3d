"""fit-image on a series of images: does starting from an earlier fit pay?

A user with several micrographs of one sample (the same microscope, the same optics) fits one,
then the others. ``fit-image --init RUN_DIR`` starts the network from the earlier fit and trains
a quarter of the default length. Here: the two 256² foreign films of the *tune* part
(:mod:`foreign_textures`, Spirit, open edges), imaged as in ``generalization.py --fit-image``
(PSF σ 2 HR px, 4×4 camera pixels, Gaussian noise 0.05); each is fitted from random weights at
the defaults, and from the other's fit with ``--init``; and, for comparison, from the shipped
universal model of the factor (trained on point samples, σ 1: other optics). Scores: PSNR (MAX 2)
against the truth, and the gain over aligned bicubic_norm on the camera-pixel grid; wall times
measured side by side in one run.

    python benchmarks/fit_series.py [--json OUT.json] [--no-universal] [--init-model M.keras]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import foreign_textures as ft  # noqa: E402

#: The films: tune part only (the held-out film scores the defaults in generalization.py).
FILMS = ({"index": 0, "noise_seed": 7}, {"index": 1, "noise_seed": 8})
SIZE, FACTOR, SIGMA, PIXEL, NOISE = 256, 4, 2.0, "integrate", 0.05


def film(index: int, noise_seed: int, cache: Path, log) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(truth (H, W, 3), noisy LR (h, w, 3), record)`` of tune film ``index``."""
    from spinsr_tf.data.degradation import gaussian_downsample, kernel_size_for

    hr, record = ft.load_or_make("film", "tune", index, SIZE, cache, log)
    lr = gaussian_downsample(hr[None], FACTOR, kernel_size=kernel_size_for(SIGMA), sigma=SIGMA,
                             padding="reflect", pixel=PIXEL)
    lr = lr + np.random.default_rng(noise_seed).normal(0.0, NOISE, lr.shape)
    return hr, lr[0].astype(np.float32), record


def fit(image: Path, run_dir: Path, extra: list[str]) -> tuple[np.ndarray, float, int]:
    """``spinsr-tf fit-image IMAGE --scale 4`` + ``extra``: (SR values, seconds, epochs)."""
    from spinsr_tf.cli import main as cli_main

    t0 = time.perf_counter()
    rc = cli_main(["fit-image", str(image), "--scale", str(FACTOR), "--out", str(run_dir),
                   "--quiet", *extra])
    seconds = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"fit-image exited with {rc}")
    epochs = json.loads((run_dir / "fit.json").read_text())["epochs"]
    return np.load(run_dir / "sr_values.npy"), seconds, epochs


def main(argv=None) -> int:
    from spinsr_tf.evaluation.baselines import BASELINES
    from spinsr_tf.evaluation.metrics import psnr

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--no-universal", action="store_true",
                   help="skip the start from the shipped universal model")
    p.add_argument("--init-model", type=Path, action="append", default=[], metavar="MODEL",
                   help="also start from this .keras model (e.g. one trained for camera "
                   "pixels); repeatable")
    p.add_argument("--cache", type=Path, default=ft.default_cache(),
                   help=f"Spirit maps (default {ft.default_cache()})")
    args = p.parse_args(argv)
    log = print
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="spinsr_series_") as tmp:
        work = Path(tmp)
        films = []
        for i, spec in enumerate(FILMS):
            hr, lr, record = film(spec["index"], spec["noise_seed"], args.cache, log)
            np.save(work / f"film{i}.npy", lr)
            films.append((hr, lr, record))
        starts = [("random weights (defaults)", lambda i: [])]
        starts.append(("from the other film's fit (--init RUN_DIR)",
                       lambda i: ["--init", str(work / f"scratch{1 - i}")]))
        if not args.no_universal:
            starts.append((f"from pretrained:universal-x{FACTOR} (--init)",
                           lambda i: ["--init", f"pretrained:universal-x{FACTOR}"]))
        tags = ["scratch", "series"] + (["universal"] if not args.no_universal else [])
        for k, model in enumerate(args.init_model):
            starts.append((f"from {model} (--init)",
                           lambda i, model=model: ["--init", str(model)]))
            tags.append(f"model{k}")
        for (label, extra), tag in zip(starts, tags):
            for i, (hr, lr, record) in enumerate(films):
                sr, seconds, epochs = fit(work / f"film{i}.npy", work / f"{tag}{i}", extra(i))
                bic = BASELINES["bicubic_norm"](lr[None], FACTOR, padding="reflect",
                                                pixel=PIXEL)[0]
                model_db, bic_db = float(psnr(sr[None], hr[None])[0]), float(
                    psnr(bic[None], hr[None])[0])
                name = ft.material_label(ft.Material(**record["material"]))
                results.setdefault(tag, []).append(
                    {"film": i, "material": name, "psnr": model_db, "bicubic_norm": bic_db,
                     "gain": model_db - bic_db, "seconds": round(seconds, 1), "epochs": epochs})
                rows.append(f"| {label} | {i}: {name} | {epochs} | {model_db:.2f} | "
                            f"{bic_db:.2f} | {model_db - bic_db:+.2f} | {seconds:.0f} |")
    log(f"\nfit-image ×{FACTOR} on the tune films ({SIZE}², PSF σ {SIGMA:g} HR px, "
        f"{FACTOR}x{FACTOR} camera pixels, noise {NOISE:g})\n")
    log("| start | film | epochs | model (dB) | bicubic_norm (dB) | gain (dB) | wall (s) |")
    log("|---|---|---|---|---|---|---|")
    for row in rows:
        log(row)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
