"""The noise model of an LR image: none, Gaussian or Poisson–Gaussian, as one value.

:class:`NoiseModel` is the one place that knows the noise: its variance ``v(y) = std² +
slope·y`` (clipped at 0; network units, ``y`` the clean LR value), what the recorrupted-pairs
data term needs (:class:`~spinsr_tf.nn.losses.Recorrupted`); a draw from it
(:meth:`NoiseModel.sample`, seeded); its record in a fit's ``degradation.json``
(:meth:`~NoiseModel.to_dict`); and its estimate from the image alone
(:meth:`~NoiseModel.estimate`). Kinds (:data:`KINDS`):

- ``"none"``: the image is taken as noise-free (the paper's assumption; plain LR data term);
- ``"gaussian"``: the same variance ``std²`` everywhere (e.g. SPLEEM components);
- ``"poisson"``: Poisson–Gaussian, shot noise on a Gaussian floor: the variance is affine in
  the signal (a camera whose counts are affine in the network's values). Its draws are the
  Gaussian of that variance (the approximation the data term assumes).

Estimators, on the LR image in network units (``y``); each says how it was obtained and whether
it can be trusted (:class:`Estimate`):

- Gaussian: the patch-PCA estimator of Chen, Zhu & Heng (ICCV 2015). The covariance of all
  ``p × p`` patches has the texture in its large eigenvalues and the noise variance in the small
  ones; the noise eigenvalues are the tail whose mean equals its median. Texture that is sharp
  on the LR grid (labyrinths at ×8) leaks into the tail, so the estimate is an upper bound
  there, and flagged: it holds much of the variance. On a small image too few patches spread the
  noise eigenvalues (Marchenko–Pastur) and the estimate reads low, down to 0: trusted only with
  :data:`PATCHES_PER_ENTRY` patches per entry of the covariance.
- Poisson–Gaussian: the residual of a 3×3 second difference (scaled to unit noise gain) is
  binned by the local mean; a robust variance (MAD) per bin, then a weighted straight-line fit,
  trusted only on :data:`POISSON_MIN_SAMPLES` residuals.
- The power-spectrum floor (:func:`spectral_noise_std`): white noise has the same power at every
  frequency, a texture behind a PSF and camera pixels little at the highest, even where it is
  as sharp as the LR pixel and the two estimators above see it as noise.

All three can only be inflated by texture; :meth:`NoiseModel.estimate` takes the lower level of
the kind's estimator and the floor, and the floor alone when the other is not trusted. They use
NumPy only, so they live in the data layer; the PSF estimate, which needs the degradation, is
:mod:`spinsr_tf.inference.optics`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from spinsr_tf.base.checks import check_choice, check_int, check_real
from spinsr_tf.base.errors import UserError

#: The noise models (:attr:`NoiseModel.kind`).
KINDS = ("none", "gaussian", "poisson")
#: The kinds an estimator exists for.
NOISE_KINDS = ("gaussian", "poisson")
#: ``noise=`` of :meth:`NoiseModel.estimate` (besides a number).
NOISE_CHOICES = ("auto", "none", "gaussian", "poisson")
#: The keys of :meth:`NoiseModel.to_dict` (those of ``degradation.json``).
RECORD_KEYS = ("noise_kind", "noise_std", "noise_slope")

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


def estimation_image(y, name="image") -> np.ndarray:
    """``y`` as float64 ``(H, W, C)`` an estimator can use: finite, at least 8×8, not
    constant (:class:`UserError` otherwise)."""
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


#: Patches per entry (``p²``) of the patch covariance that the patch-PCA estimate needs to be
#: trusted. With ``n`` patches, white noise of variance s² gives covariance eigenvalues spread
#: over ``s² (1 ± p/√n)²`` (Marchenko–Pastur), skewed, and the tail rule then stops early.
#: Measured on pure noise (20 seeds): n/p² = 0.7 reads 0; 1.3: median −59 %; 2 (a scalar
#: 16×16): −36 %, 15 % of seeds off by more than half; 3: −22 %; 4: −17 % (5th percentile
#: −32 %); 14: −4 %; 68 (a scalar 64×64): −1 %. Four keeps every seed within half.
PATCHES_PER_ENTRY = 4


def gaussian_noise_std(y, patch: int = 7) -> Estimate:
    """Standard deviation of additive white Gaussian noise by patch PCA (Chen et al. 2015).

    Parameters
    ----------
    y : array_like, (H, W) or (H, W, C)
        The image; channels share one noise level.
    patch : int
        Patch side ``p`` (the covariance is ``p² × p²``).
    """
    x = estimation_image(y)
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
    needed = PATCHES_PER_ENTRY * patch * patch
    confident = share <= 0.15 and len(rows) >= needed
    note = ("" if confident else
            f"only {len(rows)} patches for a {patch * patch}-entry patch covariance (it needs "
            f"{needed}): the image is too small, the value reads low" if len(rows) < needed
            else f"the noise would hold {100 * share:.0f} % of the image's variance: the "
                 "texture is as sharp as the LR pixel (or there is only noise), so the value "
                 "is an upper bound")
    return Estimate(std, f"patch PCA ({patch}x{patch}, {tail.size}/{eig.size} eigenvalues, "
                    f"{len(rows)} patches)", confident, note)


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
    x = estimation_image(y)
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


#: Second-difference residuals (in the bins the line is fitted to) that the Poisson–Gaussian
#: fit needs to be trusted. Measured on smooth count images (two textures, 40 seeds each, shot
#: noise on a floor): 500–1,150 residuals (32×32 to 36×36 images) put 9 of 160 estimates of the
#: RMS level off by more than half; 1,100–2,100 (40×40 to 48×48) 1 of 240; 3,800 (64×64) none.
POISSON_MIN_SAMPLES = 1200
#: Residuals per intensity bin: fewer leave the bin's robust variance to chance.
BIN_MIN_SAMPLES = 32


def poisson_gaussian_noise(y, bins: int = 16) -> tuple[Estimate, Estimate]:
    """``(a, b)`` of the variance model ``v(y) = a + b·y`` (shot noise on a Gaussian floor).

    Returns two :class:`Estimate`: the noise standard deviation at ``y = 0`` (``√a``) and the
    slope ``b``. The bins hold equal numbers of pixels; per bin the variance of the unit-gain
    second difference is ``(1.4826 · MAD)²``, robust to the minority of pixels on walls. Bins
    that lie mostly on walls (their variance is texture) sit far above the line: they are
    dropped and the line refitted. A small image gets fewer bins (each needs
    :data:`BIN_MIN_SAMPLES` residuals), and is trusted only with :data:`POISSON_MIN_SAMPLES`
    residuals in the bins kept.
    """
    x = estimation_image(y)
    check_int("bins", bins, 2)
    r = _second_difference(x).ravel()
    m = _local_mean(x).ravel()
    if r.size < 2 * BIN_MIN_SAMPLES:
        raise UserError(f"the image has too few pixels ({r.size} second differences) to fit a "
                        "signal-dependent noise model")
    bins = min(bins, r.size // BIN_MIN_SAMPLES)
    edges = np.quantile(m, np.linspace(0, 1, bins + 1))
    centres, variances, counts = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (m >= lo) & (m <= hi)
        if sel.sum() < BIN_MIN_SAMPLES:
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
    used = int(wts[keep].sum())
    confident = b >= 0 and share <= 0.15 and used >= POISSON_MIN_SAMPLES
    note = ("" if confident else "the variance falls with the signal: not shot noise" if b < 0
            else f"the noise would hold {100 * share:.0f} % of the image's variance: the "
                 "texture is as sharp as the LR pixel, so the value is an upper bound"
            if share > 0.15
            else f"only {used} second differences in the bins fitted (it needs "
                 f"{POISSON_MIN_SAMPLES}): the image is too small for the line fit")
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

    Texture can only inflate either (both are upper bounds), so where the kind's estimate is
    trusted the lower level is used: the floor, if below, rescales a Poisson–Gaussian model
    ``a + b·y`` (same shape, its RMS over the image brought down to the floor). The floor
    caps it even where the floor itself is not trusted (its spectrum still falling: texture
    adds power there, never removes it): a clean labyrinth of all orientations with a period
    of 4–5 LR pixels fills the patch covariance's tail, and the patch estimate alone read 0.031
    Ms on a clean open film (D/J 0.4, σ 2, ×4 camera pixels) whose floor reads 0.0025, and
    0.032 with noise of 0.01 (floor 0.0104). Where only the floor is trusted (the kind's
    estimator saw texture, e.g. labyrinths aliased at ×8), the data term gets Gaussian noise
    of the floor's level (for shot noise, the image's mean variance).
    Returns ``(kind, std, slope, how, warning or None)``.
    """
    first, b = est["std"], est["slope"].value
    how = {**first.to_json(), "floor": floor.to_json()}
    del how["value"]
    if first.confident:
        a = first.value ** 2
        rms = math.sqrt(max(a + b * mean, 0.0))
        if floor.value > 0 and floor.value < rms:
            scale = (floor.value / rms) ** 2
            how["method"] = f"power-spectrum floor, below the {first.method}"
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


@dataclasses.dataclass(frozen=True)
class NoiseModel:
    """The noise of an LR image in network units: ``v(y) = max(std² + slope·y, 0)``.

    Parameters
    ----------
    kind : {"none", "gaussian", "poisson"}
        "none" needs ``std = slope = 0``, "gaussian" ``slope = 0``.
    std : float >= 0
        Standard deviation at ``y = 0`` (the Gaussian floor), network units.
    slope : float >= 0
        Signal-dependent variance per unit of value (shot noise), network units.
    how : dict
        How the values were obtained (method, confident, note; the spectrum floor): recorded,
        not compared.
    warning : str
        The one-line note of an estimate that was not used ("" if none); not compared.
    """

    kind: str = "none"
    std: float = 0.0
    slope: float = 0.0
    how: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)
    warning: str = dataclasses.field(default="", compare=False, repr=False)

    def __post_init__(self):
        check_choice("noise kind", self.kind, KINDS)
        object.__setattr__(self, "std", check_real("noise_std", self.std, 0))
        object.__setattr__(self, "slope", check_real("noise_slope", self.slope, 0))
        if self.kind == "none" and (self.std or self.slope):
            raise UserError(f"noise kind 'none' has no std or slope, got std {self.std!r}, "
                            f"slope {self.slope!r}")
        if self.kind == "gaussian" and self.slope:
            raise UserError(f"Gaussian noise has no signal-dependent part, got slope "
                            f"{self.slope!r}; use kind 'poisson'")

    def variance(self, clean, ops=None):
        """``max(std² + slope·y, 0)`` of clean values ``y`` (network units²), elementwise.

        ``ops``: the array namespace (NumPy by default, in float64; ``keras.ops`` inside a
        model, in the tensor's dtype), so the data term and the NumPy tools share one formula.
        """
        if ops is None:
            ops, clean = np, np.asarray(clean, dtype=np.float64)
        return ops.maximum(self.std ** 2 + self.slope * clean, 0.0)

    def sample(self, clean, rng) -> np.ndarray:
        """``clean`` plus one draw of the noise (float64): ``y + √v(y) · z``, ``z ~ N(0, 1)``
        from ``rng`` (a :class:`numpy.random.Generator` or a seed). Nothing is drawn for
        "none"; Gaussian noise draws ``std · z`` (one multiplication: a draw is the same as
        adding ``std · rng.standard_normal`` by hand)."""
        rng = np.random.default_rng(rng)
        y = np.asarray(clean, dtype=np.float64)
        if self.kind == "none":
            return y.copy()
        if self.kind == "gaussian":
            return y + self.std * rng.standard_normal(y.shape)
        return y + np.sqrt(self.variance(y)) * rng.standard_normal(y.shape)

    def mean_variance(self, clean) -> float:
        """The variance summed over the components (last axis) and averaged over the pixels:
        what a result that fits the image but not its noise misfits it by."""
        if self.kind == "none":
            return 0.0
        return float(self.variance(clean).sum(axis=-1).mean())

    def scaled(self, factor: float) -> "NoiseModel":
        """The same noise after the values are divided by ``factor`` (network units that many
        times larger): ``v'(y') = v(y) / factor²`` with ``y' = y / factor``, so ``std`` and
        ``slope`` are both divided by ``factor``."""
        factor = check_real("factor", factor, 0, strict=True)
        how = dict(self.how)
        if isinstance(how.get("floor"), dict) and "value" in how["floor"]:   # a std too
            how["floor"] = {**how["floor"], "value": how["floor"]["value"] / factor}
        return dataclasses.replace(self, std=self.std / factor, slope=self.slope / factor,
                                   how=how)

    def to_dict(self) -> dict:
        """The ``degradation.json`` keys :data:`RECORD_KEYS` (provenance is the caller's)."""
        return {"noise_kind": self.kind, "noise_std": float(self.std),
                "noise_slope": float(self.slope)}

    @classmethod
    def from_dict(cls, record) -> "NoiseModel":
        """The model a ``degradation.json`` (or :meth:`to_dict`) records; other keys are
        ignored. ``noise_std`` / ``noise_slope`` default to 0 and ``how`` is read from
        ``record["how"]["noise"]`` where present."""
        if not isinstance(record, dict) or "noise_kind" not in record:
            raise UserError("a noise record must be a mapping with a 'noise_kind'")
        how = record.get("how", {})
        return cls(record["noise_kind"], record.get("noise_std", 0.0),
                   record.get("noise_slope", 0.0),
                   how=dict(how.get("noise", {})) if isinstance(how, dict) else {})

    @classmethod
    def estimate(cls, image, noise="auto", counts: bool = False, image_scale: float = 1.0,
                 image_min: float | None = None) -> "NoiseModel":
        """The noise model of an LR image (network units): given, estimated or none.

        Parameters
        ----------
        image : ndarray (H, W, C) or (H, W)
            The LR image in network units.
        noise : "auto", "none", "gaussian", "poisson" or a number
            "auto": Poisson–Gaussian for integer (count) images, Gaussian otherwise; a number
            is a Gaussian standard deviation in image units (``image_scale`` converts it).
        counts : bool
            Whether the image holds integer counts (an 8/16-bit camera image).
        image_scale : float
            Image units per network unit.
        image_min : float, optional
            Smallest image value: Poisson noise needs non-negative counts.

        An estimate neither estimator trusts gives kind "none" with :attr:`warning` saying
        why; :attr:`how` says how the values were obtained.
        """
        x = np.asarray(image, dtype=np.float64)
        x = x[..., None] if x.ndim == 2 else x
        given = _given_noise(noise)
        if given is None:
            check_choice("noise", noise, NOISE_CHOICES)
        kind = ("gaussian" if given is not None else
                ("poisson" if counts else "gaussian") if noise == "auto" else noise)
        if kind == "poisson" and image_min is not None and image_min < 0:
            raise UserError("Poisson noise needs non-negative counts, but the image has "
                            "negative values; use --noise gaussian")
        if given is not None:
            return cls("gaussian", given / float(image_scale),
                       how={"method": "given", "confident": True})
        if kind == "none":
            return cls(how={"method": "none given: plain LR data term", "confident": True})
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
        kind, std, slope, how, warning = _combine_noise(kind, est, floor, float(x.mean()))
        return cls(kind, std, slope, how=how, warning=warning or "")
