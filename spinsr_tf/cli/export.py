"""``spinsr-tf export``: write the SR map of a trained model as a TensorFlow SavedModel or a
bioimage.io model package."""

from __future__ import annotations

import argparse

from spinsr_tf.cli import model_argument
from spinsr_tf.cli.upscale import PIXEL_CHOICES, sigma_argument

FORMATS = ("savedmodel", "bioimageio")
#: Flags that only the bioimage.io package uses.
_PACKAGE_FLAGS = ("percentile", "results", "name", "author", "license")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained model's SR map as a TensorFlow SavedModel or bioimage.io package",
        description="--format savedmodel (default): a SavedModel folder whose 'serve' endpoint "
        "(also serving_default) maps float32 LR batches (N, h, w, C) of any size to SR batches "
        "(N, h*scale, w*scale, C). --format bioimageio: a bioimage.io model package (.zip, "
        "model description 0.5) for deepImageJ, ilastik, napari and bioimageio.core, with test "
        "tensors, cover and model card (needs: pip install 'spinsr_tf[bioimageio]'). A "
        "conditioned model (train --conditioned) is exported with one imaging model baked in "
        "(--pixel/--sigma, recorded), so both formats keep the one image input their consumers "
        "feed. --force replaces a previous export only, never a folder or file holding "
        "anything else.",
    )
    p.add_argument("--model", required=True, type=model_argument,
                   help="trained model, e.g. RUN_DIR/model.keras, or pretrained:NAME for a "
                   "shipped one (docs/pretrained.md)")
    p.add_argument("--out", required=True,
                   help="SavedModel folder, or the package's .zip with --format bioimageio")
    p.add_argument("--format", choices=FORMATS, default="savedmodel",
                   help="savedmodel (default) or bioimageio")
    p.add_argument("--force", action="store_true", help="replace a previous export at --out")
    i = p.add_argument_group("imaging of the LR images it will serve")
    i.add_argument("--pixel", choices=PIXEL_CHOICES, default=None,
                   help="conditioned models: the pixel model baked in, 'integrate' (camera "
                   "pixels; default) or 'sample'. A model with one fixed degradation serves "
                   "its own only")
    i.add_argument("--sigma", type=sigma_argument, default=None, metavar="S",
                   help="conditioned models: the Gaussian PSF width baked in, HR pixels (> 0; "
                   "default the model's nominal σ); a warning outside the range it was trained "
                   "on, or for a fixed model, other than its own")
    g = p.add_argument_group("bioimage.io package")
    g.add_argument("--percentile", type=float, default=None, metavar="P",
                   help="scalar models: map each image's P..100-P percentile range to [-1, 1] "
                   "(default: the fit-image run's, else 1)")
    g.add_argument("--results", default=None, metavar="FILE",
                   help="results.json of evaluate/reproduce whose scores go into the model card "
                   "(default: the one beside RUN_DIR when it is run_NAME)")
    g.add_argument("--name", default=None, help="package name (default from scale and channels)")
    g.add_argument("--author", action="append", default=[], metavar="NAME",
                   help="author of the model (repeatable)")
    g.add_argument("--license", default=None, metavar="SPDX",
                   help="SPDX license of the weights (default MIT)")
    p.set_defaults(func=run, inputs=("model", "results"), outputs=("out",))


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from spinsr_tf.base.errors import UserError
    from spinsr_tf.nn.training import read_run_config

    # the run's config.json beside the model (the package's model card reads it): a damaged one
    # is refused in one line before anything is written
    read_run_config(Path(args.model).parent)
    chosen = []   # the imaging the export serves, reported once chosen

    if args.format == "savedmodel":
        given = [f for f in _PACKAGE_FLAGS if getattr(args, f) not in (None, [])]
        if given:
            raise UserError(f"--{given[0]} applies to --format bioimageio only")
        from spinsr_tf.nn.export import export_saved_model

        path = export_saved_model(args.model, args.out, force=args.force, pixel=args.pixel,
                                  sigma=args.sigma, report=chosen.append)
        print(f"wrote SavedModel {path} (endpoint 'serve': LR batch -> SR batch); "
              f"{_imaging_clause(chosen[0])}")
        return 0
    from spinsr_tf.nn.bioimageio_export import export_bioimageio

    path = export_bioimageio(args.model, args.out, force=args.force, percentile=args.percentile,
                             results=args.results, name=args.name, authors=args.author,
                             license=args.license or "MIT", pixel=args.pixel, sigma=args.sigma,
                             report=chosen.append)
    print(f"wrote bioimage.io package {path}; {_imaging_clause(chosen[0])}")
    return 0


def _imaging_clause(imaging) -> str:
    """What the export serves, for its summary line."""
    from spinsr_tf.nn.export import describe_imaging

    text = describe_imaging(imaging.degradation)
    if not imaging.conditioned:
        return f"serves the model's own imaging: {text}"
    said = f"baked in the imaging: {text}"
    if imaging.defaults:
        said += (f" ({' and '.join(imaging.defaults)} by default; state yours with "
                 "--pixel/--sigma)")
    return said
