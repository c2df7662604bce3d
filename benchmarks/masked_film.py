"""fit-image on a film with holes: scores on the magnet's cells against aligned bicubic.

Issue 26's target, without a mumax3 file: an open film annealed by this project (Type II without
the dipolar term, whose sums are periodic: domains and walls; or Type I, a chiral labyrinth), a
disc and an edge notch cut out on the LR grid (the HR cells below them zero); or (``--texture
spirit``) the closest independent stand-in: the same film shape relaxed by Spirit with the holes
absent from the start (Néel D/J 0.3, open edges, the ``film`` family's first tune material of
``foreign_textures.py``), so that the texture relaxes around them, with edge tilt at their rims
as in a patterned film; cached under ``foreign_textures.default_cache()``. Then degraded ×4 with
camera pixels (σ HR px, mirror borders), the LR cells in holes set to 0, written as OVF in A/m
as a simulator would. Then ``fit-image`` with its defaults (``--mask auto``), optionally also
with ``--mask none``, and PSNR / Corr on the magnet's HR cells of the result, of aligned bicubic
normalised to unit vectors (holes fed as zeros, and filled with their nearest magnet cell), and
the PSF estimate with and without the mask.

    python benchmarks/masked_film.py --out /tmp/film --texture typeII [--no-mask-too]
    python benchmarks/masked_film.py --out /tmp/film --texture spirit    # ~6 min the first time
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def lr_magnet(n: int) -> np.ndarray:
    """The film's LR magnet ``(n, n)`` bool: False in a disc and in a notch cut into the right
    edge."""
    yy, xx = np.mgrid[0:n, 0:n]
    magnet = ((yy - 5 * n // 8) ** 2 + (xx - 11 * n // 32) ** 2) >= (5 * n // 32) ** 2
    magnet &= ~((yy >= 5 * n // 16) & (yy < 15 * n // 32) & (xx >= 7 * n // 8))
    return magnet


def spirit_film(hr_magnet, seed: int, log=print) -> np.ndarray:
    """Spirit's relaxed film (``(H, W, 3)`` float64, exact zeros off ``hr_magnet``): the
    ``film`` family's first tune material, the holes vacant during the relaxation."""
    import foreign_textures as ft

    material = ft.FAMILIES["film"].tune[0]
    spins, record = ft.load_or_make_film(material, hr_magnet, seed, ft.default_cache(), log=log)
    log(f"Spirit film: {ft.material_label(material)}, seed {seed}, "
        f"{record['iterations']} iterations, max torque {record['max_torque']:.1e} J "
        f"(converged {record['converged']}), Spirit {record['spirit_version']}")
    return spins.astype(np.float64)


def film(texture: str, size: int = 256, factor: int = 4, sigma: float = 1.0, seed: int = 7):
    """``(truth (H, W, 3), lr (h, w, 3) with zero holes, LR mask, Degradation)``."""
    from spinsr_tf.data.degradation import Degradation
    from spinsr_tf.data.mask import hr_mask
    from spinsr_tf.physics.annealing import anneal
    from spinsr_tf.physics.boundaries import with_boundary
    from spinsr_tf.physics.hamiltonians import TypeI, TypeII

    magnet = lr_magnet(size // factor)
    d = Degradation(factor, sigma, None, "integrate", "reflect")
    if texture == "spirit":
        spins = spirit_film(hr_mask(magnet, d), seed)
    else:
        ham = TypeII(dipolar=0.0, anisotropy=0.1) if texture == "typeII" else TypeI()
        spins = anneal(with_boundary(ham, "open"), size, seed, [0])[0].astype(np.float64)
    truth = spins * hr_mask(magnet, d)[..., None]
    lr = d.apply(truth[None], dtype=np.float64)[0]
    lr[~magnet] = 0.0
    return truth, lr, magnet, d


def scores(pred, truth, hr_magnet) -> str:
    from spinsr_tf.evaluation.metrics import corr, psnr

    p, t = pred[None].astype(np.float64), truth[None]
    on = psnr(p, t, mask=hr_magnet)[0]
    return (f"PSNR {on:6.2f} dB  Corr {corr(p, t, mask=hr_magnet)[0]:.4f}"
            f"  (all cells: PSNR {psnr(p, t)[0]:6.2f} dB)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--texture", choices=["typeII", "typeI", "spirit"], default="typeII")
    p.add_argument("--sigma", type=float, default=1.0)
    p.add_argument("--no-mask-too", action="store_true", help="also run with --mask none")
    args = p.parse_args(argv)

    from spinsr_tf.data.degradation import Degradation
    from spinsr_tf.data.mask import fill_holes, hr_mask
    from spinsr_tf.data.ovf import read_ovf, write_ovf
    from spinsr_tf.inference.fit_image import fit_image
    from spinsr_tf.inference.optics import estimate_psf_sigma

    truth, lr, magnet, d = film(args.texture, sigma=args.sigma)
    args.out.mkdir(parents=True, exist_ok=True)
    path = write_ovf(args.out / "film.ovf", lr * 8e5, cellsize=(4e-9, 4e-9, 1e-9),
                     valueunit="A/m")
    hm = hr_mask(magnet, d)
    print(f"{args.texture} film, x{d.factor}, sigma {d.sigma:g} HR px: {int((~magnet).sum())} "
          f"of {magnet.size} LR cells in holes")
    geometry = Degradation(d.factor, pixel=d.pixel, padding=d.padding)
    for name, mask in (("with the mask", magnet), ("without it", None)):
        est = estimate_psf_sigma(lr, geometry, mask=mask)
        print(f"PSF estimate {name}: {est.value:.3g} HR px (confident {est.confident})")
    for name, x in (("aligned bicubic_norm, holes as zeros", lr),
                    ("aligned bicubic_norm, holes filled", fill_holes(lr, magnet))):
        b = d.upsample(x[None].astype(np.float32), "bicubic", "aligned", normalize=True)[0]
        b[~hm] = 0.0
        print(f"{name:40s} {scores(b, truth, hm)}")
    for mask in ("auto", "none") if args.no_mask_too else ("auto",):
        out = fit_image(path, scale=d.factor, out_dir=args.out / f"run_{mask}", mask=mask,
                        progress=False)
        sr, _ = read_ovf(out["sr"], normalize=True)
        holes = np.linalg.norm(sr, axis=-1)[~hm]
        print(f"{'fit-image --mask ' + mask:40s} {scores(sr, truth, hm)}; HR hole cells zero: "
              f"{int((holes == 0).sum())} of {holes.size}; PSF used "
              f"{out['degradation']['sigma']:.3g}; LR misfit sr {out['lr_mse']['sr']:.3g}, "
              f"bicubic {out['lr_mse']['bicubic']:.3g}")
        print("  mask record: " + json.dumps(out["mask"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
