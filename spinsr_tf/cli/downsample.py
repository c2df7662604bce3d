"""``spinsr-tf downsample``: Gaussian filter downsizing of an HDF5 ``spins`` file into LR maps.

Reads ``spins`` (N, L, L, C) in chunks, writes ``lr`` (N, L/F, L/F, C) float32 with the
degradation parameters and the source path as attributes, plus copies of the input file's
attributes (the simulation parameters stay attached to the LR data). The HR maps are not copied:
the output is what unsupervised training sees.
"""

from __future__ import annotations

import argparse

from spinsr_tf.data.lr_file import LR, downsample_file  # noqa: F401  (the command's work)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "downsample",
        help="degrade HR spins to LR maps by Gaussian filter downsizing",
        description="Pad (periodic or reflect), convolve with a normalised Gaussian and sample "
        "with stride FACTOR; LR pixel k is centred on HR pixel k*FACTOR. Writes dataset 'lr'.",
    )
    p.add_argument("input", metavar="IN.h5", help="HDF5 file with dataset 'spins' (N, L, L, C)")
    p.add_argument("--factor", type=int, required=True, help="downsampling factor F; L must be divisible by F")
    p.add_argument("--out", required=True, help="output .h5 file (dataset 'lr')")
    p.add_argument("--kernel-size", type=int, default=23,
                   help="odd Gaussian window side, HR pixels (default 23)")
    p.add_argument("--sigma", type=float, default=1.0,
                   help="Gaussian standard deviation, HR pixels (default 1.0)")
    p.add_argument("--padding", choices=["periodic", "reflect"], default="periodic",
                   help="boundary condition (default periodic)")
    p.add_argument("--pixel", choices=["sample", "integrate"], default="sample",
                   help="LR pixels: point samples at k*F (default, the paper's) or camera pixels "
                   "averaging their FxF block")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors and warnings")
    p.set_defaults(func=run, inputs=("input",), outputs=("out",), output_files=("out",))


def run(args: argparse.Namespace) -> int:
    """The paths were checked by the command line (inputs, ``--force``) before this runs."""
    from spinsr_tf.data.degradation import Degradation

    degradation = Degradation(args.factor, args.sigma, args.kernel_size, args.pixel,
                              args.padding)
    out, shape = downsample_file(args.input, args.out, degradation)
    print(f"wrote {out}: lr {shape} (factor {args.factor}, sigma {args.sigma}, "
          f"{args.padding} padding, {args.pixel} pixels)")
    return 0
