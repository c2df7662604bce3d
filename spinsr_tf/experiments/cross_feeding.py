"""Cross-feeding: the network trained on one texture type fed the other type (paper, Fig. 4).

"Net. I" is trained on Type I (chiral labyrinths), "Net. II" on Type II (domains and walls). Each
is scored on both test sets at ×4 and ×8: the matched cases Net I (Type I), Net II (Type II) and
the crossed ones Net I (Type II), Net II (Type I), next to aligned interpolation of the same LR
maps. The paper finds, by every metric, "Net. II (Type II), Net. I (Type I), Net. II (Type I),
and Net. I (Type II)", all four above "the simple interpolation results"
(:data:`PAPER_ORDER`); :func:`ordering` checks a result against it.

Both networks must degrade the same way (factor, kernel, σ, padding): each test set is degraded
once and the same LR maps go to both networks and to the baselines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spinsr_tf.base.errors import UserError

#: The four cases, label -> (network's training type, test data type).
CASES = {"Net I (Type I)": ("I", "I"), "Net I (Type II)": ("I", "II"),
         "Net II (Type I)": ("II", "I"), "Net II (Type II)": ("II", "II")}
#: The paper's ranking of the four cases, best first (Fig. 4b and its text).
PAPER_ORDER = ("Net II (Type II)", "Net I (Type I)", "Net II (Type I)", "Net I (Type II)")
#: Aligned interpolation baselines shown next to the networks.
CROSS_BASELINES = ("gaussian", "bilinear", "bicubic", "bicubic_norm")
DEFAULT_SCALES = (4, 8)


def _paths(out: Path, kind: str, scale: int, network: str) -> tuple[Path, Path]:
    return (out / f"type_{kind}" / f"x{scale}" / f"run_{network}" / "model.keras",
            out / f"type_{kind}" / "test.h5")


def cross_scores(models: dict, hr: dict, baselines=CROSS_BASELINES) -> dict:
    """Score both networks on both test sets at one scale.

    Parameters
    ----------
    models : ``{"I": keras.Model, "II": keras.Model}``, Net I and Net II of one scale.
    hr : ``{"I": (N, L, L, C), "II": (M, L, L, C)}`` ground-truth test maps.
    baselines : names of :data:`spinsr_tf.data.interpolation.BASELINES` scored per test type.

    Returns
    -------
    ``{"scale", "degradation", "n_images": {"I", "II"}, "cases": {label: {"net", "data", "mse",
    "psnr", "corr", "*_std", "per_image"}}, "baselines": {"I": {name: scores}, "II": {...}}}``.

    Raises
    ------
    UserError
        If the two networks degrade differently (they would not see the same LR maps).
    """
    from spinsr_tf.evaluation.baselines import BASELINES
    from spinsr_tf.data.degradation import Degradation
    from spinsr_tf.evaluation.scoring import degradation_of, predict_sr, score_method

    deg = {k: degradation_of(m) for k, m in models.items()}
    if deg["I"] != deg["II"]:
        raise UserError(f"Net I and Net II must share one degradation to be cross-fed; "
                        f"Net I has {deg['I']}, Net II has {deg['II']}")
    d = deg["I"]
    imaging = Degradation.from_dict(d)
    f = imaging.factor
    lr = {}
    for kind, maps in hr.items():
        maps = np.asarray(maps, dtype=np.float32)
        if maps.ndim != 4 or maps.shape[1] % f or maps.shape[2] % f:
            raise UserError(f"Type {kind} test maps of shape {maps.shape} cannot be degraded "
                            f"by x{f}")
        for net, model in models.items():
            if model.input_shape[-1] != maps.shape[-1]:
                raise UserError(f"Net {net} takes {model.input_shape[-1]} channels, Type {kind} "
                                f"maps have {maps.shape[-1]}")
        lr[kind] = imaging.apply(maps)
    cases = {}
    for label, (net, data) in CASES.items():
        sr = predict_sr(models[net], lr[data])
        cases[label] = {"net": net, "data": data, **score_method(sr, hr[data])}
    base = {kind: {name: score_method(BASELINES[name](lr[kind], f, padding=imaging.padding,
                                                      pixel=imaging.pixel), hr[kind])
                   for name in baselines} for kind in hr}
    return {"scale": int(f), "degradation": d,
            "n_images": {k: int(len(v)) for k, v in hr.items()}, "cases": cases,
            "baselines": base}


def ordering(result: dict, metric: str = "psnr") -> dict:
    """Rank the four cases per scale and compare with the paper's order.

    Parameters
    ----------
    result : the output of :func:`cross_feed` (``{"scales": {"4": ..., "8": ...}}``) or of
        :func:`cross_scores` for one scale.
    metric : "psnr" (default), "corr" (higher is better) or "mse" (lower is better).

    Returns
    -------
    ``{scale: {"order": [labels, best first], "values": {label: value}, "paper": PAPER_ORDER,
    "matches_paper": bool, "best_interpolation": {"I": name, "II": name}, "beats_interpolation":
    {label: bool}}}``: a case beats interpolation when it is better than the best baseline on
    its own test type.
    """
    if metric not in ("psnr", "corr", "mse"):
        raise UserError(f"metric must be 'psnr', 'corr' or 'mse', got {metric!r}")
    per_scale = result["scales"] if "scales" in result else {str(result["scale"]): result}
    sign = -1.0 if metric == "mse" else 1.0
    out = {}
    for scale, res in per_scale.items():
        values = {label: float(c[metric]) for label, c in res["cases"].items()}
        order = sorted(values, key=lambda label: -sign * values[label])
        best = {}
        for kind, scores in res["baselines"].items():
            best[kind] = max(scores, key=lambda n: sign * scores[n][metric])
        beats = {label: bool(sign * values[label]
                             > sign * res["baselines"][c["data"]][best[c["data"]]][metric])
                 for label, c in res["cases"].items()}
        out[str(scale)] = {"order": order, "values": values, "paper": list(PAPER_ORDER),
                           "matches_paper": order == list(PAPER_ORDER),
                           "best_interpolation": best, "beats_interpolation": beats}
    return out


def format_ordering(result: dict, metric: str = "psnr") -> str:
    """Markdown: per scale the measured ranking, the paper's, and the interpolation check."""
    lines = [f"| scale | measured order ({metric.upper()}, best first) | as in the paper | "
             "every case beats interpolation |", "|---|---|---|---|"]
    for scale, row in ordering(result, metric).items():
        order = " > ".join(f"{label} {row['values'][label]:.4g}" for label in row["order"])
        lines.append(f"| x{scale} | {order} | {'yes' if row['matches_paper'] else 'no'} | "
                     f"{'yes' if all(row['beats_interpolation'].values()) else 'no'} |")
    return "\n".join(lines) + "\n"


def format_cross_table(result: dict) -> str:
    """Markdown tables (one per scale): the four cases and the baselines, mean ± std."""
    lines = []
    for scale, res in result["scales"].items():
        lines += [f"### x{scale} ({result.get('network', '')})", "",
                  "| case | MSE | PSNR (dB) | Corr |", "|---|---|---|---|"]
        rows = list(res["cases"].items()) + [
            (f"{name} (Type {kind})", s) for kind, b in res["baselines"].items()
            for name, s in b.items()]
        for label, m in rows:
            lines.append(f"| {label} | {m['mse']:.4f} ± {m['mse_std']:.4f} | "
                         f"{m['psnr']:.2f} ± {m['psnr_std']:.2f} | "
                         f"{m['corr']:.4f} ± {m['corr_std']:.4f} |")
        lines.append("")
    return "\n".join(lines)


def cross_figure(result: dict, path, title: str = "") -> Path:
    """Fig. 4b layout: bars of MSE, PSNR, Corr (columns) per scale (rows), grouped by test type:
    the matched network, the crossed network, then the interpolation baselines; mean ± std over
    the test maps, a legend of the colours and a caption with the test sets and degradation."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import LogLocator, NullFormatter

    from spinsr_tf.data.render import save_figure

    scales = list(result["scales"])
    metrics = (("mse", "MSE (lower is better)"), ("psnr", "PSNR, dB (higher is better)"),
               ("corr", "Corr (higher is better)"))
    fig, axes = plt.subplots(len(scales), 3, figsize=(13.0, 3.0 * len(scales) + 0.9),
                             squeeze=False)
    colors = {"Net I": "tab:blue", "Net II": "tab:orange"}
    for row, scale in enumerate(scales):
        res = result["scales"][scale]
        for col, (metric, label) in enumerate(metrics):
            ax = axes[row, col]
            names, vals, errs, cols = [], [], [], []
            for kind in ("I", "II"):
                for case, c in res["cases"].items():
                    if c["data"] == kind:
                        names.append(case)
                        vals.append(c[metric]), errs.append(c[f"{metric}_std"])
                        cols.append(colors[case.split(" (")[0]])
                for name, s in res["baselines"][kind].items():
                    names.append(f"{name} (Type {kind})")
                    vals.append(s[metric]), errs.append(s[f"{metric}_std"])
                    cols.append("tab:gray")
            y = np.arange(len(names))
            first_ii = next((i for i, n in enumerate(names) if n.endswith("(Type II)")), None)
            ax.barh(y, vals, xerr=errs, color=cols, error_kw={"lw": 0.8})
            if first_ii:   # the Type I test set above the line, Type II below
                ax.axhline(first_ii - 0.5, color="black", lw=0.8)
            ax.set_yticks(y, names if col == 0 else [""] * len(names), fontsize=7)
            ax.invert_yaxis()
            ax.set_title(f"x{scale}: {label}", fontsize=9)
            if metric == "mse":   # whole decades, so that every axis has labelled ticks
                positive = [v for v in vals if v > 0] or [1.0]
                ax.set_xscale("log")
                low = np.floor(np.log10(min(positive)))
                low -= min(positive) < 2 * 10 ** low   # a bar close to the axis would vanish
                ax.set_xlim(10 ** low,
                            10 ** np.ceil(np.log10(max(v + e for v, e in zip(vals, errs)))))
                ax.xaxis.set_major_locator(LogLocator(numticks=8))
                ax.xaxis.set_minor_formatter(NullFormatter())
            elif metric == "corr":   # Corr of good methods crowds near 1: zoom onto the spread
                lo, hi = min(vals), max(vals)
                ax.set_xlim(max(lo - 0.1 * (hi - lo) - 1e-4, -1.0), hi + 0.05 * (hi - lo) + 1e-4)
    fig.legend(handles=[Patch(color=colors["Net I"], label="Net I (trained on Type I)"),
                        Patch(color=colors["Net II"], label="Net II (trained on Type II)"),
                        Patch(color="tab:gray", label="aligned interpolation of the same LR maps")],
               loc="lower center", ncol=3, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    first = result["scales"][scales[0]]
    n = first.get("n_images", {})
    deg = first.get("degradation", {})
    caption = (f"Bars: mean over the {n.get('I', '?')} Type I and {n.get('II', '?')} Type II "
               "test maps, whiskers: ± one standard deviation; '(Type K)': scored on that test "
               f"set. Degradation: Gaussian PSF σ = {deg.get('sigma', 1.0):g} HR px, "
               f"{deg.get('pixel', 'sample')} pixels, {deg.get('padding', 'periodic')} borders. "
               "The Corr axes start near the smallest value shown.")
    fig.text(0.5, 0.045, caption, ha="center", va="top", fontsize=7.5, wrap=True)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return save_figure(fig, path)


def cross_feed(out_dir, preset="smoke", scales=DEFAULT_SCALES, network: str = "sr_equivariant",
               seed: int = 0, progress: bool = False) -> dict:
    """Fig. 4: reproduce (or reuse) both types in ``out_dir``, then cross-feed them.

    Runs :func:`spinsr_tf.experiments.reproduce.reproduce` for Types I and II (it reuses every finished
    step), loads Net I and Net II (``OUT/type_K/xS/run_NETWORK/model.keras``) and the test sets
    (``OUT/type_K/test.h5``) and scores the four cases plus :data:`CROSS_BASELINES` per scale.

    Parameters
    ----------
    out_dir : the reproduction folder (e.g. ``reproduce_smoke``).
    preset : a name of :data:`spinsr_tf.experiments.reproduce.PRESETS`.
    scales : subset of (4, 8), the scales both types have.
    network : which trained network of :data:`~spinsr_tf.experiments.presets.NETWORKS`:
        ``"sr_equivariant"`` (default), ``"sr_residual_unit"``, ``"sr"`` (the paper's) or
        ``"oracle"``.

    Returns
    -------
    ``{"preset", "network", "scales": {"4": cross_scores result, ...}, "ordering": ordering()}``,
    also written to ``OUT/cross_feeding_NETWORK.json``; the bar chart goes to
    ``OUT/fig4_cross_feeding_NETWORK.png``.
    """
    from spinsr_tf.data.generate import read_spins
    from spinsr_tf.evaluation.scoring import write_json
    from spinsr_tf.nn.network import load_sr_model
    from spinsr_tf.experiments.presets import NETWORKS, SCALES
    from spinsr_tf.experiments.reproduce import reproduce as run_reproduce

    if network not in NETWORKS:
        raise UserError(f"network must be one of {', '.join(NETWORKS)}, got {network!r}")
    scales = tuple(scales)
    common = sorted(set(SCALES["I"]) & set(SCALES["II"]))
    if not scales or any(s not in common for s in scales):
        raise UserError(f"scales must be a non-empty subset of {tuple(common)}, got {scales!r}")
    out = Path(out_dir)
    run_reproduce(out, preset=preset, types=("I", "II"), seed=seed, progress=progress)
    hr = {kind: read_spins(_paths(out, kind, scales[0], network)[1]) for kind in ("I", "II")}
    result = {"preset": preset if isinstance(preset, str) else "custom", "network": network,
              "scales": {}}
    for scale in scales:
        models = {kind: load_sr_model(_paths(out, kind, scale, network)[0], compile=False)
                  for kind in ("I", "II")}
        result["scales"][str(scale)] = cross_scores(models, hr)
    result["ordering"] = ordering(result)
    write_json(result, out / f"cross_feeding_{network}.json")
    cross_figure(result, out / f"fig4_cross_feeding_{network}.png",
                 title=f"Cross-feeding, network {network!r} (preset {result['preset']})")
    return result
