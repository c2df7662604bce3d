"""``spinsr-tf make-pretrained``: train the shipped pretrained models again (resumable)."""

from __future__ import annotations

import argparse

from spinsr_tf.base.errors import UserError
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
    p.add_argument("--universal", action="store_true",
                   help="instead, the universal models (universal-x4, universal-x8): the default "
                   "recipe trained on mixtures of Néel/Bloch labyrinths, skyrmions, domains and "
                   "open films (docs/generalization.md); --preset and --type do not apply")
    p.set_defaults(func=run, resume_hint=RESUME_HINT)


def run(args: argparse.Namespace) -> int:
    from spinsr_tf.experiments.make_pretrained import make_pretrained

    check_seed(args)
    if args.universal:
        from spinsr_tf.experiments.universal import make_universal

        if args.types or args.preset != "medium":
            raise UserError("--universal makes the universal models: --preset and --type do "
                            "not apply")
        folders = make_universal(args.out, seed=args.seed, progress=not args.quiet)
        if not args.quiet:
            print(f"wrote {len(folders)} universal models into {args.out}")
        return 0
    folders = make_pretrained(args.out, preset=args.preset, types=args.types or ("I", "II"),
                              seed=args.seed, progress=not args.quiet)
    if not args.quiet:
        print(f"wrote {len(folders)} pretrained models into {args.out}")
    return 0
