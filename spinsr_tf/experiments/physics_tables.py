"""Physics-informed SR, evaluated: the network trained with a physics prior, per-image refinement,
and what a wrong Hamiltonian costs (``spinsr-tf physics-sr``, ``docs/physics_sr.md``).

Uses the lattices of :func:`spinsr_tf.experiments.reproduce.reproduce` (same folder, same presets; the
networks trained there are scored beside the new ones when present) and adds, per setting::

    DIR/type_K/xS/run_sr_physics/          residual unit-vector network + prior, λ from LR only
    DIR/type_K/xS/physics_results.json     all methods of the setting, with refinement timings
    DIR/physics_robustness.json            refinement with D or K off by ±20 %
    DIR/table_physics.md                   the tables

Methods: ``sr_physics`` (trained network alone), ``sr_refined`` (its SR map refined per image),
``refine_bicubic`` (aligned bicubic refined per image, no network) — next to the interpolation
baselines, the paper's network ``sr``, ``sr_residual_unit`` and the supervised ``oracle``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import write_text_atomic

#: Settings of the physics tables: both types at ×4, ×8 and ×16.
PHYSICS_SCALES = {"I": (4, 8, 16), "II": (4, 8, 16)}
#: The prior of each type.
PRIOR_OF = {"I": "typeI", "II": "typeII"}
#: Networks of the reproduction scored beside the physics methods when their runs exist.
REFERENCE_RUNS = ("sr", "sr_residual_unit", "oracle")
#: Which parameter is made wrong, per type, and by how much (relative).
ROBUSTNESS = {"I": ("dmi", (0.8, 1.2)), "II": ("anisotropy", (0.8, 1.2))}


def _train_physics(setting_dir: Path, train_file: Path, scale: int, kind: str, preset, seed,
                   progress, overrides=None, name="sr_physics"):
    from spinsr_tf.inference.weight_rule import with_chosen_weights
    from spinsr_tf.nn.config import recipe
    from spinsr_tf.nn.losses import LRConsistency, PhysicsPrior
    from spinsr_tf.nn.training import train

    run_dir = setting_dir / f"run_{name}"
    resume = (run_dir / "config.json").exists()
    config = recipe("residual_unit", train_file, scale, epochs=preset.epochs,
                    batch_size=preset.batch_size, seed=seed, jit_compile=preset.jit_compile,
                    losses=(LRConsistency(),
                            PhysicsPrior(prior=PRIOR_OF[kind], overrides=overrides or {})))
    config = with_chosen_weights(config, run_dir, resume=resume, progress=progress)
    train(config, run_dir, resume=resume, progress=progress)
    return run_dir


def _sizes(preset, steps: int) -> dict:
    """What a setting's results depend on beyond the data and the networks (which their own
    resumes check): the preset's sizes and the refinement steps."""
    return {**dataclasses.asdict(preset), "steps": steps}


def _check_unchanged(result_file: Path, result: dict, sizes: dict) -> None:
    """Refuse to continue a folder made with other parameters (as ``generate``, ``train`` and
    ``reproduce`` do): its finished results would be replaced, or mixed with new ones."""
    from spinsr_tf.base.checks import describe_mismatch

    stored = result.get("preset_sizes")
    if stored != sizes:
        diff = (describe_mismatch(stored, sizes) if isinstance(stored, dict)
                else f"preset_sizes={stored!r}")
        raise UserError(f"{str(result_file)!r} was made with other parameters: {diff}; run with "
                        "the same parameters to continue, or choose another --out")


def _refined(lr, hamiltonian, weight, start, steps, degradation):
    from spinsr_tf.inference.refine import refine

    t0 = time.perf_counter()
    sr = refine(lr, hamiltonian, weight, degradation, start=start, steps=steps)
    return sr, (time.perf_counter() - t0) / len(lr)


def physics_setting(setting_dir: Path, train_file: Path, test_file: Path, kind: str, scale: int,
                    preset, seed: int = 0, steps: int = 300, progress: bool = False) -> dict:
    """Train (or reuse) ``sr_physics`` for one setting and score every method; cached."""
    from spinsr_tf.data.degradation import Degradation
    from spinsr_tf.data.generate import read_spins
    from spinsr_tf.evaluation.scoring import evaluate, predict_sr, score_method, write_json
    from spinsr_tf.experiments.reproduce import read_result
    from spinsr_tf.nn.network import load_sr_model
    from spinsr_tf.physics.hamiltonians import hamiltonian_from_attrs

    result_file = setting_dir / "physics_results.json"
    sizes = _sizes(preset, steps)
    result = read_result(result_file)
    if result is not None:
        _check_unchanged(result_file, result, sizes)
        return result
    setting_dir.mkdir(parents=True, exist_ok=True)
    say = print if progress else (lambda *a, **k: None)
    say(f"  Type {kind}, x{scale}: training sr_physics", flush=True)
    run_dir = _train_physics(setting_dir, train_file, scale, kind, preset, seed, progress)
    from spinsr_tf.nn.losses import PhysicsPrior
    from spinsr_tf.nn.training import read_run_config

    term = read_run_config(run_dir).term(PhysicsPrior)
    ham, weight = hamiltonian_from_attrs(term.hamiltonian), term.weight
    models = {"sr_physics": load_sr_model(run_dir / "model.keras")}
    for name in REFERENCE_RUNS:
        path = setting_dir / f"run_{name}" / "model.keras"
        if path.exists():
            models[name] = load_sr_model(path)
    hr = read_spins(test_file)
    result = evaluate(hr, models)
    deg = Degradation.from_dict(result["degradation"])
    lr = deg.apply(hr)
    say(f"  Type {kind}, x{scale}: refining {len(hr)} maps twice ({steps} steps)", flush=True)
    start = predict_sr(models["sr_physics"], lr)
    timing = {}
    for name, init in (("sr_refined", start), ("refine_bicubic", None)):
        sr, seconds = _refined(lr, ham, weight, init, steps, deg)
        result["methods"][name] = score_method(sr, hr)
        timing[name] = seconds
    result.update(preset_sizes=sizes, physics_weight=weight,
                  physics_hamiltonian=dict(term.hamiltonian),
                  physics_weight_rule=term.weight_rule,
                  refine_seconds_per_map=timing)
    write_json(result, result_file)
    return result


def robustness(kind: str, scale: int, test_file: Path, steps: int = 300,
               max_maps: int = 8) -> dict:
    """Refinement from aligned bicubic with the right Hamiltonian, with its D (Type I) or K
    (Type II) off by ±20 %, and with exchange alone, each with the λ that
    :func:`~spinsr_tf.inference.weight_rule.choose_weight` picks for it from the LR maps (what a user with that
    Hamiltonian would get): PSNR/Corr per case, and the aligned-bicubic baseline."""
    from spinsr_tf.evaluation.baselines import BASELINES
    from spinsr_tf.data.degradation import Degradation
    from spinsr_tf.data.generate import read_spins
    from spinsr_tf.evaluation.scoring import score_method
    from spinsr_tf.physics import TypeI, TypeII
    from spinsr_tf.physics.keras_energy import exchange_only
    from spinsr_tf.inference.weight_rule import choose_weight
    from spinsr_tf.inference.refine import refine

    hr = read_spins(test_file)[:max_maps]
    deg = Degradation(scale)  # the paper's: σ = 1, 23 taps, point samples, periodic
    lr = deg.apply(hr)
    base = TypeI() if kind == "I" else TypeII()
    key, factors = ROBUSTNESS[kind]
    rows = {"bicubic_norm": score_method(BASELINES["bicubic_norm"](lr, scale), hr)}
    cases = [(f"{key}x{f:g}", dataclasses.replace(base, **{key: getattr(base, key) * f}))
             for f in (1.0,) + tuple(factors)] + [("exchange only", exchange_only())]
    weights = {}
    for name, ham in cases:
        weights[name] = choose_weight(lr, ham, deg)
        sr = refine(lr, ham, weights[name], deg, steps=steps)
        rows[f"refine_bicubic {name}, λ={weights[name]:g}"] = score_method(sr, hr)
    return {"kind": kind, "scale": scale, "weights": weights, "n_images": len(hr),
            "degradation": {"factor": scale, "kernel_size": 23, "sigma": 1.0,
                            "padding": "periodic"},
            "parameter": key, "methods": rows}


def format_physics_table(settings: dict, robust: dict, preset_name: str) -> str:
    """Markdown: one table per setting, then the robustness table."""
    from spinsr_tf.evaluation.scoring import format_table

    lines = [f"# Physics-informed SR (preset `{preset_name}`)", "",
             "`sr_physics`: residual unit-vector network trained with the energy prior (λ chosen "
             "from LR maps only); `sr_refined`: its output refined per image; `refine_bicubic`: "
             "aligned bicubic refined per image. The oracle is supervised (not part of the "
             "method).", ""]
    for key, result in settings.items():
        timing = ", ".join(f"{k} {v:.2f} s/map" for k, v in
                           result["refine_seconds_per_map"].items())
        lines.append(format_table(result, title=key.replace("type_", "Type ").replace("_", ", ")))
        lines.append(f"λ = {result['physics_weight']:g}; refinement {timing}.\n")
    for key, result in robust.items():
        lines.append(format_table(result, title=f"Wrong Hamiltonian, {key} "
                                  f"({result['n_images']} maps; λ chosen per Hamiltonian)"))
    return "\n".join(lines)


def physics_experiment(out_dir, preset="smoke", types=("I", "II"), seed: int = 0,
                       steps: int = 300, progress: bool = True) -> dict:
    """Run (or resume) the physics tables into ``out_dir`` (the folder of ``reproduce``)."""
    from spinsr_tf.evaluation.scoring import write_json
    from spinsr_tf.experiments.presets import check_preset
    from spinsr_tf.base.files import check_output_folder
    from spinsr_tf.experiments.reproduce import REPRODUCTION_MARKS, make_data

    p = check_preset(preset)
    preset_name = preset if isinstance(preset, str) else "custom"
    for kind in types:
        if kind not in PHYSICS_SCALES:
            raise UserError(f"type must be 'I' or 'II', got {kind!r}")
    out = check_output_folder(out_dir, REPRODUCTION_MARKS, "a reproduction")
    from spinsr_tf.experiments.reproduce import read_result

    for kind in types:   # finished settings of another --steps or preset: refused before work
        for scale in PHYSICS_SCALES[kind]:
            result_file = out / f"type_{kind}" / f"x{scale}" / "physics_results.json"
            result = read_result(result_file) if result_file.is_file() else None
            if result is not None:
                _check_unchanged(result_file, result, _sizes(p, steps))
    out.mkdir(parents=True, exist_ok=True)
    settings, robust = {}, {}
    for kind in types:
        type_dir = out / f"type_{kind}"
        type_dir.mkdir(exist_ok=True)
        train_file, test_file = make_data(type_dir, kind, p, seed, progress)
        for scale in PHYSICS_SCALES[kind]:
            settings[f"type_{kind}_x{scale}"] = physics_setting(
                type_dir / f"x{scale}", train_file, test_file, kind, scale, p, seed, steps,
                progress)
        robust[f"type_{kind}_x8"] = robustness(kind, 8, test_file, steps)
    write_json({"preset": preset_name, "settings": settings}, out / "physics_results.json")
    write_json(robust, out / "physics_robustness.json")
    table = format_physics_table(settings, robust, preset_name)
    write_text_atomic(out / "table_physics.md", table)
    if progress:
        print(table, flush=True)
    return {"settings": settings, "robustness": robust}


__all__ = ["physics_experiment", "physics_setting", "robustness", "format_physics_table"]
