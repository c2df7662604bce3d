"""Noise response of a trained SR network: the paper's Figs. 5 (Type I) and 6 (Type II).

The paper adds noise to a spin map, ``Ŝ′ = L2(Ŝ + αN̂)`` ("N̂ is the added noise vector with a
unit random vector map, α represents the intensity of the noise and L2 is the L2-normalization
process"), then runs "a recursive process that feeds the output data from the SR network back to
the input data ... for 100 iterations", and plots Corr(SR, ground truth) against the iteration
(Figs. 5b, 6b) and its peak against α (Figs. 5c, 6c).

Where the noise goes. The paper tests "the networks ... with noise-injected data" and the data a
network is fed are LR maps; the recursion feeds the network's output (its re-degraded ``"lr"``
map, the only output with the input's shape) back as the next input. So by default
(``noise_on="lr"``) the noise is added to the LR test map that starts the recursion, and the
formula's L2 step normalizes each LR site (the degradation leaves LR vectors slightly shorter
than 1; at α = 0 this normalization is the only change). ``noise_on="hr"`` is the other reading:
noise on the HR ground truth, which is then degraded with the network's own degradation; the
Gaussian blur then averages most of the noise away before the network sees it (for σ = 1 HR
pixel the noise variance drops by ``Σ w² ≈ 1/(4π σ²) ≈ 0.08``).

The scale is not stated in the paper for Figs. 5–6; ×4 (32 → 128), the setting common to both
types, is the default of :func:`run_noise_experiment`.

Every α uses the *same* noise map ``N̂`` (one seed): the curves then differ only by α, not by the
draw, so peak Corr against α is smooth even on a few test images.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from spinsr_tf.data.interpolation import unit_normalize
from spinsr_tf.data.degradation import Degradation
from spinsr_tf.base.checks import check_int, check_maps, check_real
from spinsr_tf.base.errors import UserError
from spinsr_tf.evaluation.metrics import corr, mse

#: Largest α of the paper's sweeps: Type I 0..200 (Fig. 5), Type II 0..50 (Fig. 6).
ALPHA_MAX = {"I": 200.0, "II": 50.0}
NOISE_ON = ("lr", "hr")
FIGURE_FILES = {"I": "fig5_noise_type_I", "II": "fig6_noise_type_II"}


@dataclasses.dataclass(frozen=True)
class NoiseSize:
    """Size of a noise sweep per preset: iterations of the recursion and number of α > 0."""

    iterations: int
    n_alphas: int


#: ``smoke``: seconds (3 α, 5 iterations). ``medium``: 9 α, 100 iterations on the medium test
#: set. ``paper``: the paper's 100 iterations, a denser α grid.
SIZES = {"smoke": NoiseSize(iterations=5, n_alphas=2),
         "medium": NoiseSize(iterations=100, n_alphas=8),
         "paper": NoiseSize(iterations=100, n_alphas=16)}


def default_alphas(kind: str, n: int = 8, smallest: float = 0.1) -> np.ndarray:
    """0 followed by ``n`` log-spaced α from ``smallest`` to the paper's maximum for ``kind``.

    Log spacing because the paper's story happens around α ≈ 1 ("a noise intensity over 1.0 means
    it exceeds the signal") while its range ends at 200 (Type I) or 50 (Type II).
    """
    if kind not in ALPHA_MAX:
        raise UserError(f"kind must be 'I' or 'II', got {kind!r}")
    check_int("n", n, 1)
    return np.concatenate([[0.0], np.geomspace(smallest, ALPHA_MAX[kind], int(n))])


def _check_alpha(alpha) -> float:
    return check_real("alpha", alpha, 0)


def _check_maps(x, name: str) -> np.ndarray:
    return check_maps(name, x, np.float32)


def random_unit_vectors(shape, seed) -> np.ndarray:
    """``(N, H, W, C)`` float32 unit vectors uniform on the sphere S^(C-1) (C >= 2).

    Normalized standard normal vectors: the Gaussian is isotropic, so the direction is uniform.
    """
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(shape)
    norm = np.sqrt(np.square(n).sum(axis=-1, keepdims=True))
    return (n / np.maximum(norm, 1e-300)).astype(np.float32)


def add_noise(spins, alpha: float, seed=0) -> np.ndarray:
    """The paper's noise: ``Ŝ′ = L2(Ŝ + αN̂)`` with ``N̂`` random unit vectors, site by site.

    Parameters
    ----------
    spins : array_like, shape (N, H, W, C)
        Spin maps (C >= 2: vectors, any length; C = 1: scalar contrast in [-1, 1]).
    alpha : float >= 0
        Noise intensity relative to a unit spin; α = 1 is noise as strong as the signal.
    seed : int, sequence of ints or numpy.random.SeedSequence
        Seeds a :class:`numpy.random.Generator`; the same seed gives the same ``N̂`` for every α.

    Returns
    -------
    numpy.ndarray, shape (N, H, W, C), float32
        For C >= 2 unit vectors (a zero vector stays zero); α = 0 returns ``spins`` normalized.
        For C = 1 there is no sphere to normalize onto (L2-normalizing a scalar keeps only its
        sign), so ``N̂`` is uniform in [-1, 1] and the result is clipped to [-1, 1], the same
        "normalization" :func:`spinsr_tf.data.interpolation.unit_normalize` applies to scalar maps.

    Notes
    -----
    For unit vectors ``E[Ŝ·N̂] = 0`` and ``E[Ŝ·Ŝ′] = ½∫(1 + αu)/√(1 + α² + 2αu) du`` over
    ``u = cos θ ∈ [-1, 1]``: 1 at α = 0, 2/3 at α = 1, ≈ 2/(3α) for large α.
    """
    x = _check_maps(spins, "spins")
    alpha = _check_alpha(alpha)
    if x.shape[-1] == 1:
        n = np.random.default_rng(seed).uniform(-1.0, 1.0, x.shape).astype(np.float32)
        return np.clip(x + np.float32(alpha) * n, -1.0, 1.0)
    n = random_unit_vectors(x.shape, seed)
    return unit_normalize(x + np.float32(alpha) * n).astype(np.float32)


def _predict_step(model):
    """The model's compiled inference function, built once and reused for every iteration.

    ``predict_on_batch`` compiles Keras' predict function on first use (a ``tf.function`` on the
    TensorFlow backend, ``jax.jit`` on JAX) and keeps it, unlike ``predict`` it has no per-call
    data-adapter or callback overhead. BatchNormalization runs in inference mode.
    """
    def step(x):
        out = model.predict_on_batch(x)
        return np.asarray(out["lr"], dtype=np.float32), np.asarray(out["sr"], dtype=np.float32)
    return step


def recursive_feed(model, lr, iterations: int = 100, hr=None, batch_size: int = 32,
                   snapshots=()) -> dict:
    """Feed ``lr`` to the network, then its own ``"lr"`` output, ``iterations`` times.

    Iteration ``k`` (1-based) is the k-th pass: ``(LR_k, SR_k) = model(LR_{k-1})`` with
    ``LR_0 = lr``. All images go through one compiled function per iteration (in chunks of
    ``batch_size``); nothing is retraced between iterations.

    Parameters
    ----------
    model : keras.Model
        A spinsr model (outputs ``{"lr", "sr"}``), e.g. from :func:`spinsr_tf.nn.network.load_sr_model`.
    lr : array_like, shape (N, h, w, C)
        The starting LR maps (possibly noisy, see :func:`add_noise`).
    iterations : int >= 1
    hr : array_like, shape (N, h·f, w·f, C), optional
        Ground truth; when given, Corr and MSE of every ``SR_k`` against it are recorded.
    batch_size : int >= 1
        Images per forward pass (memory only; results do not depend on it).
    snapshots : iterable of int
        Iterations at which to keep the SR map of the first image (for pictures).

    Returns
    -------
    dict
        ``"iterations"`` (K), ``"sr"`` (N, H, W, C) and ``"lr"`` (N, h, w, C) after the last
        pass, ``"snapshots"`` ``{k: (H, W, C)}``; with ``hr``: ``"corr"``, ``"mse"`` (K,) means
        over images and ``"corr_per_image"``, ``"mse_per_image"`` (N, K), all float64.
    """
    x = _check_maps(lr, "lr")
    check_int("iterations", iterations, 1)
    check_int("batch_size", batch_size, 1)
    snapshots = sorted({int(k) for k in snapshots})
    if any(k < 1 or k > iterations for k in snapshots):
        raise UserError(f"snapshots must lie in 1..{iterations}, got {snapshots}")
    channels = model.input_shape[-1]
    if channels != x.shape[-1]:
        raise UserError(f"model takes {channels} channels, lr has {x.shape[-1]}")
    truth = None
    if hr is not None:
        truth = _check_maps(hr, "hr")
        if len(truth) != len(x):
            raise UserError(f"hr has {len(truth)} maps, lr has {len(x)}")
    step = _predict_step(model)
    n = len(x)
    corr_k = np.empty((n, iterations)) if truth is not None else None
    mse_k = np.empty((n, iterations)) if truth is not None else None
    kept = {}
    sr = None
    for k in range(iterations):
        lr_out, sr_out = [], []
        for start in range(0, n, batch_size):
            a, b = step(x[start:start + batch_size])
            lr_out.append(a)
            sr_out.append(b)
        x = np.concatenate(lr_out)
        sr = np.concatenate(sr_out)
        if truth is not None:
            if sr.shape != truth.shape:
                raise UserError(f"hr must have the SR shape {sr.shape}, got {truth.shape}")
            corr_k[:, k] = corr(sr, truth)
            mse_k[:, k] = mse(sr, truth)
        if k + 1 in snapshots:
            kept[k + 1] = sr[0].copy()
    out = {"iterations": int(iterations), "sr": sr, "lr": x, "snapshots": kept}
    if truth is not None:
        out.update(corr=corr_k.mean(axis=0), mse=mse_k.mean(axis=0),
                   corr_per_image=corr_k, mse_per_image=mse_k)
    return out


def _noisy_input(hr, alpha, seed, noise_on, degradation: Degradation):
    if noise_on == "hr":
        return degradation.apply(add_noise(hr, alpha, seed))
    return add_noise(degradation.apply(hr), alpha, seed)


def noise_sweep(model, hr, alphas=None, iterations: int = 100, seed=0, noise_on: str = "lr",
                kind: str = "I", batch_size: int = 32, snapshots=None,
                progress: bool = False) -> dict:
    """Corr(SR_k, HR) against the iteration k of the recursion, for every noise intensity α.

    Parameters
    ----------
    model : keras.Model
        A spinsr model; its own degradation turns ``hr`` into the LR input.
    hr : array_like, shape (N, L, L, C)
        Ground-truth test maps.
    alphas : sequence of float >= 0, optional
        Noise intensities; default :func:`default_alphas` of ``kind``.
    iterations : int
        Passes of the recursion (paper: 100).
    seed : int
        Seed of the noise map, shared by every α.
    noise_on : {"lr", "hr"}
        Where the noise goes (module docstring): on the LR input (default) or on the HR map
        before the degradation.
    kind : {"I", "II"}
        Only chooses the default α range.
    snapshots : iterable of int, optional
        Iterations whose SR map of the first image is kept; default first, ~10th and last.

    Returns
    -------
    dict
        ``alphas`` (A,), ``iterations``, ``noise_on``, ``seed``, ``n_images``, ``degradation``;
        ``corr``, ``mse`` (A, K) mean over images; ``corr_per_image`` (A, N, K); ``peak_corr``,
        ``peak_iteration`` (A,) the maximum of the mean Corr curve and its 1-based iteration;
        ``input_corr`` ``{"bicubic", "bicubic_norm"}`` (A,): Corr of aligned interpolation of the
        same noisy LR input (iteration 0, the reference); ``snapshots`` ``{α index: {k: map}}``.
        All lists of floats (JSON-ready) except the snapshot maps.
    """
    from spinsr_tf.evaluation.scoring import degradation_of

    hr = _check_maps(hr, "hr")
    if noise_on not in NOISE_ON:
        raise UserError(f"noise_on must be one of {NOISE_ON}, got {noise_on!r}")
    alphas = default_alphas(kind) if alphas is None else alphas
    alphas = [_check_alpha(a) for a in np.atleast_1d(np.asarray(alphas, dtype=object)).tolist()]
    if not alphas:
        raise UserError("alphas must not be empty")
    deg = degradation_of(model)
    f = deg["factor"]
    if hr.shape[1] % f or hr.shape[2] % f:
        raise UserError(f"hr maps of size {hr.shape[1]}x{hr.shape[2]} are not divisible by the "
                        f"model's scale {f}")
    if snapshots is None:
        snapshots = sorted({1, min(10, iterations), iterations})
    imaging = Degradation.from_dict(deg)
    result = {"alphas": alphas, "iterations": int(iterations), "noise_on": noise_on,
              "seed": seed, "n_images": int(len(hr)), "degradation": deg,
              "corr": [], "mse": [], "corr_per_image": [], "peak_corr": [],
              "peak_iteration": [], "input_corr": {"bicubic": [], "bicubic_norm": []},
              "snapshots": {}}
    for i, alpha in enumerate(alphas):
        lr = _noisy_input(hr, alpha, seed, noise_on, imaging)
        up = imaging.upsample(lr, "bicubic")
        result["input_corr"]["bicubic"].append(float(corr(up, hr).mean()))
        result["input_corr"]["bicubic_norm"].append(float(corr(unit_normalize(up), hr).mean()))
        run = recursive_feed(model, lr, iterations=iterations, hr=hr, batch_size=batch_size,
                             snapshots=snapshots)
        peak = int(np.argmax(run["corr"]))
        result["corr"].append(run["corr"].tolist())
        result["mse"].append(run["mse"].tolist())
        result["corr_per_image"].append(run["corr_per_image"].tolist())
        result["peak_corr"].append(float(run["corr"][peak]))
        result["peak_iteration"].append(peak + 1)
        result["snapshots"][i] = run["snapshots"]
        if progress:
            print(f"  alpha={alpha:g}: Corr first {run['corr'][0]:.4f}, peak "
                  f"{run['corr'][peak]:.4f} at iteration {peak + 1}, last {run['corr'][-1]:.4f}",
                  flush=True)
    return result


def format_peaks(result: dict) -> str:
    """Markdown table: α, Corr of interpolation at iteration 0, Corr after 1 pass, peak, last."""
    lines = [f"Noise on the {result['noise_on'].upper()} input, {result['n_images']} test images, "
             f"{result['iterations']} iterations, x{result['degradation']['factor']}.", "",
             "| α | bicubic_norm (input) | Corr, 1st pass | peak Corr | at iteration | "
             "Corr, last |", "|---|---|---|---|---|---|"]
    for i, alpha in enumerate(result["alphas"]):
        c = result["corr"][i]
        lines.append(f"| {alpha:.3g} | {result['input_corr']['bicubic_norm'][i]:.4f} | "
                     f"{c[0]:.4f} | {result['peak_corr'][i]:.4f} | "
                     f"{result['peak_iteration'][i]} | {c[-1]:.4f} |")
    return "\n".join(lines) + "\n"


def noise_figures(result: dict, path: str | os.PathLike, title: str = "") -> Path:
    """Figs. 5–6 layout: (a) SR maps (Sz) of one test image per α, (b) Corr vs iteration per α,
    (c) peak Corr vs α with the interpolation of the noisy input for reference."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from spinsr_tf.data.render import save_figure

    alphas = np.asarray(result["alphas"], dtype=float)
    shown = np.unique(np.linspace(0, len(alphas) - 1, min(6, len(alphas))).round().astype(int))
    snaps = result.get("snapshots") or {}
    fig = plt.figure(figsize=(12.0, 6.6))
    grid = fig.add_gridspec(2, 1, height_ratios=(1.0, 1.6))
    top, bottom = grid[0].subgridspec(1, len(shown)), grid[1].subgridspec(1, 2)
    for col, i in enumerate(shown):
        ax = fig.add_subplot(top[0, col])
        maps = snaps.get(i) or snaps.get(str(i)) or {}
        if maps:
            last = max(maps, key=int)
            ax.imshow(np.asarray(maps[last])[..., -1], cmap="RdBu_r", vmin=-1, vmax=1,
                      interpolation="nearest")
            ax.set_title(f"α={alphas[i]:.3g}, k={last}", fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    ax_b, ax_c = fig.add_subplot(bottom[0, 0]), fig.add_subplot(bottom[0, 1])
    colors = plt.cm.viridis(np.linspace(0, 1, len(alphas)))
    k = np.arange(1, result["iterations"] + 1)
    for i, alpha in enumerate(alphas):
        ax_b.plot(k, result["corr"][i], color=colors[i], label=f"α={alpha:.3g}")
    ax_b.set_xlabel("iteration"), ax_b.set_ylabel("Corr(SR, ground truth)")
    ax_b.set_title("(b) recursive feed", fontsize=9)
    ax_b.legend(fontsize=7, ncol=2)
    ax_c.plot(alphas, result["peak_corr"], "o-", label="network, peak over iterations")
    ax_c.plot(alphas, result["input_corr"]["bicubic_norm"], "s--",
              label="bicubic_norm of the noisy input")
    ax_c.set_xscale("symlog", linthresh=max(min((a for a in alphas if a > 0), default=0.1), 1e-3))
    ax_c.set_xlabel("noise intensity α"), ax_c.set_ylabel("peak Corr")
    ax_c.set_title("(c) peak Corr vs α", fontsize=9)
    ax_c.legend(fontsize=7)
    fig.suptitle(f"{title} (a) SR Sz after the last iteration; noise on the "
                 f"{result['noise_on'].upper()} map".strip(), fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _jsonable(result: dict) -> dict:
    """The sweep without the snapshot maps (pictures, not numbers)."""
    return {k: v for k, v in result.items() if k != "snapshots"}


def run_noise_experiment(out_dir, preset="smoke", kind: str = "I",
                         network: str = "sr_equivariant", alphas=None,
                         iterations: int | None = None, seed: int = 0, scale: int = 4,
                         noise_on: str = "lr", batch_size: int = 32,
                         progress: bool = False) -> dict:
    """Fig. 5 (``kind="I"``) or Fig. 6 (``kind="II"``) from the outputs of
    :func:`spinsr_tf.experiments.reproduce.reproduce` in ``out_dir`` (run first if missing; reused if done).

    Reads ``OUT/type_K/xSCALE/run_NETWORK/model.keras`` and ``OUT/type_K/test.h5``; writes
    ``OUT/noise_type_K_NETWORK.json`` (the :func:`noise_sweep` result plus ``kind``, ``network``,
    ``preset``, ``scale``) and ``OUT/fig5_noise_type_I_NETWORK.png`` or
    ``OUT/fig6_noise_type_II_NETWORK.png``. Defaults per preset (:data:`SIZES`): smoke 0 + 2 α,
    5 iterations; medium 0 + 8 α, 100 iterations; paper 0 + 16 α, 100 iterations.
    """
    from spinsr_tf.data.generate import read_spins
    from spinsr_tf.evaluation.scoring import write_json
    from spinsr_tf.nn.network import load_sr_model
    from spinsr_tf.experiments.presets import NETWORKS, PRESETS, SCALES
    from spinsr_tf.experiments.reproduce import reproduce as run_reproduce

    if kind not in SCALES:
        raise UserError(f"kind must be 'I' or 'II', got {kind!r}")
    if scale not in SCALES[kind]:
        raise UserError(f"scale must be one of {SCALES[kind]} for Type {kind}, got {scale!r}")
    if preset not in PRESETS:
        raise UserError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    size = SIZES[preset]
    iterations = size.iterations if iterations is None else iterations
    alphas = default_alphas(kind, size.n_alphas) if alphas is None else alphas
    out = Path(out_dir)
    model_file = out / f"type_{kind}" / f"x{scale}" / f"run_{network}" / "model.keras"
    test_file = out / f"type_{kind}" / "test.h5"
    if not model_file.exists() and network not in NETWORKS:
        raise UserError(f"network must be one of {', '.join(NETWORKS)} or a trained run of "
                        f"{str(model_file.parent.parent)!r} (e.g. sr_physics of "
                        f"'spinsr-tf physics-sr'), got {network!r}")
    if not (model_file.exists() and test_file.exists()):
        run_reproduce(out, preset=preset, types=(kind,), seed=seed, progress=progress)
    model = load_sr_model(model_file, compile=False)
    hr = read_spins(test_file)
    result = noise_sweep(model, hr, alphas=alphas, iterations=iterations, seed=seed,
                         noise_on=noise_on, kind=kind, batch_size=batch_size, progress=progress)
    result.update(kind=kind, network=network, preset=preset, scale=int(scale))
    write_json(_jsonable(result), out / f"noise_type_{kind}_{network}.json")
    noise_figures(result, out / f"{FIGURE_FILES[kind]}_{network}.png",
                  title=f"Type {kind}, x{scale}, {network}:")
    return result
