"""Mixtures: training data whose Hamiltonian parameters are drawn per map from ranges.

A model trained on one set of material parameters learns that texture (its period, its wall
profile) and does harm on others. A :class:`Mixture` states, per parameter, a uniform range or a
weighted choice; map ``k`` of a file of seed ``s`` gets its parameters from ``(s, k)`` alone
(:func:`draw_unit`, the SplitMix64 keys of :mod:`spinsr_tf.physics.rng`), so a map is the same
whatever the block size, the number of workers, a resume or the Dask scheduling.

Parameters (units of J; see docs/physics.md, "Mixtures")::

    type        choice of I, II (with weights)            default I
    dmi         Type I |D|/J, 0..1 (period >= 8 sites)    default 0.3
    dmi_kind    Type I: interfacial (Néel), bulk (Bloch)  default interfacial
    dipolar     Type II Ddip, 0..0.1                      default 0.03
    anisotropy  Type II K, 0..1                           default 0.215
    k_eff       Type II effective anisotropy K - 0.75 Ddip Σ, -0.3..0.3 (instead of
                anisotropy: K follows each map's Ddip, so domains of every dipolar
                strength stay perpendicular)                  default: not given
    field       hz as a fraction of the map's saturation field, in (-1, 1)   default 0
    boundary    periodic, open (Type I maps only)         default periodic

Spec syntax (``spinsr-tf generate --mix``): comma-separated ``name=value`` items, an optional
preset name first; a value is ``LO..HI`` (uniform), ``LO..HI:log`` (log-uniform, LO > 0), ``A|B|C`` (equal-weight choice),
``A:3|B:1`` (weighted choice) or a single value (constant), e.g.
``universal,field=0`` or ``type=I,dmi=0.15..0.55,dmi_kind=interfacial|bulk``.

Open films and the dipolar term: the dipolar sums are periodic, so ``boundary`` is drawn for
every map but applies to Type I maps only; Type II maps are always periodic (recorded so). A
mixture of Type II maps only with an open boundary is refused.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from typing import Mapping

import numpy as np

from spinsr_tf.base.errors import UserError
from spinsr_tf.physics.dipolar import SHAPE_ANISOTROPY as SHAPE
from spinsr_tf.physics.rng import sample_key, splitmix64

#: Numeric parameters: (lowest, highest, open interval?) that the engine anneals sensibly.
NUMERIC = {
    "dmi": (0.0, 1.0, False),         # |D|/J = 1: helix period 8 sites, the finest a map resolves
    "dipolar": (0.0, 0.1, False),     # Ddip: beyond, the dipolar field dominates the exchange
    "anisotropy": (0.0, 1.0, False),  # K: beyond, walls are one site wide
    "field": (-1.0, 1.0, True),       # fraction of the saturation field: 1 saturates the film
    "k_eff": (-0.3, 0.3, False),      # |K_eff| beyond: in-plane or one-site walls
}
#: Choice parameters and their allowed values.
CHOICES = {
    "type": ("I", "II"),
    "dmi_kind": ("interfacial", "bulk"),
    "boundary": ("periodic", "open"),
}
#: Parameter order of specs and records; each has a default (a constant) but those of OPTIONAL.
PARAMETERS = ("type", "dmi", "dmi_kind", "dipolar", "anisotropy", "field", "boundary", "k_eff")
DEFAULTS = {"type": "I", "dmi": 0.3, "dmi_kind": "interfacial", "dipolar": 0.03,
            "anisotropy": 0.215, "field": 0.0, "boundary": "periodic"}
#: Parameters a mixture holds only when given (no default): ``k_eff`` replaces ``anisotropy``.
OPTIONAL = ("k_eff",)

#: Named mixtures (``--mix NAME``). ``universal``: Néel and Bloch labyrinths of period ≈ 10–60
#: sites, up to half the saturation field (skyrmions), a quarter of them on open films, and a
#: quarter of the maps Type II domains around the paper's material (in- and out-of-plane K_eff).
PRESETS = {
    "universal": "type=I:3|II:1,dmi=0.1..0.73,dmi_kind=interfacial|bulk,field=0..0.5,"
                 "dipolar=0.025..0.035,anisotropy=0.19..0.26,boundary=periodic:3|open:1",
    "typeI-dmi": "type=I,dmi=0.15..0.55",
    "typeI-chiral": "type=I,dmi=0.1..0.73,dmi_kind=interfacial|bulk,field=0..0.5,"
                    "boundary=periodic:3|open:1",
    "typeII-domains": "type=II,dipolar=0.025..0.035,anisotropy=0.19..0.26,field=0..0.5",
}


def _number(name: str, text) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UserError(f"mixture: {name} needs numbers, got {text!r}") from None
    if not math.isfinite(value):
        raise UserError(f"mixture: {name} needs finite numbers, got {text!r}")
    lo, hi, open_ = NUMERIC[name]
    if value < lo or value > hi or (open_ and value in (lo, hi)):
        bounds = f"({lo:g}, {hi:g})" if open_ else f"[{lo:g}, {hi:g}]"
        why = " (a field of the saturation scale or more makes a uniform film)" \
            if name == "field" else ""
        raise UserError(f"mixture: {name} must lie in {bounds}{why}, got {value:g}")
    return value


@dataclasses.dataclass(frozen=True)
class Uniform:
    """A value drawn uniformly from ``[lo, hi)``."""

    lo: float
    hi: float

    def draw(self, u: float):
        return self.lo + u * (self.hi - self.lo)

    def values(self) -> tuple:
        return (self.lo, self.hi)

    def text(self) -> str:
        return f"{self.lo!r}..{self.hi!r}"

    def to_dict(self) -> dict:
        return {"uniform": [self.lo, self.hi]}


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """A value whose logarithm is drawn uniformly from ``[log lo, log hi)`` (``lo > 0``): equal
    weight per octave, e.g. for the DMI, whose helix period 2π/arctan(D/J) spans a factor of
    six over ``0.1..0.73`` and whose long periods a uniform draw would seldom reach."""

    lo: float
    hi: float

    def draw(self, u: float):
        return float(self.lo * (self.hi / self.lo) ** u)

    def values(self) -> tuple:
        return (self.lo, self.hi)

    def text(self) -> str:
        return f"{self.lo!r}..{self.hi!r}:log"

    def to_dict(self) -> dict:
        return {"loguniform": [self.lo, self.hi]}


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of ``options`` (numbers or names), with probability proportional to ``weights``."""

    options: tuple
    weights: tuple

    def draw(self, u: float):
        edges = np.cumsum(self.weights) / sum(self.weights)
        return self.options[min(int(np.searchsorted(edges, u, side="right")),
                                len(self.options) - 1)]

    def values(self) -> tuple:
        return self.options

    def text(self) -> str:
        if len(self.options) == 1:
            return _fmt(self.options[0])
        if len(set(self.weights)) == 1:
            return "|".join(_fmt(o) for o in self.options)
        return "|".join(f"{_fmt(o)}:{w!r}" for o, w in zip(self.options, self.weights))

    def to_dict(self) -> dict:
        return {"choice": [[o, w] for o, w in zip(self.options, self.weights)]}


def _fmt(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _parse_value(name: str, text: str):
    """One ``name=value`` item's value → :class:`Uniform`, :class:`LogUniform` or
    :class:`Choice`."""
    text = text.strip()
    if not text:
        raise UserError(f"mixture: {name}= needs a value")
    if ".." in text:
        if name not in NUMERIC:
            raise UserError(f"mixture: {name} is a choice of {'|'.join(CHOICES[name])}, "
                            f"not a range: {text!r}")
        log = text.endswith(":log")
        lo_text, _, hi_text = text[:-len(":log")].partition("..") if log else text.partition("..")
        if not lo_text.strip() or not hi_text.strip():
            raise UserError(f"mixture: {name}={text} is an empty range (write LO..HI)")
        lo, hi = _number(name, lo_text), _number(name, hi_text)
        if not lo < hi:
            raise UserError(f"mixture: {name}={text} is an empty or inverted range "
                            f"(LO < HI; for a constant write {name}={lo:g})")
        if log and not lo > 0:
            raise UserError(f"mixture: {name}={text} is log-uniform: its range must be > 0")
        return LogUniform(lo, hi) if log else Uniform(lo, hi)
    options, weights = [], []
    for item in text.split("|"):
        value, colon, weight = item.strip().partition(":")
        if name in NUMERIC:
            value = _number(name, value)
        elif value not in CHOICES[name]:
            raise UserError(f"mixture: {name} must be one of {'|'.join(CHOICES[name])}, "
                            f"got {value!r}")
        w = 1.0
        if colon:
            try:
                w = float(weight)
            except ValueError:
                w = math.nan
            if not (math.isfinite(w) and w > 0):
                raise UserError(f"mixture: the weight of {name}={value} must be a positive "
                                f"number, got {weight!r}")
        if value in options:
            raise UserError(f"mixture: {name} lists {value!r} twice")
        options.append(value)
        weights.append(w)
    return Choice(tuple(options), tuple(weights))


@dataclasses.dataclass(frozen=True)
class Mixture:
    """Per-parameter distributions (:class:`Uniform`, :class:`LogUniform` or :class:`Choice`)
    of the Hamiltonian of each map; build it with :meth:`parse` (a spec or preset) or
    :meth:`from_dict`.

    ``name`` is the preset it started from ("" for none): a label, not part of the identity.
    """

    dists: tuple      # ((parameter, Uniform | LogUniform | Choice), ...) in PARAMETERS order
    name: str = dataclasses.field(default="", compare=False)

    def __post_init__(self):
        given = dict(self.dists)
        if "k_eff" in given and "anisotropy" in given:
            raise UserError("mixture: give one of anisotropy and k_eff (K_eff sets K from "
                            "each map's Ddip)")
        skip = ("anisotropy",) if "k_eff" in given else OPTIONAL
        dists = tuple((p, given.get(p, Choice((DEFAULTS.get(p),), (1.0,))))
                      for p in PARAMETERS if p in given or p not in skip)
        object.__setattr__(self, "dists", dists)
        if "k_eff" in given:
            # K = k_eff + SHAPE Ddip <= 0.3 + 0.68: only its lower end can leave [0, 1]
            lo = min(self["k_eff"].values()) + SHAPE * min(self["dipolar"].values())
            if lo < NUMERIC["anisotropy"][0]:
                raise UserError(f"mixture: k_eff with these dipolar strengths gives K down to "
                                f"{lo:.3g}, outside [0, 1] (K = k_eff + {SHAPE:.4g} Ddip)")
        types, bounds = self["type"].values(), self["boundary"].values()
        if "open" in bounds and "I" not in types:
            raise UserError("mixture: boundary=open needs Type I maps (the dipolar sums of "
                            "Type II are periodic: its maps are always periodic)")

    def __getitem__(self, parameter: str):
        return dict(self.dists)[parameter]

    def __contains__(self, parameter: str) -> bool:
        return parameter in dict(self.dists)

    @classmethod
    def parse(cls, spec: str) -> "Mixture":
        """A mixture from a spec string (module docstring); unknown names, bad values and
        empty or inverted ranges are one-line :class:`UserError`\\ s."""
        if not isinstance(spec, str) or not spec.strip():
            raise UserError(f"mixture spec must be a preset ({', '.join(PRESETS)}) or "
                            f"name=value items, got {spec!r}")
        items = [t.strip() for t in spec.split(",")]
        name = ""
        if "=" not in items[0]:
            name = items.pop(0)
            if name not in PRESETS:
                raise UserError(f"mixture: unknown preset {name!r} (presets: "
                                f"{', '.join(PRESETS)}; or name=value items)")
        user = {t.partition("=")[0].strip() for t in items}
        if name:
            items = [t.strip() for t in PRESETS[name].split(",")] + items
        dists = {}
        for item in items:
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq:
                raise UserError(f"mixture: {item!r} is not name=value (a preset name may come "
                                "first only)")
            if key not in PARAMETERS:
                raise UserError(f"mixture: unknown parameter {key!r} (parameters: "
                                f"{', '.join(PARAMETERS)})")
            dists[key] = _parse_value(key, value)   # later items override a preset's
        if "k_eff" in user and "anisotropy" not in user:
            dists.pop("anisotropy", None)           # K_eff given replaces a preset's K
        return cls(tuple(dists.items()), name)

    def spec(self) -> str:
        """The canonical spec string: ``Mixture.parse(m.spec()) == m``."""
        return ",".join(f"{p}={d.text()}" for p, d in self.dists)

    def to_dict(self) -> dict:
        """JSON-friendly form (lists, floats, strings), the file's ``params_json`` record."""
        return {p: d.to_dict() for p, d in self.dists}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Mixture":
        """Inverse of :meth:`to_dict` (values validated as in a spec)."""
        if not isinstance(data, Mapping):
            raise UserError(f"mixture record must be a mapping, got {data!r}")
        dists = {}
        for p, d in data.items():
            if p not in PARAMETERS or not isinstance(d, Mapping) or len(d) != 1:
                raise UserError(f"mixture record has a bad entry {p!r}: {d!r}")
            (kind, values), = d.items()
            if kind in ("uniform", "loguniform"):
                text = f"{values[0]!r}..{values[1]!r}" + (":log" if kind == "loguniform" else "")
            elif kind == "choice":
                text = "|".join(f"{_fmt(o)}:{w!r}" for o, w in values)
            else:
                raise UserError(f"mixture record has a bad entry {p!r}: {d!r}")
            dists[p] = _parse_value(p, text)
        return cls(tuple(dists.items()))

    # -- what each map is --------------------------------------------------------------------

    def draw(self, seed: int, index: int) -> dict:
        """The parameters of map ``index`` under global ``seed`` (a pure function of both)."""
        return {p: d.draw(draw_unit(seed, index, p)) for p, d in self.dists}

    def hamiltonian(self, seed: int, index: int):
        """The Hamiltonian of map ``index``: its model, in its field (that fraction of its own
        saturation field), on its boundary (Type I only)."""
        from spinsr_tf.physics import (TypeI, TypeII, saturation_field, with_boundary,
                                       with_field)

        v = self.draw(seed, index)
        if v["type"] == "I":
            ham = TypeI(dmi=v["dmi"], dmi_kind=v["dmi_kind"])
        else:
            k = v["k_eff"] + SHAPE * v["dipolar"] if "k_eff" in v else v["anisotropy"]
            ham = TypeII(dipolar=v["dipolar"], anisotropy=k)
        hz = v["field"] * saturation_field(ham)
        if v["boundary"] == "open" and not ham.terms().dipolar:
            ham = with_boundary(ham, "open")
        return with_field(ham, hz)

    def schedule(self, hamiltonian, overrides: Mapping | None = None):
        """The map's schedule: its model's defaults (``schedule_defaults()``), then
        ``overrides`` (e.g. ``{"sweeps": 100}``) for every map alike."""
        from spinsr_tf.physics import Schedule

        return Schedule(**{**hamiltonian.schedule_defaults(), **dict(overrides or {})})

    @property
    def dipolar(self) -> float:
        """The largest dipolar strength a map can have (0 without Type II): for the memory
        estimate of :func:`spinsr_tf.data.generate.memory_estimate`."""
        return max(self["dipolar"].values()) if "II" in self["type"].values() else 0.0

    def describe(self) -> str:
        return f"mixture {self.name!r}" if self.name else f"mixture {self.spec()}"

    def anneal(self, size: int, seed: int, indices, overrides: Mapping | None = None
               ) -> np.ndarray:
        """Anneal maps ``indices``, each with its own Hamiltonian and schedule: ``(n, size,
        size, 3)`` float32. One map per call of :func:`spinsr_tf.physics.anneal` (whose random
        numbers also come from ``(seed, index)``), so map k is the same in any block."""
        from spinsr_tf.physics import anneal

        indices = [int(k) for k in indices]
        out = np.empty((len(indices), size, size, 3), dtype=np.float32)
        for j, k in enumerate(indices):
            ham = self.hamiltonian(seed, k)
            out[j] = anneal(ham, size, seed, [k], schedule=self.schedule(ham, overrides))[0]
        return out

    def records(self, seed: int, indices, overrides: Mapping | None = None) -> np.ndarray:
        """Per-map records (:data:`MAP_DTYPE`) of maps ``indices``."""
        recs = []
        for k in indices:
            ham = self.hamiltonian(seed, int(k))
            recs.append(map_record(ham, self.schedule(ham, overrides)))
        return np.concatenate(recs) if recs else np.zeros(0, MAP_DTYPE)


def parse_mixture(spec) -> Mixture:
    """:meth:`Mixture.parse` (a :class:`Mixture` is returned unchanged)."""
    return spec if isinstance(spec, Mixture) else Mixture.parse(spec)


def draw_unit(seed: int, index: int, parameter: str) -> float:
    """A float in [0, 1) for ``parameter`` of map ``index`` under ``seed``: its own stream,
    keyed by the parameter's name, so adding a parameter to a mixture leaves the others' draws
    unchanged, and independent of the annealing's lanes (which start from the same key)."""
    salt = zlib.crc32(parameter.encode())
    x = splitmix64(splitmix64(sample_key(int(seed), int(index)) ^ (salt << 32 | salt)))
    return (x >> 11) * 2.0 ** -53


#: One record per map: the Hamiltonian (``to_attrs()`` keys; Type I maps have dipolar =
#: anisotropy = 0, Type II maps dmi = 0 and dmi_kind "") and the schedule it was annealed with.
MAP_DTYPE = np.dtype([
    ("type", "S2"), ("J", "f8"), ("dmi", "f8"), ("dmi_kind", "S11"), ("dipolar", "f8"),
    ("anisotropy", "f8"), ("dipolar_form", "S8"), ("dipolar_images", "S9"),
    ("field_x", "f8"), ("field_y", "f8"), ("field_z", "f8"), ("boundary", "S8"),
    ("helix_period", "f8"), ("t_start", "f8"), ("t_end", "f8"), ("sweeps", "i8"),
    ("relax_sweeps", "i8"),
])


def map_record(hamiltonian, schedule) -> np.ndarray:
    """The :data:`MAP_DTYPE` record (shape (1,)) of one map's Hamiltonian and schedule."""
    attrs = {"dmi": 0.0, "dmi_kind": "", "dipolar": 0.0, "anisotropy": 0.0,
             "dipolar_form": "", "dipolar_images": "", "field_x": 0.0, "field_y": 0.0,
             "field_z": 0.0, "boundary": "periodic", **hamiltonian.to_attrs()}
    period = getattr(hamiltonian, "helix_period", None)
    attrs["helix_period"] = period() if callable(period) else math.inf
    for key in ("t_start", "t_end", "sweeps", "relax_sweeps"):
        attrs[key] = getattr(schedule, key)
    rec = np.zeros(1, MAP_DTYPE)
    for key in MAP_DTYPE.names:
        value = attrs[key]
        rec[key] = value.encode() if isinstance(value, str) else value
    return rec


def record_hamiltonian(record):
    """The Hamiltonian of one :data:`MAP_DTYPE` record (inverse of :func:`map_record`)."""
    from spinsr_tf.physics import hamiltonian_from_attrs

    attrs = {}
    for key in MAP_DTYPE.names:
        value = record[key]
        value = value.decode() if isinstance(value, bytes) else value.item()
        if value != "":
            attrs[key] = value
    return hamiltonian_from_attrs(attrs)
