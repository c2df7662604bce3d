"""The two model Hamiltonians, as small immutable parameter sets.

Units: every coupling is in units of the exchange scale (energies in J = 1 by default), and the
temperature of :mod:`~spinsr_tf.physics.annealing` in the same units (k_B = 1). Spins are unit
3D vectors on a periodic square lattice; ``spins[i, j]`` is the site at x = j, y = i and the
components (Sx, Sy, Sz) are in that same frame, so the bond to the right is +x̂ and the bond to
the next row is +ŷ.

Type I (labyrinths, chiral)::

    H = -J Σ_<ij> Si·Sj + Σ_<ij> Dij·(Si × Sj)

over nearest-neighbour pairs, each counted once and oriented from i to j = i + r̂ (r̂ = +x̂ or +ŷ).
Interfacial (Néel) DMI: Dij = dmi (ẑ × r̂ij); bulk (Bloch) DMI: Dij = dmi r̂ij. At T = 0 the
ground state is a helix of wavevector q = arctan(dmi / J) per site, period 2π / q ≈ 21.6 sites for
dmi = 0.3.

Type II (out-of-plane domains and walls)::

    H = -J Σ_<ij> Si·Sj + Ddip Σ_{i<j} [Si·Sj - c (Si·r̂)(Sj·r̂)] / r³ - K Σ_i Siz²

with c = 3 (``dipolar_form="standard"``, the physical dipole-dipole energy, default) or c = 1
(``"printed"``, as the paper's formula reads). With c = 3 the shape anisotropy of a uniform film
nearly cancels K = 0.215, leaving the small effective anisotropy K_eff ≈ 0.01 that produces
domains separated by narrow walls. The dipolar sum runs over all periodic images
(``dipolar_images="converged"``, default) or the minimum image only (``"minimum"``, the form of
data made before the image sum existed); see :mod:`~spinsr_tf.physics.dipolar`.

The interface (:class:`Hamiltonian`): each Hamiltonian states its :class:`Terms` (the
coefficients that :mod:`~spinsr_tf.physics.energy`, :mod:`~spinsr_tf.physics.keras_energy`, the
annealing kernels and the L-BFGS relaxation evaluate), which lattice operations with co-rotated
spins keep its energy (:meth:`Hamiltonian.keeps`), its parameters (:meth:`Hamiltonian.to_attrs`
and :func:`hamiltonian_from_attrs`, a flat dict round trip) and its name in :data:`REGISTRY`.
Callers ask the object; none checks its class. A Zeeman field is added to any of them by
:func:`spinsr_tf.physics.zeeman.with_field`.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Callable, ClassVar, Mapping, Union

import numpy as np

from spinsr_tf.base.checks import check_real
from spinsr_tf.base.errors import UserError

DMI_KINDS = ("interfacial", "bulk")
DIPOLAR_FORMS = ("standard", "printed")
DIPOLAR_IMAGES = ("converged", "minimum")
#: Lattice boundaries: periodic (a torus) or open (a finite film, no bonds across its edges).
BOUNDARIES = ("periodic", "open")

#: Relaxation cap, over-relaxation factor and annealing sweeps of the Type II default schedule
#: (see :func:`spinsr_tf.physics.annealing.default_schedule`).
TYPE_II_RELAX_SWEEPS = 200
TYPE_II_RELAX_OMEGA = 1.9
TYPE_II_SWEEPS = 400


def _choice(name: str, value, choices: tuple) -> str:
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return str(value)


_ZERO3 = (0.0, 0.0, 0.0)


@dataclasses.dataclass(frozen=True)
class Terms:
    """The coefficients of every term a Hamiltonian here can have, units of J::

        H = -J Σ_<ij> Si·Sj + Σ_<ij> Dij·(Si × Sj) - K Σ_i Siz² - Σ_i h·Si
            + Ddip Σ_{i<j} [Si·Sj - c (Si·r̂)(Sj·r̂)] / r³

    This is what the evaluators take (NumPy energy and field, the Keras energy, the annealing
    kernels, the L-BFGS relaxation), so a Hamiltonian built from these terms needs no change to
    any of them. Tuples, so that the record is hashable (caches key on it).

    Parameters
    ----------
    J : exchange.
    dmi : ``(D_x, D_y)`` flattened, 6 numbers: the DMI vectors of the bonds i → i + x̂, i → i + ŷ.
    anisotropy : K (K > 0 favours ±ẑ).
    field : Zeeman field h = (hx, hy, hz); E_Z = -h·S per site, so a spin along h is favoured.
    dipolar : Ddip >= 0; ``dipolar_factor`` the c above; ``dipolar_images`` the periodic image
        sum (:mod:`~spinsr_tf.physics.dipolar`).
    boundary : ``"periodic"`` or ``"open"``: an open film has no exchange or DMI bonds across its
        edges (periodic dipolar sums only, so no dipolar term).
    """

    J: float = 1.0
    dmi: tuple = (0.0,) * 6
    anisotropy: float = 0.0
    field: tuple = _ZERO3
    dipolar: float = 0.0
    dipolar_factor: float = 3.0
    dipolar_images: str = "converged"
    boundary: str = "periodic"

    def __post_init__(self):
        _choice("boundary", self.boundary, BOUNDARIES)
        if self.boundary == "open" and self.dipolar:
            raise UserError("open boundaries need a Hamiltonian without a dipolar term (the "
                            "dipolar sums are periodic)")
        object.__setattr__(self, "dmi", tuple(float(v) for v in self.dmi))
        object.__setattr__(self, "field", tuple(float(v) for v in self.field))
        if len(self.dmi) != 6 or len(self.field) != 3:
            raise UserError(f"terms need 6 DMI and 3 field components, got {self.dmi!r}, "
                            f"{self.field!r}")

    def dmi_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(D_x, D_y)``, each shape (3,) float64."""
        d = np.asarray(self.dmi, dtype=np.float64)
        return d[:3], d[3:]

    @property
    def has_dmi(self) -> bool:
        return any(self.dmi)

    @property
    def has_field(self) -> bool:
        return any(self.field)

    @property
    def open(self) -> bool:
        return self.boundary == "open"

    def field_vector(self) -> np.ndarray:
        """The Zeeman field h, shape (3,) float64, units of J."""
        return np.asarray(self.field, dtype=np.float64)


def _bond_dmi(terms: Terms, r: np.ndarray) -> np.ndarray:
    """D of the bond along the in-plane unit lattice vector ``r`` (±x̂ or ±ŷ): D(−r̂) = −D(r̂)."""
    dx, dy = terms.dmi_vectors()
    return dx * r[0] + dy * r[1]


def terms_keep(terms: Terms, spin_matrix, lattice_matrix) -> bool:
    """Whether H is invariant when positions move by ``lattice_matrix`` A (2×2, x then y, an
    element of the square's point group) and spins by ``spin_matrix`` P (3×3 orthogonal).

    Term by term (docstring of :mod:`spinsr_tf.nn.symmetry` for the derivation): exchange always;
    DMI iff ``D(A r̂) = det(P) P D(r̂)`` for r̂ = x̂, ŷ; anisotropy iff P ẑ = ±ẑ; dipolar iff P's
    in-plane block is ±A and P ẑ = ±ẑ; Zeeman iff P h = h.
    """
    P = np.asarray(spin_matrix, dtype=np.float64)
    A = np.asarray(lattice_matrix, dtype=np.float64)
    close = lambda a, b: bool(np.allclose(a, b, rtol=0.0, atol=1e-12))  # noqa: E731
    z_axis = close(P[2, :2], 0.0) and close(P[:2, 2], 0.0)
    if terms.has_dmi:
        det = np.linalg.det(P)
        for r in np.eye(2):
            if not close(_bond_dmi(terms, A @ r), det * P @ _bond_dmi(terms, r)):
                return False
    if terms.anisotropy and not z_axis:
        return False
    if terms.dipolar and not (z_axis and (close(P[:2, :2], A) or close(P[:2, :2], -A))):
        return False
    if terms.has_field and not close(P @ terms.field_vector(), terms.field_vector()):
        return False
    return True


class Hamiltonian(abc.ABC):
    """What every Hamiltonian says about itself; subclasses are frozen dataclasses.

    ``name`` is its key in :data:`REGISTRY` (the physics-prior and CLI name), ``code`` the
    ``type`` attribute it writes to files (``"I"``, ``"II"``).
    """

    name: ClassVar[str] = ""
    code: ClassVar[str] = ""

    @abc.abstractmethod
    def terms(self) -> Terms:
        """The coefficients of its terms (units of J): everything the evaluators need."""

    @property
    def kind(self) -> str:
        """Registry name of the model (``"typeI"``, ``"typeII"``); a Zeeman field keeps it."""
        return self.name

    def describe(self) -> str:
        """A few words for messages, e.g. ``"Type I with bulk DMI"``."""
        return self.name

    def parameter_names(self) -> tuple:
        return tuple(f.name for f in dataclasses.fields(self))

    def params(self) -> dict:
        """Its constructor arguments (floats and strings)."""
        return {name: getattr(self, name) for name in self.parameter_names()}

    def to_attrs(self) -> dict[str, Union[str, float]]:
        """Flat, HDF5-attribute and JSON friendly parameters, with ``"type"``; inverse:
        :func:`hamiltonian_from_attrs`."""
        return {"type": self.code, **self.params()}

    @classmethod
    def from_attrs(cls, attrs: Mapping) -> "Hamiltonian":
        """Its own keys of ``attrs`` (others ignored), values as HDF5 returns them."""
        kwargs = {}
        for field in dataclasses.fields(cls):
            if field.name in attrs:
                value = attrs[field.name]
                kwargs[field.name] = (_text(value) if isinstance(field.default, str)
                                      else _scalar(value))
        return cls(**kwargs)

    def replace(self, **changes) -> "Hamiltonian":
        """A copy with some parameters changed (validated; unknown names are a UserError)."""
        names = self.parameter_names()
        for key in changes:
            if key not in names:
                raise UserError(f"{self.describe()} has no parameter {key!r} "
                                f"(parameters: {', '.join(sorted(names))})")
        return dataclasses.replace(self, **changes)

    def keeps(self, spin_matrix, lattice_matrix) -> bool:
        """Whether the energy is invariant under the lattice operation A = ``lattice_matrix``
        (2×2) with spins mixed by P = ``spin_matrix`` (3×3): :func:`terms_keep`."""
        return terms_keep(self.terms(), spin_matrix, lattice_matrix)

    @property
    def translation_symmetric(self) -> bool:
        """Whether lattice translations keep the energy (periodic boundaries; not an open film)."""
        return not self.terms().open

    @property
    def flip_symmetric(self) -> bool:
        """Whether the global flip S → −S keeps the energy (false in a field)."""
        return self.keeps(-np.eye(3), np.eye(2))

    def schedule_defaults(self) -> dict:
        """Overrides of :class:`~spinsr_tf.physics.annealing.Schedule` defaults that give this
        model's intended texture (see :func:`~spinsr_tf.physics.annealing.default_schedule`)."""
        return {}


class Wrapped(Hamiltonian):
    """A Hamiltonian made of ``base`` plus one term or condition (a Zeeman field, an open film).

    Subclasses are frozen dataclasses with a ``base`` field; they state their own parameters in
    :meth:`own_params` and change :meth:`terms`. Everything else — the model's name and file
    code, its schedule, the parameters and methods of ``base`` (``dmi``, ``helix_period``…) —
    is the base model's, so a wrapped model reads, anneals and is recorded as its base plus
    its own keys.
    """

    base: Hamiltonian

    def own_params(self) -> dict:
        """The wrapper's own parameters, as recorded beside the base model's."""
        raise NotImplementedError

    def __getattr__(self, attr):
        if attr.startswith("_") or attr in self.__dataclass_fields__:
            raise AttributeError(attr)
        return getattr(self.base, attr)

    @property
    def kind(self) -> str:
        return self.base.kind

    @property
    def code(self) -> str:
        return self.base.code

    def parameter_names(self) -> tuple:
        return self.base.parameter_names() + tuple(self.own_params())

    def params(self) -> dict:
        return {**self.base.params(), **self.own_params()}

    def to_attrs(self) -> dict:
        return {**self.base.to_attrs(), **self.own_params()}

    def schedule_defaults(self) -> dict:
        return self.base.schedule_defaults()


#: Registered Hamiltonians by name; ``type`` codes of files map through :data:`CODES`.
REGISTRY: dict[str, type] = {}
CODES: dict[str, str] = {}
#: Functions ``(hamiltonian, attrs) -> hamiltonian`` that add optional terms recorded in attrs
#: (e.g. a Zeeman field), applied in order by :func:`hamiltonian_from_attrs`.
ATTR_EXTENSIONS: list[Callable] = []


def register(cls):
    """Class decorator: add a :class:`Hamiltonian` to :data:`REGISTRY` under ``cls.name``."""
    REGISTRY[cls.name] = cls
    if cls.code:
        CODES[cls.code] = cls.name
    return cls


@register
@dataclasses.dataclass(frozen=True)
class TypeI(Hamiltonian):
    """Exchange + Dzyaloshinskii-Moriya interaction (labyrinth textures).

    Parameters
    ----------
    J : nearest-neighbour exchange (J > 0 ferromagnetic), units of energy.
    dmi : DMI strength |D| in units of J (a negative value reverses the chirality).
    dmi_kind : ``"interfacial"`` (Néel, Dij = |D| ẑ × r̂ij) or ``"bulk"`` (Bloch, Dij = |D| r̂ij).
    """

    J: float = 1.0
    dmi: float = 0.3
    dmi_kind: str = "interfacial"
    name: ClassVar[str] = "typeI"
    code: ClassVar[str] = "I"

    def __post_init__(self):
        object.__setattr__(self, "J", check_real("J", self.J))
        object.__setattr__(self, "dmi", check_real("dmi", self.dmi))
        object.__setattr__(self, "dmi_kind", _choice("dmi_kind", self.dmi_kind, DMI_KINDS))

    def dmi_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """DMI vectors ``(D_x, D_y)`` of the bonds i → i + x̂ and i → i + ŷ, each shape (3,) float64."""
        if self.dmi_kind == "interfacial":
            return np.array([0.0, self.dmi, 0.0]), np.array([-self.dmi, 0.0, 0.0])
        return np.array([self.dmi, 0.0, 0.0]), np.array([0.0, self.dmi, 0.0])

    def helix_period(self) -> float:
        """T = 0 helix period 2π / arctan(|dmi| / J) in lattice sites (inf without DMI)."""
        q = math.atan2(abs(self.dmi), abs(self.J))
        return math.inf if q == 0 else 2 * math.pi / q

    def terms(self) -> Terms:
        return Terms(J=self.J, dmi=tuple(np.concatenate(self.dmi_vectors())))

    def describe(self) -> str:
        return f"Type I with {self.dmi_kind} DMI"


@register
@dataclasses.dataclass(frozen=True)
class TypeII(Hamiltonian):
    """Exchange + dipole-dipole interaction + perpendicular anisotropy (domains and walls).

    Parameters
    ----------
    J : nearest-neighbour exchange, units of energy.
    dipolar : dipolar strength Ddip >= 0 in units of J: two parallel spins one site apart,
        both perpendicular to their bond, have dipolar energy ``dipolar``.
    anisotropy : uniaxial anisotropy K in units of J (K > 0 favours ±ẑ).
    dipolar_form : ``"standard"`` (factor 3, default) or ``"printed"`` (factor 1, the paper's
        formula as printed).
    dipolar_images : ``"converged"`` (lattice sum over all periodic images, default: K_eff does
        not depend on the box) or ``"minimum"`` (minimum image, box-dependent K_eff).
    """

    J: float = 1.0
    dipolar: float = 0.03
    anisotropy: float = 0.215
    dipolar_form: str = "standard"
    dipolar_images: str = "converged"
    name: ClassVar[str] = "typeII"
    code: ClassVar[str] = "II"

    def __post_init__(self):
        object.__setattr__(self, "J", check_real("J", self.J))
        object.__setattr__(self, "dipolar", check_real("dipolar", self.dipolar))
        if self.dipolar < 0:
            raise UserError(f"dipolar must be >= 0, got {self.dipolar!r}")
        object.__setattr__(self, "anisotropy", check_real("anisotropy", self.anisotropy))
        object.__setattr__(self, "dipolar_form",
                           _choice("dipolar_form", self.dipolar_form, DIPOLAR_FORMS))
        object.__setattr__(self, "dipolar_images",
                           _choice("dipolar_images", self.dipolar_images, DIPOLAR_IMAGES))

    @property
    def dipolar_factor(self) -> float:
        """The c in ``[Si·Sj - c (Si·r̂)(Sj·r̂)] / r³``: 3 (standard) or 1 (printed)."""
        return 3.0 if self.dipolar_form == "standard" else 1.0

    def terms(self) -> Terms:
        return Terms(J=self.J, anisotropy=self.anisotropy, dipolar=self.dipolar,
                     dipolar_factor=self.dipolar_factor, dipolar_images=self.dipolar_images)

    def describe(self) -> str:
        return "Type II"

    @classmethod
    def from_attrs(cls, attrs: Mapping) -> "TypeII":
        """As :meth:`Hamiltonian.from_attrs`; attributes without ``dipolar_images`` were written
        before the image sum existed and describe the minimum-image form."""
        ham = super().from_attrs(attrs)
        return ham if "dipolar_images" in attrs else dataclasses.replace(
            ham, dipolar_images="minimum")

    def schedule_defaults(self) -> dict:
        return {"t_start": 2.0, "t_end": 0.05, "sweeps": TYPE_II_SWEEPS,
                "relax_sweeps": TYPE_II_RELAX_SWEEPS, "relax_omega": TYPE_II_RELAX_OMEGA}


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


def _scalar(value):
    if isinstance(value, np.ndarray) and value.shape == ():
        return value.item()
    return value


def hamiltonian_from_attrs(attrs: Mapping) -> Hamiltonian:
    """Rebuild a Hamiltonian from :meth:`~Hamiltonian.to_attrs` output.

    ``type`` is a file code (``"I"``, ``"II"``) or a registry name (``"typeI"``, ``"typeII"``).
    Accepts values as HDF5 returns them (NumPy scalars, bytes); keys other than the Hamiltonian's
    own are ignored, so a file's whole attribute set can be passed. Optional terms recorded in
    the attributes (a Zeeman field) are added by :data:`ATTR_EXTENSIONS`; files without them
    have none.
    """
    if not isinstance(attrs, Mapping) or "type" not in attrs:
        raise UserError("hamiltonian attributes must be a mapping with a 'type' key ('I' or 'II')")
    kind = _text(attrs["type"])
    cls = REGISTRY.get(CODES.get(kind, kind))
    if cls is None:
        raise UserError(f"hamiltonian type must be one of "
                        f"{', '.join(map(repr, list(CODES) + list(REGISTRY)))}, got {kind!r}")
    ham = cls.from_attrs(attrs)
    for extend in ATTR_EXTENSIONS:
        ham = extend(ham, attrs)
    return ham


def hamiltonian_by_name(name: str, **params) -> Hamiltonian:
    """``hamiltonian_by_name("typeI", dmi=0.2)``: a registered model (name or file code) with its
    parameters; an unknown name or parameter is a UserError."""
    cls = REGISTRY.get(CODES.get(name, name))
    if cls is None:
        raise UserError(f"Hamiltonian must be one of {', '.join(map(repr, REGISTRY))}, "
                        f"got {name!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise UserError(f"{name} has no parameter {unknown[0]!r} (parameters: {', '.join(names)})")
    return cls(**params)


def check_hamiltonian(hamiltonian) -> Hamiltonian:
    """Return ``hamiltonian`` if it is a :class:`Hamiltonian`, else raise UserError."""
    if not isinstance(hamiltonian, Hamiltonian):
        raise UserError(f"hamiltonian must be a Hamiltonian ({', '.join(REGISTRY)}), "
                        f"got {hamiltonian!r}")
    return hamiltonian
