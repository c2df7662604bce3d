"""What the microscope did to the image, estimated from the image alone: noise and blur.

A real image comes without its optics. ``fit-image`` needs three numbers to build the network's
fixed degradation and its noise-aware data term: the noise level, the width σ of the Gaussian
point-spread function (PSF, HR pixels) and the pixel model (point samples or camera pixels;
that one is the user's to say, default ``"integrate"`` for cameras). Each estimate says how it
was obtained and whether it can be trusted (:class:`Estimate`); an untrusted estimate is
reported and recorded, never silently used.

Noise. Two estimators on the LR image in network units (``y``):

- Gaussian (same variance everywhere, e.g. SPLEEM components): the patch-PCA estimator of Chen,
  Zhu & Heng (ICCV 2015). The covariance of all ``p × p`` patches has the texture in its large
  eigenvalues and the noise variance in the small ones; the noise eigenvalues are the tail whose
  mean equals its median. Texture that is sharp on the LR grid (labyrinths at ×8) leaks into the
  tail, so the estimate is an upper bound there, and flagged: it holds much of the variance.
- Poisson–Gaussian (shot noise, e.g. a Kerr camera): the variance is affine in the signal,
  ``v(y) = a + b·y``. The residual of a 3×3 second difference (scaled to unit noise gain) is
  binned by the local mean; a robust variance (MAD) per bin, then a weighted straight-line fit.
- The power-spectrum floor (:func:`spectral_noise_std`): white noise has the same power at every
  frequency, a texture behind a PSF and camera pixels little at the highest, even where it is
  as sharp as the LR pixel and the two estimators above see it as noise.

All three can only be inflated by texture; :func:`choose_optics` takes the lower level of the
kind's estimator and the floor, and the floor alone when the other is not trusted.

PSF width. :func:`estimate_psf_sigma` uses the unit length of spins: blur shortens the LR
vectors where the texture turns, by an amount that grows with σ, while domain interiors keep
their length. It re-degrades an interpolated unit-vector map with each candidate σ and keeps
the σ whose spread of vector lengths (a ratio free of the image's unit, noise removed) matches
the image's; only for three-component images.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from spinsr_tf.base.checks import check_choice, check_int
from spinsr_tf.base.errors import UserError
from spinsr_tf.data.degradation import PIXEL_MODELS, gaussian_downsample, kernel_size_for
from spinsr_tf.data.interpolation import upsample

NOISE_KINDS = ("gaussian", "poisson")
#: ``noise=`` of :func:`choose_optics` (besides a number).
NOISE_CHOICES = ("auto", "none", "gaussian", "poisson")
#: The PSF width used when it is neither given nor reliably estimated (the paper's).
DEFAULT_SIGMA = 1.0
#: Narrowest PSF (in camera pixels) the vector-length estimate resolves: measured within 15 %
#: down to σ = 1.5 HR pixels at ×4 and 3 at ×8, not below.
RESOLVABLE = 0.37

#: 3×3 second difference; its coefficients' squares sum to 36, so ``/ 6`` keeps unit noise gain.
_SECOND_DIFFERENCE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64) / 6.0


@dataclasses.dataclass(frozen=True)
class Estimate:
    """An estimated quantity with how it was obtained and whether to trust it."""

    value: float
    method: str
    confident: bool = True
    note: str = ""

    def to_json(self) -> dict:
        return {"value": float(self.value), "method": self.method,
                "confident": bool(self.confident), **({"note": self.note} if self.note else {})}


def _image(y, name="image") -> np.ndarray:
    x = np.asarray(y, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or min(x.shape[:2]) < 8:
        raise UserError(f"{name} must be (H, W, C) with H, W >= 8 to estimate its optics, got "
                        f"shape {np.shape(y)}")
    if not np.all(np.isfinite(x)):
        raise UserError(f"{name} contains NaN or infinite values")
    if float(np.ptp(x)) == 0.0:
        raise UserError(f"{name} has no contrast at all: its noise and blur cannot be estimated")
    return x


def _patches(x: np.ndarray, p: int) -> np.ndarray:
    """All ``p × p`` patches of every channel as rows ``(n, p²)``."""
    h, w, c = x.shape
    win = np.lib.stride_tricks.sliding_window_view(x, (p, p), axis=(0, 1))  # (h-p+1, w-p+1, c, p, p)
    return win.reshape(-1, p * p)


def gaussian_noise_std(y, patch: int = 7) -> Estimate:
    """Standard deviation of additive white Gaussian noise by patch PCA (Chen et al. 2015).

    Parameters
    ----------
    y : array_like, (H, W) or (H, W, C)
        The image; channels share one noise level.
    patch : int
        Patch side ``p`` (the covariance is ``p² × p²``).
    """
    x = _image(y)
    check_int("patch", patch, 2)
    rows = _patches(x, patch)
    rows = rows - rows.mean(axis=0)
    eig = np.sort(np.linalg.eigvalsh(rows.T @ rows / len(rows)))[::-1]
    eig = np.maximum(eig, 0.0)
    for i in range(eig.size):
        tail = eig[i:]
        if tail.mean() <= np.median(tail):
            break
    std = math.sqrt(float(tail.mean()))
    # Measured on annealed textures (benchmarks/optics_estimation.py): where the estimate is
    # right the noise holds <= 4 % of the image's variance; where labyrinths are aliased at x8
    # and the "noise" is texture, 20-30 %.
    share = std ** 2 / max(float(x.var(axis=(0, 1)).mean()), 1e-300)
    confident = share <= 0.15
    note = "" if confident else (f"the noise would hold {100 * share:.0f} % of the image's "
                                 "variance: the texture is as sharp as the LR pixel (or there "
                                 "is only noise), so the value is an upper bound")
    return Estimate(std, f"patch PCA ({patch}x{patch}, {tail.size}/{eig.size} eigenvalues)",
                    confident, note)


#: Frequencies (as a fraction of the largest, π√2 per pixel) above which the power spectrum is
#: taken as the noise floor (:func:`spectral_noise_std`), and the ring below it that checks
#: the floor is flat.
FLOOR_FROM = 0.85
FLOOR_CHECK = (0.7, 0.85)
#: The floor is trusted when the ring below it holds at most this many times its power.
FLOOR_FLATNESS = 2.0
#: Sine tapers per axis of the multitaper periodogram (their products: TAPERS² estimates).
TAPERS = 3
#: Largest share of the image's variance the floor may hold: a flat spectrum is all noise or
#: all texture at the pixel scale. Higher than the other estimators' 15 %: a wide PSF leaves
#: little texture variance, and the floor's own check already catches texture at the corners.
FLOOR_SHARE = 0.5


def _sine_tapers(n: int, count: int) -> np.ndarray:
    """The first ``count`` sine tapers of length ``n`` (Riedel & Sidorenko 1995), each of unit
    energy and orthogonal to the others: their periodograms of white noise are nearly
    independent, so their mean has ``count`` times less variance than one."""
    t = np.arange(1, n + 1)
    return np.stack([math.sqrt(2.0 / (n + 1)) * np.sin(math.pi * k * t / (n + 1))
                     for k in range(1, count + 1)])


def spectral_noise_std(y) -> Estimate:
    """Standard deviation of white noise from the floor of the image's power spectrum.

    White noise has the same power at every spatial frequency; a texture seen through a PSF and
    camera pixels has little at the highest ones, even where it is as sharp as the LR pixel
    (labyrinths at ×8), which defeats the patch and second-difference estimators. The image,
    mean removed per channel, is tapered so its borders do not leak (multitaper: the mean
    periodogram of :data:`TAPERS`² products of sine tapers, a quarter of one window's scatter
    on a 60² image); the noise variance is the mean power (channels pooled) over the
    frequencies ``|k| ≥ FLOOR_FROM · π√2`` (the corners of the spectrum). Texture only adds
    power, so it is an upper bound; for signal-dependent (shot) noise it is the variance
    averaged over the image. Trusted when the ring just below (:data:`FLOOR_CHECK`) holds at
    most :data:`FLOOR_FLATNESS` times that power: otherwise the texture still reaches the
    corners. Measured in ``docs/optics.md``.
    """
    x = _image(y)
    h, w, c = x.shape
    x = x - x.mean(axis=(0, 1))
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    k = k / (0.5 * math.sqrt(2.0))               # 1 at the corner (π√2 rad per pixel)
    in_floor = k >= FLOOR_FROM
    in_ring = (k >= FLOOR_CHECK[0]) & (k < FLOOR_CHECK[1])
    if in_floor.sum() < 16 or in_ring.sum() < 16:
        raise UserError(f"image of shape {x.shape[:2]} is too small for a spectral noise "
                        "estimate")
    power = np.zeros((h, w))
    rows, cols = _sine_tapers(h, TAPERS), _sine_tapers(w, TAPERS)
    for a in rows:
        for b in cols:
            tapered = x * np.outer(a, b)[..., None]          # unit energy: no normalisation
            power += np.mean(np.abs(np.fft.fft2(tapered, axes=(0, 1))) ** 2, axis=-1)
    power /= TAPERS * TAPERS
    variance = float(power[in_floor].mean())
    ratio = float(power[in_ring].mean()) / max(variance, 1e-300)
    # as for the other estimators: "noise" holding a large share of the variance is texture
    share = variance / max(float(x.var(axis=(0, 1)).mean()), 1e-300)
    confident = ratio <= FLOOR_FLATNESS and share <= FLOOR_SHARE
    note = ("" if confident else
            f"the noise would hold {100 * share:.0f} % of the image's variance: the spectrum "
            "is flat, the image is all texture at the pixel scale or all noise"
            if share > FLOOR_SHARE
            else f"the spectrum still falls towards its corners ({ratio:.1f}× the corner power "
                 "just inside them): texture reaches the highest frequencies, so the value is "
                 "an upper bound")
    return Estimate(math.sqrt(variance), f"power-spectrum floor ({int(in_floor.sum())} "
                    f"frequencies above {FLOOR_FROM:g} of the highest, {TAPERS ** 2} tapers)",
                    confident, note)


def _second_difference(x: np.ndarray) -> np.ndarray:
    h, w, _ = x.shape
    out = np.zeros((h - 2, w - 2, x.shape[2]))
    for i in range(3):
        for j in range(3):
            out += _SECOND_DIFFERENCE[i, j] * x[i:i + h - 2, j:j + w - 2]
    return out


def _local_mean(x: np.ndarray) -> np.ndarray:
    h, w, _ = x.shape
    return sum(x[i:i + h - 2, j:j + w - 2] for i in range(3) for j in range(3)) / 9.0


def poisson_gaussian_noise(y, bins: int = 16) -> tuple[Estimate, Estimate]:
    """``(a, b)`` of the variance model ``v(y) = a + b·y`` (shot noise on a Gaussian floor).

    Returns two :class:`Estimate`: the noise standard deviation at ``y = 0`` (``√a``) and the
    slope ``b``. The bins hold equal numbers of pixels; per bin the variance of the unit-gain
    second difference is ``(1.4826 · MAD)²``, robust to the minority of pixels on walls. Bins
    that lie mostly on walls (their variance is texture) sit far above the line: they are
    dropped and the line refitted.
    """
    x = _image(y)
    check_int("bins", bins, 2)
    r = _second_difference(x).ravel()
    m = _local_mean(x).ravel()
    edges = np.quantile(m, np.linspace(0, 1, bins + 1))
    centres, variances, counts = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (m >= lo) & (m <= hi)
        if sel.sum() < 32:
            continue
        rr = r[sel]
        mad = np.median(np.abs(rr - np.median(rr)))
        centres.append(np.median(m[sel]))
        variances.append((1.4826 * mad) ** 2)
        counts.append(sel.sum())
    if len(centres) < 2 or np.ptp(centres) == 0:
        raise UserError("the image has too few grey levels to fit a signal-dependent noise model")
    c, v, wts = map(np.asarray, (centres, variances, counts))
    keep = np.ones(c.size, bool)
    for _ in range(4):  # texture only adds variance: drop bins far above the line, refit
        b, a = np.polyfit(c[keep], v[keep], 1, w=np.sqrt(wts[keep]))
        fit = np.maximum(a + b * c, 1e-12)
        new = v <= 1.5 * fit
        if new.sum() < 2 or np.ptp(c[new]) == 0 or np.array_equal(new, keep):
            break
        keep = new
    b = float(b)
    a = float(a)
    # as for Gaussian noise: "noise" holding a large share of the image's variance is texture
    share = max(a + b * float(x.mean()), 0.0) / max(float(x.var(axis=(0, 1)).mean()), 1e-300)
    confident = b >= 0 and share <= 0.15
    note = ("" if confident else "the variance falls with the signal: not shot noise" if b < 0
            else f"the noise would hold {100 * share:.0f} % of the image's variance: the "
                 "texture is as sharp as the LR pixel, so the value is an upper bound")
    b, a = max(b, 0.0), max(a, 0.0)
    method = (f"robust variance of the second difference in {int(keep.sum())} of {len(c)} "
              "intensity bins, line fit")
    return (Estimate(math.sqrt(a), method, confident, note),
            Estimate(b, method, confident, note))


def estimate_noise(y, kind: str = "gaussian") -> dict:
    """Noise of an LR image in network units, as ``{"kind", "std", "slope"}`` of Estimates
    (``slope`` = 0 for Gaussian noise): the variance model of
    :class:`~spinsr_tf.nn.losses.Recorrupted`."""
    check_choice("noise kind", kind, NOISE_KINDS)
    if kind == "gaussian":
        return {"kind": kind, "std": gaussian_noise_std(y),
                "slope": Estimate(0.0, "Gaussian: no signal-dependent part")}
    std, slope = poisson_gaussian_noise(y)
    return {"kind": kind, "std": std, "slope": slope}


def _length_ratio(y, noise_std: float = 0.0) -> float:
    """``E|a|⁴ / (E|a|²)²`` of the noise-free vectors ``a`` of ``y = a + n``: 1 when all have
    one length, more the more they differ; free of the image's unit. With 3-component Gaussian
    noise of std s, ``E|y|² = E|a|² + 3s²`` and ``E|y|⁴ = E|a|⁴ + 10 s² E|a|² + 15 s⁴``."""
    l2 = np.sum(np.asarray(y, np.float64) ** 2, axis=-1)
    v = float(noise_std) ** 2
    m2 = float(l2.mean()) - 3.0 * v
    m4 = float((l2 ** 2).mean()) - 10.0 * v * m2 - 15.0 * v * v
    return m4 / max(m2, 1e-300) ** 2


def estimate_psf_sigma(y, factor: int, pixel: str = "integrate", noise_std: float = 0.0,
                       candidates=None, padding: str = "reflect") -> Estimate:
    """PSF width σ (HR pixels) of a three-component image from the spread of its vector lengths.

    Blur averages spins that point different ways, so it shortens the LR vectors where the
    texture turns, the more the wider σ, while domain interiors keep their length. The image's
    unit is unknown (A/m, counts, a polarisation), so the statistic is the scale-free ratio
    ``E|a|⁴ / (E|a|²)²`` of the lengths (:func:`_length_ratio`, noise removed). For each
    candidate σ, the aligned bicubic interpolation of ``y`` normalised to unit vectors, ``m̃``,
    is degraded again with σ and the pixel model and its ratio computed. ``m̃`` is smoother
    than the truth; that bias is measured at each σ on ``m̃`` itself (degrade it, interpolate
    and normalise again, degrade again) and subtracted. The σ where the ratios meet is
    returned, interpolated between candidates. Measured with the estimated noise
    (``benchmarks/optics_estimation.py``; Type I and Type II textures, σ = 0.75…5, noise
    0.05–0.1): within 15 % at ×4 for σ ≥ 1.5 (σ = 0.75 under-estimated by up to 35 %), within
    13 % at ×8 for σ ≥ 3; a PSF narrower than :data:`RESOLVABLE` camera pixels is hidden by
    the pixel's box and reported as not resolvable (not confident).
    """
    x = _image(y)
    if x.shape[-1] != 3:
        raise UserError("the PSF width can be estimated from the vector lengths of "
                        "three-component images only; give --sigma for scalar images")
    check_int("factor", factor, 1)
    check_choice("pixel", pixel, PIXEL_MODELS)
    candidates = np.asarray(candidates if candidates is not None
                            else np.geomspace(0.25, 8.0, 21), dtype=np.float64)

    def interpolate(lr):
        return upsample(lr.astype(np.float32), factor, padding=padding, pixel=pixel,
                        normalize=True)

    def degrade(hr, s):
        return gaussian_downsample(hr, factor, kernel_size_for(s), float(s), padding,
                                   pixel=pixel)

    observed = _length_ratio(x, noise_std)
    hr = interpolate(x[None])
    ratios = []
    for s in candidates:
        again = degrade(hr, s)
        bias = _length_ratio(degrade(interpolate(again), s)) - _length_ratio(again)
        ratios.append(_length_ratio(again) - bias)
    ratios = np.asarray(ratios)  # grows with sigma
    method = "spread of the vector lengths against the re-degraded interpolation"
    crossing = np.nonzero(np.diff(np.sign(ratios - observed)))[0]
    if not crossing.size:
        low = observed <= ratios[0]
        edge = candidates[0] if low else candidates[-1]
        note = (f"the PSF is too narrow to resolve behind the {factor}-pixel camera pixel "
                f"(below about {candidates[0]:g} HR pixels)" if low else
                f"the vector lengths lie beyond the range of σ up to {candidates[-1]:g} HR pixels")
        return Estimate(float(edge), method, False, note)
    k = int(crossing[0])
    t = (observed - ratios[k]) / (ratios[k + 1] - ratios[k])
    sigma = float(candidates[k] + t * (candidates[k + 1] - candidates[k]))
    if pixel == "integrate" and sigma < RESOLVABLE * factor:
        return Estimate(sigma, method, False,
                        f"a PSF narrower than about {RESOLVABLE * factor:.2g} HR pixels is hidden "
                        f"by the {factor}-pixel camera pixel (too narrow to resolve)")
    return Estimate(sigma, method)


def _given_noise(noise):
    """A number given as ``noise``: a Gaussian standard deviation (image units), else None."""
    if isinstance(noise, bool):
        return None
    if isinstance(noise, (int, float, np.integer, np.floating)):
        value = float(noise)
    else:
        try:
            value = float(str(noise))
        except ValueError:
            return None
    if not math.isfinite(value) or value < 0:
        raise UserError(f"noise must be one of auto, none, gaussian, poisson or a standard "
                        f"deviation >= 0, got {noise!r}")
    return value


def _combine_noise(kind: str, est: dict, floor: Estimate, mean: float):
    """One noise model from the kind's own estimator and the spectral floor.

    Texture can only inflate either (both are upper bounds), so where both are trusted the
    lower level is used: the floor, if below, rescales a Poisson–Gaussian model ``a + b·y``
    (same shape, its RMS over the image brought down to the floor). Where only the floor is
    trusted (the kind's estimator saw texture, e.g. labyrinths aliased at ×8), the data term
    gets Gaussian noise of the floor's level (for shot noise, the image's mean variance).
    Returns ``(kind, std, slope, how, warning or None)``.
    """
    first, b = est["std"], est["slope"].value
    how = {**first.to_json(), "floor": floor.to_json()}
    del how["value"]
    if first.confident:
        a = first.value ** 2
        rms = math.sqrt(max(a + b * mean, 0.0))
        if floor.confident and floor.value < rms:
            scale = (floor.value / rms) ** 2
            how["method"] = f"{first.method}, level lowered to the spectrum floor"
            return kind, math.sqrt(a * scale), b * scale, how, None
        return kind, first.value, b, how, None
    if floor.confident:
        how.update(method=f"{floor.method} (the {kind} estimator was not trusted: "
                          f"{first.note})", confident=True, note="")
        return "gaussian", floor.value, 0.0, how, None
    how["confident"] = False
    return ("none", 0.0, 0.0, how,
            f"noise estimate not used ({first.note}; the spectrum floor: {floor.note}); "
            "plain LR data term")


def choose_optics(lr, factor: int, sigma="auto", pixel: str = "integrate", noise="auto",
                  image_scale: float = 1.0, counts: bool = False,
                  image_min: float | None = None) -> dict:
    """The degradation ``fit-image`` trains with: given values, else estimates, else defaults.

    Parameters
    ----------
    lr : ndarray (H, W, C)
        The LR image in network units.
    factor : int
        SR factor.
    sigma : float or "auto"
        PSF width in HR pixels; "auto" estimates it (three-component images only).
    pixel : {"integrate", "sample"}
        Pixel model (not estimated: a camera integrates, a scanning probe samples).
    noise : "auto", "none", "gaussian", "poisson" or a number
        "auto": Poisson–Gaussian for integer (count) images, Gaussian otherwise; a number is the
        Gaussian standard deviation in image units (``image_scale`` converts it).
    image_scale : float
        Image units per network unit (the value mapping's ``scale``).
    counts : bool
        Whether the image holds integer counts (an 8/16-bit camera image).
    image_min : float, optional
        Smallest image value: Poisson noise needs non-negative counts.

    Returns
    -------
    dict, the content of ``degradation.json``: ``sigma`` (HR pixels), ``kernel_size``,
    ``pixel``, ``noise_kind`` ("gaussian", "poisson" or "none"), ``noise_std`` (network units)
    and ``noise_std_image`` (image units), ``noise_slope``, and ``how`` (per quantity: method,
    confident, note), plus ``warnings``: the one-line notes of estimates not used.
    """
    check_choice("pixel", pixel, PIXEL_MODELS)
    x = np.asarray(lr, dtype=np.float64)
    x = x[..., None] if x.ndim == 2 else x
    warnings, how = [], {}
    given = _given_noise(noise)
    if given is None:
        check_choice("noise", noise, NOISE_CHOICES)
    kind = ("gaussian" if given is not None else
            ("poisson" if counts else "gaussian") if noise == "auto" else noise)
    if kind == "poisson" and image_min is not None and image_min < 0:
        raise UserError("Poisson noise needs non-negative counts, but the image has negative "
                        "values; use --noise gaussian")
    std = slope = 0.0
    if given is not None:
        std = given / float(image_scale)
        how["noise"] = {"method": "given", "confident": True}
    elif kind != "none":
        if x.size and float(np.ptp(x)) == 0.0:
            raise UserError("image has no contrast at all: its noise and blur cannot be "
                            "estimated (give --sigma and --noise none)")
        try:
            est = estimate_noise(x, kind)
        except UserError as exc:  # e.g. too few grey levels for a line fit: said, not fatal
            est = {"std": Estimate(0.0, f"{kind} estimate", False, str(exc)),
                   "slope": Estimate(0.0, f"{kind} estimate", False, str(exc))}
        try:
            floor = spectral_noise_std(x)
        except UserError as exc:
            floor = Estimate(0.0, "power-spectrum floor", False, str(exc))
        kind, std, slope, how["noise"], warning = _combine_noise(kind, est, floor,
                                                                 float(x.mean()))
        if warning:
            warnings.append(warning)
    else:
        how["noise"] = {"method": "none given: plain LR data term", "confident": True}

    if sigma == "auto":
        if x.shape[-1] != 3:
            value = DEFAULT_SIGMA
            how["sigma"] = {"method": "default (scalar images carry no vector length to "
                                      "estimate it from)", "confident": False}
            warnings.append(f"PSF width not estimated for a scalar image; assuming sigma = "
                            f"{DEFAULT_SIGMA:g} HR pixel (give --sigma)")
        else:
            est = estimate_psf_sigma(x, factor, pixel, std)
            trusted = est.confident and how.get("noise", {}).get("confident", True)
            how["sigma"] = est.to_json()
            del how["sigma"]["value"]
            if trusted:
                value = est.value
            else:
                value = DEFAULT_SIGMA
                note = est.note or "the noise estimate it depends on is unsure"
                how["sigma"]["confident"] = False
                warnings.append(f"PSF width estimate {est.value:.2g} not used ({note}); "
                                f"assuming sigma = {DEFAULT_SIGMA:g} HR pixel")
    else:
        value = float(sigma)
        how["sigma"] = {"method": "given", "confident": True}
    kernel_size = kernel_size_for(value)
    return {"sigma": float(value), "kernel_size": int(kernel_size), "pixel": pixel,
            "noise_kind": kind, "noise_std": float(std),
            "noise_std_image": float(std * image_scale), "noise_slope": float(slope),
            "how": how, "warnings": warnings}
