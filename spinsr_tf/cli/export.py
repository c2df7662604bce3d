"""``spinsr-tf export``: write the SR map of a trained model as a TensorFlow SavedModel."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained model's SR map as a TensorFlow SavedModel",
        description="Write a SavedModel folder whose 'serve' endpoint (also serving_default) "
        "maps float32 LR batches (N, h, w, C) of any size to SR batches (N, h*scale, w*scale, C).",
    )
    p.add_argument("--model", required=True, help="trained model, e.g. RUN_DIR/model.keras")
    p.add_argument("--out", required=True, help="SavedModel folder to create")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spinsr_tf.nn.export import export_saved_model

    path = export_saved_model(args.model, args.out, force=args.force)
    print(f"wrote SavedModel {path} (endpoint 'serve': LR batch -> SR batch)")
    return 0
