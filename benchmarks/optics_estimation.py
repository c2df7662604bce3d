"""How well are the optics of an image estimated from the image alone?

Makes camera images (Gaussian PSF of σ HR pixels, camera pixels integrating f×f blocks, mirror
borders, Gaussian noise per component) of annealed textures and prints, per case, the true and
estimated noise level and PSF width with their relative errors and whether the estimator trusts
itself (:mod:`spinsr_tf.inference.optics`).

    python benchmarks/optics_estimation.py --truth TYPE_I.npy TYPE_II.h5 --factor 4 8

``--truth`` takes ``.npy`` maps ``(H, W, 3)`` or HDF5 files whose first four ``spins`` maps are
tiled 2×2 into one larger map. Without it, the tests' synthetic domain texture is used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def load(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        return np.load(path).astype(np.float64)
    import h5py

    with h5py.File(path) as f:
        m = f["spins"][:4].astype(np.float64)
    return np.concatenate([np.concatenate([m[0], m[1]], 1), np.concatenate([m[2], m[3]], 1)], 0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--truth", nargs="*", default=[])
    p.add_argument("--factor", type=int, nargs="+", default=[4, 8])
    p.add_argument("--sigma", type=float, nargs="+", default=[0.75, 1.5, 3.0, 5.0])
    p.add_argument("--noise", type=float, nargs="+", default=[0.05, 0.1])
    args = p.parse_args(argv)

    from spinsr_tf.data.degradation import gaussian_downsample, kernel_size_for
    from spinsr_tf.inference.optics import estimate_psf_sigma, gaussian_noise_std

    truths = {Path(t).name: load(t) for t in args.truth}
    if not truths:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from test_optics import domains

        truths = {"synthetic domains": domains()}
    print(f"{'texture':>22} {'f':>2} {'sigma':>5} {'noise':>5} | {'noise est':>9} {'err':>6} | "
          f"{'sigma est':>9} {'err':>6} trusted")
    for name, hr in truths.items():
        for f in args.factor:
            for s in args.sigma:
                clean = gaussian_downsample(hr[None], f, kernel_size_for(s), s, "reflect",
                                            pixel="integrate")[0].astype(np.float64)
                for n in args.noise:
                    y = clean + n * np.random.default_rng(0).standard_normal(clean.shape)
                    ne = gaussian_noise_std(y)
                    se = estimate_psf_sigma(y, f, "integrate", ne.value)
                    print(f"{name[:22]:>22} {f:2d} {s:5.2f} {n:5.2f} | {ne.value:9.3f} "
                          f"{ne.value / n - 1:+6.0%} | {se.value:9.2f} {se.value / s - 1:+6.0%} "
                          f"{'yes' if ne.confident and se.confident else 'no'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
