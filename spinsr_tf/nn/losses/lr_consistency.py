"""The paper's data term: the re-degraded SR map must reproduce the LR input."""

from __future__ import annotations

import dataclasses

from spinsr_tf.nn.losses.base import Graph, LossTerm, register


@register
@dataclasses.dataclass(frozen=True)
class LRConsistency(LossTerm):
    """``weight · MSE(LR input, A(SR))`` with A the network's fixed degradation (output ``"lr"``)."""

    kind = "lr_consistency"
    name = "lr"

    def build(self, graph: Graph):
        return graph.lr

    def target(self, lr, hr, teacher=None):
        return lr
