"""Degradations drawn at random: the imaging models a "blind" network is trained across.

A :class:`~spinsr_tf.data.degradation.Degradation` is one imaging model. A network trained on one
of them learns that one (its output sits where that pixel model puts the samples, it expects that
PSF). Blind super-resolution of natural images (BSRGAN, Zhang et al. 2021; Real-ESRGAN, Wang et
al. 2021) instead draws the degradation anew for every batch, so that one network serves the
imaging models users have. :class:`DegradationGenerator` holds the ranges of such draws: the PSF
width σ (HR pixels, uniform in a range), the pixel model (point sample or camera pixel, by
weight) and additive Gaussian noise (standard deviation uniform in a range, in map units).

Every draw of one generator shares one Gaussian window (:meth:`DegradationGenerator.kernel_size`,
wide enough for the largest σ), so every drawn operator is one separable filter of at most
:meth:`DegradationGenerator.taps_length` taps at stride ``factor``
(:meth:`DegradationGenerator.padded_taps`; tap ``u`` weighs HR pixel ``k·f + u − kernel_size//2``
for both pixel models, the point-sample filter padded with zeros at its end). That filter is what
:class:`spinsr_tf.nn.layers.TapsDownsample` applies per sample.

The additive Gaussian noise is drawn here, in float32 straight onto the batch, rather than by
:meth:`spinsr_tf.data.noise.NoiseModel.sample` (float64 draws): the two give other numbers, and
these draws are part of what a resumed run must repeat bit for bit.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from spinsr_tf.base.checks import check_real, is_real
from spinsr_tf.base.errors import UserError
from spinsr_tf.data.degradation import PIXEL_MODELS, Degradation, kernel_size_for

#: Keys of :meth:`DegradationGenerator.to_dict` (and of a ``--degradations`` spec).
GENERATOR_FIELDS = ("sigma", "pixel", "noise")
#: The generator ``--blind`` stands for: σ 0.5–3 HR px, either pixel model, noise std 0–0.05.
BLIND_DEFAULT = {"sigma": (0.5, 3.0), "pixel": {"sample": 1.0, "integrate": 1.0},
                 "noise": (0.0, 0.05)}


def _range(name: str, value, minimum: float, strict: bool) -> tuple[float, float]:
    """``value`` (a number or a pair ``(lo, hi)``) as a validated pair ``lo <= hi``."""
    if is_real(value):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise UserError(f"{name} must be a number or a range (low, high), got {value!r}")
    lo, hi = (check_real(f"{name} range {tuple(value)!r}: {end}", v, minimum, strict)
              for end, v in (("low", value[0]), ("high", value[1])))
    if lo > hi:
        raise UserError(f"{name} range is inverted: low {lo!r} > high {hi!r}")
    return float(lo), float(hi)


def _weights(value) -> tuple[tuple[str, float], ...]:
    """Pixel-model weights as sorted ``((model, weight), ...)``, weights >= 0, not all 0."""
    if isinstance(value, str):
        value = {value: 1.0}
    if isinstance(value, (tuple, list)) and all(isinstance(v, (tuple, list)) for v in value):
        value = dict(value)
    if not isinstance(value, dict) or not value:
        raise UserError(f"pixel must be a model name or a mapping model -> weight, got {value!r}")
    out = {}
    for key, w in value.items():
        if key not in PIXEL_MODELS:
            raise UserError(f"pixel model must be one of {PIXEL_MODELS}, got {key!r}")
        out[key] = check_real(f"pixel weight of {key!r}", w, 0.0)
    if not sum(out.values()) > 0:
        raise UserError("pixel weights must not all be 0")
    return tuple(sorted(out.items()))


@dataclasses.dataclass(frozen=True)
class DrawnDegradation:
    """One draw: the imaging model and the std of the additive Gaussian noise (map units)."""

    degradation: Degradation
    noise_std: float


@dataclasses.dataclass(frozen=True)
class DegradationGenerator:
    """Ranges of the degradation drawn per training batch (blind SR).

    Parameters
    ----------
    sigma : float or (float, float)
        PSF standard deviation, HR pixels, drawn uniformly in ``[low, high]`` (> 0).
    pixel : str or mapping
        Pixel model, or ``{model: weight}`` drawn with probabilities proportional to the weights
        (models of :data:`~spinsr_tf.data.degradation.PIXEL_MODELS`).
    noise : float or (float, float)
        Standard deviation of additive Gaussian noise on the LR map, map units (spins have
        components in [-1, 1]), drawn uniformly in ``[low, high]``; ``0`` for none.

    Invalid settings (an empty or inverted range, an unknown model) raise :class:`UserError`.
    Frozen and hashable; :meth:`to_dict`/:meth:`from_dict` are the JSON record of
    ``config.json``; :meth:`parse` reads the command line's spec.
    """

    sigma: tuple = (0.5, 3.0)
    pixel: tuple = (("integrate", 1.0), ("sample", 1.0))
    noise: tuple = (0.0, 0.0)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("sigma", _range("sigma", self.sigma, 0.0, strict=True))
        set_("pixel", _weights(self.pixel))
        set_("noise", _range("noise", self.noise, 0.0, strict=False))

    # -- the shared window ------------------------------------------------------------------
    def kernel_size(self) -> int:
        """The odd Gaussian window every draw uses: :func:`kernel_size_for` of the largest σ
        (23 taps up to σ = 2.875 HR pixels)."""
        return kernel_size_for(self.sigma[1])

    def taps_length(self, factor: int) -> int:
        """Length ``T`` of every padded filter at stride ``factor``: ``kernel_size + f − 1``."""
        return self.kernel_size() + int(factor) - 1

    def padded_taps(self, degradation: Degradation) -> np.ndarray:
        """The 1D filter of ``degradation`` padded with zeros at its end to
        :meth:`taps_length` (float64): tap ``u`` weighs HR pixel ``k·f + u − kernel_size//2``
        whatever the pixel model."""
        taps = degradation.taps()
        length = self.taps_length(degradation.factor)
        if degradation.kernel_size != self.kernel_size() or taps.size > length:
            raise UserError(f"degradation {degradation.to_dict()} is not one this generator draws")
        return np.pad(taps, (0, length - taps.size))

    # -- drawing ----------------------------------------------------------------------------
    def draw(self, rng: np.random.Generator, factor: int,
             padding: str = "periodic") -> DrawnDegradation:
        """One degradation at stride ``factor`` with boundary ``padding``, and a noise std.

        The draw consumes a fixed number of values of ``rng`` (σ, pixel model, noise std, in
        that order), so a generator seeded with ``(seed, epoch, step)`` gives one batch's
        degradation whatever came before.
        """
        if not isinstance(rng, np.random.Generator):
            raise UserError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        u = rng.random(3)
        lo, hi = self.sigma
        sigma = lo + (hi - lo) * u[0]
        names = [k for k, _ in self.pixel]
        weights = np.array([w for _, w in self.pixel])
        cumulative = np.cumsum(weights) / weights.sum()
        pixel = names[min(int(np.searchsorted(cumulative, u[1], side="right")), len(names) - 1)]
        nlo, nhi = self.noise
        noise = nlo + (nhi - nlo) * u[2]
        deg = Degradation(int(factor), float(sigma), self.kernel_size(), pixel, padding)
        return DrawnDegradation(deg, float(noise))

    def degrade(self, hr, drawn: DrawnDegradation, rng: np.random.Generator) -> np.ndarray:
        """LR maps of HR maps ``(N, H, W, C)``: ``drawn.degradation.apply(hr)`` plus Gaussian
        noise of std ``drawn.noise_std`` (from ``rng``; nothing drawn when the std is 0),
        float32."""
        lr = drawn.degradation.apply(hr)
        if drawn.noise_std > 0:
            lr = lr + np.float32(drawn.noise_std) * rng.standard_normal(
                lr.shape, dtype=np.float32)
        return lr.astype(np.float32, copy=False)

    # -- records ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-able record:
        ``{"sigma": [lo, hi], "pixel": {model: weight}, "noise": [lo, hi]}``."""
        return {"sigma": list(self.sigma), "pixel": dict(self.pixel), "noise": list(self.noise)}

    @classmethod
    def from_dict(cls, record) -> "DegradationGenerator":
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        if not isinstance(record, dict):
            raise UserError(f"a degradation generator record must be a mapping, got "
                            f"{type(record).__name__}")
        unknown = sorted(set(record) - set(GENERATOR_FIELDS))
        if unknown:
            raise UserError(f"unknown degradation range(s): {', '.join(map(str, unknown))} "
                            f"(known: {', '.join(GENERATOR_FIELDS)})")
        record = {k: (tuple(v) if isinstance(v, list) else v) for k, v in record.items()}
        return cls(**record)

    @classmethod
    def parse(cls, spec: str) -> "DegradationGenerator":
        """The generator of a command-line spec, e.g. ``"sigma=0.5:3,pixel=sample+integrate,
        noise=0:0.05"``: ``;``- or ``,``-separated ``key=value``; a range is ``low:high`` or one
        number; ``pixel`` is ``model[:weight]`` joined by ``+``. Keys left out take the
        defaults of ``--blind`` (:data:`BLIND_DEFAULT`). ``"blind"`` alone is those defaults.
        """
        if not isinstance(spec, str) or not spec.strip():
            raise UserError("--degradations must be 'blind' or key=value pairs "
                            "(sigma=LOW:HIGH, pixel=sample+integrate, noise=LOW:HIGH)")
        fields = dict(BLIND_DEFAULT)
        if spec.strip() == "blind":
            return cls(**fields)
        seen = set()
        for part in spec.replace(";", ",").split(","):
            if not part.strip():
                continue
            key, eq, value = part.partition("=")
            key, value = key.strip(), value.strip()
            if not eq or key not in GENERATOR_FIELDS:
                raise UserError(f"--degradations: {part.strip()!r} is not one of "
                                f"{', '.join(k + '=...' for k in GENERATOR_FIELDS)}")
            if key in seen:
                raise UserError(f"--degradations: {key} given twice")
            seen.add(key)
            if key == "pixel":
                weights = {}
                for item in value.split("+"):
                    name, _, w = item.partition(":")
                    weights[name.strip()] = _number(key, w) if w.strip() else 1.0
                fields[key] = weights
            else:
                lo, colon, hi = value.partition(":")
                fields[key] = (_number(key, lo), _number(key, hi if colon else lo))
        return cls(**fields)


def _number(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--degradations: {key} needs numbers, got {text.strip()!r}") from None
    if not math.isfinite(value):
        raise UserError(f"--degradations: {key} needs finite numbers, got {text.strip()!r}")
    return value


def as_generator(value) -> DegradationGenerator | None:
    """``value`` as a generator: None, a generator, its :meth:`~DegradationGenerator.to_dict`
    record, or a spec string (:meth:`~DegradationGenerator.parse`)."""
    if value is None or isinstance(value, DegradationGenerator):
        return value
    if isinstance(value, dict):
        return DegradationGenerator.from_dict(value)
    if isinstance(value, str):
        return DegradationGenerator.parse(value)
    raise UserError(f"degradations must be a DegradationGenerator, a record or a spec, "
                    f"got {value!r}")


#: Length of :func:`condition_vector`.
CONDITION_SIZE = 2


def condition_vector(degradation: Degradation) -> np.ndarray:
    """What a conditioned network is told of a degradation: ``[σ (HR pixels), 1 for camera
    pixels ("integrate") else 0]``, float32."""
    return np.array([degradation.sigma, float(degradation.pixel == "integrate")], np.float32)


def batch_rng(seed: int, epoch: int, step: int, stream: int = 0) -> np.random.Generator:
    """The generator of one batch's draws: a pure function of ``(seed, stream, epoch, step)``
    (``stream`` keeps the training and validation batches' draws apart)."""
    return np.random.default_rng([int(seed), 0x5EED, int(stream), int(epoch), int(step)])
