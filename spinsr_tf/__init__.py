"""spinsr_tf: unsupervised super-resolution of magnetic spin textures.

Layers, each importing only those before it (docs/architecture.md): ``base`` (errors, atomic
files) → ``physics`` (Hamiltonians, energies, annealing) → ``data`` (datasets, I/O, degradation,
aligned interpolation) → ``nn`` (the Keras network, loss terms, training, export) → ``inference``
(refinement, fit-image) → ``evaluation`` (metrics, baselines, scoring) → ``experiments`` (the
paper's items) → ``cli``.

Keras is imported lazily: ``import spinsr_tf`` and the physics/data modules do not pay for it.
"""

from __future__ import annotations

import importlib

from spinsr_tf._version import __version__

# public name -> module that defines it (imported on first use)
_LAZY = {
    "build_sr_model": "spinsr_tf.nn.network",
    "compile_sr_model": "spinsr_tf.nn.network",
    "sr_submodel": "spinsr_tf.nn.network",
    "load_sr_model": "spinsr_tf.nn.network",
    "TrainConfig": "spinsr_tf.nn.config",
    "recipe": "spinsr_tf.nn.config",
    "train": "spinsr_tf.nn.training",
    "export_saved_model": "spinsr_tf.nn.export",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'spinsr_tf' has no attribute {name!r}")
