"""The interpolation baselines a network is scored against, by name.

Each is :func:`spinsr_tf.data.interpolation.upsample` with fixed settings; aligned ones place
LR pixel ``k`` where the degradation's pixel model does (HR position ``k·f`` for point samples,
the block centre for camera pixels: pass ``pixel=``), ``_resize`` ones at the block centre
(misaligned for point samples, reported for comparison), ``_norm`` ones normalize each vector
afterwards.

Scalar maps (one channel: Sz, a Kerr or MFM image mapped onto [-1, 1]) have no unit vectors to
project on (the "normalized" scalar is its sign): their analogue keeps the value range instead,
``_clip`` ones clip the interpolation to [-1, 1], where an overshooting spline leaves it near
a domain wall (:data:`SCALAR_BASELINES`; :func:`baselines_for` picks by channel count).
"""

from __future__ import annotations

import functools
import types

import numpy as np

from spinsr_tf.data.interpolation import CONVENTIONS, METHODS, unit_normalize, upsample

__all__ = ["ALIGNED_BASELINES", "ALIGNED_SCALAR_BASELINES", "BASELINES", "SCALAR_BASELINES",
           "aligned_baselines", "baselines_for", "clip_unit", "reference_baseline",
           "unit_normalize", "upsample"]


def clip_unit(x: np.ndarray) -> np.ndarray:
    """Values clipped to [-1, 1], the range of a spin component (same shape and dtype)."""
    x = np.asarray(x)
    return np.clip(x, -1.0, 1.0).astype(x.dtype, copy=False)


def upsample_clipped(lr, factor: int, **kwargs) -> np.ndarray:
    """:func:`upsample` (same arguments), then :func:`clip_unit`: the scalar ``_clip`` baseline."""
    return clip_unit(upsample(lr, factor, **kwargs))


def _names(suffix: str) -> list[tuple[str, str, str]]:
    return [(method + ("_resize" if convention == "resize" else "") + suffix, method, convention)
            for convention in CONVENTIONS for method in METHODS]


def _baselines() -> types.MappingProxyType:
    table = {}
    for normalize in (False, True):
        for name, method, convention in _names("_norm" if normalize else ""):
            table[name] = functools.partial(upsample, method=method, convention=convention,
                                            normalize=normalize)
    return types.MappingProxyType(table)


def _scalar_baselines() -> types.MappingProxyType:
    table = {name: BASELINES[name] for name, _, _ in _names("")}   # the same plain ones
    table.update({name: functools.partial(upsample_clipped, method=method, convention=convention)
                  for name, method, convention in _names("_clip")})
    return types.MappingProxyType(table)


#: The twelve evaluation baselines, name -> ``fn(lr, factor, **kwargs)`` (a
#: :func:`functools.partial` of :func:`upsample`, settings readable from ``.keywords``):
#: ``gaussian, bilinear, bicubic`` (aligned), the same with ``_resize`` (block-centre
#: convention), then all six again with ``_norm`` (unit-normalized output).
BASELINES = _baselines()

#: The baselines a network must beat: interpolation aligned with the sampling grid.
ALIGNED_BASELINES = ("gaussian", "bilinear", "bicubic", "gaussian_norm", "bilinear_norm",
                     "bicubic_norm")

#: The twelve baselines of scalar (one-channel) maps: the six plain ones of :data:`BASELINES`,
#: then all six again with ``_clip`` (:func:`upsample_clipped`, output clipped to [-1, 1]).
SCALAR_BASELINES = _scalar_baselines()

#: The scalar baselines a network must beat (aligned with the sampling grid).
ALIGNED_SCALAR_BASELINES = ("gaussian", "bilinear", "bicubic", "gaussian_clip", "bilinear_clip",
                            "bicubic_clip")


def baselines_for(channels: int) -> types.MappingProxyType:
    """The baseline table of maps with ``channels`` components: :data:`SCALAR_BASELINES` for
    one, :data:`BASELINES` (vectors, ``_norm``) otherwise."""
    return SCALAR_BASELINES if int(channels) == 1 else BASELINES


def aligned_baselines(channels: int) -> tuple[str, ...]:
    """The aligned baselines (names) a network of ``channels`` components must beat."""
    return ALIGNED_SCALAR_BASELINES if int(channels) == 1 else ALIGNED_BASELINES


def reference_baseline(channels: int) -> str:
    """The one baseline a gain is quoted against: aligned bicubic kept in the maps' range
    (``bicubic_norm`` for vectors, ``bicubic_clip`` for a scalar map)."""
    return "bicubic_clip" if int(channels) == 1 else "bicubic_norm"
