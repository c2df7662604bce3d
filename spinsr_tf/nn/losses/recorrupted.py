"""A data term that does not fit the noise: recorrupted pairs (Pang et al., CVPR 2021, "R2R").

The paper's LR term ``MSE(A(f(y)), y)`` is minimised by reproducing the noisy LR image, noise
included: on a microscope image the network then invents sub-pixel texture to copy the noise.
Recorrupted-to-recorrupted splits one noisy image into two with *independent* noise, using a
fresh draw ``z ~ N(0, 1)`` per step and the noise's own variance ``v(y)``::

    ŷ = y + α √v · z,      ȳ = y − √v · z / α,
    L_r2r = MSE( A(f(ŷ)), ȳ ).

For Gaussian noise of variance v, ŷ and ȳ have uncorrelated (hence independent) noise, so
``E L_r2r = E MSE(A(f(ŷ)), A x) + const``: the expected loss is the loss against the *clean* LR
image, and fitting the noise of ȳ gains nothing. The variance model ``v(y) = noise_std² +
noise_slope · y`` (clipped at 0) covers Gaussian read noise and, with ``noise_slope > 0``, the
shot noise of a camera whose counts are affine in the network's values (Poisson–Gaussian; then
the pairs are independent to first order). α trades the input's extra noise (α² v) against the
target's (v / α²); 0.5 is the usual choice. At inference the network sees the plain image ``y``.

The term replaces :class:`~spinsr_tf.nn.losses.lr_consistency.LRConsistency` (use one or the
other; :func:`noise_aware` swaps it in for a noise model); with ``noise_std = noise_slope = 0``
it *is* the LR term. The variance is the noise model's own
(:meth:`spinsr_tf.data.noise.NoiseModel.variance`): one formula for the data term, the
simulations and the misfit ``fit-image`` reports.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from spinsr_tf.base.checks import check_real
from spinsr_tf.data.noise import NoiseModel
from spinsr_tf.nn.losses.base import Graph, LossTerm, MeanSquaredDifference, register
from spinsr_tf.nn.losses.lr_consistency import LRConsistency
from spinsr_tf.nn.symmetry import SavedSeeds


@register
@dataclasses.dataclass(frozen=True)
class Recorrupted(LossTerm):
    """``weight · MSE(A(f(y + α√v z)), y − √v z / α)`` with ``v = noise_std² + noise_slope·y``.

    Parameters
    ----------
    weight : float
        Relative weight (it plays the LR term's role, so 1).
    noise_std : float
        Standard deviation of the LR image's additive noise, in network units.
    noise_slope : float
        Signal-dependent variance per unit of value (shot noise), network units; 0 for Gaussian.
    alpha : float
        Recorruption strength, > 0.
    """

    weight: float = 1.0
    noise_std: float = 0.0
    noise_slope: float = 0.0
    alpha: float = 0.5
    kind = "recorrupted"
    name = "r2r"
    loss = "penalty"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "noise_std", check_real("noise_std", self.noise_std, 0))
        object.__setattr__(self, "noise_slope", check_real("noise_slope", self.noise_slope, 0))
        object.__setattr__(self, "alpha", check_real("alpha", self.alpha, 0, strict=True))

    @classmethod
    def from_noise(cls, noise: NoiseModel, **kwargs) -> "Recorrupted":
        """The term for a noise model (its std and slope; ``kwargs``: weight, alpha)."""
        return cls(noise_std=noise.std, noise_slope=noise.slope, **kwargs)

    @property
    def noise(self) -> NoiseModel:
        """The noise model the recorrupted pairs assume."""
        return _model(self.noise_std, self.noise_slope)

    def build(self, graph: Graph):
        noisy_input, target = Recorrupt(self.noise_std, self.noise_slope, self.alpha,
                                        seed=graph.seed + 15485863,
                                        name="r2r_recorrupt")(graph.lr_input)
        again = graph.network(noisy_input)["lr"]
        return MeanSquaredDifference(name="r2r")(again, target)


@keras.saving.register_keras_serializable(package="spinsr_tf")
class Recorrupt(SavedSeeds, keras.layers.Layer):
    """``(y + α√v z, y − √v z / α)`` for one fresh ``z ~ N(0, 1)`` per call (seeded; the random
    state is saved with the model, :class:`~spinsr_tf.nn.symmetry.SavedSeeds`)."""

    def __init__(self, noise_std: float, noise_slope: float = 0.0, alpha: float = 0.5,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.noise_std, self.noise_slope = float(noise_std), float(noise_slope)
        self.alpha, self.seed = float(alpha), seed
        self._seeds = keras.random.SeedGenerator(seed)
        self._noise = _model(self.noise_std, self.noise_slope)

    def call(self, y):
        z = keras.random.normal(ops.shape(y), seed=self._seeds, dtype=y.dtype)
        std = ops.sqrt(self._noise.variance(y, ops))
        return y + self.alpha * std * z, y - std * z / self.alpha

    def compute_output_shape(self, shape):
        return shape, shape

    def get_config(self):
        return {**super().get_config(), "noise_std": self.noise_std,
                "noise_slope": self.noise_slope, "alpha": self.alpha, "seed": self.seed}


def _model(noise_std: float, noise_slope: float) -> NoiseModel:
    """The noise model of a (std, slope) pair: Poisson–Gaussian with a slope, else Gaussian."""
    if noise_slope:
        return NoiseModel("poisson", noise_std, noise_slope)
    return NoiseModel("gaussian" if noise_std else "none", noise_std)


def noise_aware(losses, noise: NoiseModel, **kwargs) -> tuple:
    """``losses`` with the plain LR term replaced by :class:`Recorrupted` for ``noise`` (as
    they are for the noise model "none"): the data term that does not fit the noise.
    ``kwargs`` (``alpha``) go to the term."""
    if noise.kind == "none":
        return tuple(losses)
    return tuple(Recorrupted.from_noise(noise, **kwargs) if isinstance(t, LRConsistency) else t
                 for t in losses)
