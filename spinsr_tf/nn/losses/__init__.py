"""Loss terms that training composes: each is a small frozen dataclass in a module of its own.

A term adds one output to the training graph (:class:`~spinsr_tf.nn.losses.base.Graph`) and says
how that output is scored; :func:`spinsr_tf.nn.training.train` builds the graph from the terms of
its :class:`~spinsr_tf.nn.config.TrainConfig` and minimises ``Σ weight · term``. A new term is one
new module here plus its name in :data:`TERMS` (via :func:`~spinsr_tf.nn.losses.base.register`).

Terms:

- ``lr_consistency`` (:class:`LRConsistency`): MSE(LR input, re-degraded SR), the paper's loss;
- ``supervised`` (:class:`Supervised`): MSE(SR, HR), the oracle, NOT part of the method;
- ``distillation`` (:class:`Distillation`): MSE(SR, a teacher network's SR map of the same
  sample), e.g. a scalar model learning the Sz of a vector model trained LR-only;
- ``physics_prior`` (:class:`PhysicsPrior`): λ · energy per spin of the SR map;
- ``equivariance`` (:class:`Equivariance`): MSE(f(A(T_g x̂)), T_g x̂) for random lattice
  symmetries T_g (Chen, Tachella & Davies, ICCV 2021);
- ``recorrupted`` (:class:`Recorrupted`): the LR term on recorrupted pairs of a noisy image,
  which does not reward reproducing the noise (Pang et al., CVPR 2021).
"""

from spinsr_tf.nn.losses.base import TERMS, Graph, LossTerm, register, term_from_config
from spinsr_tf.nn.losses.distillation import Distillation
from spinsr_tf.nn.losses.equivariance import Equivariance
from spinsr_tf.nn.losses.lr_consistency import LRConsistency
from spinsr_tf.nn.losses.physics_prior import PhysicsPrior
from spinsr_tf.nn.losses.recorrupted import Recorrupted
from spinsr_tf.nn.losses.supervised import Supervised

__all__ = ["TERMS", "Distillation", "Equivariance", "Graph", "LRConsistency", "LossTerm",
           "PhysicsPrior", "Recorrupted", "Supervised", "register", "term_from_config"]
