"""How well are the optics of an image estimated from the image alone?

Makes camera images (Gaussian PSF of σ HR pixels, camera pixels integrating f×f blocks, mirror
borders, Gaussian noise per component) of annealed textures and prints, per case, the true and
estimated noise level (patch PCA and the power-spectrum floor) and PSF width with their relative
errors and whether each estimator trusts itself (:mod:`spinsr_tf.inference.optics`). With
``--photons``, also Kerr-like images of each texture's Sz (shot noise with that many
photo-electrons at full scale, 8-bit): the true noise there is the RMS over the image of the
shot-noise standard deviation, in the units of the image mapped as fit-image maps it.

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
    p.add_argument("--photons", type=float, nargs="*", default=[])
    args = p.parse_args(argv)

    from spinsr_tf.data.degradation import Degradation, gaussian_downsample, kernel_size_for
    from spinsr_tf.inference.optics import (choose_optics, estimate_psf_sigma,
                                            gaussian_noise_std, poisson_gaussian_noise,
                                            spectral_noise_std)

    truths = {Path(t).name: load(t) for t in args.truth}
    if not truths:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from test_optics import domains

        truths = {"synthetic domains": domains()}
    print("own = patch PCA (Gaussian rows) or the Poisson-Gaussian fit's RMS (Kerr rows); floor ="
          " power-spectrum floor; used = what fit-image's choose_optics takes (RMS)")
    print(f"{'texture':>22} {'f':>2} {'sigma':>5} {'noise':>5} | {'own':>7} {'err':>6} ok | "
          f"{'floor':>7} {'err':>6} ok | {'used':>7} {'err':>6} | {'sigma est':>9} {'err':>6} "
          "trusted")

    def used(y, f, counts):
        o = choose_optics(y, Degradation(f, 1.0, pixel="integrate", padding="reflect"),
                          estimate_sigma=False, counts=counts)
        return float(np.sqrt(max(o["noise_std"] ** 2 + o["noise_slope"] * y.mean(), 0.0)))

    def row(name, f, s, n, first, floor, sigma=None, counts=False, y=None):
        u = used(y, f, counts)
        line = (f"{name[:22]:>22} {f:2d} {s:5.2f} {n:5.3f} | {first.value:7.3f} "
                f"{first.value / n - 1:+6.0%} {'y' if first.confident else 'n':>2} | "
                f"{floor.value:7.3f} {floor.value / n - 1:+6.0%} "
                f"{'y' if floor.confident else 'n':>2} | {u:7.3f} "
                f"{(u / n - 1) if u else float('nan'):+6.0%} |")
        if sigma is not None:
            line += (f" {sigma.value:9.2f} {sigma.value / s - 1:+6.0%} "
                     f"{'yes' if first.confident and sigma.confident else 'no'}")
        print(line, flush=True)

    for name, hr in truths.items():
        for f in args.factor:
            for s in args.sigma:
                clean = gaussian_downsample(hr[None], f, kernel_size_for(s), s, "reflect",
                                            pixel="integrate")[0].astype(np.float64)
                for n in args.noise:
                    y = clean + n * np.random.default_rng(0).standard_normal(clean.shape)
                    ne = gaussian_noise_std(y)
                    se = estimate_psf_sigma(y, Degradation(f, pixel="integrate", padding="reflect"),
                                            ne.value)
                    row(name, f, s, n, ne, spectral_noise_std(y), se, y=y)
                for photons in args.photons:
                    y, true = kerr_like(hr, f, s, photons)
                    mean_std = rms_estimate(*poisson_gaussian_noise(y), y)
                    row(f"Kerr {photons:g} ph, " + name, f, s, true, mean_std,
                        spectral_noise_std(y), counts=True, y=y)
    return 0


def rms_estimate(std, slope, y):
    """The Poisson–Gaussian fit ``(√a, b)`` as an RMS noise level over the image, comparable
    with the spectral floor: ``sqrt(a + b·mean(y))``."""
    import dataclasses

    rms = float(np.sqrt(max(std.value ** 2 + slope.value * y.mean(), 0.0)))
    return dataclasses.replace(std, value=rms)


def kerr_like(hr, factor, sigma, photons):
    """A Kerr stand-in image of ``hr``'s Sz mapped as fit-image maps it, and its true RMS noise
    in those units."""
    from spinsr_tf.experiments.microscope import instrument_optics, kerr_image
    from spinsr_tf.inference.image_io import value_mapping

    optics = instrument_optics({"psf_sigma": sigma, "pixel": "integrate"}, factor, "reflect")
    image, m = kerr_image(hr, optics, photons=photons, black_level=0.1)
    dn = image.astype(np.float64)
    mapping = value_mapping(dn[..., None])
    y = (dn[..., None] - mapping["offset"]) / mapping["scale"]
    u = dn / m["full_scale"]
    var_dn = m["full_scale"] ** 2 * u / photons + 1.0 / 12.0
    return y, float(np.sqrt(var_dn.mean())) / mapping["scale"]


if __name__ == "__main__":
    raise SystemExit(main())
