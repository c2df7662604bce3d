"""``spinsr-tf train``: train the SR network on LR maps (or HR maps degraded on the fly)."""

from __future__ import annotations

import argparse
import os

from spinsr_tf.cli import RESUME_HINT, scale_factor


def add_parser(subparsers) -> None:
    from spinsr_tf.cli.recipes import NETWORK_CHOICES, DEFAULT_NETWORK

    p = subparsers.add_parser(
        "train",
        help="train the SR network (unsupervised: no HR map in the loss)",
        description="Train a network to reproduce each LR map after re-degrading its SR map. "
        "--data holds LR maps (dataset 'lr') or HR maps (dataset 'spins') that are degraded on "
        "the fly; HR maps otherwise only feed the monitored val_sr_mse. Writes "
        "RUN_DIR/model.keras, history.csv, config.json, logs/ and a checkpoint per epoch. "
        "Running the same command again continues the run in RUN_DIR from its last finished "
        "epoch up to --epochs; another configuration is refused.",
    )
    p.add_argument("--data", required=True, help="HDF5 file with dataset 'lr' or 'spins'")
    p.add_argument("--scale", required=True, type=scale_factor,
                   help="SR factor, a power of two >= 2 (the paper: 4, 8, 16); the LR maps must "
                   "be at least 2x2")
    p.add_argument("--out", required=True, help="run folder RUN_DIR")
    p.add_argument("--network", choices=NETWORK_CHOICES, default=DEFAULT_NETWORK,
                   help=f"recipe (default {DEFAULT_NETWORK}, the best measured); 'paper' is "
                   "the paper's network exactly (linear output, LR loss, Adam 0.01)")
    p.add_argument("--epochs", type=int, default=400, help="total epochs (default 400, paper)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="global batch, split over the replicas of --strategy (default 32)")
    p.add_argument("--learning-rate", dest="learning_rate", type=float, default=None,
                   help="Adam learning rate (default: the recipe's)")
    p.add_argument("--lr", dest="learning_rate", type=float, default=None,
                   help=argparse.SUPPRESS)  # old name ("lr" is low resolution everywhere else)
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="last fraction of the samples held out for validation (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="weights and shuffle seed (default 0)")
    p.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)  # now the rule
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
    d.add_argument("--pixel", choices=["sample", "integrate"], default=None,
                   help="LR pixels: point samples (the paper's) or camera pixels averaging "
                   "their block (default: the LR file's, else sample)")
    d.add_argument("--blind", action="store_true",
                   help="draw the degradation per batch (sigma 0.5-3 HR px, sample or "
                   "integrate pixels, noise std 0-0.05) and make the LR maps from the HR maps "
                   "('spins') with it; the flags above then set only the nominal degradation "
                   "of val_sr_mse. Across both pixel models add --conditioned: untold, the "
                   "network cannot tell them apart and does not train (docs/variants.md)")
    d.add_argument("--degradations", default=None, metavar="SPEC",
                   help="--blind with other ranges, e.g. 'sigma=0.5:3,pixel=sample:1+"
                   "integrate:1,noise=0:0.05' (keys left out take --blind's)")
    d.add_argument("--conditioned", action="store_true",
                   help="with --blind/--degradations: also tell the network each batch's "
                   "sigma and pixel model (a second input; inference must then give them)")
    v = p.add_argument_group("network variant (default: the recipe's)")
    v.add_argument("--output", choices=["linear", "unit"], default=None,
                   help="SR output: linear convolution or projected onto unit vectors")
    v.add_argument("--residual", action="store_true", default=None,
                   help="learn a correction to aligned bicubic interpolation (starts at it)")
    from spinsr_tf.cli.recipes import add_loss_arguments

    add_loss_arguments(p)
    p.add_argument("--strategy", choices=["none", "mirrored", "multiworker"], default="none",
                   help="data-parallel training, BatchNorm statistics synchronized across "
                   "replicas: mirrored = all local GPUs (else logical CPUs); multiworker = the "
                   "machines of TF_CONFIG, each running this same command with the same --out "
                   "on a shared filesystem, which only the chief writes (TensorFlow backend; "
                   "docs/scaling.md)")
    p.add_argument("--connect-timeout", type=float, default=120.0, metavar="SECONDS",
                   help="with --strategy multiworker: how long a worker waits for the others "
                   "of TF_CONFIG to start (default 120)")
    p.add_argument("--no-jit", dest="no_jit", action="store_true",
                   help="plain graph mode instead of XLA (slower; starts a few seconds sooner)")
    p.add_argument("--no-xla", dest="no_jit", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true", help="print nothing but errors and warnings")
    p.set_defaults(func=run, inputs=("data", "hr"), outputs=("out",), resume_hint=RESUME_HINT,
                   locks=_locks)


def _locks(args: argparse.Namespace) -> list:
    """The run folder is locked by the one task that writes it: of a multi-worker cluster the
    chief (the others run the same command on the same shared folder)."""
    if args.strategy == "multiworker":
        from spinsr_tf.nn.multiworker import read_cluster

        if not read_cluster(os.environ).is_chief:
            return []
    return [("--out", args.out)]


def run(args: argparse.Namespace) -> int:
    from spinsr_tf.cli.recipes import config_from_args
    from spinsr_tf.inference.weight_rule import with_chosen_weights
    from spinsr_tf.nn.multiworker import read_cluster
    from spinsr_tf.nn.training import train

    config = config_from_args(args)
    if config.supervised:
        print("training the supervised oracle on HR maps: a reference, not part of the method")
    # one rule for every command that builds something: the same command again continues it
    config = with_chosen_weights(config, args.out, resume=True, progress=not args.quiet)
    history = train(config, args.out, resume=True, progress=not args.quiet,
                    connect_timeout=args.connect_timeout)
    last = {k: v[-1] for k, v in history.items() if k != "epoch" and v}
    summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items())
    epochs = len(history.get("epoch", []))
    cluster = read_cluster(os.environ) if args.strategy == "multiworker" else None
    if cluster is not None and not cluster.is_chief:
        print(f"{cluster.task} trained {epochs} epochs ({summary}); the chief writes "
              f"{args.out}")
    else:
        print(f"wrote {args.out}/model.keras after {epochs} epochs ({summary})")
    return 0
