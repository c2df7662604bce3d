"""Calibration of the symmetry-spread uncertainty map on held-out simulated maps.

For the HR maps of ``--data`` (dataset ``spins``), degraded as the model was trained, it runs
:func:`~spinsr_tf.inference.uncertainty.symmetry_spread` and prints:

- the Spearman rank correlation (:func:`~spinsr_tf.evaluation.calibration.calibration`) between
  the uncertainty (the default: the members' spread and their error on the result degraded
  again, ``reference="redegraded"``) and the actual per-site error ``|SR − HR|`` of the
  group-mean and of the plain map, pooled over all sites and per map (mean ± std); the target
  is ≥ 0.4; the same for the distance of the members to the interpolation
  (``reference="interpolation"``) and for the spread alone (``reference="mean"``);
- the same for a reference predictor that knows nothing of the network: the distance of each HR
  site to the nearest LR sampling site (what an uncertainty map must beat to be worth computing);
- the pooled correlation for several widths of the smoothing window (``smooth``);
- PSNR (mean ± std over the maps, dB) of the plain SR map and of the group-mean map;
- with ``--shifts K``: the spread over the LR translations (0..K−1)² alone, and the calibration
  with them added to the point operations.

With ``--noise S`` the LR maps get Gaussian noise of std S per component (seeded by ``--seed``).

With ``--standin OUT --kind kerr|spleem`` it measures instead a finished Fig. 7 stand-in
(:func:`spinsr_tf.experiments.microscope.run_experiment` wrote ``OUT``): the three references
by smoothing width against the error of the map as returned (scalar images: in the Sz units of
the image's own percentile mapping, and again after the affine grey-level fit to the truth that
the scores use); as a ceiling, the error itself smoothed (how well *any* map that
smooth can rank it); and, for scalar images, the share of the error variance that is a function
of the SR grey level alone (a distorted wall profile, which no map built from the network's own
behaviour can see) and the Spearman against the error left after the best grey-level mapping
(the truth's mean per grey-level bin; it says whether that mapping is monotone).

Usage::

    python benchmarks/uncertainty_calibration.py --data TEST.h5 --model RUN/model.keras \
        [--model RUN2/model.keras ...] [--group lattice] [--shifts 2] [--max-samples 16] \
        [--noise 0.1 --seed 1]
    python benchmarks/uncertainty_calibration.py --standin OUT --kind kerr
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def hamiltonian_attrs(path) -> dict | None:
    """The ``hamiltonian.*`` attributes of a data file, without the prefix (None if absent)."""
    import h5py

    with h5py.File(path, "r") as f:
        attrs = {k[len("hamiltonian."):]: v for k, v in f.attrs.items()
                 if k.startswith("hamiltonian.")}
    return attrs or None


def sampling_distance(shape, scale: int, pixel: str) -> np.ndarray:
    """Per HR site, the distance (HR pixels) to the nearest LR sampling point: ``k·f`` for point
    samples, the block centre ``k·f + (f − 1)/2`` for camera pixels. Periodic."""
    n, h, w = shape
    offset = 0.0 if pixel == "sample" else (scale - 1) / 2

    def axis(size):
        r = (np.arange(size) - offset) % scale
        return np.minimum(r, scale - r)

    d = np.hypot(axis(h)[:, None], axis(w)[None, :])
    return np.broadcast_to(d, shape)


def per_map(u, e):
    from spinsr_tf.evaluation.calibration import calibration

    values = [calibration(a, b) for a, b in zip(u, e)]
    return np.nanmean(values), np.nanstd(values)


def main(data: str, model_paths: list, group: str, shifts: int, max_samples: int | None,
         batch_size: int, noise: float = 0.0, seed: int = 1) -> None:
    from spinsr_tf.data.degradation import gaussian_downsample
    from spinsr_tf.data.generate import read_spins
    from spinsr_tf.evaluation.calibration import calibration, pixel_error
    from spinsr_tf.evaluation.metrics import psnr
    from spinsr_tf.inference.uncertainty import (SMOOTH, SpreadOptions, local_rms,
                                                 symmetry_spread)
    from spinsr_tf.nn.export import serving_model
    from spinsr_tf.nn.network import LR_OUTPUT, load_sr_model

    models = [load_sr_model(p, compile=False) for p in model_paths]
    deg = models[0].get_layer(LR_OUTPUT)
    pixel = getattr(deg, "pixel", "sample")
    hr = read_spins(data)
    if max_samples:
        hr = hr[:max_samples]
    kwargs = {"kernel_size": deg.kernel_size, "sigma": deg.sigma, "padding": deg.padding}
    if pixel != "sample":
        kwargs["pixel"] = pixel
    lr = gaussian_downsample(hr, deg.factor, **kwargs)
    if noise:   # Gaussian noise per component, as the noise study adds it
        lr = lr + noise * np.random.default_rng(seed).normal(size=lr.shape).astype(np.float32)
    ham = hamiltonian_attrs(data)
    print(f"{len(hr)} maps {hr.shape[1]}x{hr.shape[2]} from {data}, x{deg.factor}, noise {noise:g}, "
          f"{len(models)} model(s), group {group!r}, {deg.padding}, pixel {pixel}")

    plain = serving_model(models[0]).predict(lr, batch_size=batch_size, verbose=0)
    periodic = deg.padding == "periodic"
    t0 = time.perf_counter()
    raw = {ref: symmetry_spread(models, lr, group=group, hamiltonian=ham,
                                options=SpreadOptions(reference=ref, smooth=0),
                                batch_size=batch_size)
           for ref in ("redegraded", "mean", "interpolation")}
    seconds = time.perf_counter() - t0
    (mean, raw), (_, raw_spread), (_, raw_interp) = raw.values()
    err_plain, err_mean = pixel_error(plain, hr), pixel_error(mean, hr)
    u, spread = local_rms(raw, SMOOTH, periodic), local_rms(raw_spread, SMOOTH, periodic)
    interp = local_rms(raw_interp, SMOOTH, periodic)
    print(f"  {seconds:.1f} s; uncertainty mean {u.mean():.4f}, max {u.max():.4f} (spread alone "
          f"{spread.mean():.4f}, {spread.max():.4f}); error of the mean map: mean "
          f"{err_mean.mean():.4f}, max {err_mean.max():.4f}")
    ref = sampling_distance(u.shape, deg.factor, pixel)
    for name, pred, err in (("uncertainty vs error of mean  ", u, err_mean),
                            ("uncertainty vs error of plain ", u, err_plain),
                            ("interpolation ref. vs mean    ", interp, err_mean),
                            ("spread alone vs error of mean ", spread, err_mean),
                            ("distance to LR sample vs mean ", ref, err_mean)):
        m, s = per_map(pred, err)
        print(f"  Spearman {name}: pooled {calibration(pred, err):.3f}, per map "
              f"{m:.3f} ± {s:.3f}")
    for name, values in (("uncertainty", raw), ("interpolation ref.", raw_interp),
                         ("spread alone", raw_spread)):
        line = ", ".join(f"{w:g}{'*' if w == SMOOTH else ''}: "
                         f"{calibration(local_rms(values, w, periodic), err_mean):.3f}"
                         for w in (0, 1, 2, 3, 4, 6))
        print(f"  Spearman {name} vs error of mean by smooth (HR px, * = default): {line}")
    for name, sr in (("plain", plain), ("group mean", mean)):
        p = psnr(sr, hr)
        print(f"  PSNR {name:10s}: {p.mean():.2f} ± {p.std():.2f} dB")
    if shifts > 1 and deg.padding == "periodic":
        grid = [(dy, dx) for dy in range(shifts) for dx in range(shifts)]
        _, ut = symmetry_spread(models[0], lr, group="translations",
                                options=SpreadOptions(reference="mean", shifts=grid),
                                batch_size=batch_size)
        print(f"  translations alone ({len(grid)} LR shifts): spread max {ut.max():.2e}, "
              f"mean {ut.mean():.2e}")
        mean2, u2 = symmetry_spread(models, lr, group=group, hamiltonian=ham,
                                    options=SpreadOptions(shifts=grid, smooth=SMOOTH),
                                    batch_size=batch_size)
        print(f"  with the translations: Spearman vs mean {calibration(u2, err_mean):.3f}, "
              f"PSNR mean {psnr(mean2, hr).mean():.2f} dB, max |Δ uncertainty| "
              f"{np.abs(u2 - u).max():.2e}")


def grey_level_share(fitted: np.ndarray, truth: np.ndarray, bins: int = 40):
    """Scalar images: how much of the signed error ``e = fitted − truth`` (``fitted`` the SR
    after the affine grey-level fit) is a function of the grey level alone. Returns ``(share,
    residual, monotone)``: the fraction of ``mean e²`` that the mean of ``e`` in ``bins``
    grey-level bins explains; ``|e − that mean|``, the error left after the best grey-level
    mapping (any function of the bin: the truth's mean in it); and whether that mapping
    increases from bin to bin, so that it is a monotone one."""
    error = fitted - truth
    edges = np.linspace(fitted.min(), fitted.max(), bins + 1)
    idx = np.clip(np.digitize(fitted, edges) - 1, 0, bins - 1)
    counts = np.bincount(idx.ravel(), minlength=bins)
    means = np.bincount(idx.ravel(), error.ravel(), minlength=bins) / np.maximum(counts, 1)
    mapping = np.bincount(idx.ravel(), truth.ravel(), minlength=bins)[counts > 0] \
        / counts[counts > 0]
    residual = error - means[idx]
    return (1.0 - float(np.mean(residual ** 2) / np.mean(error ** 2)), np.abs(residual),
            bool(np.all(np.diff(mapping) > 0)))


def main_standin(out_dir: str, kind: str, batch_size: int) -> None:
    import json

    from spinsr_tf.evaluation.calibration import calibration
    from spinsr_tf.experiments.microscope import truth_window
    from spinsr_tf.inference.uncertainty import (SMOOTH, SMOOTH_SCALAR, SpreadOptions,
                                                 local_rms, symmetry_spread)
    from spinsr_tf.nn.network import load_sr_model

    out = Path(out_dir)
    run = out / f"{kind}_fit"
    meta = json.loads((out / f"{kind}.json").read_text())
    truth = truth_window(np.load(out / meta["params"]["truth"]), meta)
    model = load_sr_model(run / "train" / "model.keras", compile=False)
    lr = np.load(run / "lr_values.npy").astype(np.float32)[None]
    scalar = lr.shape[-1] == 1
    default = SMOOTH_SCALAR if scalar else SMOOTH
    shown = (truth[..., 2:3] if scalar else truth).astype(np.float64)
    t0 = time.perf_counter()
    # the model's own degradation (fit-image's: reflect) places the members
    raw = {ref: symmetry_spread(model, lr, options=SpreadOptions(reference=ref, smooth=0),
                                batch_size=batch_size)
           for ref in ("redegraded", "interpolation", "mean")}
    seconds = time.perf_counter() - t0
    sr = raw["redegraded"][0][0].astype(np.float64)
    # the error of the map as returned (scalar images: Sz by the image's own percentile mapping)
    # and, for scalar images, after the scores' affine grey-level fit to the truth
    errors = {"as returned": sr - shown}
    if scalar:
        a, b = np.polyfit(sr.ravel(), shown.ravel(), 1)
        errors["after the affine fit"] = a * sr + b - shown
    print(f"{kind} stand-in {out}: LR {lr.shape[1]}x{lr.shape[2]}x{lr.shape[3]}, SR "
          f"{sr.shape[0]}x{sr.shape[1]}; 3 maps in {seconds:.0f} s")
    widths = (0, 1, 2, 3, 4)
    for what, signed in errors.items():
        error = np.sqrt(np.sum(signed ** 2, axis=-1))
        print(f" against the error {what} (RMS {np.sqrt(np.mean(error ** 2)):.4f}):")
        for ref, (_, u) in raw.items():
            line = ", ".join(f"{w:g}{'*' if w == default else ''}: "
                             f"{calibration(local_rms(u, w, False)[0], error):.3f}"
                             for w in widths)
            print(f"  Spearman {ref:13s} by smooth (HR px, * = default): {line}")
        line = ", ".join(f"{w:g}: {calibration(local_rms(error[None], w, False)[0], error):.3f}"
                         for w in widths[1:])
        print(f"  ceiling, the error itself smoothed: {line}")
    if scalar:
        signed = errors["after the affine fit"]
        error = np.abs(signed[..., 0])
        share, residual, monotone = grey_level_share(signed[..., 0] + shown[..., 0],
                                                     shown[..., 0])
        u = local_rms(raw["redegraded"][1], default, False)[0]
        print(f"  share of the affine-fit error variance that is a function of the SR grey "
              f"level: {share:.3f}; Spearman of the default map against the error left after "
              f"the best grey-level mapping ({'monotone' if monotone else 'NOT monotone'}): "
              f"{calibration(u, residual):.3f} (against the affine-fit error: "
              f"{calibration(u, error):.3f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="HDF5 file with HR maps ('spins')")
    parser.add_argument("--model", action="append",
                        help="trained model (repeat for an ensemble)")
    parser.add_argument("--standin", metavar="OUT",
                        help="a finished Fig. 7 stand-in folder (run_experiment's out_dir) "
                             "instead of --data/--model")
    parser.add_argument("--kind", choices=("kerr", "spleem"), default="kerr")
    parser.add_argument("--group", default="lattice")
    parser.add_argument("--shifts", type=int, default=0,
                        help="also measure LR translations (0..K-1)^2 (periodic models)")
    parser.add_argument("--max-samples", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--noise", type=float, default=0.0,
                        help="Gaussian noise std added to every LR component (seeded by --seed)")
    parser.add_argument("--seed", type=int, default=1)
    a = parser.parse_args()
    if a.standin:
        main_standin(a.standin, a.kind, a.batch_size)
        sys.exit(0)
    if not (a.data and a.model):
        parser.error("give --data and --model, or --standin")
    main(a.data, a.model, a.group, a.shifts, a.max_samples, a.batch_size, a.noise, a.seed)
