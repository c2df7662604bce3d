"""``spinsr-tf reproduce``: the paper's Tables 1–2 and Figs. 2–3 at a preset size (resumable)."""

from __future__ import annotations

import argparse

from spinsr_tf.cli import RESUME_HINT, add_experiment_arguments, check_seed


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="Tables 1-2 and Figs. 2-3: data, training, evaluation for both types",
        description="Anneal Type I and Type II data, train the networks (Type I x4, x8; Type II "
        "x4, x8, x16) and the supervised oracle, score them against every interpolation "
        "baseline and write table1.md, table2.md, results.json and one figure per setting. "
        "Re-running reuses finished steps.",
    )
    add_experiment_arguments(p, "smoke: seconds; medium (default): under an hour on a 2-core CPU; "
                             "paper: the paper's sizes (GPU)")
    p.set_defaults(func=run, resume_hint=RESUME_HINT)


def run(args: argparse.Namespace) -> int:
    from spinsr_tf.experiments.reproduce import reproduce

    check_seed(args)
    reproduce(args.out, preset=args.preset, types=args.types or ("I", "II"), seed=args.seed,
              progress=not args.quiet)
    return 0
