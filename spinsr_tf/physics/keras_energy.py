"""The Hamiltonians' energies in ``keras.ops``: differentiable, batched, any backend.

These are the energies of :func:`spinsr_tf.physics.energy` (same conventions, pairs counted once,
units of J) written for a training graph, so that a network can be penalised by the energy of the
maps it outputs (:mod:`spinsr_tf.prior`). They take a batch ``(B, H, W, 3)`` of periodic spin maps
whose size may be unknown until run time (the dipolar kernel is built inside the graph from the
map's own shape) and return the energy per spin, shape ``(B,)``.

The dipolar energy uses Parseval's theorem on one forward FFT per component:
``E_dip = Ddip / (2N) Σ_k Σ_ab conj(S_a(k)) W_ab(k) S_b(k)`` with ``W(k)`` the (real, even)
Fourier transform of the symmetric-minimum-image tensor of :mod:`~spinsr_tf.physics.dipolar`;
no inverse FFT is needed.
"""

from __future__ import annotations

from keras import ops

from spinsr_tf.base.errors import UserError
from spinsr_tf.physics.hamiltonians import TypeI, TypeII, check_hamiltonian


def exchange_only(J: float = 1.0) -> TypeI:
    """The generic prior for textures whose Hamiltonian is unknown: exchange alone (Type I, D = 0)."""
    return TypeI(J=J, dmi=0.0)


def _neighbours(s):
    """Spins at +x (next column) and +y (next row), periodic."""
    return ops.roll(s, -1, axis=2), ops.roll(s, -1, axis=1)


def _triple(d, a, b):
    """``d · (a × b)`` per site for a constant vector ``d`` (zero components skipped)."""
    out = 0.0
    for k in range(3):
        if d[k] != 0.0:
            i, j = (k + 1) % 3, (k + 2) % 3
            out = out + float(d[k]) * (a[..., i] * b[..., j] - a[..., j] * b[..., i])
    return out


def _exchange_dmi(s, ham: TypeI):
    sx, sy = _neighbours(s)
    e = -ham.J * ops.sum(s * (sx + sy), axis=-1)
    if ham.dmi != 0.0:
        dx, dy = ham.dmi_vectors()
        e = e + _triple(dx, s, sx) + _triple(dy, s, sy)
    return e


def _minimum_image(n, dtype):
    """Offsets ``(k + n//2) % n - n//2`` of the indices ``0 .. n-1`` and the ties ``|d| = n/2``."""
    k = ops.arange(n, dtype="int32")
    d = (k + n // 2) % n - n // 2
    return ops.cast(d, dtype), ops.equal(2 * ops.abs(d), n)


def dipolar_spectrum(height, width, factor: float = 3.0, dtype="float32"):
    """Fourier transform of the dipolar tensor, ``(4, H, W)``: ``W_xx, W_xy, W_yy, W_zz`` at each
    wavevector (real: the kernel is even). Equal to ``np.fft.fft2(dipolar_kernel((H, W), factor))``;
    built with ops so that H and W may be symbolic."""
    dy, tie_y = _minimum_image(height, dtype)
    dx, tie_x = _minimum_image(width, dtype)
    y, x = dy[:, None] + 0 * dx[None, :], dx[None, :] + 0 * dy[:, None]
    r2 = x * x + y * y
    safe = ops.where(r2 > 0, r2, ops.ones_like(r2))
    inv_r3 = ops.where(r2 > 0, safe ** -1.5, ops.zeros_like(r2))
    inv_r5 = ops.where(r2 > 0, safe ** -2.5, ops.zeros_like(r2))
    wxy = -factor * x * y * inv_r5
    wxy = ops.where(ops.logical_or(tie_y[:, None], tie_x[None, :]), ops.zeros_like(wxy), wxy)
    kernel = ops.stack([inv_r3 - factor * x * x * inv_r5, wxy,
                        inv_r3 - factor * y * y * inv_r5, inv_r3])
    real, _ = ops.fft2((kernel, ops.zeros_like(kernel)))
    return real


def _dipolar(s, ham: TypeII):
    """Dipolar energy per spin, ``(B,)``."""
    shape = ops.shape(s)
    height, width = shape[1], shape[2]
    w = dipolar_spectrum(height, width, ham.dipolar_factor, s.dtype)
    channels_first = ops.transpose(s, (0, 3, 1, 2))
    re, im = ops.fft2((channels_first, ops.zeros_like(channels_first)))
    power = re * re + im * im                                   # |S_a(k)|², (B, 3, H, W)
    mixed = re[:, 0] * re[:, 1] + im[:, 0] * im[:, 1]           # Re(conj(S_x) S_y)
    e_k = (w[0] * power[:, 0] + w[2] * power[:, 1] + w[3] * power[:, 2] + 2.0 * w[1] * mixed)
    n = ops.cast(height * width, s.dtype)
    return ham.dipolar * ops.sum(e_k, axis=(1, 2)) / (2.0 * n * n)


def energy_per_spin(spins, hamiltonian):
    """Energy per spin ``E / (H·W)`` of each map of a batch, in units of J; differentiable.

    Parameters
    ----------
    spins : tensor ``(B, H, W, 3)``, float32 or float64, periodic. Need not be unit vectors
        (the energy is the polynomial of :func:`~spinsr_tf.physics.energy`).
    hamiltonian : :class:`~spinsr_tf.physics.TypeI` (use :func:`exchange_only` for exchange
        alone) or :class:`~spinsr_tf.physics.TypeII`.

    Returns
    -------
    tensor ``(B,)`` of the dtype of ``spins``.
    """
    ham = check_hamiltonian(hamiltonian)
    s = ops.convert_to_tensor(spins)
    if len(s.shape) != 4 or s.shape[-1] != 3:
        raise UserError(f"spins must have shape (B, H, W, 3), got {tuple(s.shape)}")
    if isinstance(ham, TypeI):
        per_site = _exchange_dmi(s, ham)
    else:
        per_site = _exchange_dmi(s, TypeI(J=ham.J, dmi=0.0)) - ham.anisotropy * s[..., 2] ** 2
    e = ops.mean(per_site, axis=(1, 2))
    if isinstance(ham, TypeII) and ham.dipolar:
        e = e + _dipolar(s, ham)
    return e


__all__ = ["dipolar_spectrum", "energy_per_spin", "exchange_only"]
