"""``spinsr-tf make-pretrained``: train the shipped pretrained models again (resumable)."""

from __future__ import annotations

import argparse

from spinsr_tf.cli import RESUME_HINT, add_experiment_arguments, check_seed


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "make-pretrained",
        help="train the pretrained models (default recipe, Type I x4 x8, Type II x4 x8 x16)",
        description="Run the reproduction with the default recipe only (data, training, scores "
        "against every interpolation baseline) and write one folder per setting (model.keras, "
        "config.json, results.json, README.md model card) into --out; copying those folders "
        "into spinsr_tf/pretrained/ ships them as pretrained:NAME (docs/pretrained.md). "
        "Re-running reuses finished steps.",
    )
    add_experiment_arguments(p, "sizes of the reproduction (default medium: the shipped models)")
    p.set_defaults(func=run, resume_hint=RESUME_HINT)


def run(args: argparse.Namespace) -> int:
    from spinsr_tf.experiments.make_pretrained import make_pretrained

    check_seed(args)
    folders = make_pretrained(args.out, preset=args.preset, types=args.types or ("I", "II"),
                              seed=args.seed, progress=not args.quiet)
    if not args.quiet:
        print(f"wrote {len(folders)} pretrained models into {args.out}")
    return 0
