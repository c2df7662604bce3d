"""Distillation: learn another network's SR maps of the same samples.

Why: a grey (Sz) image holds less than a 3-component map, and at ×8 the LR-only recipe learns
from Sz alone a texture prior 2–6 dB short of what a network of the same size can reach
(docs/generalization.md, "Scalar models"). A vector model, trained LR-only on the same
mixture, sees all three LR components and resolves much more; its SR maps' Sz is a target a
scalar student can learn from Sz alone. The teacher never saw an HR map, so neither does the
student: the method stays unsupervised.
"""

from __future__ import annotations

import dataclasses

from spinsr_tf.nn.losses.base import Graph, LossTerm, register


@register
@dataclasses.dataclass(frozen=True)
class Distillation(LossTerm):
    """``weight · MSE(SR, teacher's SR)``; the teacher's maps of the same samples come from the
    run's ``teacher_data`` file (:class:`~spinsr_tf.nn.config.TrainConfig`)."""

    kind = "distillation"
    name = "sr"
    needs_teacher = True

    def build(self, graph: Graph):
        return graph.sr

    def target(self, lr, hr, teacher=None):
        return teacher
