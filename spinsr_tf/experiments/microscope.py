"""Stand-ins for experimental magnetic images, made from annealed ground truth so they can be scored.

The paper's Fig. 7 applies the network to a MOKE image (labyrinth domains, Sz contrast only) and
a SPLEEM image (three components, domains) that have no high-resolution counterpart. Here the
same kind of images are made from large annealed lattices, so that the super-resolved result can
be compared with the truth:

- :func:`kerr_image`: polar-Kerr (MOKE) camera image of ``Sz``. Optics = a
  :class:`~spinsr_tf.data.degradation.Degradation`: a Gaussian PSF (the instrument's
  ``psf_sigma`` HR pixels) and camera pixels that integrate their ``f × f`` block
  (``pixel="integrate"``), applied to the periodic lattice and cropped by ``crop`` LR pixels per
  side, so the image is a window
  with real borders (the texture goes on outside it). Then a black level and gain, photon shot
  noise (Poisson, ``photons`` expected counts at full scale) and quantisation to ``bits``-bit
  grey levels.
- :func:`spleem_image`: three component images (Sx, Sy, Sz), the same optics (a narrower PSF by
  default), additive Gaussian noise; float32, as SPLEEM component maps are usually exported.

The fit is told none of the optics: ``fit-image`` estimates them (its defaults).
- :func:`standin`: anneals the truth (Type I labyrinth for Kerr, Type II domains for SPLEEM),
  writes truth and image, reusing files made with the same parameters.
- :func:`run_experiment`: stand-in → :func:`spinsr_tf.inference.fit_image.fit_image` → scores against the
  truth and a figure (what ``notebooks/fig7_microscope_images.ipynb`` shows).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from spinsr_tf.data.degradation import Degradation
from spinsr_tf.base.checks import check_int, check_real
from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import atomic_path, save_npy_atomic, write_json_atomic
from spinsr_tf.data.noise import NoiseModel

KINDS = ("kerr", "spleem")
#: The instruments the stand-ins imitate (none of it is told to the fit): PSF width in HR
#: pixels at the preset's factor, camera pixels, LR pixels cropped per side from the periodic
#: lattice (real borders), black level of the Kerr camera. The PSF and the pixels are a
#: :class:`Degradation` (:func:`instrument_optics`); the crop and the camera are not.
INSTRUMENTS = {
    "kerr": {"psf_sigma": 3.0, "pixel": "integrate", "crop": 2, "black_level": 0.1},
    "spleem": {"psf_sigma": 1.5, "pixel": "integrate", "crop": 2},
}
#: The optics ``instrument`` may replace (``bits`` too for Kerr: 8- or 16-bit).
INSTRUMENT_KEYS = {"kerr": ("psf_sigma", "pixel", "crop", "black_level", "bits"),
                   "spleem": ("psf_sigma", "pixel", "crop")}
#: Stand-in sizes and fit settings of the notebook's presets (truth side, factor, LR patch,
#: stride, epochs — None: fit-image's default, 40 or about 720 steps — batch, XLA).
PRESETS = {
    "smoke": {"size": 128, "factor": 4, "patch": 8, "stride": 4, "epochs": 2,
              "batch_size": 16, "jit_compile": False},
    "medium": {"size": 1024, "factor": 8, "patch": 16, "stride": 4, "epochs": None,
               "batch_size": 16, "jit_compile": True},
}


def _maps(spins, name="spins") -> np.ndarray:
    """``spins`` as float64 ``(H, W, C)``; ``(H, W)`` becomes C = 1."""
    x = np.asarray(spins, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[-1] not in (1, 3) or min(x.shape) < 1:
        raise UserError(f"{name} must have shape (H, W, 3), (H, W, 1) or (H, W), got "
                        f"{np.shape(spins)}")
    if not np.all(np.isfinite(x)):
        raise UserError(f"{name} contains NaN or infinite values")
    return x


#: The optics :func:`kerr_image` and :func:`spleem_image` default to: ×8, a PSF of σ = 1 HR
#: pixel in 23 taps, point samples, mirrored borders.
DEFAULT_OPTICS = Degradation(8, 1.0, 23, "sample", "reflect")


def instrument_optics(instrument: dict, factor: int, padding: str = "periodic") -> Degradation:
    """The imaging model of an instrument record (an entry of :data:`INSTRUMENTS`): its PSF
    (``psf_sigma`` HR pixels, in a window that keeps ±4 σ, at least 23 taps) and its
    ``pixel`` model at ``factor``, over the periodic lattice the stand-in is cut from (or
    ``padding``). The record's other entries (crop, camera) are not optics."""
    return Degradation(factor, instrument["psf_sigma"], None, instrument["pixel"], padding)


def _optics(x: np.ndarray, optics: Degradation, crop: int = 0) -> np.ndarray:
    """PSF + pixels of one ``(H, W, C)`` map → ``(H/f − 2·crop, W/f − 2·crop, C)`` float64.

    ``optics`` is the microscope's own imaging model (not the network's: the fit is told
    none of it)."""
    if not isinstance(optics, Degradation):
        raise UserError(f"optics must be a Degradation (the microscope's PSF, pixel model and "
                        f"borders), got {optics!r}")
    crop = check_int("crop", crop, 0)
    if 2 * crop * optics.factor >= min(x.shape[:2]):
        raise UserError(f"crop {crop} leaves nothing of a {x.shape[0]}x{x.shape[1]} map at "
                        f"factor {optics.factor}")
    lr = optics.apply(x[None])[0].astype(np.float64)
    return lr[crop:lr.shape[0] - crop, crop:lr.shape[1] - crop]


def kerr_image(spins, optics: Degradation = DEFAULT_OPTICS, photons: float | None = 1000.0,
               contrast: float = 0.8, bits: int = 8, seed: int = 0, crop: int = 0,
               black_level: float = 0.0):
    """A polar-Kerr camera image of ``Sz``: optics, shot noise, quantisation.

    Model: ``u = b + (1 − b) · (1 + contrast · s) / 2`` is the fraction of the camera's full
    scale reached by a pixel whose blurred, down-sized ``Sz`` is ``s`` (``b`` the black level); the camera counts ``Poisson(photons · u)``
    photo-electrons and stores ``DN = round(counts · (2^bits − 1) / photons)``, clipped to
    ``0 .. 2^bits − 1``. Hence ``E[DN] = (2^bits − 1) · u`` and ``Var[DN] = (2^bits − 1)² u /
    photons + 1/12`` (shot noise plus rounding). The inverse, ``s ≈ (2 DN / (2^bits − 1) − 1) /
    contrast``, is returned as the mapping.

    Parameters
    ----------
    spins : array_like, shape (H, W, 3) or (H, W)
        HR spin map (its ``Sz``) or the ``Sz`` map itself; H, W divisible by the factor.
    optics : Degradation
        The microscope's imaging model: ``factor`` = camera pixel in HR sites, ``sigma`` = the
        width of its point spread function (HR pixels), its window, ``pixel`` model (point
        samples, or camera pixels averaging their block) and ``padding`` (mirror; periodic for
        a lattice of which ``crop`` then cuts a window with real borders).
    photons : float or None
        Expected photo-electrons at full scale (the photon budget per pixel); None: no shot
        noise.
    contrast : float in (0, 1]
        Kerr contrast: ``Sz = ±1`` domains reach ``(1 ± contrast) / 2`` of full scale.
    bits : {8, 16}
        Bit depth: uint8 or uint16 output.
    seed : int
        Seeds the shot noise.
    crop : int
        LR pixels cut from every side after the optics.
    black_level : float in [0, 1)
        Fraction of full scale reached with no light (offset of the grey levels).

    Returns
    -------
    image : ndarray, shape (H/f − 2·crop, W/f − 2·crop), uint8 or uint16
    mapping : dict
        ``sz_per_dn`` and ``sz_offset`` (``Sz ≈ sz_per_dn · DN + sz_offset``), ``full_scale``,
        every parameter above and ``degradation``, the optics' record
        (:meth:`Degradation.to_dict`).
    """
    x = _maps(spins)
    sz = x[..., 2:3] if x.shape[-1] == 3 else x
    if photons is not None:
        check_real("photons", photons, 0, strict=True)
    contrast = check_real("contrast", contrast, 0, strict=True, maximum=1)
    if bits not in (8, 16):
        raise UserError(f"bits must be 8 or 16, got {bits!r}")
    rng = np.random.default_rng(check_int("seed", seed, 0))
    black = check_real("black_level", black_level, 0.0, below=1)
    s = _optics(sz, optics, crop)[..., 0]
    u = black + (1.0 - black) * 0.5 * (1.0 + contrast * np.clip(s, -1.0, 1.0))
    full = 2 ** bits - 1
    level = u * full if photons is None else rng.poisson(photons * u) * (full / photons)
    image = np.clip(np.rint(level), 0, full).astype(np.uint8 if bits == 8 else np.uint16)
    gain = (1.0 - black) * full
    mapping = {"sz_per_dn": 2.0 / (contrast * gain),
               "sz_offset": -(2.0 * black / (1.0 - black) + 1.0) / contrast,
               "full_scale": full, "contrast": contrast, "photons": photons, "bits": bits,
               "seed": int(seed), "crop": int(crop), "black_level": black,
               "degradation": optics.to_dict()}
    return image, mapping


def spleem_image(spins, optics: Degradation = DEFAULT_OPTICS, noise: float = 0.1,
                 seed: int = 0, crop: int = 0) -> np.ndarray:
    """SPLEEM-like component images: optics, then additive Gaussian noise on each component.

    Parameters
    ----------
    spins : array_like, shape (H, W, 3)
        HR unit spins; H, W divisible by the factor.
    optics, crop
        As in :func:`kerr_image`.
    noise : float >= 0
        Standard deviation of the noise added to each component (spin units).
    seed : int
        Seeds the noise.

    Returns
    -------
    ndarray, shape (H/f − 2·crop, W/f − 2·crop, 3), float32: ``D(spins) + noise · N(0, 1)``,
    not normalised.
    """
    x = _maps(spins)
    if x.shape[-1] != 3:
        raise UserError(f"spins must have 3 components for a SPLEEM image, got {x.shape[-1]}")
    noise = check_real("noise", noise, 0)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    lr = _optics(x, optics, crop)
    return NoiseModel("gaussian", noise).sample(lr, rng).astype(np.float32)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _anneal_truth(kind: str, size: int, seed: int) -> np.ndarray:
    from spinsr_tf.physics import TypeI, TypeII, anneal

    return anneal(TypeI() if kind == "kerr" else TypeII(), size, seed, [0])[0]


def standin(kind: str = "kerr", size: int = 1024, factor: int = 8, seed: int = 0,
            out_dir=".", psf_sigma: float | None = None, photons: float | None = 1000.0,
            contrast: float = 0.8, noise: float = 0.1, progress: bool = True,
            instrument: dict | None = None) -> dict:
    """Make (or reuse) a stand-in microscope image with its ground truth.

    ``kind="kerr"``: a Type I (labyrinth) lattice, imaged by :func:`kerr_image` (8-bit PNG).
    ``kind="spleem"``: a Type II (domains) lattice, imaged by :func:`spleem_image` (float32
    ``.npy``, three components). The lattice is annealed with periodic boundaries (sample 0 of
    ``seed``); the optics are :data:`INSTRUMENTS` (``instrument`` replaces entries;
    ``psf_sigma`` given replaces the PSF width, HR pixels): PSF and camera pixels
    (:func:`instrument_optics`), and a crop of ``crop`` LR
    pixels per side, so the image is a window of the lattice with real borders. The truth file
    holds the whole lattice; :func:`truth_window` cuts the part the image shows.

    Files in ``out_dir`` (written atomically; a file made with the same parameters, recorded in
    ``{kind}.json``, is reused, so the truth is annealed once):

    - ``{kind}_truth_L{size}_s{seed}.npy``: truth ``(size, size, 3)`` float32;
    - ``kerr.png`` (uint8; uint16 with ``bits`` 16) or ``spleem.npy`` (float32
      ``(size/f, size/f, 3)``): the image;
    - ``{kind}.json``: every parameter and, for Kerr, the DN → Sz mapping.

    Returns
    -------
    dict: ``kind``, ``truth`` and ``image`` (paths), ``meta`` (the JSON content),
    ``annealed`` (whether the truth was computed now), ``seconds``.
    """
    if kind not in KINDS:
        raise UserError(f"kind must be one of {KINDS}, got {kind!r}")
    check_int("size", size, 4)
    check_int("factor", factor, 1)
    if size % factor:
        raise UserError(f"size {size} must be divisible by factor {factor}")
    unknown = set(instrument or {}) - set(INSTRUMENT_KEYS[kind])
    if unknown:
        raise UserError(f"unknown optics {sorted(unknown)} for {kind!r}; known: "
                        f"{sorted(INSTRUMENT_KEYS[kind])}")
    seed = check_int("seed", seed, 0)
    out = Path(out_dir)
    if not out.is_dir():
        raise UserError(f"out_dir {str(out)!r} does not exist")
    start = time.perf_counter()
    truth_path = out / f"{kind}_truth_L{size}_s{seed}.npy"
    annealed = False
    if truth_path.exists():
        truth = np.load(truth_path)
    else:
        if progress:
            print(f"standin: annealing a {size}x{size} "
                  f"{'Type I' if kind == 'kerr' else 'Type II'} lattice (seed {seed})")
        truth = _anneal_truth(kind, size, seed)
        save_npy_atomic(truth_path, truth)
        annealed = True
    optics = {**INSTRUMENTS[kind], **(instrument or {})}
    if psf_sigma is not None:
        optics["psf_sigma"] = check_real("psf_sigma", psf_sigma, 0, strict=True)
    imaging = instrument_optics(optics, factor)
    camera = {k: v for k, v in optics.items() if k not in ("psf_sigma", "pixel")}
    params = {"kind": kind, "size": int(size), "factor": int(factor), "seed": seed,
              "optics": optics, "truth": truth_path.name}
    if kind == "kerr":
        params.update(photons=photons, contrast=float(contrast))
        image_path = out / "kerr.png"
    else:
        params.update(noise=float(noise))
        image_path = out / "spleem.npy"
    meta_path = out / f"{kind}.json"
    stored = _read_json(meta_path)
    if not (image_path.exists() and stored and stored.get("params") == params):
        if kind == "kerr":
            image, mapping = kerr_image(truth, imaging, photons=photons, contrast=contrast,
                                        seed=seed, **camera)
            _write_png(image_path, image)
        else:
            image = spleem_image(truth, imaging, noise=noise, seed=seed, **camera)
            mapping = None
            save_npy_atomic(image_path, image)
        stored = {"params": params, "mapping": mapping, "image": image_path.name,
                  "image_shape": list(image.shape)}
        write_json_atomic(meta_path, stored)
    return {"kind": kind, "truth": truth_path, "image": image_path, "meta": stored,
            "annealed": annealed, "seconds": time.perf_counter() - start}


def truth_window(truth: np.ndarray, meta: dict) -> np.ndarray:
    """The part of the annealed lattice a stand-in image shows (its crop removed)."""
    params = meta["params"]
    c = int(params.get("optics", {}).get("crop", 0)) * int(params["factor"])
    return truth[c:truth.shape[0] - c, c:truth.shape[1] - c] if c else truth


def _write_png(path: Path, image: np.ndarray) -> None:
    """Store the camera's DN values as they are (no intensity mapping), atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def microscope_figure(kind: str, values: dict, truth: np.ndarray, scores: dict, optics: dict,
                      estimated: dict, factor: int, path, side: int = 256) -> Path:
    """Fig. 7 panel: LR (input) | SR (network) | the better bicubic | truth, top-left ``side``
    HR pixels, with the error ``|map − truth|`` on one log scale, a zoom on the strongest walls,
    the scores of :func:`~spinsr_tf.evaluation.scoring.compare_with_truth` (``scores``, whole
    image) in the titles and the true and estimated optics in the caption.

    ``values``: ``{"lr", "sr", "bicubic"}`` → the fit's maps; ``truth``: on the SR grid, with
    the SR map's channels. A one-channel (Kerr) map is shown after the affine grey-level fit
    its scores were computed with, so that the error row shows what the scores measure."""
    from spinsr_tf.data.interpolation import unit_normalize
    from spinsr_tf.data.render import comparison_panel

    side = min(side, truth.shape[0], truth.shape[1])
    maps = {"sr": values["sr"], "bicubic": values["bicubic"],
            "bicubic_norm": unit_normalize(values["bicubic"])}
    base = max(("bicubic", "bicubic_norm"), key=lambda n: scores[n]["psnr"])
    scalar = values["sr"].shape[-1] == 1

    def mapped(name):
        a, b = scores[name].get("affine", (1.0, 0.0)) if scalar else (1.0, 0.0)
        return (a * maps[name][:side, :side] + b).astype(np.float32)

    def line(name):
        text = f"PSNR {scores[name]['psnr']:.1f} dB\nCorr {scores[name]['corr']:.4f}"
        return text + (f", r {scores[name]['pearson']:.3f}" if "pearson" in scores[name] else "")

    lr_side = max(1, side // factor)
    columns = {"LR (input)": values["lr"][:lr_side, :lr_side], "SR (network)": mapped("sr"),
               base: mapped(base), "truth": truth[:side, :side]}
    score_lines = {"SR (network)": line("sr"), base: line(base)}
    true = [f"PSF σ {optics['psf_sigma']:g} HR px" if "psf_sigma" in optics else None,
            f"{optics['pixel']} pixels" if "pixel" in optics else None,
            f"{optics['crop']} LR px cropped per side" if "crop" in optics else None,
            f"black level {optics['black_level']:g}" if "black_level" in optics else None,
            f"{optics['bits']}-bit" if "bits" in optics else None]
    guessed = (estimated.get("how", {}).get("sigma", {}).get("confident") is False)
    est = [f"PSF σ {estimated['sigma']:.3g} HR px" + (" (assumed, not estimated)" if guessed
                                                    else "") if "sigma" in estimated else None,
           f"{estimated['pixel']} pixels" if "pixel" in estimated else None,
           f"{estimated['noise_kind']} noise" if "noise_kind" in estimated else None]
    caption = (f"Stand-in {kind} image, x{factor}. True optics: "
               f"{', '.join(t for t in true if t)}; the fit used: {', '.join(e for e in est if e)}."
               f" Scores over the whole {truth.shape[0]}x{truth.shape[1]} HR image (PSNR with "
               "MAX = 2)" + ("; grey levels mapped to the truth's Sz by their least-squares "
                             "affine fit, r: Pearson's r" if scalar else "")
               + f". {base}: the better of bicubic and bicubic_norm by PSNR.")
    where = (f"the whole {side}x{side}" if side == truth.shape[0] == truth.shape[1]
             else f"top-left {side}x{side} of {truth.shape[0]}x{truth.shape[1]}")
    return comparison_panel(
        columns, path, truth=truth[:side, :side], scores=score_lines, caption=caption,
        zoom=max(8, side // 4), value_label="Sz" if scalar else None,
        title=f"{kind}: x{factor}, {where} HR sites")


def run_experiment(kind: str, out_dir, preset: str = "smoke", seed: int = 0,
                   progress: bool = True, instrument: dict | None = None,
                   **overrides) -> dict:
    """Fig. 7 on a stand-in: make the image, fit the network on its patches, score against truth.

    Parameters
    ----------
    kind : {"kerr", "spleem"}
    out_dir : str or PathLike
        Created if missing. Holds the stand-in files and the fit run ``{kind}_fit/``;
        everything finished is reused when called again (the fit resumes).
    preset : {"smoke", "medium"}
        Sizes and training length, :data:`PRESETS`; ``overrides`` replace single entries.
    seed : int
        Seeds the lattice, the noise and the training.
    progress : bool
    instrument : dict or None
        Replaces entries of the stand-in's optics (:data:`INSTRUMENTS`, e.g. ``{"psf_sigma":
        5}``); the fit is not told them. Another instrument needs another ``out_dir`` (a fit
        does not resume on another image).

    The fit is ``fit-image`` with its defaults: optics estimated from the image, the noise-aware
    data term, the equivariance term. Scalar (Kerr) results are scored after an affine fit of
    their grey levels to the truth's Sz (:func:`~spinsr_tf.evaluation.scoring.compare_with_truth`).

    Returns
    -------
    dict: ``kind``, ``preset`` (settings used), ``optics`` (the stand-in's true optics),
    ``scores`` (``{"sr", "bicubic",
    "bicubic_norm"}`` → ``{"mse", "psnr", "corr"}`` against the truth on the HR grid, Sz only
    for Kerr, after an affine grey-level fit, with ``pearson``), ``degradation`` (what the fit
    estimated), ``uncertainty_calibration`` (Spearman rank correlation between the uncertainty
    map and the actual per-pixel error of the map as returned: for Kerr, in the Sz units the
    image's own percentile mapping gives), ``uncertainty_calibration_affine`` (Kerr: the same
    against the error after the scores' affine fit to the truth, a map no user sees; None for
    SPLEEM), ``lr_mse`` (re-degraded result vs the LR image),
    ``files``, ``seconds``
    (stand-in and fit, wall time). The same dict is written to ``{kind}_scores.json`` and the
    figure LR | SR | the better bicubic | truth with the error row (:func:`microscope_figure`,
    top-left crop of at most 256 HR pixels) to ``{kind}_figure.png``.
    """
    from spinsr_tf.evaluation.scoring import compare_with_truth
    from spinsr_tf.inference.fit_image import fit_image

    if preset not in PRESETS:
        raise UserError(f"preset must be one of {tuple(PRESETS)}, got {preset!r}")
    unknown = set(overrides) - set(PRESETS[preset])
    if unknown:
        raise UserError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(PRESETS[preset])}")
    cfg = {**PRESETS[preset], **overrides}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    made = standin(kind, cfg["size"], cfg["factor"], seed, out, progress=progress,
                   instrument=instrument)
    run_dir = out / f"{kind}_fit"
    fit = fit_image(made["image"], scale=cfg["factor"], patch=cfg["patch"], out_dir=run_dir,
                    stride=cfg["stride"], epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                    seed=seed, resume=run_dir.exists(), progress=progress,
                    jit_compile=cfg["jit_compile"],
                    # the 1st-99th percentile mapping its tables were measured with (a scalar
                    # map is scored as Sz in network units; fit-image's default is min..max)
                    percentile=1.0)
    truth = truth_window(np.load(made["truth"]), made["meta"])
    scores = compare_with_truth(run_dir, truth)
    values = {name: np.load(run_dir / f"{name}_values.npy") for name in ("lr", "sr", "bicubic")}
    hr = min(256, truth.shape[0])
    sr = values["sr"]
    shown = truth[..., 2:3] if sr.shape[-1] == 1 else truth
    figure = microscope_figure(kind, values, shown, scores, made["meta"]["params"]["optics"],
                               fit["degradation"], cfg["factor"], out / f"{kind}_figure.png",
                               side=hr)
    calibration = calibration_affine = None
    if fit.get("uncertainty") is not None:
        from spinsr_tf.evaluation.calibration import calibration as rank_correlation
        from spinsr_tf.evaluation.calibration import pixel_error

        uncertainty = np.load(fit["uncertainty"])
        # the error of the map as returned; a scalar map's values are Sz by the image's own
        # percentile mapping (fit-image's mapping.json), the truth's affine fit is not used
        calibration = rank_correlation(uncertainty, pixel_error(sr[None], shown[None])[0])
        if "affine" in scores["sr"]:
            a, b = scores["sr"]["affine"]
            calibration_affine = rank_correlation(
                uncertainty, pixel_error((a * sr + b)[None], shown[None])[0])
    result = {"kind": kind, "preset": {"name": preset, **cfg},
              "optics": made["meta"]["params"]["optics"], "scores": scores,
              "uncertainty_calibration": calibration,
              "uncertainty_calibration_affine": calibration_affine,
              "degradation": fit["degradation"],
              "lr_mse": fit["lr_mse"], "n_patches": fit["n_patches"],
              "files": {"image": str(made["image"]), "truth": str(made["truth"]),
                        "run_dir": str(run_dir), "figure": str(figure),
                        "uncertainty": None if fit.get("uncertainty") is None
                        else str(run_dir / "uncertainty.png")},
              "seconds": time.perf_counter() - start}
    write_json_atomic(out / f"{kind}_scores.json", result)
    return result


def scores_table(results) -> str:
    """A Markdown table of :func:`run_experiment` results: one row per stand-in and method.

    Columns: PSNR (dB), Corr and MSE against the truth (network units; Kerr scores Sz only, so
    its Corr is bounded by the mean Sz² of the truth, not by 1), and the LR misfit (re-degraded
    result vs the LR image) where the method has one. Below it, one line per stand-in with the
    uncertainty's Spearman against the error of the map as returned (Kerr: and, in brackets,
    after the affine fit to the truth).
    """
    lines = ["| image | method | PSNR (dB) | Corr | Pearson r | MSE | LR misfit |",
             "|---|---|---|---|---|---|---|"]
    for res in results:
        for name, s in res["scores"].items():
            misfit = res["lr_mse"].get(name)
            shown = "–" if misfit is None else f"{misfit:.2e}"
            r = f"{s['pearson']:.4f}" if "pearson" in s else "–"
            lines.append(f"| {res['kind']} | {name} | {s['psnr']:.2f} | {s['corr']:.4f} | {r} | "
                         f"{s['mse']:.4f} | {shown} |")
    for res in results:
        cal = res.get("uncertainty_calibration")
        if cal is not None:
            fitted = res.get("uncertainty_calibration_affine")
            also = "" if fitted is None else f" (after the affine fit to the truth: {fitted:.2f})"
            lines.append(f"\n{res['kind']}: uncertainty vs actual error, Spearman {cal:.2f}"
                         f"{also}")
    return "\n".join(lines) + "\n"
