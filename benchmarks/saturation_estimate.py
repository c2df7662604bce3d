"""How well is a vector image's saturation magnetisation estimated from the image alone?

fit-image divides a three-component image by its saturation Ms to give the network unit spins.
The median LR vector length reads Ms low wherever blur and camera pixels average a turning
texture; :func:`spinsr_tf.inference.optics.estimate_saturation` fits Ms under the degradation.
Here, per texture and optics (Gaussian PSF σ HR pixels, f×f camera pixels, mirror borders,
Gaussian noise per component, Ms = 1), the median length, the estimate, and whether it is
trusted; and point samples of the same textures (a coarse simulation's cells, unblurred) under
assumed camera optics, where the estimate must decline. The textures: the two 256² Spirit films
of the ``film`` family's *tune* part (:mod:`foreign_textures`, cached; needs ``spirit``) and,
with ``--own`` or without Spirit, a Type I film of this package (open edges, 256², seed 7).

    python benchmarks/saturation_estimate.py [--own] [--no-spirit]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: (factor, σ, noise) of the camera images.
CASES = ((4, 1.0, 0.0), (4, 2.0, 0.0), (4, 2.0, 0.05), (4, 3.0, 0.05), (8, 2.0, 0.0),
         (8, 4.0, 0.05))


def textures(spirit: bool, own: bool):
    """``(name, HR unit-spin map (H, W, 3))`` pairs."""
    if spirit:
        import foreign_textures as ft

        materials = ft.FAMILIES["film"].materials("tune")
        for index in range(2):
            hr, _ = ft.load_or_make("film", "tune", index, 256, ft.default_cache())
            label = ft.material_label(materials[index % len(materials)])
            yield f"Spirit film tune {index} ({label})", hr
    if own or not spirit:
        from spinsr_tf.physics.annealing import anneal
        from spinsr_tf.physics.boundaries import with_boundary
        from spinsr_tf.physics.hamiltonians import TypeI

        yield "Type I film (open, seed 7)", anneal(with_boundary(TypeI(), "open"), 256, 7,
                                                   [0])[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-spirit", action="store_true")
    p.add_argument("--own", action="store_true", help="also the package's own Type I film")
    args = p.parse_args(argv)

    from spinsr_tf.data.degradation import Degradation
    from spinsr_tf.inference.optics import estimate_saturation

    rng = np.random.default_rng(0)
    print("| texture | optics | median |v| / Ms | estimate / Ms | trusted |")
    print("|---|---|---|---|---|")
    for name, hr in textures(not args.no_spirit, args.own):
        hr = np.asarray(hr, np.float64)
        for f, sigma, noise in CASES:
            d = Degradation(f, sigma, None, "integrate", "reflect")
            lr = d.apply(hr[None], dtype=np.float64)[0]
            lr = lr + noise * rng.standard_normal(lr.shape)
            est = estimate_saturation(lr, d, noise_std=noise)
            median = float(np.median(np.linalg.norm(lr, axis=-1)))
            print(f"| {name} | x{f}, σ {sigma:g}, camera, noise {noise:g} | {median:.3f} | "
                  f"{est.value:.3f} | {'yes' if est.confident else 'no'} |", flush=True)
        for f in (4, 8):
            d = Degradation(f, 1.0, None, "integrate", "reflect")
            est = estimate_saturation(hr[::f, ::f], d)
            print(f"| {name} | x{f} point samples, camera σ 1 assumed | 1.000 | "
                  f"{est.value:.3f} | {'yes' if est.confident else 'no'} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
