"""The Keras network: layers, the builder, loss terms, symmetries, training, export, strategies.

Loads Keras. Public: :func:`build_sr_model`, :func:`compile_sr_model`, :func:`sr_submodel`,
:func:`load_sr_model` (:mod:`.network`), :class:`TrainConfig` and :func:`recipe`
(:mod:`.config`), :func:`train` (:mod:`.training`), :func:`export_saved_model` (:mod:`.export`).
"""

from spinsr_tf.nn.config import DEFAULT_RECIPE, RECIPES, TrainConfig, recipe
from spinsr_tf.nn.export import export_saved_model
from spinsr_tf.nn.network import build_sr_model, compile_sr_model, load_sr_model, sr_submodel
from spinsr_tf.nn.training import train

__all__ = ["DEFAULT_RECIPE", "RECIPES", "TrainConfig", "build_sr_model", "compile_sr_model",
           "export_saved_model", "load_sr_model", "recipe", "sr_submodel", "train"]
