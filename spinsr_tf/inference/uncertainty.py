"""Uncertainty maps: per HR pixel, how far the SR map can be trusted.

The LR image pins the SR map down only near its samples; elsewhere the network invents detail
from what it learnt. Two things say how much a pixel rests on that invention rather than on the
data, and :func:`symmetry_spread` measures both from the members

    s_g = T_g⁻¹ f(T_g y)        for every g of the lattice's symmetry group (and every network),

which all agree for a network that is equivariant, as a good one is (the texture distribution is
invariant under the T_g of :mod:`spinsr_tf.nn.symmetry`):

- their *spread*, the RMS distance to their mean: where the members disagree the network guesses;
- their *bias*: where they agree, they may agree on something wrong. The result ``m`` (their
  mean) is degraded again with the model's own degradation and super-resolved by the same
  members; that image's truth is known — it is ``m`` — so the distance ``|m' − m|`` of the new
  members' mean is the error this network makes on an image whose texture is this one's.

The uncertainty (``reference="redegraded"``, the default for spinsr models) is
``sqrt(spread² + |m' − m|²)``, averaged over a small window (spins; scalar images: per
pixel). Two older references remain: the
departure from the aligned interpolation of the LR map (``"interpolation"``: spread² +
``|m − interpolation|²``, what plain callables get) and the spread alone (``"mean"``). Measured
(``docs/uncertainty.md``, Spearman rank correlation with the actual per-pixel error): held-out
Type I maps ×4 with noise 0, 0.1, 0.2: 0.54 / 0.38 / 0.47 (interpolation 0.49 / 0.38 / 0.41);
the microscope stand-ins (borders, unknown optics, noise, ×8; fit-image's defaults): SPLEEM
0.65–0.70 (interpolation 0.08–0.24), Kerr 0.47–0.50 with a ``tanh`` scalar output, 0.24 with
the soft clip (interpolation ≈ 0; the 0.47 came from the ``tanh``'s slope, a grey-level wall
indicator, not from the members; 0.21–0.32 against the error after an affine grey-level fit to
the truth; ``docs/uncertainty.md`` says why).
:mod:`spinsr_tf.evaluation.calibration` measures it.

Which elements. The point operations (quarter turns, mirrors or flip-overs the Hamiltonian
keeps, the global flip S → −S) act exactly on any LR map, borders included. Translations by whole
LR pixels are periodic rolls, valid for periodic maps only, and a translation-equivariant fully
convolutional network with periodic padding commutes with them up to rounding: they add nothing
(measured: spread < 1e-7) and are off by default (``SpreadOptions.shifts``).

Where the LR pixels sit. A point operation about the LR map's centre is, on the HR grid, the same
operation about the HR point the LR centre samples. With point sampling (LR pixel ``k`` at HR
pixel ``k·f``, the degradation of SPEC §3) that point is ``f·(w − 1)/2``, not the HR centre
``(f·w − 1)/2``: the HR element is the centred one followed by a shift of ``f − 1`` HR pixels
along each reversed axis (:func:`hr_op`). With camera-pixel integration (LR pixel ``k`` averages
HR pixels ``k·f … k·f + f − 1``) the two centres coincide. On maps with borders the shift moves
``f − 1`` rows or columns out of the map; those pixels take their mean and spread from the
members that cover them (the plain output always does).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from spinsr_tf.base.checks import check_bool, check_choice, check_int, check_maps, check_real
from spinsr_tf.base.errors import UserError
from spinsr_tf.data.degradation import Degradation
from spinsr_tf.nn.symmetry import LatticeOp, apply, group_for

#: Where LR pixel ``k`` sits on the HR grid: at ``k·f`` ("sample", SPEC §3) or at the centre of
#: the camera pixel ``k·f … k·f + f − 1`` ("integrate", SPEC §8).
PIXELS = ("sample", "integrate")
#: The bias term of the uncertainty (:func:`symmetry_spread`): the error on the result degraded
#: again, the departure from the interpolation, or none (the spread alone).
REFERENCES = ("redegraded", "interpolation", "mean")
#: The SR map :func:`symmetry_spread` returns: the members' mean, or the plain network output.
SR_MAPS = ("mean", "plain")
#: Boundary conditions of the maps (the network's padding).
PADDINGS = ("periodic", "reflect")
#: Default width (HR pixels) of the window of the local RMS spread (``smooth``) for spins, and
#: for scalar images (none: the error |e| of one component is zero along every line where the
#: signed error e changes sign, so the error itself ranks worse once smoothed; docs/uncertainty.md).
SMOOTH, SMOOTH_SCALAR = 2.0, 0.0


def hr_op(op: LatticeOp, scale: int, pixel: str = "sample") -> LatticeOp:
    """The HR element that the LR element ``op`` is the image of: ``A(T_HR x) = T_LR A(x)``.

    Same point operation and spin matrix; the shift is ``scale`` times the LR shift plus the
    offset that moves the centre of the point operation from the HR map's centre to the HR
    point the LR centre samples (zero for ``pixel="integrate"``).
    """
    if not isinstance(op, LatticeOp):
        raise UserError(f"op must be a LatticeOp, got {op!r}")
    f = check_int("scale", scale, 1)
    check_choice("pixel", pixel, PIXELS)
    point = dataclasses.replace(op, shift=(0, 0))
    dy = dx = 0
    if pixel == "sample" and f > 1:
        # About centre c' = c + e/2, e = −(f − 1)(1, 1): T' = τ(e/2) T τ(−e/2), whose shift
        # (I − A) e / 2 is an integer although e / 2 need not be.
        e = (f - 1, f - 1)
        doubled = LatticeOp(e) @ point @ LatticeOp((-e[0], -e[1]))
        dy, dx = -doubled.shift[0] // 2, -doubled.shift[1] // 2
    return dataclasses.replace(point, shift=(f * op.shift[0] + dy, f * op.shift[1] + dx))


def _shift_open(x: np.ndarray, shift) -> np.ndarray:
    """``out[i, j] = x[i − dy, j − dx]`` without wrap-around: pixels from outside are NaN."""
    dy, dx = shift
    h, w = x.shape[1:3]
    out = np.full(x.shape, np.nan, dtype=x.dtype)
    if abs(dy) < h and abs(dx) < w:
        out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            x[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def back_transform(sr: np.ndarray, op: LatticeOp, scale: int, pixel: str = "sample",
                   periodic: bool = True) -> np.ndarray:
    """``T_HR⁻¹ sr``: the SR map of the LR input ``apply(lr, op)`` moved back to the frame of
    ``lr``. Without ``periodic`` the shift is no roll: pixels it brings in from outside are NaN.
    """
    inv = hr_op(op, scale, pixel).inverse()
    if periodic:
        return apply(sr, inv)
    return _shift_open(apply(sr, dataclasses.replace(inv, shift=(0, 0))), inv.shift)


def group_ops(group="lattice", hamiltonian=None, channels: int = 3, lr_shape=(1, 1),
              periodic: bool = True, shifts=((0, 0),)) -> list:
    """The LR elements a spread runs over, the identity first.

    Parameters
    ----------
    group, hamiltonian, channels
        See :func:`spinsr_tf.nn.symmetry.group_for`.
    lr_shape : (h, w)
        LR map size: quarter turns need a square map (else only the half turn is used).
    periodic : bool
        Maps with borders take the point operations only.
    shifts : sequence of (dy, dx)
        LR-pixel translations to combine with the point operations when the group has
        translations and the maps are periodic.
    """
    g = group_for(group, hamiltonian, channels)
    shifts = [tuple(check_int("shifts", v) for v in s) for s in shifts]
    if (0, 0) not in shifts:
        shifts = [(0, 0)] + shifts
    h, w = lr_shape
    ops = g.elements(h, w, shifts=shifts if (g.translations and periodic) else [(0, 0)])
    ops = list(dict.fromkeys(op.reduced(h, w) for op in ops))
    identity = LatticeOp()
    return [identity] + [op for op in ops if op != identity]


@dataclasses.dataclass(frozen=True)
class _Member:
    """An LR → SR map as the spread needs it: a batched NumPy function and its geometry."""

    predict: Callable
    #: the model's fixed degradation (spinsr models only): its geometry (factor, padding, pixel
    #: model) and the operator of the "redegraded" reference
    degradation: Degradation | None = None


def _member(model, batch_size: int) -> _Member:
    import keras

    from spinsr_tf.nn.network import LR_OUTPUT, SR_OUTPUT

    if isinstance(model, keras.Model) and {LR_OUTPUT, SR_OUTPUT} <= {l.name for l in model.layers}:
        from spinsr_tf.nn.export import serving_model

        sr = serving_model(model)
        return _Member(lambda x: np.asarray(sr.predict(x, batch_size=batch_size, verbose=0)),
                       model.get_layer(LR_OUTPUT).degradation)
    if isinstance(model, keras.Model):
        return _Member(lambda x: np.asarray(model.predict(x, batch_size=batch_size, verbose=0)))
    if not callable(model):
        raise UserError(f"model must be a spinsr keras.Model or a callable LR -> SR, "
                        f"got {type(model).__name__}")

    def predict(x):
        return np.concatenate([np.asarray(model(x[i:i + batch_size]), dtype=np.float32)
                               for i in range(0, len(x), batch_size)])

    return _Member(predict)


def _agree(name: str, given, found: list, default):
    """The one value of a geometry argument: given, else what the models say, else default."""
    found = [v for v in found if v is not None]
    if given is not None:
        for v in found:
            if v != given:
                raise UserError(f"{name}={given!r} but a model was built with {v!r}")
        return given
    if len(set(found)) > 1:
        raise UserError(f"the models disagree on {name}: {sorted(set(found))}")
    return found[0] if found else default


def local_rms(spread, smooth: float = SMOOTH, periodic: bool = True) -> np.ndarray:
    """``sqrt(G_smooth * spread²)`` per map ``(N, H, W)``: the RMS spread over a Gaussian window
    of ``smooth`` HR pixels (wrapped on periodic maps, mirrored at borders); 0 returns it as is."""
    u = np.asarray(spread, dtype=np.float64)
    smooth = check_real("smooth", smooth, 0.0)
    if u.ndim != 3:
        raise UserError(f"spread must have shape (N, H, W), got {u.shape}")
    if smooth == 0:
        return u
    from scipy.ndimage import gaussian_filter

    var = gaussian_filter(u * u, (0, smooth, smooth), mode="wrap" if periodic else "reflect")
    return np.sqrt(np.maximum(var, 0.0))


class _Moments:
    """Per-pixel count, mean and spread of members, streamed (one member in memory at a time).

    Differences are taken from the first member (the plain output, which covers every pixel):
    the shifted-data form keeps a spread of rounding size at rounding size.
    """

    def __init__(self, first: np.ndarray):
        self.ref = first.astype(np.float64)
        self.count = np.ones(first.shape[:-1] + (1,), np.float64)
        self.sum = np.zeros_like(self.ref)
        self.sumsq = np.zeros_like(self.count)

    def add(self, member: np.ndarray) -> None:
        d = member.astype(np.float64) - self.ref
        seen = np.isfinite(d).all(axis=-1, keepdims=True)
        d = np.where(seen, d, 0.0)
        self.count += seen
        self.sum += d
        self.sumsq += np.sum(d * d, axis=-1, keepdims=True)

    def mean(self) -> np.ndarray:
        return self.ref + self.sum / self.count

    def distance(self, target=None) -> np.ndarray:
        """Per pixel ``sqrt(mean over members |s − target|²)``; ``target`` None: their mean."""
        md = self.sum / self.count
        # s = ref + d, c = target − ref: E|d − c|² = E|d|² − 2 c·E d + |c|² (= E|d|² − |E d|²
        # for the mean); the shifted form keeps a rounding-size spread at rounding size
        c = md if target is None else target - self.ref
        var = (self.sumsq / self.count - 2 * np.sum(c * md, axis=-1, keepdims=True)
               + np.sum(c * c, axis=-1, keepdims=True))
        return np.sqrt(np.maximum(var[..., 0], 0.0))


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norm > 0, x / np.where(norm > 0, norm, 1.0), x)


def interpolation(lr, degradation: Degradation) -> np.ndarray:
    """The reference of the departure, the strongest interpolation baseline: bicubic that puts
    each LR pixel where ``degradation`` took it from
    (:meth:`~spinsr_tf.data.degradation.Degradation.upsample`: ``k·f`` for point samples, the
    block centre for camera pixels), then unit vectors (C = 3) or values clipped to [−1, 1]
    (C = 1). Only the geometry (factor, padding, pixel model) matters, not the PSF."""
    if not isinstance(degradation, Degradation):
        raise UserError(f"degradation must be a Degradation, got {degradation!r}")
    return degradation.upsample(lr, "bicubic", normalize=True)


#: Most bytes of SR output one stacked forward pass holds (:func:`symmetry_spread` runs the
#: members of several elements as one batch, a predict call per chunk of elements: a call costs
#: far more than a map); 0 runs one element per call.
CHUNK_BYTES = 2 ** 28


@dataclasses.dataclass(frozen=True)
class SpreadOptions:
    """What :func:`symmetry_spread` makes of its members, validated once.

    Parameters
    ----------
    reference : {"redegraded", "interpolation", "mean"} or None
        The bias term added to the members' spread: the error of the same members on the
        result degraded again (``"redegraded"``, spinsr models only: it uses their degradation
        layer, and runs every member twice), the departure from the aligned interpolation of
        the LR maps (:func:`interpolation`), or none (``"mean"``, the spread alone: zero for any
        equivariant network). None: "redegraded" when every model is a spinsr model, else
        "interpolation".
    sr : {"mean", "plain"}
        Return the members' mean map (C = 3: re-normalised to unit vectors) or the plain output
        ``f(lr)`` of the first model. "mean" scores higher against ground truth
        (``docs/uncertainty.md``).
    normalize : bool or None
        C = 3: project the mean onto unit vectors (the spins are unit vectors). None: for C = 3.
    smooth : float or None
        Width (HR pixels) of the Gaussian window over which the squared distance is averaged
        (:func:`local_rms`): a few members give a noisy estimate per pixel, and the error it
        predicts belongs to a region (a wall, a vortex core) more than to a site. None:
        :data:`SMOOTH` for spins, :data:`SMOOTH_SCALAR` (per pixel) for C = 1 (measured in
        ``docs/uncertainty.md``); 0: per pixel.
    shifts : sequence of (dy, dx)
        LR-pixel translations added to the point operations on periodic maps.
    """

    reference: str | None = None
    sr: str = "mean"
    normalize: bool | None = None
    smooth: float | None = None
    shifts: tuple = ((0, 0),)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        if self.reference is not None:
            check_choice("reference", self.reference, REFERENCES)
        check_choice("sr", self.sr, SR_MAPS)
        if self.normalize is not None:
            set_("normalize", check_bool("normalize", self.normalize))
        if self.smooth is not None:
            set_("smooth", check_real("smooth", self.smooth, 0.0, unit="HR pixels"))
        try:
            shifts = tuple(tuple(s) for s in self.shifts)
        except TypeError:
            shifts = None
        if shifts is None or any(len(s) != 2 for s in shifts):
            raise UserError(f"shifts must be a sequence of (dy, dx) pairs, got {self.shifts!r}")
        set_("shifts", tuple(tuple(check_int("shifts", v) for v in s) for s in shifts))


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The settings the members were resolved to: the bias term, where LR pixels sit, and the
    operator of the "redegraded" reference (None for the others)."""

    reference: str
    padding: str
    pixel: str
    factor: int | None
    redegrade: Degradation | None


def _check_lr(lr) -> np.ndarray:
    x = check_maps("lr", lr)
    if x.shape[-1] not in (1, 3):
        raise UserError(f"lr must have C = 1 or 3 channels, got shape {x.shape}")
    return x


def _members(model, batch_size: int) -> list:
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    if not models:
        raise UserError("model must be a model or a non-empty list of models")
    return [_member(m, batch_size) for m in models]


def _plan(members, degradation: Degradation | None, reference: str | None) -> _Plan:
    """One geometry for every member: ``degradation`` where given (a spinsr model's own must
    agree with it), else the models', else periodic point samples."""
    if degradation is not None and not isinstance(degradation, Degradation):
        raise UserError(f"degradation must be a Degradation or None, got {degradation!r}")
    own = [m.degradation for m in members]
    if reference is None:
        reference = "redegraded" if all(d is not None for d in own) else "interpolation"
    if reference == "redegraded" and any(d is None for d in own):
        raise UserError("reference='redegraded' needs spinsr models (it degrades the result "
                        "with their degradation layer); use 'interpolation' or 'mean'")
    own = [d for d in own if d is not None]

    def agree(name, default):
        given = None if degradation is None else getattr(degradation, name)
        return _agree(name, given, [getattr(d, name) for d in own], default)

    if reference == "redegraded":
        psf = None if degradation is None else (degradation.kernel_size, degradation.sigma)
        _agree("degradation (kernel_size, sigma)", psf,
               [(d.kernel_size, d.sigma) for d in own], None)
    return _Plan(reference, agree("padding", "periodic"), agree("pixel", "sample"),
                 agree("factor", None), own[0] if reference == "redegraded" else None)


def _ops_per_call(x: np.ndarray, factor: int | None) -> int:
    """Elements per stacked forward pass: their SR output within :data:`CHUNK_BYTES`; one while
    the scale is unknown (a plain callable's first call)."""
    if factor is None:
        return 1
    return max(1, CHUNK_BYTES // (x.size * factor * factor * 4))


def _outputs(member: _Member, x: np.ndarray, ops, factor: int | None):
    """``(op, f(T_op x))`` for every element, the elements stacked into one batch per chunk
    (:data:`CHUNK_BYTES`): one predict call per chunk instead of one per element. Checks the
    SR shape: ``(N, h·f, w·f, C)``, ``f`` the scale of the degradation and of every model
    (None: not known yet)."""
    n, h, w, c = x.shape
    i = 0
    while i < len(ops):
        chunk = ops[i:i + _ops_per_call(x, factor)]
        out = member.predict(np.concatenate([apply(x, op) for op in chunk]))
        want = ("(N, h·f, w·f, C)" if factor is None
                else f"(x{factor}: {(n, h * factor, w * factor, c)})")
        factor = max(out.shape[1] // h, 1) if factor is None else factor
        if out.shape != (len(chunk) * n, h * factor, w * factor, c):
            raise UserError(f"model maps LR {x.shape} to {(n,) + out.shape[1:]}, not to SR maps "
                            f"{want}")
        for j, op in enumerate(chunk):
            yield op, out[j * n:(j + 1) * n]
        i += len(chunk)


def _pool(members, x, ops, plan: _Plan, progress, what):
    """The members ``T_g⁻¹ f(T_g x)`` of every model and element, streamed into moments;
    returns ``(moments, plain output of the first model, scale)``."""
    moments, plain, factor = None, None, plan.factor
    periodic = plan.padding == "periodic"
    for k, member in enumerate(members):
        for op, out in _outputs(member, x, ops, factor):
            factor = out.shape[1] // x.shape[1]       # checked by _outputs against the others'
            back = back_transform(out, op, factor, plan.pixel, periodic)
            if moments is None:
                plain, moments = out.copy(), _Moments(back)
            else:
                moments.add(back)
        if progress is not None:
            progress(f"uncertainty: model {k + 1}/{len(members)}, {what}")
    return moments, plain, factor


def _project(mean: np.ndarray, normalize: bool) -> np.ndarray:
    return _unit(mean) if normalize else mean


def _redegraded_squared(members, mean, moments, ops, plan, normalize, progress):
    """``spread² + |m' − m|²``: the same members on the result degraded again, an image whose
    truth is known (the result itself), so their distance to it is the error this network
    makes on an image whose texture is like this one."""
    again = plan.redegrade.apply(mean.astype(np.float32))
    second = _pool(members, again, ops, plan, progress, "the result degraded again")[0]
    bias2 = np.sum((_project(second.mean(), normalize) - mean) ** 2, axis=-1)
    return moments.distance(None) ** 2 + np.where(np.isfinite(bias2), bias2, 0.0)


def symmetry_spread(model, lr, group="lattice", hamiltonian=None,
                    degradation: Degradation | None = None,
                    options: SpreadOptions | None = None, batch_size: int = 8,
                    progress: Callable[[str], None] | None = None):
    """SR maps and their uncertainty, from the members ``T_g⁻¹ f(T_g lr)`` over the group (and
    the models).

    Parameters
    ----------
    model : keras.Model, callable, or a list of them
        A spinsr model (its ``"sr"`` output is used; padding, scale and pixel model are read from
        its degradation layer), any Keras model mapping LR to SR maps, or a callable taking a
        float32 ``(B, h, w, C)`` NumPy batch and returning ``(B, h·f, w·f, C)``. A list (e.g.
        independently seeded networks) pools the members of all of them.
    lr : array_like, (N, h, w, C)
        LR maps in the model's value range; C = 3 (spins) or 1 (a scalar image).
    group : str or sequence of str
        A group of :func:`spinsr_tf.nn.symmetry.group_for` (default "lattice": quarter turns,
        the reflections the Hamiltonian keeps, the flip; translations on periodic maps), or one
        per map (e.g. :func:`~spinsr_tf.inference.ensemble.ensemble_groups`: no flip for a map
        in a field); the maps of each group run together.
    hamiltonian : TypeI, TypeII, their attributes or None
        The interactions the group must respect (None: every Hamiltonian but bulk DMI).
    degradation : Degradation or None
        How ``lr`` was made. Its geometry places the members: padding (periodic maps, or maps
        with borders: point operations only), pixel model (where an LR pixel sits on the HR
        grid, module docstring) and factor. A spinsr model's own degradation must agree with
        it (and, for "redegraded", in PSF too). None: the models', else periodic point samples.
    options : SpreadOptions or None
        Reference, returned map, normalisation, smoothing window, translations
        (:class:`SpreadOptions`; None: its defaults).
    batch_size : int
        Maps per forward pass. The symmetric copies are stacked into one batch, run by one
        predict call per :data:`CHUNK_BYTES` of output.
    progress : callable or None
        Called with one line per model.

    Returns
    -------
    sr : (N, h·f, w·f, C) float32
        The SR maps (see ``SpreadOptions.sr``).
    uncertainty : (N, h·f, w·f) float32
        Per HR pixel, ``sqrt(spread² + |m' − m|²)`` ("redegraded", module docstring) or
        ``sqrt(mean_g |s_g − r|²)`` over the members, ``r`` the reference, in the units of the
        maps, averaged over a window of ``smooth``. With the interpolation ``b`` its square is
        the spread² plus the departure ``|m − b|²`` of the members' mean ``m``. With
        ``reference="mean"`` (the members' mean before normalisation) it is, for C = 1, the
        standard deviation over the members and, for unit spins, ``sqrt(1 − |r|²)``, which
        ranks the pixels as ``1 − |r|`` does. The RMS distance is used rather than ``1 − |r|``
        because it is in the units of the error it predicts (the vector distance ``|SR − HR|``,
        whose square averages to the MSE of SPEC §5) and takes a reference other than the
        mean. It ranks the pixels; it is not an error bar.
    """
    options = SpreadOptions() if options is None else options
    if not isinstance(options, SpreadOptions):
        raise UserError(f"options must be a SpreadOptions or None, got {options!r}")
    x = _check_lr(lr)
    if not isinstance(group, str):
        return _spread_per_group(x, list(group), lambda g, maps: symmetry_spread(
            model, maps, g, hamiltonian, degradation, options, batch_size, progress))
    c = x.shape[-1]
    normalize = (c == 3) if options.normalize is None else options.normalize
    if normalize and c != 3:
        raise UserError("normalize=True needs spin vectors (C = 3)")
    members = _members(model, check_int("batch_size", batch_size, 1))
    plan = _plan(members, degradation, options.reference)
    periodic = plan.padding == "periodic"
    ops = group_ops(group, hamiltonian, c, x.shape[1:3], periodic, options.shifts)
    moments, plain, factor = _pool(
        members, x, ops, plan, progress,
        f"{len(ops)} symmetry element(s) of {group!r} ({plan.padding})")
    plan = dataclasses.replace(plan, factor=factor)
    smooth = (SMOOTH if c == 3 else SMOOTH_SCALAR) if options.smooth is None else options.smooth
    mean = _project(moments.mean(), normalize)
    if plan.reference == "redegraded":
        squared = _redegraded_squared(members, mean, moments, ops, plan, normalize, progress)
        spread = local_rms(np.sqrt(squared), smooth, periodic)
    else:
        target = (None if plan.reference == "mean" else interpolation(
            x, Degradation(factor, padding=plan.padding, pixel=plan.pixel)).astype(np.float64))
        spread = local_rms(moments.distance(target), smooth, periodic)
    out = mean if options.sr == "mean" else plain
    return out.astype(np.float32), spread.astype(np.float32)


def trained_hamiltonian(model_path):
    """The Hamiltonian attributes the model's run trained with (its equivariance term, else its
    physics prior), or None: the symmetries the uncertainty may use."""
    from pathlib import Path

    from spinsr_tf.nn.losses import Equivariance, PhysicsPrior
    from spinsr_tf.nn.training import read_run_config

    config = read_run_config(Path(model_path).parent)
    if config is None:
        return None
    for cls in (Equivariance, PhysicsPrior):
        term = config.term(cls)
        if term is not None and term.hamiltonian:
            return dict(term.hamiltonian)
    return None


def symmetric_mean(model, lr, mask=None, hamiltonian=None, uncertainty: bool = False,
                   batch_size: int = 8, progress: Callable[[str], None] | None = None):
    """The SR maps ``spinsr-tf upscale`` writes by default: the mean over the input's symmetric
    copies (:func:`symmetry_spread` with ``sr="mean"``), each map's group from
    :func:`~spinsr_tf.inference.ensemble.ensemble_groups` (no flip for a magnetised map; no
    reflections for a spin-map model whose Hamiltonian is not recorded). Measured on the tune
    maps of docs/generalization.md, gain over aligned interpolation, one pass → this mean
    (family mean): universal-x4 +5.24 → +6.17 dB, universal-x8 +5.24 → +5.72, universal-sz-x4
    +6.81 → +7.32, universal-sz-x8 +1.75 → +1.80; no family's gain fell by more than 0.08 dB.

    ``mask``: (N, h, w) True on the magnet, or None. ``hamiltonian``: what the model was trained
    with (:func:`trained_hamiltonian`), or None. ``uncertainty``: also the uncertainty
    map (its default reference, which runs every member twice); else the spread is not
    computed. Returns ``(sr, uncertainty or None, groups)``."""
    from spinsr_tf.inference.ensemble import ensemble_groups

    x = _check_lr(lr)
    groups = ensemble_groups(x, mask, hamiltonian_known=hamiltonian is not None)
    options = SpreadOptions() if uncertainty else SpreadOptions(reference="mean")
    sr, spread = symmetry_spread(model, x, group=groups, hamiltonian=hamiltonian,
                                 options=options, batch_size=batch_size, progress=progress)
    return sr, (spread if uncertainty else None), groups


def _spread_per_group(x, groups, spread):
    """``spread(group, maps)`` run once per distinct group of ``groups`` (one per map of ``x``),
    its maps put back in place."""
    if len(groups) != len(x) or not all(isinstance(g, str) for g in groups):
        raise UserError(f"group must be a group name or one per map ({len(x)}), got {groups!r}")
    sr = spread_map = None
    for name in dict.fromkeys(groups):
        rows = np.array([g == name for g in groups])
        part_sr, part_spread = spread(name, x[rows])
        if sr is None:
            sr = np.empty((len(x), *part_sr.shape[1:]), part_sr.dtype)
            spread_map = np.empty((len(x), *part_spread.shape[1:]), part_spread.dtype)
        sr[rows], spread_map[rows] = part_sr, part_spread
    return sr, spread_map


def uncertainty_figure(uncertainty, path, title: str | None = None, max_maps: int = 8):
    """Save a picture of ``(N, H, W)`` uncertainty maps (the first ``max_maps``) on one viridis
    scale, with a colour bar, so maps and pixels compare at a glance. The scale spans the 1st to
    99th percentile (the bar's arrows: beyond it): a few bright pixels at an open boundary
    would otherwise leave the rest of the map dark. Returns the path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from spinsr_tf.data.render import save_figure

    u = np.asarray(uncertainty, dtype=np.float64)
    if u.ndim == 2:
        u = u[None]
    if u.ndim != 3 or 0 in u.shape:
        raise UserError(f"uncertainty must have shape (N, H, W), got {np.shape(uncertainty)}")
    u = u[:check_int("max_maps", max_maps, 1)]
    finite = u[np.isfinite(u)]
    low, top = ((float(np.percentile(finite, 1)), float(np.percentile(finite, 99)))
                if finite.size else (0.0, 1.0))
    aspect = u.shape[2] / u.shape[1]
    fig, axes = plt.subplots(1, len(u), figsize=(2.8 * aspect * len(u) + 1.0, 3.0),
                             squeeze=False)
    for ax, img in zip(axes[0], u):
        im = ax.imshow(img, cmap="viridis", vmin=low, vmax=top if top > low else low + 1.0,
                       interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, ax=list(axes[0]), shrink=0.85, label="uncertainty", extend="both")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


__all__ = ["CHUNK_BYTES", "PADDINGS", "PIXELS", "REFERENCES", "SMOOTH", "SMOOTH_SCALAR",
           "SR_MAPS", "SpreadOptions", "back_transform", "group_ops", "hr_op", "interpolation",
           "local_rms", "symmetric_mean", "symmetry_spread", "trained_hamiltonian",
           "uncertainty_figure"]
