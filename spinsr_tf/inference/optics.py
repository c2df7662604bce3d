"""What the microscope did to the image, estimated from the image alone: blur, and the noise.

A real image comes without its optics. ``fit-image`` needs three things to build the network's
fixed degradation and its noise-aware data term: the noise model, the width σ of the Gaussian
point-spread function (PSF, HR pixels) and the pixel model (point samples or camera pixels;
that one is the user's to say, default ``"integrate"`` for cameras). Each estimate says how it
was obtained and whether it can be trusted (:class:`Estimate`); an untrusted estimate is
reported and recorded, never silently used.

Noise: :meth:`spinsr_tf.data.noise.NoiseModel.estimate` (patch PCA, a Poisson–Gaussian line fit
and the power-spectrum floor; NumPy only, so they live in the data layer and are re-exported
here).

PSF width. :func:`estimate_psf_sigma` uses the unit length of spins: blur shortens the LR
vectors where the texture turns, by an amount that grows with σ, while domain interiors keep
their length. It re-degrades an interpolated unit-vector map with each candidate σ and keeps
the σ whose spread of vector lengths (a ratio free of the image's unit, noise removed) matches
the image's; only for three-component images.

Saturation. :func:`estimate_saturation` finds the unit of a three-component image, its
saturation magnetisation Ms, under the degradation: the median vector length reads it low
wherever the blur averages a turning texture.

Masks (:mod:`spinsr_tf.data.mask`): the estimates take the cells outside the magnet out. Zero
vectors read as fully blurred spins and a hole's edge as noise; so the PSF statistic is taken on
the magnet cells away from the holes, with the holes filled by their nearest magnet cell for the
interpolation, and the noise on the largest rectangle of magnet cells.

The degradation settings come as one :class:`~spinsr_tf.data.degradation.Degradation`: its
factor, pixel model and boundary are the geometry; its σ is the given width, or the one assumed
when the estimate cannot be trusted.
"""

from __future__ import annotations

import numpy as np

from spinsr_tf.base.errors import UserError
from spinsr_tf.data.degradation import Degradation, kernel_size_for
from spinsr_tf.data.interpolation import upsample
from spinsr_tf.data.mask import check_mask, erode, fill_holes, largest_rectangle
# the noise estimators (re-exported: the names this module has always offered)
from spinsr_tf.data.noise import (FLOOR_CHECK, FLOOR_FLATNESS, FLOOR_FROM,  # noqa: F401
                                  FLOOR_SHARE, NOISE_CHOICES, NOISE_KINDS, TAPERS, Estimate,
                                  NoiseModel, estimate_noise, estimation_image,
                                  gaussian_noise_std, poisson_gaussian_noise,
                                  spectral_noise_std)

#: The PSF width used when it is neither given nor reliably estimated (the paper's).
DEFAULT_SIGMA = 1.0
#: Narrowest PSF (in camera pixels) the vector-length estimate resolves: measured within 15 %
#: down to σ = 1.5 HR pixels at ×4 and 3 at ×8, not below.
RESOLVABLE = 0.37


#: Smallest side (LR pixels) the noise is estimated on: below it the patch estimate reads
#: low (Gaussian noise of std 0.05 on a labyrinth blurred at x4: median 0 on 8x8 and on
#: scalar 12x12, 0.035 on 3-component 12x12, 0.040-0.049 on 16x16, 0.051 on 32x32), so a
#: smaller image is fitted without a noise model, said. Above it the estimators still decline
#: trust on too few samples (:data:`~spinsr_tf.data.noise.PATCHES_PER_ENTRY`: a scalar image
#: needs about 20 a side).
NOISE_MIN_SIDE = 16
#: Smallest rectangle of magnet cells (LR pixels a side) the noise is estimated on: the
#: estimators' own smallest side. A mask that leaves none so large estimates on the whole image,
#: its holes filled (:func:`_noise_region`).
NOISE_RECTANGLE = NOISE_MIN_SIDE
#: Magnet cells within this many LR pixels of a hole are left out of the vector-length statistic:
#: a film cut out of a finer grid averages its edge pixels with the empty cells around it.
EDGE_CELLS = 1


def _length_ratio(y, noise_std: float = 0.0, where=None) -> float:
    """``E|a|⁴ / (E|a|²)²`` of the noise-free vectors ``a`` of ``y = a + n``: 1 when all have
    one length, more the more they differ; free of the image's unit. With 3-component Gaussian
    noise of std s, ``E|y|² = E|a|² + 3s²`` and ``E|y|⁴ = E|a|⁴ + 10 s² E|a|² + 15 s⁴``.
    ``where`` (a boolean mask of the pixels) restricts the means to those pixels."""
    l2 = np.sum(np.asarray(y, np.float64) ** 2, axis=-1)
    if where is not None:
        l2 = l2[np.broadcast_to(where, l2.shape)]
    v = float(noise_std) ** 2
    m2 = float(l2.mean()) - 3.0 * v
    m4 = float((l2 ** 2).mean()) - 10.0 * v * m2 - 15.0 * v * v
    return m4 / max(m2, 1e-300) ** 2


def _magnet(y, mask):
    """The image with its holes filled by their nearest magnet cell (the estimators need finite
    texture everywhere), and the mask (None: all of it is magnet)."""
    x = np.asarray(y, dtype=np.float64)
    x = x[..., None] if x.ndim == 2 else x
    if mask is None:
        return x, None
    m = check_mask(mask, x.shape, 1)
    if m.all():
        return x, None
    return fill_holes(np.where(m[..., None], x, 0.0), m), m


def _check_degradation(degradation) -> Degradation:
    if not isinstance(degradation, Degradation):
        raise UserError(f"degradation must be a Degradation (factor, pixel model, boundary), "
                        f"got {degradation!r}")
    return degradation


def estimate_psf_sigma(y, degradation: Degradation, noise_std: float = 0.0, candidates=None,
                       mask=None) -> Estimate:
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

    ``degradation`` gives the factor, the pixel model and the boundary (its σ is not used).
    ``mask`` (``(H, W)`` bool, True on the magnet): zero vectors would read as fully blurred
    spins, so holes are filled by their nearest magnet cell before the interpolation and the
    statistic is taken on the magnet cells at least :data:`EDGE_CELLS` + 1 pixels from a hole
    (all magnet cells if that leaves fewer than 64).
    """
    d = _check_degradation(degradation)
    x, m = _magnet(y, mask)
    x = estimation_image(x)
    if x.shape[-1] != 3:
        raise UserError("the PSF width can be estimated from the vector lengths of "
                        "three-component images only; give --sigma for scalar images")
    where = _inner_cells(m)
    candidates = np.asarray(candidates if candidates is not None
                            else np.geomspace(0.25, 8.0, 21), dtype=np.float64)
    factor = d.factor

    def interpolate(lr):
        return _unit_interpolation(lr, d)

    def degrade(hr, s):  # the window keeps ±4 σ (the object's default, kernel_size_for)
        return d.replace(sigma=float(s), kernel_size=None).apply(hr)

    observed = _length_ratio(x, noise_std, where)
    hr = interpolate(x[None])
    ratios = []
    for s in candidates:
        again = degrade(hr, s)
        bias = _length_ratio(degrade(interpolate(again), s), 0.0, where) - _length_ratio(
            again, 0.0, where)
        ratios.append(_length_ratio(again, 0.0, where) - bias)
    ratios = np.asarray(ratios)  # grows with sigma
    method = "spread of the vector lengths against the re-degraded interpolation"
    if m is not None:
        method += f" (on {int(where.sum())} magnet cells)"
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
    if d.pixel == "integrate" and sigma < RESOLVABLE * factor:
        return Estimate(sigma, method, False,
                        f"a PSF narrower than about {RESOLVABLE * factor:.2g} HR pixels is hidden "
                        f"by the {factor}-pixel camera pixel (too narrow to resolve)")
    return Estimate(sigma, method)


def _unit_interpolation(lr, d: Degradation) -> np.ndarray:
    """The aligned bicubic interpolation of LR maps ``(N, h, w, 3)`` on ``d``'s grid,
    normalised to unit vectors: the texture the estimates re-degrade."""
    return upsample(np.asarray(lr, np.float32), d.factor, padding=d.padding, pixel=d.pixel,
                    normalize=True)


def _inner_cells(m):
    """Where a vector-length statistic is taken: the magnet cells away from the holes
    (:data:`EDGE_CELLS`), all magnet cells if that leaves fewer than 64, None without a mask."""
    if m is None:
        return None
    where = erode(m, EDGE_CELLS)
    return where if where.sum() >= 64 else m


#: :func:`estimate_saturation` trusts its gain only where the image's vector lengths spread
#: at least this share of what the degradation makes of its interpolation (the excess of the
#: length ratio over 1, noise removed): measured 0.74–1.98 on blurred films, 0.00 on unblurred
#: images (point samples, a sinusoidal test pattern), whose gain read 4–41 % high (9–29 % on
#: point samples of the films of ``benchmarks/saturation_estimate.py``).
SPREAD_SHARE = 0.5


def estimate_saturation(y, degradation: Degradation, mask=None,
                        noise_std: float = 0.0) -> Estimate:
    """The saturation magnetisation Ms of a three-component image, in the image's units.

    An image's unit is unknown (A/m, a polarisation, counts), and the network works on unit
    spins. The median LR vector length reads Ms low wherever the blur and the camera pixel
    average a turning texture: 0.78–0.82 Ms on labyrinths of 21.6–32 sites' period behind σ 2
    and 4×4 camera pixels, 0.90 behind σ 1. Divided by it, the image asks for LR vectors no
    unit-vector map degraded can give (a misfit floor), and the result is written that much
    short. Here Ms is the least-squares gain ``g`` of ``y ≈ g·D(m̃)``, ``m̃`` the aligned bicubic
    interpolation normalised to unit vectors and ``D`` the degradation (its σ the given or
    estimated one). ``m̃`` is smoother than the truth, so ``D(m̃)`` is a little too long; that
    bias is the same fit of ``D(m̃)`` against its own interpolation degraded again, divided
    out (as :func:`estimate_psf_sigma` corrects its own). Measured on three 256² labyrinth
    films, two Spirit's and one of this package (``benchmarks/saturation_estimate.py``): within
    0.5 % at ×4 for σ = 1–3 (noise 0.05 or none), 0.5–5 % low at ×8 for σ = 2–4; the median
    read 0.63–0.92 Ms at ×4, 0.41–0.71 at ×8.

    The gain is as right as the degradation: an image less blurred than ``D`` says (a point-
    sampled simulation given camera optics) reads high. So it is trusted only where the
    vector lengths spread (:func:`_length_ratio`, ``noise_std`` in ``y``'s units removed) by at
    least :data:`SPREAD_SHARE` of the spread ``D`` gives ``m̃``; otherwise the estimate is
    returned not confident, and the caller keeps the median.

    ``mask``: as :func:`estimate_psf_sigma` (holes filled for the interpolation, the fit on the
    magnet cells away from them). Not confident (value NaN) where no vector is left to fit.
    """
    d = _check_degradation(degradation)
    x, m = _magnet(y, mask)
    if x.shape[-1] != 3:
        raise UserError("the saturation can be estimated for three-component images only")
    where = _inner_cells(m)
    method = "least-squares gain of the re-degraded unit-vector interpolation, bias removed"
    if m is not None:
        method += f" (on {int(where.sum())} magnet cells)"

    def cells(v):
        return v if where is None else v[where][None]

    def gain(lr):
        again = d.apply(_unit_interpolation(lr[None], d), dtype=np.float64)[0]
        a, b = cells(lr), cells(again)
        den = float(np.square(b).sum())
        return (float((a * b).sum()) / den if den > 0 else np.nan), again

    g, again = gain(x)
    bias, _ = gain(again)
    value = g / bias
    if not (np.isfinite(value) and value > 0):
        return Estimate(float("nan"), method, False, "no vector to fit (every cell is zero)")
    observed = _length_ratio(cells(x), noise_std) - 1.0
    expected = _length_ratio(cells(again)) - 1.0
    if expected > 0 and observed < SPREAD_SHARE * expected:
        return Estimate(float(value), method, False,
                        f"the image's vector lengths spread {max(observed, 0) / expected:.0%} "
                        f"of what this blur would make them: it looks less blurred than assumed")
    return Estimate(float(value), method)


def _noise_region(x: np.ndarray, m) -> tuple[np.ndarray, str | None]:
    """Where the noise is estimated: the whole image without a mask; else the largest rectangle
    of magnet cells if it is at least :data:`NOISE_RECTANGLE` a side (the patch and spectrum
    estimators need a full rectangle: filled holes are smooth, and would read as noise-free),
    else the image with its holes filled (said)."""
    if m is None:
        return x, None
    r0, r1, c0, c1 = largest_rectangle(m)
    if min(r1 - r0, c1 - c0) >= NOISE_RECTANGLE:
        return x[r0:r1, c0:c1], f"on the largest rectangle of magnet cells, {r1 - r0}x{c1 - c0}"
    return x, "on the image with its holes filled (no rectangle of magnet cells is large enough)"


def _noise_model(x, m, noise, counts: bool, image_scale: float, image_min):
    """The noise model of the magnet's largest clean rectangle, and where it lies; on fewer
    than :data:`NOISE_MIN_SIDE` pixels a side none (the estimators read low there)."""
    region, where = _noise_region(x, m)
    if min(region.shape[:2]) < NOISE_MIN_SIDE and noise in ("auto", "gaussian", "poisson"):
        side = "x".join(str(n) for n in region.shape[:2])
        return NoiseModel(how={"method": f"not estimated ({side} LR pixels, fewer than "
                                         f"{NOISE_MIN_SIDE} a side)", "confident": False},
                          warning=f"noise not estimated on {side} LR pixels (it needs "
                                  f"{NOISE_MIN_SIDE} a side); fitting without a noise model "
                                  "(give --noise STD)"), where
    return NoiseModel.estimate(region, noise, counts=counts, image_scale=image_scale,
                               image_min=image_min), where


def choose_optics(lr, degradation: Degradation, noise="auto", *, estimate_sigma: bool = True,
                  image_scale: float = 1.0, counts: bool = False,
                  image_min: float | None = None, mask=None) -> dict:
    """The degradation ``fit-image`` trains with: given values, else estimates, else defaults.

    Parameters
    ----------
    lr : ndarray (H, W, C)
        The LR image in network units.
    degradation : Degradation
        Factor, pixel model (not estimated: a camera integrates, a scanning probe samples) and
        boundary; its σ (HR pixels) is the given PSF width, or with ``estimate_sigma`` the one
        assumed when the estimate is unsure or impossible (scalar images).
    noise : "auto", "none", "gaussian", "poisson" or a number
        "auto": Poisson–Gaussian for integer (count) images, Gaussian otherwise; a number is the
        Gaussian standard deviation in image units (``image_scale`` converts it).
    estimate_sigma : bool
        Estimate σ from the vector lengths (three-component images only).
    image_scale : float
        Image units per network unit (the value mapping's ``scale``).
    counts : bool
        Whether the image holds integer counts (an 8/16-bit camera image).
    image_min : float, optional
        Smallest image value: Poisson noise needs non-negative counts.
    mask : ndarray (H, W) of bool, optional
        True on the magnet (:mod:`spinsr_tf.data.mask`); cells outside are left out of both
        estimates (:func:`estimate_psf_sigma`, :func:`_noise_region`).

    Returns
    -------
    dict, the content of ``degradation.json``: ``sigma`` (HR pixels), ``kernel_size``,
    ``pixel``, ``noise_kind`` ("gaussian", "poisson" or "none"), ``noise_std`` (network units)
    and ``noise_std_image`` (image units), ``noise_slope``, and ``how`` (per quantity: method,
    confident, note), plus ``warnings``: the one-line notes of estimates not used.
    """
    d = _check_degradation(degradation)
    x, m = _magnet(lr, mask)
    model, where = _noise_model(x, m, noise, counts, image_scale, image_min)
    warnings, how = [model.warning] if model.warning else [], {"noise": dict(model.how)}
    if where is not None and noise not in ("none",) and how["noise"].get("method") != "given":
        how["noise"]["region"] = where
    std = model.std
    fallback = d.sigma

    if estimate_sigma:
        if x.shape[-1] != 3:
            value = fallback
            how["sigma"] = {"method": "default (scalar images carry no vector length to "
                                      "estimate it from)", "confident": False}
            warnings.append(f"PSF width not estimated for a scalar image; assuming sigma = "
                            f"{fallback:g} HR pixel (give --sigma)")
        else:
            est = estimate_psf_sigma(x, d, std, mask=m)
            trusted = est.confident and how.get("noise", {}).get("confident", True)
            how["sigma"] = est.to_json()
            del how["sigma"]["value"]
            if trusted:
                value = est.value
            else:
                value = fallback
                note = est.note or "the noise estimate it depends on is unsure"
                how["sigma"]["confident"] = False
                warnings.append(f"PSF width estimate {est.value:.2g} not used ({note}); "
                                f"assuming sigma = {fallback:g} HR pixel")
    else:
        value = fallback
        how["sigma"] = {"method": "given", "confident": True}
    kernel_size = kernel_size_for(value)
    return {"sigma": float(value), "kernel_size": int(kernel_size), "pixel": d.pixel,
            **model.to_dict(), "noise_std_image": float(std * image_scale),
            "how": how, "warnings": warnings}
