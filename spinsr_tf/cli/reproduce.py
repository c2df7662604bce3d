"""``spinsr-tf reproduce``: the paper's Tables 1–2 and Figs. 2–3 at a preset size (resumable)."""

from __future__ import annotations

import argparse

from spinsr_tf.cli import RESUME_HINT


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="Tables 1-2 and Figs. 2-3: data, training, evaluation for both types",
        description="Anneal Type I and Type II data, train the networks (Type I x4, x8; Type II "
        "x4, x8, x16) and the supervised oracle, score them against every interpolation "
        "baseline and write table1.md, table2.md, results.json and one figure per setting. "
        "Re-running reuses finished steps.",
    )
    p.add_argument("--preset", default="medium", choices=["smoke", "medium", "paper"],
                   help="smoke: seconds; medium (default): under an hour on a 2-core CPU; "
                   "paper: the paper's sizes (GPU)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--type", dest="types", action="append", choices=["I", "II"],
                   help="only this type (repeatable; default both)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="print nothing but errors and warnings")
    p.set_defaults(func=run, resume_hint=RESUME_HINT)


def run(args: argparse.Namespace) -> int:
    from spinsr_tf.base.errors import UserError
    from spinsr_tf.experiments.reproduce import reproduce

    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    reproduce(args.out, preset=args.preset, types=args.types or ("I", "II"), seed=args.seed,
              progress=not args.quiet)
    return 0
