"""Training configurations from command-line flags, shared by ``train`` (and ``fit-image``).

The names are spelled out here so that ``--help`` does not import Keras; a test holds them equal
to :data:`spinsr_tf.nn.config.RECIPES`.
"""

from __future__ import annotations

import argparse

#: Recipes a user may pick with ``--network`` (the oracle is ``--supervised``).
NETWORK_CHOICES = ("paper", "residual_unit", "equivariant")
#: The default of ``--network``: :data:`spinsr_tf.nn.config.DEFAULT_RECIPE`.
DEFAULT_NETWORK = "equivariant"


#: Groups ``--equivariance`` offers (:data:`spinsr_tf.nn.symmetry.GROUPS` has more).
EQUIVARIANCE_CHOICES = ("lattice", "translations", "rotations", "translations+rotations",
                        "translations+rotations+mirrors", "none")


def add_loss_arguments(p: argparse.ArgumentParser) -> None:
    """The loss-term flags: equivariance, physics prior."""
    eq = p.add_argument_group("equivariance (self-supervision from the lattice's symmetries; "
                              "docs/variants.md)")
    eq.add_argument("--equivariance", choices=EQUIVARIANCE_CHOICES, default=None,
                    help="group of the equivariance term: lattice = translations, quarter "
                    "turns, mirrors the interactions allow, global flip; none = LR loss only "
                    "(default: the recipe's)")
    eq.add_argument("--equivariance-weight", type=float, default=None, metavar="W",
                    help="weight of the equivariance term relative to the LR term (default: "
                    "the recipe's, else 1)")
    eq.add_argument("--equivariance-draw", choices=["batch", "sample"], default=None,
                    help="one random symmetry per step for the batch, or one per sample")
    ph = p.add_argument_group("physics prior (beyond the paper; docs/physics_sr.md)")
    ph.add_argument("--physics", choices=["none", "typeI", "typeII", "exchange"],
                    default="none", help="add lambda * energy per spin of the SR map to the "
                    "loss: the data file's Type I / Type II Hamiltonian, or exchange alone for "
                    "images of unknown Hamiltonian (default none)")
    ph.add_argument("--physics-weight", default="auto", metavar="LAMBDA",
                    help="lambda, or 'auto' (default): chosen from the LR maps alone")
    ph.add_argument("--physics-set", action="append", default=[], metavar="NAME=VALUE",
                    help="replace a Hamiltonian parameter, e.g. dmi=0.36 (repeatable)")


def loss_terms(args, base_terms) -> tuple:
    """The recipe's terms with the flags applied (oracle, physics prior)."""
    import dataclasses

    from spinsr_tf.base.errors import UserError
    from spinsr_tf.nn.losses import Equivariance, LRConsistency, PhysicsPrior, Supervised
    from spinsr_tf.physics.priors import parse_overrides

    terms = list(base_terms)
    if getattr(args, "supervised", False):
        terms = [Supervised() if isinstance(t, LRConsistency) else t for t in terms
                 if not isinstance(t, Equivariance)]
    eq = next((t for t in terms if isinstance(t, Equivariance)), None)
    changes = {k: v for k, v in (("group", getattr(args, "equivariance", None)),
                                 ("weight", getattr(args, "equivariance_weight", None)),
                                 ("draw", getattr(args, "equivariance_draw", None)))
               if v is not None}
    if changes.get("group") == "none":
        if len(changes) > 1:
            raise UserError("--equivariance-weight/--equivariance-draw given with "
                            "--equivariance none")
        terms = [t for t in terms if not isinstance(t, Equivariance)]
    elif changes:
        if getattr(args, "supervised", False):
            raise UserError("--equivariance is for unsupervised training, not --supervised")
        new = dataclasses.replace(eq, **changes) if eq else Equivariance(**changes)
        terms = [t for t in terms if not isinstance(t, Equivariance)] + [new]
    weight = None
    if args.physics_weight != "auto":
        try:
            weight = float(args.physics_weight)
        except ValueError:
            raise UserError(f"--physics-weight must be a number or 'auto', got "
                            f"{args.physics_weight!r}") from None
        if args.physics == "none":
            raise UserError("--physics-weight given without --physics")
    overrides = parse_overrides(args.physics_set)
    if args.physics != "none":
        terms.append(PhysicsPrior(weight=weight, prior=args.physics, overrides=overrides))
    elif overrides:
        raise UserError("--physics-set given without --physics")
    return tuple(terms)


def degradations_from_args(args):
    """The :class:`~spinsr_tf.data.degradation_generator.DegradationGenerator` of ``--blind``
    / ``--degradations SPEC``, or None."""
    from spinsr_tf.base.errors import UserError
    from spinsr_tf.data.degradation_generator import DegradationGenerator

    spec, blind = getattr(args, "degradations", None), getattr(args, "blind", False)
    if spec is not None and blind:
        raise UserError("give --blind or --degradations SPEC, not both")
    if spec is not None:
        return DegradationGenerator.parse(spec)
    return DegradationGenerator.parse("blind") if blind else None


def config_from_args(args):
    """The :class:`~spinsr_tf.nn.config.TrainConfig` of ``spinsr-tf train``'s flags."""
    from spinsr_tf.nn.config import RECIPES, recipe

    base = RECIPES[args.network]
    fields = {"losses": loss_terms(args, base["losses"])}
    if args.output is not None:
        fields["output"] = args.output
    elif args.physics != "none":
        fields["output"] = "unit"          # the prior measures the energy of unit spins
    if args.residual is not None:
        fields["residual"] = args.residual
    if args.learning_rate is not None:
        fields["learning_rate"] = args.learning_rate
    fields["degradations"] = degradations_from_args(args)
    fields["conditioned"] = bool(getattr(args, "conditioned", False))
    return recipe(args.network, args.data, args.scale, hr_data=args.hr,
                  max_samples=args.max_samples, val_fraction=args.val_fraction,
                  kernel_size=args.kernel_size, sigma=args.sigma, padding=args.padding,
                  pixel=getattr(args, "pixel", None),
                  epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                  strategy=args.strategy, jit_compile=not args.no_jit, **fields)
