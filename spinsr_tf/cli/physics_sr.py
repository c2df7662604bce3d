"""``spinsr-tf physics-sr``: the physics-informed SR tables (prior, refinement, wrong Hamiltonian)."""

from __future__ import annotations

import argparse

from spinsr_tf.cli import RESUME_HINT, add_experiment_arguments, check_seed


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "physics-sr",
        help="physics-informed SR: network with an energy prior, per-image refinement, "
        "robustness to a wrong Hamiltonian",
        description="On the lattices of 'spinsr-tf reproduce' (same --out and --preset; made if "
        "missing) train the residual network with the energy prior of each type (lambda chosen "
        "from LR maps only), refine its SR maps and aligned bicubic per image, score them next "
        "to the baselines and the reproduction's networks (Type I and II at x4, x8, x16), and "
        "refine with D or K off by +-20%. Writes table_physics.md, physics_results.json and "
        "physics_robustness.json. Re-running reuses finished steps.",
    )
    add_experiment_arguments(p, "lattice and training sizes, as for reproduce (default medium)",
                             "output folder (the reproduce folder)")
    p.add_argument("--steps", type=int, default=300, help="refinement steps (default 300)")
    p.set_defaults(func=run, resume_hint=RESUME_HINT)


def run(args: argparse.Namespace) -> int:
    from spinsr_tf.base.errors import UserError
    from spinsr_tf.experiments.physics_tables import physics_experiment

    check_seed(args)
    if args.steps < 0:
        raise UserError(f"--steps must be >= 0, got {args.steps}")
    physics_experiment(args.out, preset=args.preset, types=args.types or ("I", "II"),
                       seed=args.seed, steps=args.steps, progress=not args.quiet)
    return 0
