"""``spinsr-tf evaluate``: networks vs interpolation baselines on a test set's ground truth."""

from __future__ import annotations

import argparse

from spinsr_tf.cli import scale_factor
from spinsr_tf.cli.upscale import PIXEL_CHOICES, sigma_argument


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score SR networks and interpolation baselines against ground truth",
        description="Degrade the test set's `spins` with the model's own degradation, run every "
        "baseline (aligned and resize conventions, with and without unit normalization) and the "
        "network(s), print a table and optionally write JSON. A conditioned model (train "
        "--conditioned) is told that degradation; --pixel/--sigma score it on another one.",
    )
    p.add_argument("--model", action="append", required=True, metavar="[NAME=]PATH",
                   help="model.keras or pretrained:NAME; repeat for several (names sr, sr_2, ... or "
                   "NAME=PATH)")
    p.add_argument("--data", required=True, help="test .h5 with dataset `spins`")
    p.add_argument("--json", default=None, help="write the results here (a new file)")
    p.add_argument("--table", default=None, help="write the markdown table here (a new file)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --json/--table file (never an input)")
    p.add_argument("--max-images", type=int, default=None, help="use the first N test images")
    p.add_argument("--scale", type=scale_factor, default=None,
                   help="expected SR factor (a power of two): refuse models of another scale")
    p.add_argument("--any-size", action="store_true",
                   help="no note when the test lattices differ in size from the training "
                   "lattices (read from config.json beside each model); they are scored anyway, "
                   "as upscale serves any size")
    p.add_argument("--pixel", choices=PIXEL_CHOICES, default=None,
                   help="make the test LR maps with this pixel model instead of the model's "
                   "(conditioned models, which are told it; a model with one fixed degradation "
                   "refuses another)")
    p.add_argument("--sigma", type=sigma_argument, default=None, metavar="S",
                   help="make the test LR maps with this Gaussian PSF width (HR pixels, > 0), "
                   "as --pixel")
    p.add_argument("--quiet", action="store_true",
                   help="no progress and no table on stdout (errors and warnings only)")
    p.set_defaults(func=run, inputs=_input_paths, outputs=("json", "table"),
                   output_files=("json", "table"))


def _input_paths(args):
    """What evaluate reads: every --model file and the --data file."""
    return [*(("--model", path) for path in _named_models(args.model).values()),
            ("--data", args.data)]


def _named_models(specs: list[str]) -> dict[str, str]:
    from spinsr_tf.base.errors import UserError
    from spinsr_tf.base.pretrained import resolve_model

    named = {}
    for k, spec in enumerate(specs):
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = ("sr" if k == 0 else f"sr_{k + 1}"), spec
        if not (name == "sr" or name.startswith("sr_")):
            raise UserError(f"model names must be 'sr' or start with 'sr_', got {name!r}")
        if name in named:
            raise UserError(f"model name {name!r} given twice")
        named[name] = resolve_model(path)
    return named


def _check_lattice_size(name: str, model_path: str, test_size) -> None:
    """Say in one warning line when the test lattices differ from the model's training lattices
    (when its run's config.json is known). One rule with ``upscale``: a convolutional network
    serves any size, so the maps are scored; the note keeps a table on other lattices from being
    read as the home score."""
    import json
    from pathlib import Path

    from spinsr_tf.base.errors import UserError

    config = Path(model_path).with_name("config.json")
    try:
        record = json.loads(config.read_text())
    except (OSError, ValueError):
        return
    run = record.get("run") if isinstance(record, dict) else None
    trained = run.get("hr_size") if isinstance(run, dict) else None   # what train records
    if trained is not None and (not isinstance(trained, list) or len(trained) != 2
                                or not all(isinstance(v, int) for v in trained)):
        raise UserError(f"{str(config)!r} is damaged: run.hr_size must be two integers, got "
                        f"{trained!r}")
    if trained is not None and tuple(trained) != tuple(test_size):
        import warnings

        warnings.warn(f"model {name!r} was trained on {trained[0]}x{trained[1]} lattices and the "
                      f"test set has {test_size[0]}x{test_size[1]}: scored anyway (--any-size "
                      "silences this note)", stacklevel=2)


def run(args: argparse.Namespace) -> int:
    from spinsr_tf.base.errors import UserError
    from spinsr_tf.base.files import write_text_atomic
    from spinsr_tf.data.io import check_declared
    from spinsr_tf.data.stream import MapFile
    from spinsr_tf.evaluation.scoring import evaluate, format_table, write_json
    from spinsr_tf.nn.network import load_sr_model

    if args.max_images is not None and args.max_images <= 0:
        raise UserError(f"--max-images must be positive, got {args.max_images}")
    # the test set as train validates its data (4D floats, N >= 1, finite), its declared size
    # checked before a byte is read: the HR maps, their LR maps and SR results of each model
    # and baseline at once take about 4 copies
    spins = MapFile.open(args.data, "spins")
    n = spins.shape[0] if args.max_images is None else min(spins.shape[0], args.max_images)
    check_declared(args.data, (n, *spins.shape[1:]), "float32", copies=2 + len(args.model))
    try:
        hr = spins.read(range(n))
    finally:
        spins.close()
    paths = _named_models(args.model)
    models = {name: load_sr_model(path) for name, path in paths.items()}
    if args.scale is not None:
        from spinsr_tf.evaluation.scoring import degradation_of

        for name, model in models.items():
            factor = degradation_of(model)["factor"]
            if factor != args.scale:
                raise UserError(f"model {name!r} is a x{factor} model, not x{args.scale}")
    if not args.any_size:
        for name, path in paths.items():
            _check_lattice_size(name, path, hr.shape[1:3])
    degradation = None
    if args.pixel is not None or args.sigma is not None:
        from spinsr_tf.data.degradation import Degradation
        from spinsr_tf.evaluation.scoring import degradation_of

        own = Degradation.from_dict(degradation_of(next(iter(models.values()))))
        degradation = own.replace(pixel=args.pixel or own.pixel,
                                  sigma=own.sigma if args.sigma is None else args.sigma,
                                  kernel_size=None)
    result = evaluate(hr, models, degradation=degradation, progress=not args.quiet)
    table = format_table(result)
    print(table)
    if args.table:
        write_text_atomic(args.table, table)
    if args.json:
        write_json(result, args.json)
    return 0
