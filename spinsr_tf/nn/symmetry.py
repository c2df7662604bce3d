"""Symmetries of the periodic square lattice acting on spin maps, as exact lattice operations.

A map is ``(N, H, W, C)`` channels-last: C = 3 for spins (Sx, Sy, Sz), C = 1 for a scalar Sz
image; ``x[:, i, j]`` is the site at x = j, y = i and the components are in that frame (x̂, ŷ, ẑ
is right-handed, ẑ = x̂ × ŷ). An element ``g`` is a point operation A (quarter turns R^k and the
mirror M) about the map's centre, then a periodic translation t, with a spin matrix P::

    (T_g S)(r) = P · S(A⁻¹(r − t − c) + c),   c = ((W − 1)/2, (H − 1)/2).

Centring the point operations costs nothing on a periodic lattice (it is a translation) and makes
them exact flips / rotations of a map with borders. There a translation is not a roll but a crop
of the map at an HR offset, compared away from the border: that belongs to the loss that uses
it; pass ``translations=False`` here and crop after.

Which P: a term of the energy survives if it is invariant when positions move with A and spins with
P. Exchange (Si·Sj) survives any orthogonal P. The DMI term of bond r̂ is Dij·(Si×Sj) and
``P a × P b = det(P) P (a × b)``, so it survives iff ``D(A r̂) = det(P) P D(r̂)``:

- quarter turn R (x̂ → ŷ, i.e. ``out[i, j] = in[H−1−j, i]``, clockwise on screen since y points
  down): P = R about ẑ, (Sx, Sy) → (−Sy, Sx). det P = 1 and R commutes with ẑ×, so both
  D = d ẑ×r̂ (interfacial) and D = d r̂ (bulk) survive. Rotating the spins the other way, or not
  at all, reverses or scrambles D: not a symmetry.
- mirror M (x → −x, columns reversed): P = diag(−1, 1, 1), the in-plane spin mirrored with the
  positions and Sz kept. det P = −1 and −P(ẑ × r̂) = ẑ × M r̂: interfacial DMI survives; bulk
  needs −P r̂ = M r̂ and fails (the mirror reverses the chirality).
- flip-over: M with P = diag(−1, 1, −1) = the mirror followed by Sz → −Sz, i.e. the 180° turn
  about the in-plane ŷ axis that turns the film upside down. det P = 1, P r̂ = M r̂: bulk DMI
  survives, interfacial (which needs ẑ ↦ ẑ) does not.
- zflip: Sz → −Sz at fixed positions (= mirror ∘ flip-over): only where there is no DMI.
- flip: S → −S (P = −1, det = −1, −P = 1): every term but the Zeeman field −h·S is quadratic in
  S, so it is a symmetry unless there is a field (which also breaks zflip and the flip-over for
  h ∥ ẑ). The Hamiltonian answers each case itself (``Hamiltonian.keeps(P, A)``).

The anisotropy −K Sz² survives every P above; the dipolar term [Si·Sj − c(Si·r̂)(Sj·r̂)]/r³
survives any P whose in-plane block equals the position map A (up to a common sign), which all of
the above are. A scalar Sz image sees only Sz: mirrors, flip-overs and zflip reduce to a mirror
and/or a sign change, which every Hamiltonian here keeps.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Mapping, Optional, Union

import keras
import numpy as np
from keras import ops

from spinsr_tf.base.checks import check_int, is_int
from spinsr_tf.base.errors import UserError
from spinsr_tf.physics.hamiltonians import check_hamiltonian, hamiltonian_from_attrs

#: The building blocks of a group, joined with "+" in a group name.
COMPONENTS = ("translations", "rotations", "mirrors", "flipovers", "zflip", "flip")

#: Named groups. "lattice" is every element the Hamiltonian keeps (mirrors where allowed, the
#: flip-overs instead under bulk DMI); "lattice-in-field" those of them a perpendicular field
#: keeps too (none that reverses Sz: no flip, no flip-overs), for a map with a net
#: magnetisation; any "+"-join of :data:`COMPONENTS` is accepted too.
IN_FIELD = "lattice-in-field"
GROUPS = ("lattice", IN_FIELD, "translations", "rotations", "translations+rotations",
          "translations+rotations+flip", "translations+rotations+mirrors", "mirrors", "flip",
          "identity")

# (mirror, zflip) pairs of the named reflection components.
_REFLECTION = {"mirrors": (True, False), "flipovers": (True, True), "zflip": (False, True)}
_ALL_PAIRS = ((False, False), (True, False), (True, True), (False, True))

# cos and sin of k quarter turns, k = 0..3.
_COS = (1, 0, -1, 0)
_SIN = (0, 1, 0, -1)


def _bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise UserError(f"{name} must be True or False, got {value!r}")
    return bool(value)


@dataclasses.dataclass(frozen=True)
class LatticeOp:
    """One static group element: mirror, then ``quarter_turns`` turns R (x̂ → ŷ) about the map's
    centre, then a periodic shift; spins move with the lattice (see the module docstring).

    Parameters
    ----------
    shift : (dy, dx)
        HR sites the map moves down and right: ``out[i, j] = in[i − dy, j − dx]`` (periodic).
    quarter_turns : int in 0..3
        Odd values need a square map.
    mirror : bool
        Reverse the columns (x → −x) and Sx.
    zflip : bool
        Reverse Sz (with ``mirror``: the 180° flip-over about ŷ).
    flip : bool
        S → −S.
    """

    shift: tuple = (0, 0)
    quarter_turns: int = 0
    mirror: bool = False
    zflip: bool = False
    flip: bool = False

    def __post_init__(self):
        shift = self.shift
        if not isinstance(shift, (tuple, list, np.ndarray)) or len(shift) != 2:
            raise UserError(f"shift must be a pair (dy, dx) of integers, got {shift!r}")
        object.__setattr__(self, "shift", (check_int("shift dy", shift[0]),
                                           check_int("shift dx", shift[1])))
        k = check_int("quarter_turns", self.quarter_turns)
        if not 0 <= k <= 3:
            raise UserError(f"quarter_turns must be in 0..3, got {k!r}")
        object.__setattr__(self, "quarter_turns", k)
        for name in ("mirror", "zflip", "flip"):
            object.__setattr__(self, name, _bool(name, getattr(self, name)))

    def _point(self, vx: int, vy: int) -> tuple[int, int]:
        """A (x, y): mirror, then k quarter turns."""
        c, s = _COS[self.quarter_turns], _SIN[self.quarter_turns]
        vx = -vx if self.mirror else vx
        return c * vx - s * vy, s * vx + c * vy

    def inverse(self) -> "LatticeOp":
        """The element undoing this one: A⁻¹ = A for a mirror, R^−k otherwise; t' = −A⁻¹ t."""
        k = self.quarter_turns if self.mirror else (-self.quarter_turns) % 4
        inv = LatticeOp((0, 0), k, self.mirror, self.zflip, self.flip)
        tx, ty = inv._point(self.shift[1], self.shift[0])
        return dataclasses.replace(inv, shift=(-ty, -tx))

    def __matmul__(self, other: "LatticeOp") -> "LatticeOp":
        """``g @ h`` applies h first: A = A_g A_h, t = A_g t_h + t_g, P = P_g P_h."""
        if not isinstance(other, LatticeOp):
            return NotImplemented
        k2 = other.quarter_turns if not self.mirror else -other.quarter_turns
        tx, ty = self._point(other.shift[1], other.shift[0])
        return LatticeOp((ty + self.shift[0], tx + self.shift[1]), (self.quarter_turns + k2) % 4,
                         self.mirror != other.mirror, self.zflip != other.zflip,
                         self.flip != other.flip)

    def reduced(self, height: int, width: int) -> "LatticeOp":
        """The same element with its shift taken modulo the map size."""
        return dataclasses.replace(self, shift=(self.shift[0] % height, self.shift[1] % width))

    def params(self) -> dict:
        """Its parameters in the form :func:`transform` takes (Python ints)."""
        return {"shift": self.shift, "quarter_turns": self.quarter_turns,
                "mirror": int(self.mirror), "zflip": int(self.zflip), "flip": int(self.flip)}


def _hamiltonian(hamiltonian):
    if hamiltonian is None:
        return None
    if isinstance(hamiltonian, Mapping):
        return hamiltonian_from_attrs(hamiltonian)
    return check_hamiltonian(hamiltonian)


def _matrices(quarter_turns: int, mirror: bool, zflip: bool, flip: bool):
    """The element's spin matrix P (3×3) and position matrix A (2×2, x then y)."""
    c, s = _COS[quarter_turns], _SIN[quarter_turns]
    mu, zeta, sign = (-1 if mirror else 1), (-1 if zflip else 1), (-1 if flip else 1)
    P = sign * np.array([[c * mu, -s, 0], [s * mu, c, 0], [0, 0, zeta]], dtype=np.float64)
    A = np.array([[c * mu, -s], [s * mu, c]], dtype=np.float64)
    return P, A


def _keeps(ham, channels: int, quarter_turns: int, mirror: bool, zflip: bool, flip: bool) -> bool:
    """Whether the element keeps the energy (the Hamiltonian answers, from its terms). A scalar
    Sz image sees only the sign of Sz: an element is kept if one with that sign is."""
    if ham is None:
        return channels == 1 or (mirror, zflip) in ((False, False), (True, False))
    if channels == 3:
        return ham.keeps(*_matrices(quarter_turns, mirror, zflip, flip))
    return any(ham.keeps(*_matrices(quarter_turns, mirror, z, f))
               for z in (False, True) for f in (False, True) if (z != f) == (zflip != flip))


def allowed_reflections(hamiltonian=None, channels: int = 3) -> tuple:
    """The (mirror, zflip) pairs that keep the energy, as a subgroup of Z2 × Z2.

    None (Hamiltonian unknown) assumes what every Hamiltonian here except bulk DMI and a field
    keeps.
    """
    ham = _hamiltonian(hamiltonian)
    return tuple(p for p in _ALL_PAIRS if _keeps(ham, channels, 0, *p, False))


def _flip_allowed(ham, channels: int) -> bool:
    """S → −S (Sz → −Sz for a scalar image): broken by a Zeeman field."""
    return _keeps(ham, channels, 0, False, False, True)


def _translations_allowed(ham, channels: int) -> bool:
    """Periodic shifts: not on an open film."""
    return ham is None or ham.translation_symmetric


def _rotations_allowed(ham, channels: int) -> bool:
    """Quarter turns (and so half turns): broken by an in-plane field."""
    return _keeps(ham, channels, 1, False, False, False)


def _describe(hamiltonian) -> str:
    return "this Hamiltonian" if hamiltonian is None else hamiltonian.describe()


def _closure(pairs) -> tuple:
    out = {(False, False)}
    for _ in range(2):
        out |= {(a[0] != b[0], a[1] != b[1]) for a in out | set(pairs) for b in out | set(pairs)}
    return tuple(p for p in _ALL_PAIRS if p in out)


@dataclasses.dataclass(frozen=True)
class SymmetryGroup:
    """A subgroup of the lattice's symmetry group: translations × quarter turns × reflections ×
    flip, each factor present or not (every element has one such decomposition, so drawing each
    factor uniformly draws the group uniformly).

    ``reflections`` lists the (mirror, zflip) pairs in the group (always with (False, False)).
    Quarter turns are k in 0..3 on a square map and k in {0, 2} otherwise.
    """

    name: str = "identity"
    translations: bool = False
    rotations: bool = False
    reflections: tuple = ((False, False),)
    flip: bool = False
    channels: int = 3

    def turns(self, height: int, width: int) -> tuple:
        """The quarter-turn counts available on an ``height × width`` map."""
        if not self.rotations:
            return (0,)
        return (0, 1, 2, 3) if height == width else (0, 2)

    def elements(self, height: int, width: int, shifts=None) -> list:
        """All elements on an ``height × width`` map (``shifts``: restrict the translations)."""
        if shifts is None:
            shifts = (itertools.product(range(height), range(width)) if self.translations
                      else [(0, 0)])
        elif not self.translations:
            shifts = [(0, 0)]
        return [LatticeOp(tuple(t), k, m, z, f)
                for t in shifts for k in self.turns(height, width)
                for m, z in self.reflections for f in ((False, True) if self.flip else (False,))]

    def contains(self, op: LatticeOp, height: int, width: int) -> bool:
        """Whether ``op`` is an element of this group on an ``height × width`` map."""
        return ((self.translations or op.reduced(height, width).shift == (0, 0))
                and op.quarter_turns in self.turns(height, width)
                and (op.mirror, op.zflip) in self.reflections and (self.flip or not op.flip))


def group_for(group: Union[str, SymmetryGroup] = "lattice", hamiltonian=None,
              channels: int = 3) -> SymmetryGroup:
    """The named group, checked against the interactions it must respect.

    Parameters
    ----------
    group : str or SymmetryGroup
        A name of :data:`GROUPS` or a "+"-join of :data:`COMPONENTS`. "lattice" takes every
        reflection the Hamiltonian keeps, and the rotations and the flip where it keeps them (a
        field breaks the flip); a named component it breaks (e.g. "mirrors" with bulk DMI,
        "flip" in a field) is a UserError, since training on it would teach the wrong chirality
        or magnetisation.
    hamiltonian : a Hamiltonian (TypeI, TypeII, either in a field), its ``to_attrs()`` dict,
        or None
        None: assume the symmetries of every Hamiltonian here except bulk DMI and a field.
    channels : 1 or 3
        A scalar Sz image (1) keeps mirrors under any Hamiltonian; its sign only without a
        field.
    """
    if isinstance(channels, bool) or channels not in (1, 3):
        raise UserError(f"channels must be 1 or 3, got {channels!r}")
    if isinstance(group, SymmetryGroup):
        if group.channels != channels:
            raise UserError(f"group was built for {group.channels} channel(s), got {channels}")
        return group
    if not isinstance(group, str) or not group:
        raise UserError(f"symmetry group must be a name, got {group!r}")
    ham = _hamiltonian(hamiltonian)
    allowed = allowed_reflections(ham, channels)
    if group == "identity":
        parts = []
    elif group in ("lattice", IN_FIELD):
        parts = [p for p, ok in (("translations", _translations_allowed),
                                 ("rotations", _rotations_allowed), ("flip", _flip_allowed))
                 if ok(ham, channels) and not (p == "flip" and group == IN_FIELD)]
    else:
        parts = group.split("+")
        unknown = [p for p in parts if p not in COMPONENTS]
        if unknown or len(set(parts)) != len(parts):
            raise UserError(f"symmetry group must be one of {', '.join(GROUPS)} or a '+'-join of "
                            f"{', '.join(COMPONENTS)}, got {group!r}")
    for p, ok in (("flip", _flip_allowed), ("rotations", _rotations_allowed),
                  ("translations", _translations_allowed)):
        if p in parts and not ok(ham, channels):
            raise UserError(f"symmetry group {group!r}: "
                            f"{'the flip is' if p == 'flip' else p + ' are'} not a symmetry "
                            f"of {_describe(ham)}")
    if group in ("lattice", IN_FIELD):
        pairs = (tuple(p for p in ((False, False), (True, False)) if p in allowed)
                 if channels == 1 else allowed)
        if group == IN_FIELD:
            pairs = tuple(p for p in pairs if not p[1])
    else:
        wanted = [_REFLECTION[p] for p in parts if p in _REFLECTION]
        for p in parts:
            if p in _REFLECTION and _REFLECTION[p] not in allowed:
                raise UserError(f"symmetry group {group!r}: {p} are not a symmetry of "
                                f"{_describe(ham)}")
        pairs = _closure(wanted)
        if any(p not in allowed for p in pairs):
            raise UserError(f"symmetry group {group!r} is not a symmetry of {_describe(ham)}")
    return SymmetryGroup(name=group, translations="translations" in parts,
                         rotations="rotations" in parts, reflections=pairs,
                         flip="flip" in parts, channels=channels)


# ---------------------------------------------------------------------------------------------
# Applying elements


def _numpy_apply(x: np.ndarray, op: LatticeOp) -> np.ndarray:
    """The NumPy reference: np.flip / np.rot90 / np.roll, spins mixed by P (exact)."""
    y = x[:, :, ::-1] if op.mirror else x
    y = np.rot90(y, op.quarter_turns, axes=(2, 1))      # out[i, j] = in[H-1-j, i] per turn
    y = np.roll(y, op.shift, axis=(1, 2))
    sign = -1 if op.flip else 1
    if x.shape[-1] == 1:
        return np.ascontiguousarray(y * (-sign if op.zflip else sign))
    c, s = _COS[op.quarter_turns], _SIN[op.quarter_turns]
    mu = -1 if op.mirror else 1
    sx, sy, sz = y[..., 0], y[..., 1], y[..., 2]
    out = np.stack([c * mu * sx - s * sy, s * mu * sx + c * sy, (-sz if op.zflip else sz)], -1)
    return (sign * out).astype(x.dtype, copy=False)


def _static_shape(x):
    shape = tuple(x.shape)
    if len(shape) != 4:
        raise UserError(f"spin maps must have shape (N, H, W, C), got {shape}")
    if shape[-1] not in (1, 3):
        raise UserError(f"spin maps must have C = 1 or 3 channels, got {shape}")
    return shape


def apply(x, op: LatticeOp):
    """Apply one static element to maps ``(N, H, W, C)``.

    NumPy in, NumPy out (any float dtype, exact); a tensor goes through :func:`transform`.
    """
    if not isinstance(op, LatticeOp):
        raise UserError(f"op must be a LatticeOp, got {op!r}")
    shape = _static_shape(x)
    if op.quarter_turns % 2 and None not in shape[1:3] and shape[1] != shape[2]:
        raise UserError(f"an odd number of quarter turns needs a square map, got "
                        f"{shape[1]}x{shape[2]}")
    if isinstance(x, np.ndarray):
        return _numpy_apply(x, op)
    return transform(x, op.params())


def transform(x, params: Mapping):
    """Apply elements given as integer parameters (tensors or ints), inside any graph.

    Parameters
    ----------
    x : tensor ``(N, H, W, C)``, C = 1 or 3; H, W may be unknown until run time.
    params : mapping
        ``shift`` (2,) or (N, 2) as (dy, dx); ``quarter_turns``, ``mirror``, ``zflip``, ``flip``
        () or (N,) with values 0..3 / 0..1. Rank 1 applies one element per sample.

    Returns
    -------
    tensor of the shape and dtype of ``x``. Positions move by one gather of computed indices
    (no shape-changing branch, so XLA and JAX see one static shape) and spin components by
    products with 0/±1, so the result is an exact permutation and sign change of ``x``.
    """
    x = ops.convert_to_tensor(x)
    channels = _static_shape(x)[-1]
    shape = ops.shape(x)
    h, w = shape[1], shape[2]
    shift = ops.cast(ops.convert_to_tensor(params["shift"]), "int32")
    k = ops.cast(ops.convert_to_tensor(params["quarter_turns"]), "int32")
    m, z, f = (ops.cast(ops.convert_to_tensor(params[n]), "int32")
               for n in ("mirror", "zflip", "flip"))
    per_sample = len(k.shape) == 1
    if per_sample:
        expand = lambda t: ops.reshape(t, (-1, 1, 1))           # noqa: E731
        dy, dx = expand(shift[:, 0]), expand(shift[:, 1])
        k, m, z, f = (expand(t) for t in (k, m, z, f))
    else:
        dy, dx = shift[0], shift[1]
    cos = ops.take(ops.convert_to_tensor(_COS, dtype="int32"), k)
    sin = ops.take(ops.convert_to_tensor(_SIN, dtype="int32"), k)
    mu = 1 - 2 * m
    rows = ops.arange(h, dtype="int32")[:, None]
    cols = ops.arange(w, dtype="int32")[None, :]
    # Undo the shift (periodic), then A⁻¹ = M^m R^-k about the centre in doubled coordinates.
    big_x = 2 * ops.mod(cols - dx, w) - (w - 1)
    big_y = 2 * ops.mod(rows - dy, h) - (h - 1)
    src_x = (mu * (cos * big_x + sin * big_y) + (w - 1)) // 2
    src_y = (cos * big_y - sin * big_x + (h - 1)) // 2
    index = src_y * w + src_x
    if per_sample:
        batch = ops.arange(shape[0], dtype="int32")[:, None, None]
        y = ops.take(ops.reshape(x, (-1, channels)), index + batch * (h * w), axis=0)
    else:
        y = ops.take(ops.reshape(x, (-1, h * w, channels)), index, axis=1)
    dtype = x.dtype
    sign = ops.cast(1 - 2 * f, dtype)
    zsign = ops.cast(1 - 2 * z, dtype)
    if per_sample:
        sign, zsign = sign[..., None], zsign[..., None]
    if channels == 1:
        return y * (sign * zsign)
    cos_mu = ops.cast(cos * mu, dtype)
    sin_mu = ops.cast(sin * mu, dtype)
    cos, sin = ops.cast(cos, dtype), ops.cast(sin, dtype)
    sx, sy, sz = y[..., 0], y[..., 1], y[..., 2]
    if per_sample:
        zsign = zsign[..., 0]
    out = ops.stack([cos_mu * sx - sin * sy, sin_mu * sx + cos * sy, zsign * sz], axis=-1)
    return out * sign


def _shift_range(shift_range, h, w):
    if shift_range is None:
        return h, w
    if isinstance(shift_range, (tuple, list)) and len(shift_range) == 2:
        ry, rx = shift_range
    else:
        ry = rx = shift_range
    ry, rx = check_int("shift_range", ry), check_int("shift_range", rx)
    if ry < 1 or rx < 1:
        raise UserError(f"shift_range must be >= 1, got {shift_range!r}")
    return ry, rx


def _check_shift_range(shift_range):
    _shift_range(shift_range, 1, 1)
    return None if shift_range is None else (
        tuple(int(v) for v in shift_range) if isinstance(shift_range, (tuple, list))
        else int(shift_range))


def random_params(x, group: SymmetryGroup, seed_generator, per_sample: bool = False,
                  shift_range=None) -> dict:
    """Draw a uniform random element of ``group`` for the maps ``x`` (tensors, in-graph).

    Shifts are uniform in [0, H) × [0, W), or [0, shift_range) (an int or a (ry, rx) pair);
    quarter turns in 0..3 when H == W (decided at run time if the size is unknown), else in
    {0, 2}. Draws use ``keras.random`` with ``seed_generator`` (a SeedGenerator: a new element per
    call, also under JAX tracing; an int: the same element every call). Integers come from
    ``randint(0, 2**30) mod range``, whose bias (≤ range / 2**30) is negligible.
    """
    if not isinstance(group, SymmetryGroup):
        raise UserError(f"group must be a SymmetryGroup (see group_for), got {group!r}")
    if not (isinstance(seed_generator, keras.random.SeedGenerator) or is_int(seed_generator)):
        raise UserError(f"seed_generator must be a keras.random.SeedGenerator or an int, "
                        f"got {seed_generator!r}")
    per_sample = _bool("per_sample", per_sample)
    shape = ops.shape(x)
    h, w = shape[1], shape[2]
    ry, rx = _shift_range(shift_range, h, w)
    size = (shape[0],) if per_sample else ()
    draw = keras.random.randint((5,) + size, 0, 2 ** 30, dtype="int32", seed=seed_generator)
    zero = draw[0] * 0
    if group.translations:
        dy, dx = ops.mod(draw[0], ry), ops.mod(draw[1], rx)
    else:
        dy = dx = zero
    if not group.rotations:
        k = zero
    elif isinstance(h, int) and isinstance(w, int):
        k = ops.mod(draw[2], 4) if h == w else 2 * ops.mod(draw[2], 2)
    else:
        k = ops.where(ops.equal(h, w), ops.mod(draw[2], 4), 2 * ops.mod(draw[2], 2))
    pairs = group.reflections
    choice = ops.mod(draw[3], len(pairs))
    m = ops.take(ops.convert_to_tensor([int(p[0]) for p in pairs], dtype="int32"), choice)
    z = ops.take(ops.convert_to_tensor([int(p[1]) for p in pairs], dtype="int32"), choice)
    f = ops.mod(draw[4], 2) if group.flip else zero
    return {"shift": ops.stack([dy, dx], axis=-1), "quarter_turns": k, "mirror": m,
            "zflip": z, "flip": f}


def random_transform(x, group: SymmetryGroup, seed_generator, per_sample: bool = False,
                     shift_range=None, return_params: bool = False):
    """``T_g x`` for a random ``g`` of ``group``: one element for the batch, or one per sample.

    See :func:`random_params` for the distribution and :func:`transform` for the action. With
    ``return_params`` returns ``(maps, params)``; :func:`op_from_params` turns concrete params
    into :class:`LatticeOp` objects.
    """
    x = ops.convert_to_tensor(x)
    if group.channels != _static_shape(x)[-1]:
        raise UserError(f"group was built for {group.channels} channel(s), maps have "
                        f"{x.shape[-1]}")
    params = random_params(x, group, seed_generator, per_sample, shift_range)
    y = transform(x, params)
    return (y, params) if return_params else y


def op_from_params(params: Mapping, sample: Optional[int] = None) -> LatticeOp:
    """The :class:`LatticeOp` of concrete params (of sample ``sample`` when drawn per sample)."""
    p = {k: np.asarray(ops.convert_to_numpy(v)) for k, v in params.items()}
    if sample is not None:
        p = {k: v[sample] for k, v in p.items()}
    return LatticeOp(tuple(int(v) for v in p["shift"]), int(p["quarter_turns"]),
                     bool(p["mirror"]), bool(p["zflip"]), bool(p["flip"]))


#: The key of a layer's random state among its saved variables (:class:`SavedSeeds`).
SEED_STATE = "seed_state"


class SavedSeeds:
    """Mixin for a layer that draws from ``self._seeds`` (a ``keras.random.SeedGenerator``): the
    generator's state is saved and loaded with the layer's variables.

    Keras saves a layer's variables, not its seed generators, so a training graph loaded from a
    checkpoint would draw epoch 1's random numbers again; with the state in the file a resumed
    run draws exactly what an uninterrupted one does. A file saved without it (an older
    checkpoint) loads with the generator at its seed's start, as it did then.
    """

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[SEED_STATE] = self._seeds.state

    def load_own_variables(self, store):
        keys = list(store.keys())
        if SEED_STATE in keys:
            self._seeds.state.assign(np.asarray(store[SEED_STATE]))
        super().load_own_variables({k: store[k] for k in keys if k != SEED_STATE})


@keras.saving.register_keras_serializable(package="spinsr_tf")
class RandomLatticeSymmetry(SavedSeeds, keras.layers.Layer):
    """``T_g x`` for a fresh random symmetry ``g`` at every call, in training and inference.

    It belongs to a loss (equivariant imaging), not to data augmentation, so it never turns
    itself off.

    Parameters
    ----------
    group : str
        See :func:`group_for`.
    hamiltonian : a Hamiltonian (TypeI, TypeII, either in a field), its ``to_attrs()`` dict,
        or None
        Interactions the group must respect.
    channels : 1, 3 or None
        None: taken from the input when the layer is built.
    per_sample : bool
        One element per sample instead of one per batch.
    translations : bool
        False drops the translations (maps with borders, where they are crops).
    shift_range : int, (int, int) or None
        Shifts drawn in [0, shift_range) instead of the whole map.
    seed : int or None
    """

    def __init__(self, group: str = "lattice", hamiltonian=None, channels=None,
                 per_sample: bool = False, translations: bool = True, shift_range=None,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        ham = _hamiltonian(hamiltonian)
        if not isinstance(group, str):
            raise UserError(f"symmetry group must be a name, got {group!r}")
        if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
            raise UserError(f"channels must be 1, 3 or None, got {channels!r}")
        group_for(group, ham, channels or 1)      # C = 3 may refuse more; checked at build
        if seed is not None:
            check_int("seed", seed)
        self.group = group
        self.hamiltonian = None if ham is None else ham.to_attrs()
        self.channels = channels
        self.per_sample = _bool("per_sample", per_sample)
        self.translations = _bool("translations", translations)
        self.shift_range = _check_shift_range(shift_range)
        self.seed = None if seed is None else int(seed)
        self._seeds = keras.random.SeedGenerator(seed)
        self._group = None
        if channels is not None:
            self._group = self._resolve(channels)

    def _resolve(self, channels):
        group = group_for(self.group, self.hamiltonian, channels)
        return dataclasses.replace(group, translations=group.translations and self.translations)

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.channels is not None and channels != self.channels:
            raise UserError(f"RandomLatticeSymmetry expects {self.channels} channel(s), "
                            f"got {channels}")
        self._group = self._resolve(channels)
        super().build(input_shape)

    def call(self, inputs):
        return random_transform(inputs, self._group, self._seeds, self.per_sample,
                                self.shift_range)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "group": self.group, "hamiltonian": self.hamiltonian,
                "channels": self.channels, "per_sample": self.per_sample,
                "translations": self.translations,
                "shift_range": (list(self.shift_range) if isinstance(self.shift_range, tuple)
                                else self.shift_range),
                "seed": self.seed}


__all__ = ["COMPONENTS", "GROUPS", "LatticeOp", "RandomLatticeSymmetry", "SEED_STATE", "SavedSeeds",
           "SymmetryGroup", "allowed_reflections", "apply", "group_for", "op_from_params",
           "random_params", "random_transform", "transform"]
