"""How far can the noise estimates be trusted on small images?

Crops camera images (×4, PSF σ 1.5 HR pixels, camera pixels, mirror borders) of three textures
to ``n × n`` LR pixels at random places, adds Gaussian noise of a known std, and prints per
texture, size and noise, over the seeds: the median of the patch-PCA estimate
(:func:`~spinsr_tf.data.noise.gaussian_noise_std`), how many times it was trusted and how many
of those were off by more than half of the truth (for noise 0: above 0.005); the same for the
noise model fit-image would take (:meth:`~spinsr_tf.data.noise.NoiseModel.estimate`: patch PCA
and the spectrum floor, "trusted" = not fallen back to none).

    python benchmarks/noise_small_images.py --sizes 8 12 16 24 32 64 --seeds 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def smooth(size=256, seed=0, corr=0.03):
    """A smooth random scalar field, unit std (Gaussian low-pass noise, ``corr`` cycles per
    HR pixel)."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(size)
    low = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * corr ** 2))
    f = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) * low))
    return (f / f.std())[..., None]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 12, 16, 24, 32, 64])
    p.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.02, 0.05, 0.1])
    p.add_argument("--seeds", type=int, default=20)
    args = p.parse_args(argv)

    from spinsr_tf.data.degradation import gaussian_downsample, kernel_size_for
    from spinsr_tf.data.noise import NoiseModel, gaussian_noise_std

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_optics import domains, labyrinth

    def camera(hr, factor=4, sigma=1.5):
        return gaussian_downsample(hr[None], factor, kernel_size_for(sigma), sigma, "reflect",
                                   pixel="integrate")[0].astype(np.float64)

    spins = camera(domains(256, seed=0))
    textures = {"domains (3 comp.)": spins, "domains Sz": spins[..., 2:],
                "smooth field": camera(smooth(256, 0)), "labyrinth": camera(labyrinth(256))}

    def off(value, truth):
        return abs(value - truth) > 0.5 * truth + 0.005

    print(f"{'texture':>18} {'n':>3} {'noise':>5} | patch PCA: median trusted off | "
          "noise model: median trusted off")
    for name, lr in textures.items():
        for n in args.sizes:
            for std in args.noise:
                pca, model = [], []
                for seed in range(args.seeds):
                    rng = np.random.default_rng(100 + seed)
                    r0, c0 = rng.integers(0, lr.shape[0] - n + 1, 2)
                    crop = lr[r0:r0 + n, c0:c0 + n]
                    y = crop + std * rng.standard_normal(crop.shape)
                    est = gaussian_noise_std(y)
                    pca.append((est.value, est.confident))
                    m = NoiseModel.estimate(y, "gaussian")
                    model.append((m.std, m.kind != "none"))
                line = f"{name:>18} {n:3d} {std:5.2f} |"
                for runs in (pca, model):
                    values = np.array([v for v, _ in runs])
                    trusted = sum(c for _, c in runs)
                    bad = sum(c and off(v, std) for v, c in runs)
                    line += f" {np.median(values):17.3f} {trusted:7d} {bad:3d} |"
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
