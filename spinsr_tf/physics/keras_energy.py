"""The Hamiltonians' energies in ``keras.ops``: differentiable, batched, any backend.

These are the energies of :func:`spinsr_tf.physics.energy` (same conventions, pairs counted once,
units of J) written for a training graph, so that a network can be penalised by the energy of the
maps it outputs (:mod:`spinsr_tf.inference.weight_rule`). They take a batch ``(B, H, W, 3)`` of periodic spin maps
whose size may be unknown until run time (the dipolar kernel is built inside the graph from the
map's own shape) and return the energy per spin, shape ``(B,)``.

The dipolar energy uses Parseval's theorem on one forward FFT per component:
``E_dip = Ddip / (2N) Σ_k Σ_ab conj(S_a(k)) W_ab(k) S_b(k)`` with ``W(k)`` the (real, even)
Fourier transform of the periodic dipolar tensor of :mod:`~spinsr_tf.physics.dipolar` (the
image sum the Hamiltonian's ``dipolar_images`` names); no inverse FFT is needed.
"""

from __future__ import annotations

from keras import ops

from spinsr_tf.base.errors import UserError
from spinsr_tf.physics.hamiltonians import Terms, check_hamiltonian
from spinsr_tf.physics.priors import exchange_only


def _neighbours(s, open_: bool = False):
    """Spins at +x (next column) and +y (next row), periodic, or zeros beyond the last column
    and row of an open film."""
    sx, sy = ops.roll(s, -1, axis=2), ops.roll(s, -1, axis=1)
    if open_:
        shape = ops.shape(s)
        mx = ops.cast(ops.arange(shape[2]) < shape[2] - 1, s.dtype)
        my = ops.cast(ops.arange(shape[1]) < shape[1] - 1, s.dtype)
        sx, sy = sx * mx[None, None, :, None], sy * my[None, :, None, None]
    return sx, sy


def _triple(d, a, b):
    """``d · (a × b)`` per site for a constant vector ``d`` (zero components skipped)."""
    out = 0.0
    for k in range(3):
        if d[k] != 0.0:
            i, j = (k + 1) % 3, (k + 2) % 3
            out = out + float(d[k]) * (a[..., i] * b[..., j] - a[..., j] * b[..., i])
    return out


def _local(s, t: Terms):
    """Energy per site of the nearest-neighbour and on-site terms, ``(B, H, W)``."""
    sx, sy = _neighbours(s, t.open)
    e = -t.J * ops.sum(s * (sx + sy), axis=-1)
    if t.has_dmi:
        dx, dy = t.dmi_vectors()
        e = e + _triple(dx, s, sx) + _triple(dy, s, sy)
    if t.anisotropy:
        e = e - t.anisotropy * s[..., 2] ** 2
    for k, h in enumerate(t.field):
        if h:
            e = e - h * s[..., k]
    return e


def _axis_images(n, shells: int, dtype):
    """Image offsets ``(n, 2·shells + 2)`` along one axis and their weights, as
    :func:`spinsr_tf.physics.dipolar._axis_images` (the tie d = -n/2 gets ½ at both ends)."""
    k = ops.arange(n, dtype="int32")
    d = (k + n // 2) % n - n // 2
    tie = ops.equal(2 * ops.abs(d), n)
    cols = 2 * shells + 2
    m = ops.cast(ops.arange(-shells, shells + 2, dtype="int32"), dtype)
    off = ops.cast(d, dtype)[:, None] + ops.cast(n, dtype) * m[None, :]
    plain = ops.convert_to_tensor([1.0] * (cols - 1) + [0.0], dtype=dtype)
    halved = ops.convert_to_tensor([0.5] + [1.0] * (cols - 2) + [0.5], dtype=dtype)
    w = ops.where(tie[:, None], halved[None, :], plain[None, :])
    return off, w


def _kernel_ops(height, width, factor: float, dtype, images: str):
    """The real-space kernel of :func:`spinsr_tf.physics.dipolar.dipolar_kernel`, in ops."""
    from spinsr_tf.physics.dipolar import IMAGE_SHELLS, infinite_lattice_sum

    shells = 0 if images == "minimum" else IMAGE_SHELLS
    oy, wy = _axis_images(height, shells, dtype)
    ox, wx = _axis_images(width, shells, dtype)
    x = ox[None, :, :]
    parts = [0.0, 0.0, 0.0, 0.0]
    for p in range(2 * shells + 2):
        y = oy[:, p][:, None, None]
        weight = wy[:, p][:, None, None] * wx[None, :, :]
        r2 = x * x + y * y
        safe = ops.where(r2 > 0, r2, ops.ones_like(r2))
        inv_r3 = ops.where(r2 > 0, safe ** -1.5, ops.zeros_like(r2))
        inv_r5 = ops.where(r2 > 0, safe ** -2.5, ops.zeros_like(r2))
        terms = (inv_r3 - factor * x * x * inv_r5, -factor * x * y * inv_r5,
                 inv_r3 - factor * y * y * inv_r5, inv_r3)
        parts = [a + ops.sum(weight * t, axis=-1) for a, t in zip(parts, terms)]
    kernel = ops.stack(parts)
    if images != "minimum":
        total = ops.convert_to_tensor(infinite_lattice_sum(factor), dtype=dtype)
        rest = (total - ops.sum(kernel, axis=(1, 2))) * ops.convert_to_tensor(
            [1.0, 0.0, 1.0, 1.0], dtype=dtype)
        kernel = kernel + rest[:, None, None] / ops.cast(height * width, dtype)
    return kernel


def dipolar_spectrum(height, width, factor: float = 3.0, dtype="float32",
                     images: str = "converged"):
    """Fourier transform of the dipolar tensor, ``(4, H, W)``: ``W_xx, W_xy, W_yy, W_zz`` at each
    wavevector (real: the kernel is even), for the periodic images ``images`` (``"converged"``
    or ``"minimum"``). Equal to ``np.fft.fft2(dipolar_kernel((H, W), factor, images))``: taken
    from NumPy when H and W are known, built with ops when they are symbolic."""
    from spinsr_tf.physics.dipolar import check_images, full_spectrum

    images = check_images(images)
    if isinstance(height, int) and isinstance(width, int):
        return ops.convert_to_tensor(full_spectrum((height, width), float(factor), images),
                                     dtype=dtype)
    kernel = _kernel_ops(height, width, factor, dtype, images)
    real, _ = ops.fft2((kernel, ops.zeros_like(kernel)))
    return real


def _dipolar(s, t: Terms):
    """Dipolar energy per spin, ``(B,)``."""
    shape = ops.shape(s)
    height, width = shape[1], shape[2]
    w = dipolar_spectrum(height, width, t.dipolar_factor, s.dtype, t.dipolar_images)
    channels_first = ops.transpose(s, (0, 3, 1, 2))
    re, im = ops.fft2((channels_first, ops.zeros_like(channels_first)))
    power = re * re + im * im                                   # |S_a(k)|², (B, 3, H, W)
    mixed = re[:, 0] * re[:, 1] + im[:, 0] * im[:, 1]           # Re(conj(S_x) S_y)
    e_k = (w[0] * power[:, 0] + w[2] * power[:, 1] + w[3] * power[:, 2] + 2.0 * w[1] * mixed)
    n = ops.cast(height * width, s.dtype)
    return t.dipolar * ops.sum(e_k, axis=(1, 2)) / (2.0 * n * n)


def energy_per_spin(spins, hamiltonian):
    """Energy per spin ``E / (H·W)`` of each map of a batch, in units of J; differentiable.

    Parameters
    ----------
    spins : tensor ``(B, H, W, 3)``, float32 or float64, periodic. Need not be unit vectors
        (the energy is the polynomial of :func:`~spinsr_tf.physics.energy`).
    hamiltonian : a :class:`~spinsr_tf.physics.hamiltonians.Hamiltonian` (use
        :func:`exchange_only` for exchange alone), evaluated from its ``terms()``.

    Returns
    -------
    tensor ``(B,)`` of the dtype of ``spins``.
    """
    t = check_hamiltonian(hamiltonian).terms()
    s = ops.convert_to_tensor(spins)
    if len(s.shape) != 4 or s.shape[-1] != 3:
        raise UserError(f"spins must have shape (B, H, W, 3), got {tuple(s.shape)}")
    e = ops.mean(_local(s, t), axis=(1, 2))
    if t.dipolar:
        e = e + _dipolar(s, t)
    return e


__all__ = ["dipolar_spectrum", "energy_per_spin", "exchange_only"]
