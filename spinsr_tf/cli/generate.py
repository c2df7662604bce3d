"""``spinsr-tf generate``: anneal a Type I or Type II dataset, or a mixture of parameters,
into HDF5 (resumable)."""

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
    p.add_argument("--type", choices=["I", "II"], default=None,
                   help="Hamiltonian type (one of --type and --mix)")
    p.add_argument("--mix", default=None, metavar="SPEC",
                   help="a mixture: each map's parameters drawn from ranges, recorded per map "
                   "(dataset 'params'). A preset (universal, typeI-dmi, typeI-chiral, "
                   "typeII-domains) and/or name=value items, e.g. 'universal,field=0' or "
                   "'type=I,dmi=0.15..0.55,dmi_kind=interfacial|bulk'; field is a fraction of "
                   "each map's saturation field (docs/physics.md, Mixtures)")
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
    # defaults None: the model's own (stated in the help), and "not given" for --mix
    h.add_argument("--J", type=float, default=None, help="exchange (default 1)")
    h.add_argument("--dmi", type=float, default=None, help="Type I: |D| (default 0.3)")
    h.add_argument("--dmi-kind", choices=["interfacial", "bulk"], default=None,
                   help="Type I: Neel (interfacial, default) or Bloch (bulk) DMI")
    h.add_argument("--dipolar", type=float, default=None, help="Type II: Ddip (default 0.03)")
    h.add_argument("--anisotropy", type=float, default=None, help="Type II: K (default 0.215)")
    h.add_argument("--dipolar-form", choices=["standard", "printed"], default=None,
                   help="Type II: with the factor 3 (standard, default) or as the paper printed it")
    h.add_argument("--field", default=None, metavar="HZ",
                   help="Zeeman field along +z, H_Z = -HZ Σ Sz (default 0; Type I with D = 0.3: "
                   "skyrmions for HZ ≈ 0.03-0.06, see docs/physics.md). Recorded as "
                   "hamiltonian.field_z")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors and warnings")
    p.set_defaults(func=run, inputs=(), outputs=(), resume_hint=RESUME_HINT)


def _field(text) -> float:
    """``--field``: a finite number (units of J), else a one-line UserError."""
    import math

    from spinsr_tf.base.errors import UserError

    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise UserError(f"--field must be a finite number (units of J), got {text!r}")
    return value


def hamiltonian_from_args(args: argparse.Namespace):
    """The registered model named by ``--type``, its parameters from the options of the same
    name (others keep their defaults), in the ``--field``."""
    import dataclasses
    import warnings

    from spinsr_tf.physics import hamiltonian_by_name, saturation_field, with_field
    from spinsr_tf.physics.hamiltonians import CODES, REGISTRY

    names = [f.name for f in dataclasses.fields(REGISTRY[CODES[args.type]])]
    ham = hamiltonian_by_name(args.type, **{k: getattr(args, k) for k in names
                                            if getattr(args, k, None) is not None})
    field = getattr(args, "field", None)
    hz = _field("0" if field is None else field)
    if hz and abs(hz) >= saturation_field(ham):
        warnings.warn(f"--field {hz:g} is at or above the saturation scale "
                      f"{saturation_field(ham):.3g} J of {ham.describe()}: expect a uniform film")
    return with_field(ham, hz)


#: Options that set one Hamiltonian (refused with --mix, whose spec holds the ranges).
_HAMILTONIAN_OPTIONS = ("J", "dmi", "dmi_kind", "dipolar", "anisotropy", "dipolar_form", "field")


def mixture_from_args(args: argparse.Namespace):
    """The :class:`~spinsr_tf.data.mixture.Mixture` of ``--mix`` (one-line UserError for a bad
    spec, or for single-Hamiltonian options given beside it)."""
    from spinsr_tf.base.errors import UserError
    from spinsr_tf.data.mixture import parse_mixture

    given = [k for k in _HAMILTONIAN_OPTIONS if getattr(args, k, None) is not None]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise UserError(f"{flag} sets one Hamiltonian; with --mix put it in the spec "
                        f"(e.g. --mix 'type=I,{given[0]}=...')")
    return parse_mixture(args.mix)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from spinsr_tf.data.generate import generate_dataset
    from spinsr_tf.base.errors import UserError
    from spinsr_tf.physics import default_schedule

    if (args.type is None) == (args.mix is None):
        raise UserError("give one of --type I|II (one Hamiltonian) and --mix SPEC (a mixture)")
    for name, value, lo in (("--sweeps", args.sweeps, 1), ("--relax-sweeps", args.relax_sweeps, 0)):
        if value is not None and value < lo:
            raise UserError(f"{name} must be {'positive' if lo else '>= 0'}, got {value}")
    overrides = {k: v for k, v in (("sweeps", args.sweeps), ("relax_sweeps", args.relax_sweeps))
                 if v is not None}
    if args.mix is not None:
        hamiltonian = mixture_from_args(args)
        schedule = overrides
        what = hamiltonian.describe()
    else:
        hamiltonian = hamiltonian_from_args(args)
        schedule = dataclasses.replace(default_schedule(hamiltonian), **overrides)
        what = f"Type {args.type}"
    path = generate_dataset(args.out, hamiltonian, n=args.n, size=args.size,
                            seed=args.seed, schedule=schedule, workers=args.workers,
                            block=args.block, progress=not args.quiet,
                            scheduler=args.scheduler)
    print(f"wrote {path}: {args.n} x {args.size}x{args.size} {what} spins")
    return 0
