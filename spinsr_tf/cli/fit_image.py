"""``spinsr-tf fit-image``: train on the patches of one large image and super-resolve all of it."""

from __future__ import annotations

import argparse

from spinsr_tf.cli import RESUME_HINT


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "fit-image",
        help="super-resolve one large microscope image, training on its own patches",
        description="Map IMAGE (.png, .tif, .npy, .h5 or .ovf; grey levels or 3 spin "
        "components) onto [-1, 1], split it into overlapping PATCHxPATCH patches, train the "
        "unsupervised network on them (the default recipe: residual unit-vector output and the "
        "lattice-symmetry term, mirror boundaries), then "
        "super-resolve the whole image tile by tile. The optics (PSF width, camera pixels, "
        "noise) are estimated from the image unless given; with noise, the data term uses "
        "recorrupted pairs so the network does not reproduce it. Writes RUN_DIR/sr.EXT and "
        "RUN_DIR/bicubic.EXT in the input's format, bit depth, layout and metadata (an OVF "
        "file's mesh, origin, units and title, a TIFF's pixel size, on the finer grid; grey "
        "levels unclipped unless --clip; cells outside the magnet stay holes, see --mask), RUN_DIR/degradation.json, "
        "RUN_DIR/uncertainty.npy (+ .png), RUN_DIR/preview.png and RUN_DIR/mapping.json. "
        "The same command again continues an interrupted run; other settings are refused.",
    )
    p.add_argument("image", metavar="IMAGE", help="the LR image")
    p.add_argument("--scale", type=int, default=8, help="SR factor, a power of two (default 8)")
    p.add_argument("--patch", type=int, default=16,
                   help="patch side in LR pixels (default 16, at least 4; reduced, and "
                   "said, for an image smaller than it; images need 8x8 LR pixels)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    p.add_argument("--stride", type=int, default=None,
                   help="patch spacing in LR pixels (default PATCH/4)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default 40, fewer for a large image: about 720 "
                        "optimizer steps; a quarter of that with --init)")
    p.add_argument("--batch-size", type=int, default=16, help="patches per step (default 16)")
    from spinsr_tf.cli.recipes import NETWORK_CHOICES, DEFAULT_NETWORK

    p.add_argument("--network", choices=NETWORK_CHOICES, default=DEFAULT_NETWORK,
                   help=f"training recipe (default {DEFAULT_NETWORK}; see spinsr-tf train)")
    p.add_argument("--init", default="none", metavar="{none,MODEL,RUN_DIR}",
                   help="weights training starts from: 'none' (default) random, or a network "
                   "of the same recipe, scale and components: a .keras file, pretrained:NAME, "
                   "or an earlier fit-image run folder (fit one image of a series, start the "
                   "others from it: a quarter of the default epochs)")
    p.add_argument("--learning-rate", type=float, default=1e-3,
                   help="Adam step size (default 0.001)")
    o = p.add_argument_group("optics (default: estimated from the image; the paper's: "
                             "--sigma 1 --pixel sample --noise none)")
    o.add_argument("--sigma", default="auto",
                   help="PSF width in HR pixels, or 'auto' (default): estimated from the vector "
                   "length of 3-component images, 1 for scalar images (said on stderr)")
    o.add_argument("--pixel", choices=["integrate", "sample"], default="integrate",
                   help="camera pixels that average their block (default) or point samples")
    o.add_argument("--noise", default="auto", metavar="{auto,none,gaussian,poisson,STD}",
                   help="noise model of the data term: 'auto' (default) estimates it "
                   "(Poisson-Gaussian for 8/16-bit images, Gaussian otherwise), a number is a "
                   "Gaussian std in image units, 'none' fits the LR image exactly")
    o.add_argument("--kernel-size", type=int, default=None,
                   help="odd Gaussian window side, HR pixels (default: 8 sigma, at least 23)")
    p.add_argument("--no-uncertainty", action="store_true",
                   help="skip RUN_DIR/uncertainty.npy (the spread over the point symmetries) "
                   "and write the network's plain output instead of the mean over them")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--unit-vectors", action="store_true",
                   help="vector images: normalise every LR vector to unit length before "
                   "training (advisable for noisy component images)")
    p.add_argument("--layer", type=int, default=None, help="OVF input: z layer to use")
    p.add_argument("--mask", default="auto", metavar="{auto,none,FILE}",
                   help="cells outside the magnet, left out of the estimates, training and "
                   "misfit, and holes in the result: 'auto' (default) finds zero or NaN "
                   "vectors of a 3-component image, and in a grey image a burnt-in scale bar "
                   "or label (many pixels at the dtype's or the image's extreme level, plus "
                   "a 1-pixel border), saturated, stuck and NaN pixels; FILE is a "
                   ".npy/.png/.tif image of the "
                   "input's height and width, 0 outside the magnet, 1 or 255 on it; 'none' "
                   "takes every cell as magnet")
    p.add_argument("--background", choices=["none", "plane", "poly2"], default="none",
                   help="grey-level images: fit a smooth background (uneven illumination) by "
                   "least squares, take it off before training and add it back to the results "
                   "(recorded in RUN_DIR/mapping.json; default none)")
    p.add_argument("--clip", action="store_true",
                   help="grey-level images: map the 1st-99th percentile range (not min..max) "
                   "onto the network's range and clip the result to it: a few outliers (hot "
                   "pixels, a label) then do not compress the contrast, but the brightest and "
                   "darkest features are cut (default: unclipped)")
    p.add_argument("--tile", type=int, default=128,
                   help="tile side in LR pixels for the whole-image inference (default 128)")
    p.add_argument("--no-jit", action="store_true", help="train without XLA compilation")
    p.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)  # now the rule
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run, inputs=("image",), outputs=("out",), resume_hint=RESUME_HINT)


def _sigma(text: str):
    """'auto' or a number; a bad number is refused by fit_image itself (one line)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        from spinsr_tf.base.errors import UserError

        raise UserError(f"sigma must be 'auto' or a finite number > 0, got {text!r}") from None


def config(args: argparse.Namespace):
    """The :class:`~spinsr_tf.inference.fit_image.FitConfig` of the command line (checked)."""
    from spinsr_tf.inference.fit_image import FitConfig

    return FitConfig(args.image, out_dir=args.out, scale=args.scale, patch=args.patch,
                     stride=args.stride, epochs=args.epochs, batch_size=args.batch_size,
                     learning_rate=args.learning_rate, seed=args.seed, network=args.network,
                     init=args.init,
                     sigma=_sigma(args.sigma), kernel_size=args.kernel_size, pixel=args.pixel,
                     noise=args.noise, uncertainty=not args.no_uncertainty,
                     unit_vectors=args.unit_vectors, layer=args.layer, mask=args.mask,
                     background=args.background,
                     clip=args.clip,
                     tile=args.tile, jit_compile=not args.no_jit, resume=True,
                     progress=not args.quiet)


def run(args: argparse.Namespace) -> int:
    from spinsr_tf.inference.fit_image import fit_image

    result = fit_image(config(args))
    if not args.quiet:
        print(f"wrote {result['sr']} and {result['bicubic']}")
    return 0
