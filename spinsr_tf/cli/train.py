"""``spinsr-tf train``: train the SR network on LR maps (or HR maps degraded on the fly)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the SR network (unsupervised: LR loss only)",
        description="Train the network of Lee et al. (2023) to reproduce each LR map after re-degrading "
        "its SR map. --data holds LR maps (dataset 'lr') or HR maps (dataset 'spins') that are "
        "degraded on the fly; HR maps otherwise only feed the monitored val_sr_mse. Writes "
        "RUN_DIR/model.keras, history.csv, config.json, logs/ and a checkpoint per epoch.",
    )
    p.add_argument("--data", required=True, help="HDF5 file with dataset 'lr' or 'spins'")
    p.add_argument("--scale", required=True, type=int, help="SR factor: 4, 8 or 16")
    p.add_argument("--out", required=True, help="run folder RUN_DIR")
    p.add_argument("--epochs", type=int, default=400, help="total epochs (default 400, paper)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="global batch, split over the replicas of --strategy (default 32)")
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default 0.01)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="last fraction of the samples held out for validation (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="weights and shuffle seed (default 0)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint up to --epochs")
    p.add_argument("--supervised", action="store_true",
                   help="oracle, NOT part of the method: train the SR output on HR maps")
    p.add_argument("--hr", default=None,
                   help="HR maps (dataset 'spins') matching an LR-only --data file, for "
                   "val_sr_mse (and --supervised) only")
    p.add_argument("--max-samples", type=int, default=None, help="use the first N samples")
    d = p.add_argument_group("degradation (default: the LR file's attributes, else 23 / 1.0 / "
                             "periodic)")
    d.add_argument("--kernel-size", type=int, default=None, help="odd Gaussian window, HR pixels")
    d.add_argument("--sigma", type=float, default=None, help="Gaussian width, HR pixels")
    d.add_argument("--padding", choices=["periodic", "reflect"], default=None,
                   help="boundary condition")
    v = p.add_argument_group("network variant (default: the paper's network)")
    v.add_argument("--output", choices=["linear", "unit"], default=None,
                   help="SR output: linear convolution (paper; the default) or projected onto "
                   "unit vectors (the default with --physics)")
    v.add_argument("--residual", action="store_true",
                   help="learn a correction to aligned bicubic interpolation (starts at it)")
    ph = p.add_argument_group("physics prior (beyond the paper; docs/physics_sr.md)")
    ph.add_argument("--physics", choices=["none", "typeI", "typeII", "exchange"],
                    default="none", help="add lambda * energy per spin of the SR map to the "
                    "loss: the data file's Type I / Type II Hamiltonian, or exchange alone for "
                    "images of unknown Hamiltonian (default none)")
    ph.add_argument("--physics-weight", default="auto", metavar="LAMBDA",
                    help="lambda, or 'auto' (default): chosen from the LR maps alone")
    ph.add_argument("--physics-set", action="append", default=[], metavar="NAME=VALUE",
                    help="replace a Hamiltonian parameter, e.g. dmi=0.36 (repeatable)")
    p.add_argument("--strategy", choices=["none", "mirrored", "multiworker"], default="none",
                   help="data-parallel training: mirrored = all local GPUs (else logical CPUs), "
                   "BatchNorm statistics synchronized across replicas; multiworker is reserved "
                   "(refused: Keras 3's fit fails under it; docs/scaling.md)")
    p.add_argument("--no-xla", action="store_true",
                   help="plain graph mode instead of XLA (slower; starts a few seconds sooner)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run, resume_hint="run the same command again with --resume to continue")


def run(args: argparse.Namespace) -> int:
    from spinsr_tf.base.errors import UserError
    from spinsr_tf.prior import parse_overrides
    from spinsr_tf.training import train

    weight = None
    if args.physics_weight != "auto":
        try:
            weight = float(args.physics_weight)
        except ValueError:
            raise UserError(f"--physics-weight must be a number or 'auto', got "
                            f"{args.physics_weight!r}") from None
        if args.physics == "none":
            raise UserError("--physics-weight given without --physics")

    if args.supervised:
        print("training the supervised oracle on HR maps: a reference, not part of the method")
    history = train(args.data, args.scale, args.out, epochs=args.epochs,
                    batch_size=args.batch_size, learning_rate=args.lr,
                    val_fraction=args.val_fraction, seed=args.seed, resume=args.resume,
                    supervised=args.supervised, kernel_size=args.kernel_size, sigma=args.sigma,
                    padding=args.padding, max_samples=args.max_samples, hr_data=args.hr,
                    jit_compile=not args.no_xla, output=args.output, residual=args.residual,
                    progress=not args.quiet, strategy=args.strategy, physics=args.physics,
                    physics_weight=weight,
                    physics_overrides=parse_overrides(args.physics_set))
    last = {k: v[-1] for k, v in history.items() if k != "epoch" and v}
    summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items())
    print(f"wrote {args.out}/model.keras after {len(history.get('epoch', []))} epochs ({summary})")
    return 0
