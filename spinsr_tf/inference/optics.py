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
"""

from __future__ import annotations

import numpy as np

from spinsr_tf.base.checks import check_choice, check_int
from spinsr_tf.base.errors import UserError
from spinsr_tf.data.degradation import PIXEL_MODELS, Degradation, kernel_size_for
from spinsr_tf.data.interpolation import upsample
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
    x = estimation_image(y)
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

    def degrade(hr, s):  # the window keeps ±4 σ (the object's default, kernel_size_for)
        return Degradation(factor, float(s), pixel=pixel, padding=padding).apply(hr)

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
    model = NoiseModel.estimate(x, noise, counts=counts, image_scale=image_scale,
                                image_min=image_min)
    warnings, how = [model.warning] if model.warning else [], {"noise": model.how}
    std = model.std

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
            **model.to_dict(), "noise_std_image": float(std * image_scale),
            "how": how, "warnings": warnings}
