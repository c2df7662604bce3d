"""``spinsr-tf fit-image``: train on the patches of one large image and super-resolve all of it."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "fit-image",
        help="super-resolve one large microscope image, training on its own patches",
        description="Map IMAGE (.png, .tif, .npy, .h5 or .ovf; grey levels or 3 spin "
        "components) onto [-1, 1], split it into overlapping PATCHxPATCH patches, train the "
        "unsupervised network on them (the default recipe: residual unit-vector output and the "
        "lattice-symmetry term, mirror boundaries), then "
        "super-resolve the whole image tile by tile. Writes RUN_DIR/sr.EXT and "
        "RUN_DIR/bicubic.EXT in the input's format and bit depth, RUN_DIR/preview.png and "
        "RUN_DIR/mapping.json.",
    )
    p.add_argument("image", metavar="IMAGE", help="the LR image")
    p.add_argument("--scale", type=int, default=8, help="SR factor, a power of two (default 8)")
    p.add_argument("--patch", type=int, default=16,
                   help="patch side in LR pixels (default 16, at least 4)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    p.add_argument("--stride", type=int, default=None,
                   help="patch spacing in LR pixels (default PATCH/2)")
    p.add_argument("--epochs", type=int, default=40, help="training epochs (default 40)")
    p.add_argument("--batch-size", type=int, default=16, help="patches per step (default 16)")
    from spinsr_tf.cli.recipes import NETWORK_CHOICES, DEFAULT_NETWORK

    p.add_argument("--network", choices=NETWORK_CHOICES, default=DEFAULT_NETWORK,
                   help=f"training recipe (default {DEFAULT_NETWORK}; see spinsr-tf train)")
    p.add_argument("--learning-rate", type=float, default=1e-3,
                   help="Adam step size (default 0.001)")
    p.add_argument("--sigma", type=float, default=1.0,
                   help="Gaussian blur of the degradation, HR pixels (default 1.0)")
    p.add_argument("--kernel-size", type=int, default=23,
                   help="odd Gaussian window side, HR pixels (default 23)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--unit-vectors", action="store_true",
                   help="vector images: normalise every LR vector to unit length before "
                   "training (advisable for noisy component images)")
    p.add_argument("--layer", type=int, default=None, help="OVF input: z layer to use")
    p.add_argument("--tile", type=int, default=128,
                   help="tile side in LR pixels for the whole-image inference (default 128)")
    p.add_argument("--no-jit", action="store_true", help="train without XLA compilation")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run, resume_hint="run the same command with --resume to continue")


def run(args: argparse.Namespace) -> int:
    from spinsr_tf.inference.fit_image import fit_image

    result = fit_image(args.image, scale=args.scale, patch=args.patch, out_dir=args.out,
                       stride=args.stride, epochs=args.epochs, batch_size=args.batch_size,
                       learning_rate=args.learning_rate, seed=args.seed, sigma=args.sigma,
                       kernel_size=args.kernel_size, resume=args.resume,
                       progress=not args.quiet, unit_vectors=args.unit_vectors,
                       layer=args.layer, tile=args.tile,
                       jit_compile=not args.no_jit, network=args.network)
    if not args.quiet:
        print(f"wrote {result['sr']} and {result['bicubic']}")
    return 0
