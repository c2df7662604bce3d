"""What the experiments share: dataset presets, the settings of Tables 1–2, the networks compared.

Every experiment module (reproduce, cross-feeding, noise response, physics tables, quickstart)
takes its sizes and network recipes from here, so a network added here appears in all of them.
"""

from __future__ import annotations

import dataclasses

from spinsr_tf.base.errors import UserError
from spinsr_tf.evaluation.baselines import ALIGNED_BASELINES  # noqa: F401  (re-exported)
from spinsr_tf.nn.config import recipe


@dataclasses.dataclass(frozen=True)
class Preset:
    """Sizes of one reproduction: lattices, samples, training length."""

    size: int
    n_train: int
    n_test: int
    epochs: int
    batch_size: int
    sweeps: int | None = None   # annealing sweeps; None = the type's default schedule
    jit_compile: bool = True    # XLA pays off only for runs longer than its compile time


#: ``smoke``: seconds per setting, for tests, CI and the notebooks' default. ``medium``: the
#: documented results (docs/results.md), under an hour on a 2-core CPU. ``paper``: the paper's
#: data size and training length (hours on a GPU).
PRESETS = {
    "smoke": Preset(size=32, n_train=8, n_test=4, epochs=2, batch_size=4, sweeps=50,
                    jit_compile=False),
    "medium": Preset(size=128, n_train=192, n_test=32, epochs=40, batch_size=16),
    "paper": Preset(size=128, n_train=40000, n_test=100, epochs=400, batch_size=32),
}

#: The settings of Tables 1 and 2.
SCALES = {"I": (4, 8), "II": (4, 8, 16)}
TABLE_FILES = {"I": "table1.md", "II": "table2.md"}

#: The networks trained per setting: table name -> label and recipe
#: (:data:`spinsr_tf.nn.config.RECIPES`). ``sr`` is the paper's network as published; the oracle
#: is trained on HR maps and only bounds what an unsupervised network could reach.
NETWORKS = {
    "sr": {"label": "the paper's network (unsupervised)", "recipe": "paper"},
    "sr_residual_unit": {"label": "residual on aligned bicubic, unit-vector output "
                         "(unsupervised)", "recipe": "residual_unit"},
    "sr_equivariant": {"label": "sr_residual_unit + the lattice-symmetry (equivariance) term "
                       "(unsupervised; the default recipe)", "recipe": "equivariant"},
    "oracle": {"label": "same as sr_residual_unit trained on HR maps: supervised, NOT part of "
               "the method, an upper bound", "recipe": "oracle"},
}


def network_config(name: str, data, scale: int, preset: Preset, seed: int = 0,
                   networks: dict | None = None, **fields):
    """The :class:`~spinsr_tf.nn.config.TrainConfig` of table network ``name`` at a preset."""
    spec = (NETWORKS if networks is None else networks)[name]
    return recipe(spec["recipe"], data, scale, epochs=preset.epochs,
                  batch_size=preset.batch_size, seed=seed, jit_compile=preset.jit_compile,
                  **{**spec.get("fields", {}), **fields})




def check_sizes(preset: Preset, scales, networks: dict | None = None, data="unchecked.h5",
                seed: int = 0) -> None:
    """Refuse, before anything is annealed, a preset that training would refuse later: lattices
    not divisible by a scale or leaving LR maps under 2x2, counts that leave no training sample,
    a configuration a network cannot take."""
    from spinsr_tf.base.checks import check_int
    from spinsr_tf.data.stream import split_indices

    size = check_int("size", preset.size, 8)
    if size % 2:
        raise UserError(f"size must be an even integer >= 8 (checkerboard updates), got {size}")
    check_int("n_train", preset.n_train, 1)
    check_int("n_test", preset.n_test, 1)
    for scale in scales:
        if size % scale or size // scale < 2:
            raise UserError(f"size {size} must be a multiple of the scale {scale} that leaves LR "
                            "maps of at least 2x2")
        for name in (NETWORKS if networks is None else networks):
            config = network_config(name, data, scale, preset, seed=seed, networks=networks)
            split_indices(preset.n_train, config.val_fraction)


def check_preset(preset) -> Preset:
    """A :class:`Preset` from itself or its name in :data:`PRESETS`."""
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise UserError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    return PRESETS[preset]
