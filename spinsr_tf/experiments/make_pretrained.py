"""The shipped pretrained models, made again from nothing (``spinsr-tf make-pretrained``).

One model per setting of Tables 1–2 (Type I ×4, ×8; Type II ×4, ×8, ×16): the default recipe
(:data:`~spinsr_tf.experiments.presets.NETWORKS` ``sr_equivariant``) trained by the reproduction
at a preset (``medium`` for the shipped ones) and scored on its test lattices. Writes::

    OUT/PRESET/                      the reproduction it trains in (resumable)
    OUT/type-I-x8/model.keras        the network
    OUT/type-I-x8/config.json        its training configuration (data identity, degradation)
    OUT/type-I-x8/results.json       its test scores next to every interpolation baseline
    OUT/type-I-x8/README.md          the model card

Copying the ``type-*`` folders into ``spinsr_tf/pretrained/`` ships them
(:mod:`spinsr_tf.base.pretrained` finds them there).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from spinsr_tf._version import __version__
from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import (atomic_path, check_output_folder, write_json_atomic,
                                  write_text_atomic)
from spinsr_tf.base.pretrained import model_name
from spinsr_tf.experiments.presets import NETWORKS, SCALES, check_preset
from spinsr_tf.experiments.reproduce import format_verdict, reproduce
from spinsr_tf.nn.bioimageio_export import PAPER, PAPER_DOI

#: How the card names each pixel model (docs/optics.md).
PIXEL_WORDS = {"sample": "point samples", "integrate": "camera pixels (block means)"}
#: The table network every pretrained model is: the default recipe.
NETWORK = "sr_equivariant"


def ship_run(run_dir: Path, target: Path, out: Path) -> dict:
    """Copy a finished run's ``model.keras`` and ``config.json`` into the model folder
    ``target`` (created), the config's data paths (``data``, ``teacher_data``) made relative
    to ``out`` (where they lie in OUT, not on the machine that trained); return the config."""
    target.mkdir(exist_ok=True)
    config = json.loads((run_dir / "config.json").read_text())
    for key in ("data", "teacher_data"):
        if config.get(key):
            config[key] = Path(config[key]).resolve().relative_to(out.resolve()).as_posix()
    with atomic_path(target / "model.keras") as tmp:
        shutil.copyfile(run_dir / "model.keras", tmp)
    write_json_atomic(target / "config.json", config, sort_keys=False)
    return config


def model_card(name: str, config: dict, result: dict, preset_name: str, seed: int) -> str:
    """The README of one pretrained model: what it was trained on, how it degrades, how it
    scores, what it must not be used for."""
    from spinsr_tf.evaluation.scoring import format_table

    hr = config["run"]["data_identity"]["hr"]["attrs"]
    params = json.loads(hr["params_json"])
    ham = ", ".join(f"{k} = {v}" for k, v in params["hamiltonian"].items())
    deg = result["degradation"]
    terms = ", ".join(f"{t['term']} (weight {t['weight']:g})" for t in config["losses"])
    kind = params["hamiltonian"]["type"]
    lines = [
        f"# Pretrained model `{name}`", "",
        f"Unsupervised super-resolution ×{deg['factor']} of simulated Type {kind} spin textures "
        f"(3-component unit-vector maps), spinsr_tf {__version__}.", "",
        "## Use", "",
        f"    spinsr-tf upscale LR.h5 --model pretrained:{name} --out SR.h5", "",
        f"or `spinsr_tf.load_sr_model(\"pretrained:{name}\")` in Python. Input: LR maps "
        "(N, h, w, 3) of unit vectors made with the degradation below; an HDF5 input that "
        "records another degradation is refused.", "",
        "## Training data", "",
        f"- {params['n']} periodic {params['size']}×{params['size']} lattices annealed by "
        f"Monte Carlo (seed {params['seed']}), Hamiltonian: {ham}",
        f"- schedule: {json.dumps(params['schedule'])}",
        "- only the LR maps were used: the network never saw a high-resolution map", "",
        "## Degradation it inverts", "",
        f"Gaussian blur σ = {deg['sigma']:g} HR px ({deg['kernel_size']} taps), "
        f"{PIXEL_WORDS[config.get('pixel', 'sample')]}, every {deg['factor']} sites, "
        f"{deg['padding']} boundaries (`spinsr_tf.data.degradation`; `spinsr-tf downsample` "
        "makes such LR files from HR maps).", "",
        "## Training", "",
        f"Recipe `{NETWORKS[NETWORK]['recipe']}` ({NETWORKS[NETWORK]['label']}): loss terms "
        f"{terms}; {config['epochs']} epochs, batch {config['batch_size']}, learning rate "
        f"{config['learning_rate']:g}, seed {config['seed']}; preset `{preset_name}`.", "",
        "## Scores on the test lattices", "",
        format_table(result), "", format_verdict(result),
        "## Limits", "",
        "- Simulated textures of this Hamiltonian and lattice spacing; a microscope image has "
        "other optics and noise: use `spinsr-tf fit-image` for those (docs/optics.md).",
        "- Another blur, pixel model or factor than the one above gives confident nonsense.", "",
        "## Reproduce", "",
        f"    spinsr-tf make-pretrained --preset {preset_name} --seed {seed} --out OUT", "",
        "## Citation", "", f"{PAPER}. https://doi.org/{PAPER_DOI}", ""]
    return "\n".join(lines)


def make_pretrained(out_dir, preset="medium", types=("I", "II"), seed: int = 0,
                    progress: bool = True) -> list[Path]:
    """Train (or resume) the reproduction with the default recipe and write one model folder
    per setting of ``types`` into ``out_dir``; return the folders."""
    p = check_preset(preset)
    preset_name = preset if isinstance(preset, str) else "custom"
    out = check_output_folder(out_dir, (preset_name,), "pretrained models")
    summary = reproduce(out / preset_name, preset=p, types=types, seed=seed,
                        networks={NETWORK: NETWORKS[NETWORK]}, progress=progress)
    folders = []
    for kind in types:
        for scale in SCALES[kind]:
            name = model_name(kind, scale)
            run_dir = out / preset_name / f"type_{kind}" / f"x{scale}" / f"run_{NETWORK}"
            result = summary["settings"].get(f"type_{kind}_x{scale}")
            if result is None or not (run_dir / "model.keras").is_file():
                raise UserError(f"the reproduction in {str(out / preset_name)!r} has no "
                                f"finished {NETWORK} run for Type {kind} x{scale}")
            target = out / name
            config = ship_run(run_dir, target, out)
            shipped = {k: v for k, v in result.items() if k != "preset_sizes"}
            shipped["methods"] = {m: {k: v for k, v in row.items() if k != "per_image"}
                                  for m, row in result["methods"].items()}
            write_json_atomic(target / "results.json", shipped, sort_keys=False)
            write_text_atomic(target / "README.md",
                              model_card(name, config, result, preset_name, seed))
            folders.append(target)
            if progress:
                print(f"wrote {target}", flush=True)
    return folders
