"""spinsr_tf: unsupervised super-resolution of magnetic spin textures.

Layers, each importing only those before it (docs/architecture.md): ``base`` (errors, atomic
files) → ``physics`` (Hamiltonians, energies, annealing) → ``data`` (datasets, I/O, degradation,
aligned interpolation) → ``nn`` (the Keras network, loss terms, training, export) → ``inference``
(refinement, fit-image) → ``evaluation`` (metrics, baselines, scoring) → ``experiments`` (the
paper's items) → ``cli``.

Keras is imported lazily: ``import spinsr_tf`` and the physics/data modules do not pay for it.
Once Keras is imported (before or after ``import spinsr_tf``), spinsr_tf's layers are registered
with it, so ``keras.models.load_model("run/model.keras")`` works as for any Keras model.
"""

from __future__ import annotations

import importlib
import sys

from spinsr_tf._version import __version__
from spinsr_tf.base.imports import after_import, initializing, quiet_tensorflow

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


def _register_keras_objects() -> None:
    """Import the modules whose classes a saved model names (``spinsr_tf>PeriodicPadding2D``...).

    Keras deserializes a custom class only if it was registered before, and imports no module
    outside Keras to find one. When an spinsr_tf module is the one importing Keras, the package
    ``spinsr_tf.nn`` registers everything as it loads; importing it from here would meet that
    module half-initialized.
    """
    if "spinsr_tf.nn" in sys.modules or initializing("spinsr_tf"):
        return
    try:
        importlib.import_module("spinsr_tf.nn")
    except ImportError:  # a Keras without a backend spinsr_tf can use: load_model will say so
        pass


after_import("keras", _register_keras_objects)
# TensorFlow's C++ notices and retracing warnings, unless TF_CPP_MIN_LOG_LEVEL is set by the user
quiet_tensorflow()
