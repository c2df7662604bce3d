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
    u = p.add_argument_group("universal models (with --universal only)")
    u.add_argument("--channels", default=None, metavar="{xyz,z}",
                   help="the spin components the models see: xyz (3-component maps, the "
                   "default: universal-x4, universal-x8) or z (Sz only, for grey Kerr/MFM "
                   "images: universal-sz-x4, universal-sz-x8; the same mixtures, annealed once "
                   "per --out)")
    u.add_argument("--factors", default=None, nargs="+", metavar="F",
                   help="the factors to make (default 4 8; 16 anneals 256x256 maps: 16 LR "
                   "pixels a side)")
    u.add_argument("--epochs", default=None, metavar="N",
                   help="training epochs per model (default: the shipped recipe's, "
                   "UniversalRecipe.epochs); the model card's reproduce line names it")
    u.add_argument("--teacher", default=None, metavar="MODEL",
                   help="with --channels z: distil the scalar models from this 3-component "
                   "model of the same factor (e.g. pretrained:universal-x8, with --factors 8) "
                   "instead of the LR-only recipe: they learn the Sz of its SR maps of the "
                   "mixture's 3-component LR maps; no HR map in either loss (docs/pretrained.md)")
    u.add_argument("--aliased-dmi", action="store_true",
                   help="with --teacher: also as many maps of the DMI each factor aliases "
                   "(periods below 2f sites), which the student sees through the teacher")
    p.set_defaults(func=run, resume_hint=RESUME_HINT)


def run(args: argparse.Namespace) -> int:
    from spinsr_tf.experiments.make_pretrained import make_pretrained

    check_seed(args)
    if args.universal:
        from spinsr_tf.experiments.universal import make_universal

        if args.types or args.preset != "medium":
            raise UserError("--universal makes the universal models: --preset and --type do "
                            "not apply")
        folders = make_universal(args.out, factors=universal_factors(args),
                                 recipe=universal_recipe(args), seed=args.seed,
                                 progress=not args.quiet, channels=universal_channels(args))
        if not args.quiet:
            print(f"wrote {len(folders)} universal models into {args.out}")
        return 0
    if (args.channels is not None or args.epochs is not None or args.factors is not None
            or args.teacher is not None or args.aliased_dmi):
        raise UserError("--channels, --factors, --epochs, --teacher and --aliased-dmi apply to "
                        "--universal only")
    folders = make_pretrained(args.out, preset=args.preset, types=args.types or ("I", "II"),
                              seed=args.seed, progress=not args.quiet)
    if not args.quiet:
        print(f"wrote {len(folders)} pretrained models into {args.out}")
    return 0


def universal_channels(args: argparse.Namespace) -> str:
    """``--channels``: one of :data:`~spinsr_tf.experiments.universal.CHANNELS` (default xyz)."""
    from spinsr_tf.experiments.universal import CHANNELS

    if args.channels is None:
        return "xyz"
    if args.channels not in CHANNELS:
        raise UserError(f"--channels must be one of {', '.join(CHANNELS)}, got "
                        f"{args.channels!r}")
    return args.channels


def universal_factors(args: argparse.Namespace) -> tuple:
    """``--factors``: integers >= 2, each once (default
    :data:`~spinsr_tf.experiments.universal.FACTORS`)."""
    from spinsr_tf.experiments.universal import FACTORS

    if args.factors is None:
        return FACTORS
    factors = []
    for text in args.factors:
        try:
            factor = int(text)
        except ValueError:
            factor = 0
        if factor < 2:
            raise UserError(f"--factors takes integers >= 2, got {text!r}")
        if factor in factors:
            raise UserError(f"--factors names {factor} twice")
        factors.append(factor)
    return tuple(factors)


def universal_recipe(args: argparse.Namespace):
    """The shipped :class:`~spinsr_tf.experiments.universal.UniversalRecipe`, with ``--epochs``
    (a positive integer), ``--teacher`` and ``--aliased-dmi`` when given."""
    import dataclasses

    from spinsr_tf.experiments.universal import UniversalRecipe

    recipe = UniversalRecipe(teacher=args.teacher, aliased_dmi=bool(args.aliased_dmi))
    if args.epochs is None:
        return recipe
    try:
        epochs = int(args.epochs)
    except ValueError:
        epochs = 0
    if epochs < 1:
        raise UserError(f"--epochs must be a positive integer, got {args.epochs!r}")
    return dataclasses.replace(recipe, epochs=epochs)
