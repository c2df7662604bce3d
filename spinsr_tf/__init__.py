"""spinsr_tf: unsupervised super-resolution of magnetic spin textures.

Data flow: ``physics`` (Hamiltonians, energies, simulated annealing) → ``data`` (HDF5 datasets,
Gaussian degradation, image I/O) → ``layers``/``model``/``training`` (the Keras network) →
``metrics``/``baselines`` (evaluation); ``cli`` and the notebooks sit on top.

Keras is imported lazily: ``import spinsr_tf`` and the physics/data modules do not pay for it.
"""

from __future__ import annotations

import importlib

from spinsr_tf._version import __version__

# public name -> module that defines it (imported on first use)
_LAZY = {
    "build_sr_model": "spinsr_tf.model",
    "compile_sr_model": "spinsr_tf.model",
    "sr_submodel": "spinsr_tf.model",
    "load_sr_model": "spinsr_tf.model",
    "train": "spinsr_tf.training",
    "export_saved_model": "spinsr_tf.export",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'spinsr_tf' has no attribute {name!r}")
