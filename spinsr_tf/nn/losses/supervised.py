"""The supervised oracle's term: MSE against the HR ground truth. An upper bound, not the method."""

from __future__ import annotations

import dataclasses

from spinsr_tf.nn.losses.base import Graph, LossTerm, register


@register
@dataclasses.dataclass(frozen=True)
class Supervised(LossTerm):
    """``weight · MSE(SR, HR)``; needs HR maps, which the unsupervised method never sees."""

    kind = "supervised"
    name = "sr"
    needs_hr = True

    def build(self, graph: Graph):
        return graph.sr

    def target(self, lr, hr, teacher=None):
        return hr
