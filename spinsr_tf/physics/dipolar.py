"""Dipole-dipole interaction on the periodic lattice, by FFT convolution.

The dipolar energy of a configuration is ``E = Ddip Σ_{i<j} Si·W(r_ij)·Sj`` with the 3×3 tensor

    W_ab(r) = (δ_ab - c r̂_a r̂_b) / r³,      W(0) = 0,

(c = 3 standard, c = 1 as printed in the paper; r̂ lies in the plane, so W_xz = W_yz = 0 and
W_zz = 1/r³). The field it exerts is ``h_i = -∂E/∂Si = -Ddip Σ_j W(r_ij)·Sj``: a convolution of
the spins with W, computed with real FFTs in O(N log N).

Periodic images: each pair interacts once, through its *symmetric minimum image*. A displacement
is reduced to [-L/2, L/2] along each axis; where |dx| or |dy| equals L/2 exactly (even L) the
two (or four) equidistant images are averaged. Their diagonal tensor components are equal and
W_xy is odd in dx and in dy, so the average is the base tensor with W_xy set to zero there. The
kernel is then even, W(-r) = W(r), its Fourier transform is real, and the energy is symmetric
in i and j. There is no Ewald sum: interactions beyond half the box are dropped, so the lattice
sum Σ_{r≠0} 1/r³ (9.0336 on the infinite plane) comes out ≈ 9.0336 - 11.3/L on an L×L box
(8.945 for L = 128); the missing far-image energy is negligible for the textures studied here.

Sanity number: a uniform film has dipolar energy per spin +Ddip Σ/2 along ẑ and -Ddip Σ/4 in the
plane (Σ = Σ_{r≠0} 1/r³, standard form), a shape anisotropy of 0.75 Ddip Σ per spin
(= 1.5 Ddip Σ over the pairs of one spin) ≈ 0.20 favouring the plane. With K = 0.215 the net
E(+x̂) - E(+ẑ) per spin, the effective anisotropy, is K_eff ≈ 0.012 (0.014 at L = 128); with the
printed form (c = 1) the shape term is only 0.25 Ddip Σ and K_eff ≈ 0.15.
"""

from __future__ import annotations

import functools

import numpy as np

from spinsr_tf.base.errors import UserError


def _axis_offsets(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-image offsets of indices 0..n-1 and a mask of the ties |d| = n/2."""
    k = np.arange(n)
    d = (k + n // 2) % n - n // 2
    tie = (2 * np.abs(d) == n)
    return d.astype(np.float64), tie


@functools.lru_cache(maxsize=32)
def _kernel_cached(shape: tuple[int, int], factor: float) -> np.ndarray:
    h, w = shape
    dy, tie_y = _axis_offsets(h)
    dx, tie_x = _axis_offsets(w)
    y = dy[:, None] * np.ones((1, w))
    x = dx[None, :] * np.ones((h, 1))
    r2 = x * x + y * y
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_r3 = np.where(r2 > 0, r2 ** -1.5, 0.0)
        inv_r5 = np.where(r2 > 0, r2 ** -2.5, 0.0)
    kern = np.empty((4, h, w))
    kern[0] = inv_r3 - factor * x * x * inv_r5
    kern[1] = -factor * x * y * inv_r5
    kern[2] = inv_r3 - factor * y * y * inv_r5
    kern[3] = inv_r3
    kern[1][tie_y[:, None] | tie_x[None, :]] = 0.0
    kern.setflags(write=False)
    return kern


def dipolar_kernel(shape: tuple[int, int], factor: float = 3.0) -> np.ndarray:
    """Real-space dipolar tensor of the periodic lattice, symmetric minimum image.

    Parameters
    ----------
    shape : lattice ``(H, W)`` (rows, columns).
    factor : the c in ``(δ_ab - c r̂_a r̂_b) / r³`` (3 standard, 1 printed).

    Returns
    -------
    ``(4, H, W)`` float64, read-only: components ``(W_xx, W_xy, W_yy, W_zz)`` at displacement
    ``(dy, dx) = (row, column)`` index offsets taken modulo the box; zero at the origin.
    """
    h, w = (int(s) for s in shape)
    if h < 1 or w < 1:
        raise UserError(f"shape must be positive, got {shape!r}")
    return _kernel_cached((h, w), float(factor))


@functools.lru_cache(maxsize=32)
def kernel_spectrum(shape: tuple[int, int], factor: float = 3.0, dtype=np.float64) -> np.ndarray:
    """Real 2D FFT of :func:`dipolar_kernel`, shape ``(4, H, W//2 + 1)``, real (the kernel is even)."""
    spec = np.fft.rfft2(dipolar_kernel(shape, factor)).real.astype(dtype)
    spec.setflags(write=False)
    return spec


def dipolar_field(spins: np.ndarray, strength: float = 0.03, factor: float = 3.0) -> np.ndarray:
    """Dipolar field ``h_i = -Ddip Σ_j W(r_ij)·Sj`` of one or many configurations.

    Parameters
    ----------
    spins : ``(H, W, 3)`` or ``(N, H, W, 3)`` array (any real dtype; computed in float64).
    strength : Ddip, units of J.
    factor : 3 (standard) or 1 (printed), see :func:`dipolar_kernel`.

    Returns
    -------
    float64 array of the shape of ``spins``: the field in units of J.
    """
    s = np.asarray(spins, dtype=np.float64)
    shape = s.shape[-3:-1]
    spec = kernel_spectrum(tuple(shape), float(factor))
    f = np.fft.rfft2(np.moveaxis(s, -1, -3))  # (..., 3, H, W//2+1)
    fx, fy, fz = f[..., 0, :, :], f[..., 1, :, :], f[..., 2, :, :]
    g = np.stack([spec[0] * fx + spec[1] * fy, spec[1] * fx + spec[2] * fy, spec[3] * fz], axis=-3)
    h = np.fft.irfft2(g, s=shape)
    return np.moveaxis(h, -3, -1) * (-float(strength))
