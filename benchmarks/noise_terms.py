"""Which data term on noisy LR maps: the LR term (fits the noise) or recorrupted pairs (R2R)?

For each noise level, the LR maps of annealed HR lattices get Gaussian noise of that standard
deviation per component; two networks of the default recipe are trained on them, one with the
LR term and one with :class:`~spinsr_tf.nn.losses.Recorrupted` told the noise level (both with
the equivariance term), and scored on noisy LR maps of held-out lattices against the *clean* HR
truth, beside aligned bicubic + normalisation of the same noisy input.

    python benchmarks/noise_terms.py --train TRAIN.h5 --test TEST.h5 --scale 4 \\
        --noise 0.05 0.1 0.2 --n-train 64 --epochs 15 --out /tmp/noise_terms

Prints one row per noise level and writes ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import h5py
import numpy as np


def noisy_lr_file(path: Path, hr: np.ndarray, attrs: dict, scale: int, noise: float,
                  seed: int) -> None:
    from spinsr_tf.data.degradation import gaussian_downsample

    lr = gaussian_downsample(hr, scale)
    lr = lr + noise * np.random.default_rng(seed).standard_normal(lr.shape).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.create_dataset("lr", data=lr.astype(np.float32))
        f.attrs.update({k: v for k, v in attrs.items() if str(k).startswith("hamiltonian.")})
        f.attrs.update({"factor": scale, "kernel_size": 23, "sigma": 1.0, "padding": "periodic"})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--noise", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    p.add_argument("--n-train", type=int, default=64)
    p.add_argument("--n-test", type=int, default=16)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--out", default="/tmp/noise_terms")
    args = p.parse_args(argv)

    from spinsr_tf.data.degradation import gaussian_downsample
    from spinsr_tf.data.interpolation import upsample
    from spinsr_tf.evaluation.metrics import psnr
    from spinsr_tf.nn.config import recipe
    from spinsr_tf.nn.losses import Equivariance, LRConsistency, Recorrupted
    from spinsr_tf.nn.network import load_sr_model, sr_submodel
    from spinsr_tf.nn.training import train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with h5py.File(args.train) as f:
        hr_train, attrs = f["spins"][:args.n_train], dict(f.attrs)
    with h5py.File(args.test) as f:
        hr_test = f["spins"][:args.n_test]
    results = {}
    print(f"{'noise':>6} {'bicubic_norm':>13} {'LR term':>8} {'R2R':>8}  (PSNR dB vs clean HR)")
    for noise in args.noise:
        data = out / f"train_noise{noise}.h5"
        noisy_lr_file(data, hr_train, attrs, args.scale, noise, seed=1)
        lr_test = gaussian_downsample(hr_test, args.scale)
        lr_test = lr_test + noise * np.random.default_rng(2).standard_normal(
            lr_test.shape).astype(np.float32)
        row = {"bicubic_norm": float(np.mean(psnr(
            upsample(lr_test, args.scale, normalize=True), hr_test)))}
        for name, data_term in (("lr_term", LRConsistency()),
                                ("r2r", Recorrupted(noise_std=noise))):
            run = out / f"{name}_noise{noise}"
            config = recipe("equivariant", data, args.scale, epochs=args.epochs, batch_size=16,
                            losses=(data_term, Equivariance()))
            t = time.time()
            train(config, run, resume=(run / "config.json").exists(), progress=False)
            model = load_sr_model(run / "model.keras")
            sr = np.asarray(sr_submodel(model).predict(lr_test, verbose=0))
            row[name] = float(np.mean(psnr(sr, hr_test)))
            row[f"{name}_seconds"] = round(time.time() - t, 1)
        results[str(noise)] = row
        print(f"{noise:6.3f} {row['bicubic_norm']:13.2f} {row['lr_term']:8.2f} {row['r2r']:8.2f}",
              flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
