"""Dipole-dipole interaction on the periodic lattice, by FFT convolution.

The dipolar energy of a configuration is ``E = Ddip Σ_{i<j} Si·W(r_ij)·Sj`` with the 3×3 tensor

    W_ab(r) = (δ_ab - c r̂_a r̂_b) / r³,      W(0) = 0,

(c = 3 standard, c = 1 as printed in the paper; r̂ lies in the plane, so W_xz = W_yz = 0 and
W_zz = 1/r³). The field it exerts is ``h_i = -∂E/∂Si = -Ddip Σ_j W(r_ij)·Sj``: a convolution of
the spins with the periodic kernel, computed with real FFTs in O(N log N).

Periodic images (``images``):

- ``"converged"`` (default): the lattice sum over all periodic images, W_per(d) = Σ_n W(d + n∘L),
  so a spin interacts with every copy of every other spin of the infinite periodic film. The sum
  converges absolutely in 2D (|W| ≤ 2/r³). It is summed directly over the images of the
  (2·IMAGE_SHELLS + 1)² nearest cells; the rest, far away and smooth across the box, is a
  constant per component, fixed so that the kernel sums to the infinite-lattice value
  Σ_{r≠0} W(r) = diag(1 - c/2, 1 - c/2, 1)·LATTICE_SUM (the k = 0 Fourier component). A uniform
  state then has the same energy per spin on every box, and K_eff does not depend on L.
- ``"minimum"``: the symmetric minimum image (each pair once, through its nearest image;
  interactions beyond half the box dropped), so Σ 1/r³ comes out ≈ LATTICE_SUM - 11.3/L and the
  shape anisotropy, hence K_eff, depends on the box (0.020 at L = 32, 0.014 at 128). Kept to
  compare with, and to read data made with it.

In both, an offset of exactly half the box (even L) has two equidistant image sets; they are
averaged (weight ½ each), which keeps W(-r) = W(r): the kernel is even, its Fourier transform
real, and the energy symmetric in i and j.

Sanity number: a uniform film has dipolar energy per spin +Ddip Σ/2 along ẑ and -Ddip Σ/4 in the
plane (Σ = LATTICE_SUM, standard form), a shape anisotropy of 0.75 Ddip Σ ≈ 0.2033 per spin
favouring the plane. With K = 0.215 the effective anisotropy E(+x̂) - E(+ẑ) per spin is
K_eff = 0.01174 (converged images, any L); with the printed form (c = 1) the shape term is only
0.25 Ddip Σ and K_eff ≈ 0.147.
"""

from __future__ import annotations

import functools

import numpy as np

from spinsr_tf.base.errors import UserError

#: Σ_{r≠0} 1/|r|³ over the infinite square lattice, 4 ζ(3/2) β(3/2) (dimensionless).
LATTICE_SUM = 9.033621683100
#: The shape anisotropy per unit Ddip of a uniform film (standard form, converged images):
#: E(in-plane) − E(ẑ) of the dipolar term per spin is −0.75 Ddip Σ, so a Type II map of
#: anisotropy K has the effective anisotropy K_eff = K − SHAPE_ANISOTROPY·Ddip.
SHAPE_ANISOTROPY = 0.75 * LATTICE_SUM
#: Image cells summed directly on each side of the box by the converged form; the remainder is
#: uniform across the box to < 3e-4 of the smallest kernel element (tests compare with 4× more).
IMAGE_SHELLS = 8
#: Accepted values of ``images`` (a :class:`~spinsr_tf.physics.TypeII` field).
IMAGE_FORMS = ("converged", "minimum")


def check_images(images) -> str:
    if images not in IMAGE_FORMS:
        raise UserError(f"dipolar_images must be one of {', '.join(map(repr, IMAGE_FORMS))}, "
                        f"got {images!r}")
    return str(images)


def _axis_images(n: int, shells: int) -> tuple[np.ndarray, np.ndarray]:
    """Image offsets ``(n, 2·shells + 2)`` of the indices 0..n-1 along one axis, and weights.

    Index k has minimum-image offset d in [-n/2, n/2); its images d + m·n for m in [-shells,
    shells] have weight 1. The tie d = -n/2 (even n) takes m in [-shells, shells + 1] with weight
    ½ at both ends, so its image set is symmetric about 0.
    """
    k = np.arange(n)
    d = ((k + n // 2) % n - n // 2).astype(np.float64)
    m = np.arange(-shells, shells + 2, dtype=np.float64)
    off = d[:, None] + n * m[None, :]
    w = np.ones_like(off)
    w[:, -1] = 0.0
    tie = 2 * np.abs(d) == n
    w[tie, 0] = 0.5
    w[tie, -1] = 0.5
    return off, w


def _tensor(x, y, factor):
    """(W_xx, W_xy, W_yy, W_zz) at in-plane displacements x, y (arrays), zero at r = 0."""
    r2 = x * x + y * y
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_r3 = np.where(r2 > 0, r2 ** -1.5, 0.0)
        inv_r5 = np.where(r2 > 0, r2 ** -2.5, 0.0)
    return (inv_r3 - factor * x * x * inv_r5, -factor * x * y * inv_r5,
            inv_r3 - factor * y * y * inv_r5, inv_r3)


def image_sum(shape: tuple[int, int], factor: float, shells: int) -> np.ndarray:
    """Σ over the images of ``shells`` cells on each side, no remainder: ``(4, H, W)`` float64.

    ``shells = 0`` is the symmetric minimum image.
    """
    h, w = shape
    oy, wy = _axis_images(h, shells)
    ox, wx = _axis_images(w, shells)
    kern = np.zeros((4, h, w))
    for p in range(oy.shape[1]):
        y = oy[:, p][:, None, None]
        x = ox[None, :, :]
        weight = wy[:, p][:, None, None] * wx[None, :, :]
        for a, t in enumerate(_tensor(x, y, factor)):
            kern[a] += np.sum(weight * t, axis=-1)
    return kern


def infinite_lattice_sum(factor: float) -> np.ndarray:
    """Σ_{r≠0} W(r) over the infinite square lattice, components (xx, xy, yy, zz)."""
    return np.array([1.0 - factor / 2, 0.0, 1.0 - factor / 2, 1.0]) * LATTICE_SUM


@functools.lru_cache(maxsize=32)
def _kernel_cached(shape: tuple[int, int], factor: float, images: str) -> np.ndarray:
    if images == "minimum":
        kern = image_sum(shape, factor, 0)
    else:
        kern = image_sum(shape, factor, IMAGE_SHELLS)
        rest = infinite_lattice_sum(factor) - kern.sum(axis=(1, 2))
        rest[1] = 0.0  # W_xy sums to zero by symmetry
        kern += rest[:, None, None] / (shape[0] * shape[1])
    kern.setflags(write=False)
    return kern


def dipolar_kernel(shape: tuple[int, int], factor: float = 3.0,
                   images: str = "converged") -> np.ndarray:
    """Real-space dipolar tensor of the periodic lattice.

    Parameters
    ----------
    shape : lattice ``(H, W)`` (rows, columns).
    factor : the c in ``(δ_ab - c r̂_a r̂_b) / r³`` (3 standard, 1 printed).
    images : ``"converged"`` (sum over all periodic images) or ``"minimum"`` (symmetric minimum
        image); see the module docstring.

    Returns
    -------
    ``(4, H, W)`` float64, read-only: components ``(W_xx, W_xy, W_yy, W_zz)`` (units of 1/site³)
    at displacement ``(dy, dx) = (row, column)`` index offsets taken modulo the box; zero at the
    origin for ``"minimum"``, the (tiny) self-image sum for ``"converged"``.
    """
    h, w = (int(s) for s in shape)
    if h < 1 or w < 1:
        raise UserError(f"shape must be positive, got {shape!r}")
    return _kernel_cached((h, w), float(factor), check_images(images))


@functools.lru_cache(maxsize=32)
def kernel_spectrum(shape: tuple[int, int], factor: float = 3.0, dtype=np.float64,
                    images: str = "converged") -> np.ndarray:
    """Real 2D FFT of :func:`dipolar_kernel`, shape ``(4, H, W//2 + 1)``, real (the kernel is even)."""
    spec = np.fft.rfft2(dipolar_kernel(shape, factor, images)).real.astype(dtype)
    spec.setflags(write=False)
    return spec


@functools.lru_cache(maxsize=32)
def full_spectrum(shape: tuple[int, int], factor: float = 3.0,
                  images: str = "converged") -> np.ndarray:
    """Full 2D FFT of :func:`dipolar_kernel`, ``(4, H, W)`` float64, real part (the kernel is even)."""
    spec = np.fft.fft2(dipolar_kernel(shape, factor, images)).real
    spec.setflags(write=False)
    return spec


@functools.lru_cache(maxsize=8)
def sublattice_spectra(size: int, factor: float = 3.0, images: str = "converged") -> np.ndarray:
    """Spectra of the dipolar tensor between the two checkerboard sublattices of an L×L lattice.

    Sublattice c, as the group Z_L × Z_{L/2} with site ``(u, v)`` at row ``u``, column
    ``(u + 2v + c) mod L``, sees the field of sublattice c' as a cyclic convolution with
    ``K_cc'(a, b) = W(a, a + 2b + c − c')``: each half-sweep of the annealing then needs the
    transform of one sublattice (half the lattice) instead of the whole. The self term
    ``W(0, 0)`` (converged sums) is left out of ``K_cc``: it acts on a spin itself (the annealing
    adds it as anisotropy).

    Returns ``(2, 2, 4, L, L//4 + 1)`` complex128, read-only: ``[t, c]`` = rfft2 of ``K_tc`` over
    ``(L, L/2)``, components (xx, xy, yy, zz).
    """
    L = int(size)
    if L < 2 or L % 2:
        raise UserError(f"size must be an even integer >= 2, got {size!r}")
    w = dipolar_kernel((L, L), factor, images)
    rows = np.arange(L)[:, None]
    cols = np.arange(L // 2)[None, :]
    out = np.empty((2, 2, 4, L, L // 4 + 1), dtype=np.complex128)
    for t in (0, 1):
        for c in (0, 1):
            k = w[:, rows, (rows + 2 * cols + t - c) % L].copy()
            if t == c:
                k[:, 0, 0] = 0.0
            out[t, c] = np.fft.rfft2(k)
    out.setflags(write=False)
    return out


def dipolar_field(spins: np.ndarray, strength: float = 0.03, factor: float = 3.0,
                  images: str = "converged") -> np.ndarray:
    """Dipolar field ``h_i = -Ddip Σ_j W(r_ij)·Sj`` of one or many configurations.

    Parameters
    ----------
    spins : ``(H, W, 3)`` or ``(N, H, W, 3)`` array (any real dtype; computed in float64).
    strength : Ddip, units of J.
    factor : 3 (standard) or 1 (printed), see :func:`dipolar_kernel`.
    images : ``"converged"`` or ``"minimum"``, see :func:`dipolar_kernel`.

    Returns
    -------
    float64 array of the shape of ``spins``: the field in units of J.
    """
    s = np.asarray(spins, dtype=np.float64)
    shape = s.shape[-3:-1]
    spec = kernel_spectrum(tuple(shape), float(factor), images=check_images(images))
    f = np.fft.rfft2(np.moveaxis(s, -1, -3))  # (..., 3, H, W//2+1)
    fx, fy, fz = f[..., 0, :, :], f[..., 1, :, :], f[..., 2, :, :]
    g = np.stack([spec[0] * fx + spec[1] * fy, spec[1] * fx + spec[2] * fy, spec[3] * fz], axis=-3)
    h = np.fft.irfft2(g, s=shape)
    return np.moveaxis(h, -3, -1) * (-float(strength))
