"""One training run's configuration: a frozen dataclass, serialized as ``RUN_DIR/config.json``.

Everything a run is made of lives here (data, scale, degradation, network variant, loss terms
and weights, optimiser, length, batch, seed, strategy), so ``train(config, out_dir)`` takes one
object, ``--resume`` compares two of them, and the command line, ``fit-image`` and the
experiments all build one. Named recipes (:data:`RECIPES`) are the networks the tables compare;
:data:`DEFAULT_RECIPE` is the best measured one.
"""

from __future__ import annotations

import dataclasses
import os

from spinsr_tf.base.checks import check_bool, check_int, check_real
from spinsr_tf.base.errors import UserError
from spinsr_tf.data.degradation_generator import DegradationGenerator, as_generator
from spinsr_tf.nn.losses import Equivariance, LossTerm, LRConsistency, Supervised, term_from_config
from spinsr_tf.nn.network import OUTPUTS, decoder_filters

#: Fields a resumed run may change: its length, where the data files are, how it runs.
RESUMABLE = ("epochs", "data", "hr_data", "teacher_data", "strategy", "jit_compile")


def _as_path(value) -> str | None:
    return None if value is None else os.fspath(value)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run. Degradation fields left None are read from an LR data file's attributes
    (else 23, 1.0, ``"periodic"``); :func:`spinsr_tf.nn.training.train` records the resolved
    values.

    Parameters
    ----------
    data : path
        HDF5 file with LR maps (``lr``) or HR maps (``spins``, degraded on the fly).
    scale : int
        SR factor, a power of two (4, 8, 16).
    hr_data : path, optional
        HR maps matching an LR-only ``data`` file, for ``val_sr_mse`` (and the oracle) only.
    teacher_data : path, optional
        A teacher network's SR maps of the same samples (dataset ``spins``, the HR grid), the
        target of the :class:`~spinsr_tf.nn.losses.Distillation` term (which needs them);
        not ground truth.
    max_samples : int, optional
        Use the first ``max_samples`` samples only.
    val_fraction : float
        The last ``floor(N · val_fraction)`` samples (at least one if > 0) are held out.
    kernel_size, sigma, padding, pixel : optional
        The fixed degradation (odd window and width in HR pixels, boundary condition, pixel
        model ``"sample"`` or ``"integrate"``). With ``degradations`` it is the nominal one:
        the saved network's ``lr`` layer and the LR maps of ``val_sr_mse``.
    degradations : DegradationGenerator, optional
        Blind training (:mod:`spinsr_tf.data.degradation_generator`): every batch draws its
        own degradation (σ, pixel model, noise) from these ranges, makes its LR input from the
        HR maps with it, and the loss terms re-degrade with that same draw. Needs HR maps.
    conditioned : bool
        With ``degradations``: also tell the network each batch's draw (σ, pixel model) as a
        second input (:func:`spinsr_tf.nn.network.build_sr_model`); False: blind.
    output : {"linear", "unit"}
        SR output: the paper's linear convolution, or projected onto unit vectors.
    residual : bool
        Learn a correction to aligned bicubic interpolation (starts at that baseline).
    losses : tuple of LossTerm
        The weighted terms of the loss (:mod:`spinsr_tf.nn.losses`).
    init : str, optional
        A trained model (``.keras`` path or ``pretrained:NAME``) whose convolutions and batch
        normalisations start the network instead of random weights
        (:func:`~spinsr_tf.nn.network.copy_weights`; the degradation layers are this run's):
        fine-tuning a model on new data. The same factor, components and variant.
    learning_rate, epochs, batch_size, seed : number
        Adam step size (paper 0.01), total epochs (paper 400), global batch, seed of the
        weights, the shuffle and every random symmetry.
    strategy : {"none", "mirrored", "multiworker"}
        Data parallelism (:mod:`spinsr_tf.nn.strategy`).
    jit_compile : bool
        Compile the training step with XLA (off under a multi-replica TensorFlow strategy).
    """

    data: str
    scale: int
    hr_data: str | None = None
    teacher_data: str | None = None
    max_samples: int | None = None
    val_fraction: float = 0.1
    kernel_size: int | None = None
    sigma: float | None = None
    padding: str | None = None
    pixel: str | None = None
    degradations: DegradationGenerator | None = None
    conditioned: bool = False
    output: str = "linear"
    residual: bool = False
    losses: tuple = (LRConsistency(),)
    init: str | None = None
    learning_rate: float = 0.01
    epochs: int = 400
    batch_size: int = 32
    seed: int = 0
    strategy: str = "none"
    jit_compile: bool = True

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("data", _as_path(self.data))
        set_("hr_data", _as_path(self.hr_data))
        set_("teacher_data", _as_path(self.teacher_data))
        set_("init", _as_path(self.init))
        decoder_filters(self.scale)
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("seed", self.seed, 0)
        if self.max_samples is not None:
            check_int("max_samples", self.max_samples, 1)
        if self.output not in OUTPUTS:
            raise UserError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        for name in ("residual", "jit_compile", "conditioned"):
            check_bool(name, getattr(self, name))
        check_real("learning_rate", self.learning_rate, 0, strict=True)
        losses = tuple(self.losses)
        if not losses or not all(isinstance(t, LossTerm) for t in losses):
            raise UserError("losses must be a non-empty sequence of loss terms "
                            "(spinsr_tf.nn.losses)")
        names = [t.name for t in losses]
        if len(set(names)) != len(names):
            raise UserError(f"each loss term may appear once, got {', '.join(names)}")
        needy = [t.name for t in losses if t.needs_unit_output]
        if needy and self.output != "unit":
            raise UserError(f"loss term {needy[0]!r} needs output='unit' (unit spins), got "
                            f"{self.output!r}")
        set_("losses", losses)
        taught = [t.name for t in losses if t.needs_teacher]
        if taught and self.teacher_data is None:
            raise UserError(f"loss term {taught[0]!r} needs a teacher's SR maps (teacher_data)")
        if self.teacher_data is not None and not taught:
            raise UserError("teacher_data given, but no loss term learns from it "
                            "(add Distillation())")
        set_("degradations", as_generator(self.degradations))
        if self.conditioned and self.degradations is None:
            raise UserError("a conditioned network needs drawn degradations (degradations=...)")
        if self.degradations is not None:
            fixed = [t.name for t in losses if t.kind == "recorrupted"]
            if fixed:
                raise UserError(f"loss term {fixed[0]!r} cannot train across drawn "
                                "degradations (it re-degrades with the network's fixed one)")

    @property
    def distilled(self) -> bool:
        """Whether a teacher network's SR maps enter the loss (:class:`Distillation`)."""
        return any(t.needs_teacher for t in self.losses)

    @property
    def supervised(self) -> bool:
        """Whether HR maps enter the loss (the oracle: not part of the method)."""
        return any(t.needs_hr for t in self.losses)

    def term(self, cls):
        """The loss term of class ``cls``, or None."""
        return next((t for t in self.losses if isinstance(t, cls)), None)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["losses"] = [t.to_config() for t in self.losses]
        out["degradations"] = (None if self.degradations is None
                               else self.degradations.to_dict())
        return out

    @classmethod
    def from_json(cls, obj: dict) -> "TrainConfig":
        """Inverse of :meth:`to_json`; a damaged record (hand-edited, truncated: not a dict,
        ``losses`` not a list of terms, a required key missing) is a one-line ``UserError``."""
        if not isinstance(obj, dict):
            raise UserError(f"a configuration must be a JSON object, got {type(obj).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - fields)
        if unknown:
            raise UserError(f"unknown configuration key(s): {', '.join(unknown)}")
        missing = sorted(f.name for f in dataclasses.fields(cls) if f.name not in obj
                         and f.default is dataclasses.MISSING
                         and f.default_factory is dataclasses.MISSING)
        if missing:
            raise UserError(f"configuration key(s) missing: {', '.join(missing)}")
        obj = dict(obj)
        losses = obj.get("losses", ())
        if not isinstance(losses, (list, tuple)) or not all(isinstance(t, dict) for t in losses):
            raise UserError(f"configuration key 'losses' must be a list of loss terms "
                            f"({{\"term\": NAME, ...}}), got {losses!r}"[:200])
        obj["losses"] = tuple(term_from_config(t) for t in losses)
        try:
            return cls(**obj)
        except (TypeError, ValueError, AttributeError) as exc:   # a value of the wrong kind
            if isinstance(exc, UserError):
                raise
            raise UserError(f"damaged configuration: {exc}") from None


#: Named networks: the fields of :class:`TrainConfig` each sets. ``paper`` is the paper's recipe
#: exactly; ``residual_unit`` starts at aligned bicubic + normalisation and learns a correction;
#: ``equivariant`` adds the lattice-symmetry term (the best measured, docs/results.md);
#: ``oracle`` is trained on HR maps and only bounds what an unsupervised network reaches.
RECIPES = {
    "paper": {"output": "linear", "residual": False, "learning_rate": 0.01,
              "losses": (LRConsistency(),)},
    "residual_unit": {"output": "unit", "residual": True, "learning_rate": 0.001,
                      "losses": (LRConsistency(),)},
    "equivariant": {"output": "unit", "residual": True, "learning_rate": 0.001,
                    "losses": (LRConsistency(), Equivariance(weight=1.0, group="lattice"))},
    "oracle": {"output": "unit", "residual": True, "learning_rate": 0.001,
               "losses": (Supervised(),)},
}
#: The recipe of ``spinsr-tf train`` with no network flag.
DEFAULT_RECIPE = "equivariant"


def recipe(name: str, data, scale: int, **fields) -> TrainConfig:
    """The :class:`TrainConfig` of a named recipe, with ``fields`` replacing any of its values."""
    if name not in RECIPES:
        raise UserError(f"network must be one of {', '.join(RECIPES)}, got {name!r}")
    return TrainConfig(data=data, scale=scale, **{**RECIPES[name], **fields})
