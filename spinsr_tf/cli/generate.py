"""``spinsr-tf generate``: anneal a Type I or Type II dataset into HDF5 (resumable)."""

from __future__ import annotations

import argparse

from spinsr_tf.cli import RESUME_HINT


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="anneal spin configurations into an HDF5 file",
        description="Monte Carlo simulated annealing of Type I (exchange + DMI) or Type II "
        "(exchange + dipolar + anisotropy) lattices. Re-running the same command continues an "
        "interrupted run (finished blocks are kept); other parameters are refused. The memory "
        "and disk space needed are estimated and checked before anything is written.",
    )
    p.add_argument("--type", required=True, choices=["I", "II"], help="Hamiltonian type")
    p.add_argument("--n", type=int, default=16, help="number of samples (default 16)")
    p.add_argument("--size", type=int, default=128, help="lattice side L, even, >= 8 (default 128)")
    p.add_argument("--seed", type=int, default=0, help="global seed (default 0)")
    p.add_argument("--out", required=True, help="output .h5 file")
    p.add_argument("--sweeps", type=int, default=None, help="annealing sweeps (default: the schedule's)")
    p.add_argument("--relax-sweeps", type=int, default=None,
                   help="cap on T=0 relaxation sweeps (default 10000 for Type I, 200 for Type II, "
                   "whose full relaxation coarsens the domains away; see docs/physics.md)")
    p.add_argument("--workers", type=int, default=None,
                   help="numba threads (default: all cores; with --scheduler: per dask task, "
                   "default 1)")
    p.add_argument("--block", type=int, default=16,
                   help="samples per resumable block, and per dask task (default 16)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="anneal the blocks on dask: 'tcp://HOST:PORT' of a running "
                   "dask scheduler (workers must share the output's filesystem) or 'local:N' "
                   "(N local worker processes); same file, bit for bit (docs/scaling.md)")
    h = p.add_argument_group("Hamiltonian parameters (units of J)")
    h.add_argument("--J", type=float, default=1.0, help="exchange (default 1)")
    h.add_argument("--dmi", type=float, default=0.3, help="Type I: |D| (default 0.3)")
    h.add_argument("--dmi-kind", choices=["interfacial", "bulk"], default="interfacial",
                   help="Type I: Neel (interfacial, default) or Bloch (bulk) DMI")
    h.add_argument("--dipolar", type=float, default=0.03, help="Type II: Ddip (default 0.03)")
    h.add_argument("--anisotropy", type=float, default=0.215, help="Type II: K (default 0.215)")
    h.add_argument("--dipolar-form", choices=["standard", "printed"], default="standard",
                   help="Type II: with the factor 3 (standard, default) or as the paper printed it")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors and warnings")
    p.set_defaults(func=run, inputs=(), outputs=(), resume_hint=RESUME_HINT)


def hamiltonian_from_args(args: argparse.Namespace):
    from spinsr_tf.physics import TypeI, TypeII

    if args.type == "I":
        return TypeI(J=args.J, dmi=args.dmi, dmi_kind=args.dmi_kind)
    return TypeII(J=args.J, dipolar=args.dipolar, anisotropy=args.anisotropy,
                  dipolar_form=args.dipolar_form)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from spinsr_tf.data.generate import generate_dataset
    from spinsr_tf.base.errors import UserError
    from spinsr_tf.physics import default_schedule

    hamiltonian = hamiltonian_from_args(args)
    schedule = default_schedule(hamiltonian)
    if args.sweeps is not None:
        if args.sweeps <= 0:
            raise UserError(f"--sweeps must be positive, got {args.sweeps}")
        schedule = dataclasses.replace(schedule, sweeps=args.sweeps)
    if args.relax_sweeps is not None:
        if args.relax_sweeps < 0:
            raise UserError(f"--relax-sweeps must be >= 0, got {args.relax_sweeps}")
        schedule = dataclasses.replace(schedule, relax_sweeps=args.relax_sweeps)
    path = generate_dataset(args.out, hamiltonian, n=args.n, size=args.size,
                            seed=args.seed, schedule=schedule, workers=args.workers,
                            block=args.block, progress=not args.quiet,
                            scheduler=args.scheduler)
    print(f"wrote {path}: {args.n} x {args.size}x{args.size} Type {args.type} spins")
    return 0
