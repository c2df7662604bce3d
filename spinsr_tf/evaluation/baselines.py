"""The interpolation baselines a network is scored against, by name.

Each is :func:`spinsr_tf.data.interpolation.upsample` with fixed settings; aligned ones place
LR pixel ``k`` where the degradation's pixel model does (HR position ``k·f`` for point samples,
the block centre for camera pixels: pass ``pixel=``), ``_resize`` ones at the block centre
(misaligned for point samples, reported for comparison), ``_norm`` ones normalize each vector
afterwards.
"""

from __future__ import annotations

import functools
import types

from spinsr_tf.data.interpolation import CONVENTIONS, METHODS, unit_normalize, upsample

__all__ = ["ALIGNED_BASELINES", "BASELINES", "unit_normalize", "upsample"]


def _baselines() -> types.MappingProxyType:
    table = {}
    for normalize in (False, True):
        for convention in CONVENTIONS:
            for method in METHODS:
                name = method + ("_resize" if convention == "resize" else "") \
                    + ("_norm" if normalize else "")
                table[name] = functools.partial(upsample, method=method, convention=convention,
                                                normalize=normalize)
    return types.MappingProxyType(table)


#: The twelve evaluation baselines, name -> ``fn(lr, factor, **kwargs)`` (a
#: :func:`functools.partial` of :func:`upsample`, settings readable from ``.keywords``):
#: ``gaussian, bilinear, bicubic`` (aligned), the same with ``_resize`` (block-centre
#: convention), then all six again with ``_norm`` (unit-normalized output).
BASELINES = _baselines()

#: The baselines a network must beat: interpolation aligned with the sampling grid.
ALIGNED_BASELINES = ("gaussian", "bilinear", "bicubic", "gaussian_norm", "bilinear_norm",
                     "bicubic_norm")
