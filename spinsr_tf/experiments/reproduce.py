"""The paper's Tables 1–2 and Figs. 2–3, end to end, at a chosen size (``spinsr-tf reproduce``).

For each type (I: ×4, ×8; II: ×4, ×8, ×16) it anneals train and test lattices, trains the
unsupervised networks of :data:`NETWORKS` and the supervised oracle on the train set, scores
them and every interpolation baseline on the test set, and writes::

    DIR/type_I/{train,test}.h5             annealed lattices
    DIR/type_I/x4/run_NAME/                one training run per network
    DIR/type_I/x4/results.json             the evaluation of that setting
    DIR/type_I/x4/figure.png               LR | interpolation | networks | ground truth
    DIR/table1.md, DIR/table2.md           Type I / Type II tables, with a verdict per setting
    DIR/results.json                       {"preset", "settings": {"type_I_x4": result, ...}}

Every step reuses its finished output, so an interrupted run resumes where it stopped and a
re-run only redraws the tables.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from spinsr_tf.base.errors import RepairWarning, UserError
from spinsr_tf.base.files import check_output_folder, write_text_atomic
from spinsr_tf.experiments.presets import (ALIGNED_BASELINES, NETWORKS, PRESETS, SCALES,  # noqa: F401
                                           TABLE_FILES, Preset, check_preset, check_sizes,
                                           network_config)


#: What a folder filled by :func:`reproduce` (or the physics tables) holds from its first step.
REPRODUCTION_MARKS = ("type_I", "type_II")


def read_result(path: Path) -> dict | None:
    """A results file this experiment wrote earlier, or None if there is none; a damaged one
    (empty, cut short) is reported in one line and made again, not a traceback."""
    import warnings

    path = Path(path)
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        result = exc
    if isinstance(result, dict) and isinstance(result.get("methods", result.get("settings")),
                                               dict):
        return result
    warnings.warn(f"{str(path)!r} is damaged; computing it again", RepairWarning, stacklevel=2)
    return None


def make_data(type_dir: Path, kind: str, preset: Preset, seed: int, progress: bool):
    """Anneal (or reuse) ``train.h5`` (seed ``seed``) and ``test.h5`` (seed ``seed + 1``)."""
    from spinsr_tf.data.generate import generate_dataset
    from spinsr_tf.physics import TypeI, TypeII, default_schedule

    hamiltonian = TypeI() if kind == "I" else TypeII()
    schedule = default_schedule(hamiltonian)
    if preset.sweeps is not None:
        schedule = dataclasses.replace(schedule, sweeps=preset.sweeps)
    files = []
    for name, n, s in (("train", preset.n_train, seed), ("test", preset.n_test, seed + 1)):
        files.append(generate_dataset(type_dir / f"{name}.h5", hamiltonian, n=n,
                                      size=preset.size, seed=s, schedule=schedule,
                                      progress=progress))
    return tuple(files)


def run_setting(setting_dir: Path, train_file: Path, test_file: Path, scale: int,
                preset: Preset, seed: int = 0, networks: dict | None = None,
                progress: bool = True, title: str = "") -> dict:
    """Train the networks of one (type, scale) setting and evaluate them (reused if done)."""
    from spinsr_tf.data.generate import read_spins
    from spinsr_tf.evaluation.scoring import evaluate, write_json
    from spinsr_tf.nn.network import load_sr_model
    from spinsr_tf.nn.training import train

    networks = NETWORKS if networks is None else networks
    result_file = setting_dir / "results.json"
    sizes = dataclasses.asdict(preset)
    result = read_result(result_file)
    if result is not None and "methods" in result:
        if result.get("preset_sizes") == sizes and set(networks) <= set(result["methods"]):
            return result
    setting_dir.mkdir(parents=True, exist_ok=True)
    say = print if progress else (lambda *a, **k: None)
    models = {}
    for k, (name, opt) in enumerate(networks.items(), start=1):
        say(f"  training {k}/{len(networks)}: {name} ({opt['label']}), x{scale}, "
            f"{preset.epochs} epochs", flush=True)
        run_dir = setting_dir / f"run_{name}"
        config = network_config(name, train_file, scale, preset, seed=seed, networks=networks)
        train(config, run_dir, resume=(run_dir / "config.json").exists(), progress=progress)
        models[name] = load_sr_model(run_dir / "model.keras")
    say(f"  scoring {', '.join(models)} and the interpolation baselines", flush=True)
    hr = read_spins(test_file)
    result = evaluate(hr, models)
    result["preset_sizes"] = sizes
    comparison_figure(models, hr, result["degradation"], setting_dir / "figure.png",
                      title=title, result=result)
    write_json(result, result_file)
    return result


def verdict(result: dict, metrics=("mse", "psnr", "corr")) -> dict:
    """Best unsupervised network against the best aligned baseline, per metric.

    Returns ``{metric: {"network": name, "value": v, "baseline": name, "baseline_value": b,
    "wins": bool}}`` (lower MSE wins; higher PSNR and Corr win). The oracle is excluded. Corr =
    mean S·S' exceeds 1 when a method's vectors are longer than 1 (e.g. the paper's linear
    output); such a value is no win, so Corr only ranks methods with Corr <= 1.
    """
    methods = result["methods"]
    nets = [n for n in methods if n.startswith("sr")]
    bases = [n for n in ALIGNED_BASELINES if n in methods]
    out = {}
    for metric in metrics:
        better = min if metric == "mse" else max

        def valid(names):
            return [n for n in names if metric != "corr" or methods[n]["corr"] <= 1 + 1e-6]

        candidates_net, candidates_base = valid(nets), valid(bases)
        if not candidates_base:
            continue
        base = better(candidates_base, key=lambda n: methods[n][metric])
        net = better(candidates_net, key=lambda n: methods[n][metric]) if candidates_net else None
        row = {"network": net, "baseline": base, "baseline_value": methods[base][metric]}
        if net is not None:
            v, b = methods[net][metric], methods[base][metric]
            row.update(value=v, wins=bool(v < b if metric == "mse" else v > b))
        out[metric] = row
    return out


def format_verdict(result: dict) -> str:
    """One line per metric: who wins between the best network and the best aligned baseline."""
    lines = []
    for metric, row in verdict(result).items():
        if row["network"] is None:
            continue
        mark = "network wins" if row["wins"] else "interpolation wins"
        lines.append(f"- {metric.upper()}: best network `{row['network']}` {row['value']:.4g} vs "
                     f"best aligned baseline `{row['baseline']}` {row['baseline_value']:.4g}: "
                     f"**{mark}**")
    return "\n".join(lines) + "\n"


def strongest_walls(hr) -> int:
    """Index of the ``(N, H, W, C)`` map with the largest summed squared gradient (periodic)."""
    import numpy as np

    x = np.asarray(hr, dtype=np.float64)
    grad = sum(np.square(np.roll(x, 1, axis=a) - x).sum(axis=(1, 2, 3)) for a in (1, 2))
    return int(np.argmax(grad))


def figure_methods(result: dict) -> list[str]:
    """The methods the figure shows, in order: the best network and the best aligned baseline
    (by mean PSNR, :func:`verdict`), then the other networks (unnormalized outputs)."""
    best = verdict(result, metrics=("psnr",))["psnr"]
    methods = result["methods"]
    nets = [best["network"]] if best.get("network") else []
    nets += [n for n in methods if n.startswith("sr") and not n.endswith("_norm")
             and n not in nets and n + "_norm" not in nets]
    return nets[:1] + [best["baseline"]] + nets[1:]


def comparison_figure(models: dict, hr, degradation: dict, path: Path, title: str = "", *,
                      result: dict | None = None, index: int | None = None) -> Path:
    """Figs. 2–3 style panel of one test image ``hr[index]`` (None: the one with the strongest
    walls, the largest summed squared gradient; a uniform domain would show nothing).

    With ``result`` (what :func:`~spinsr_tf.evaluation.scoring.evaluate` returned for the test
    set ``hr`` came from, ``index`` its position there): LR | best network | best aligned
    baseline | ground truth | other networks (:func:`figure_methods`), each title with that image's PSNR and Corr from ``result``. Without it:
    LR | aligned interpolation | networks | ground truth, no scores. Both add the error
    ``|map − truth|`` on one log scale, a zoom on the strongest walls and a caption with the
    degradation (:func:`~spinsr_tf.data.render.comparison_panel`). ``hr``: ``(N, H, W, 3)``.
    """
    import numpy as np

    from spinsr_tf.data.degradation import Degradation
    from spinsr_tf.data.render import comparison_panel
    from spinsr_tf.evaluation.baselines import BASELINES, unit_normalize
    from spinsr_tf.evaluation.scoring import predict_sr

    imaging = Degradation.from_dict(degradation)
    f = imaging.factor
    chosen = index is None
    if chosen:
        index = strongest_walls(hr)
    truth = np.asarray(hr[index])
    lr = imaging.apply(np.asarray(hr[index:index + 1]))
    scores = {}
    if result is not None:

        names = [n for n in figure_methods(result)
                 if n in BASELINES or n in models or n[:-len("_norm")] in models]
    else:
        names = ["bicubic_norm"] + list(models)
    columns = {"LR input": lr[0]}
    for name in names:
        base = name[:-len("_norm")] if name.endswith("_norm") else name
        if name in BASELINES:
            img = BASELINES[name](lr, f, padding=imaging.padding, pixel=imaging.pixel)[0]
        else:
            img = predict_sr(models[base] if base in models else models[name], lr)[0]
            if base != name and base in models:
                img = unit_normalize(img)
        columns[name] = img
        if result is not None:
            per = result["methods"][name]["per_image"]
            scores[name] = f"PSNR {per['psnr'][index]:.1f} dB, Corr {per['corr'][index]:.4f}"
        if len(columns) == 3:
            columns["ground truth"] = truth
    columns.setdefault("ground truth", truth)
    n_images = result.get("n_images", len(hr)) if result is not None else len(hr)
    caption = (f"Test image {index + 1} of {n_images}"
               + (" (the one with the strongest walls). " if chosen else ". ")
               + f"Degradation: x{f} downsizing, Gaussian PSF "
               f"σ = {imaging.sigma:g} HR px (kernel {imaging.kernel_size}), {imaging.pixel} "
               f"pixels, {imaging.padding} borders. ")
    if result is not None:
        caption += ("PSNR (MAX = 2) and Corr of this image; the table holds the means over the "
                    "test set. Best network and best aligned baseline by mean PSNR.")
        if any(result["methods"][n]["per_image"]["corr"][index] > 1 for n in names):
            caption += (" Corr > 1: vectors longer than 1 (an output without unit "
                        "normalization; Sz saturates on the fixed [−1, 1] scale).")
    else:
        caption += "bicubic_norm: aligned bicubic interpolation, unit-normalized."
    heading = f"x{f}, test image {index + 1}"
    return comparison_panel(columns, path, title=f"{title} {heading}".strip(), truth=truth,
                            scores=scores or None, caption=caption,
                            zoom=max(8, truth.shape[0] // 4))


def format_type_table(kind: str, results: dict, preset_name: str, networks: dict) -> str:
    """Markdown of Table 1 (Type I) or Table 2 (Type II): one section per scale, with verdicts."""
    from spinsr_tf.evaluation.scoring import format_table

    number = 1 if kind == "I" else 2
    lines = [f"# Table {number}: Type {kind} (preset `{preset_name}`)", "",
             "Networks: " + "; ".join(f"`{n}` = {o['label']}" for n, o in networks.items()) + ".",
             "Verdict: the best unsupervised network against the best *aligned* baseline "
             "(with or without normalization); the oracle does not compete.", ""]
    for scale in SCALES[kind]:
        result = results[f"type_{kind}_x{scale}"]
        lines.append(format_table(result, title=f"Type {kind}, x{scale}"))
        lines.append(format_verdict(result))
    return "\n".join(lines)


def reproduce(out_dir, preset="medium", types=("I", "II"), seed: int = 0,
              networks: dict | None = None, progress: bool = True) -> dict:
    """Run (or resume) the reproduction into ``out_dir``; return ``{"preset", "settings"}``.

    ``preset``: a name of :data:`PRESETS` or a :class:`Preset`. ``types``: a subset of
    ``("I", "II")``. ``networks``: defaults to :data:`NETWORKS`.
    """
    p = check_preset(preset)
    preset_name = preset if isinstance(preset, str) else "custom"
    types = tuple(types)
    for kind in types:
        if kind not in SCALES:
            raise UserError(f"type must be 'I' or 'II', got {kind!r}")
    networks = NETWORKS if networks is None else networks
    for kind in types:
        check_sizes(p, SCALES[kind], networks, seed=seed)
    out = check_output_folder(out_dir, REPRODUCTION_MARKS, "a reproduction")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {str(out)!r}: {exc}") from None
    say = print if progress else (lambda *a, **k: None)

    settings = {}
    for kind in types:
        type_dir = out / f"type_{kind}"
        type_dir.mkdir(exist_ok=True)
        say(f"Type {kind}: annealing {p.n_train} + {p.n_test} lattices of {p.size}x{p.size}",
            flush=True)
        train_file, test_file = make_data(type_dir, kind, p, seed, progress)
        for scale in SCALES[kind]:
            say(f"Type {kind}, x{scale}:", flush=True)
            settings[f"type_{kind}_x{scale}"] = run_setting(
                type_dir / f"x{scale}", train_file, test_file, scale, p, seed=seed,
                networks=networks, progress=progress, title=f"Type {kind}")
        table = format_type_table(kind, settings, preset_name, networks)
        write_text_atomic(out / TABLE_FILES[kind], table)
        say(table, flush=True)
    from spinsr_tf.evaluation.scoring import write_json

    summary_file = out / "results.json"
    earlier = read_result(summary_file)   # keep the settings of the other type
    if earlier is not None and isinstance(earlier.get("settings"), dict):
        if earlier.get("preset_sizes") == dataclasses.asdict(p):
            settings = {**earlier["settings"], **settings}
    summary = {"preset": preset_name, "preset_sizes": dataclasses.asdict(p), "seed": seed,
               "settings": settings}
    write_json(summary, summary_file)
    say(f"wrote {', '.join(str(out / TABLE_FILES[k]) for k in types)} and "
        f"{out / 'results.json'}")
    return summary
