"""``spinsr-tf quickstart``: anneal, train ×4, evaluate, draw — the README's main job."""

from __future__ import annotations

import argparse

from spinsr_tf.cli import RESUME_HINT, scale_factor


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "quickstart",
        help="small end-to-end run: data, training, evaluation, figure",
        description="Anneal a small Type I data set, train two x4 networks on its LR maps only "
        "(the paper's sr and the default recipe sr_equivariant), score them against "
        "interpolation and write table.md, results.json and figure.png (error maps, PSNR per "
        "panel). Re-running reuses finished steps and says so. Progress bars on a terminal; "
        "a few lines per step when the output goes to a file.",
    )
    p.add_argument("--out", default="quickstart", help="output folder (default ./quickstart)")
    p.add_argument("--n-train", type=int, default=48, help="training lattices (default 48)")
    p.add_argument("--n-test", type=int, default=8, help="test lattices (default 8)")
    p.add_argument("--size", type=int, default=64, help="lattice side (default 64)")
    p.add_argument("--scale", type=scale_factor, default=4,
                   help="SR factor: a power of two >= 2 that divides --size, leaving LR maps of "
                   "at least 2x2 (default 4)")
    p.add_argument("--epochs", type=int, default=60, help="training epochs (default 60)")
    p.add_argument("--sweeps", type=int, default=None, help="annealing sweeps (default: schedule's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="print nothing but errors and warnings")
    p.set_defaults(func=run, resume_hint=RESUME_HINT)


def run(args: argparse.Namespace) -> int:
    import os

    from spinsr_tf.experiments.quickstart import quickstart

    existed = os.path.lexists(args.out)
    try:
        quickstart(args.out, n_train=args.n_train, n_test=args.n_test, size=args.size,
                   scale=args.scale, epochs=args.epochs, sweeps=args.sweeps, seed=args.seed,
                   progress=not args.quiet)
    except BaseException:
        # a refused argument (or a stop before the first file) leaves no empty folder behind
        if not existed and os.path.isdir(args.out) and not os.listdir(args.out):
            os.rmdir(args.out)
        raise
    return 0
