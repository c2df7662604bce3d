"""numba kernels of the annealing: checkerboard Metropolis and zero-temperature relaxation.

Layout. One sample's spins are stored by sublattice, float32, shape ``(2, 3, L, M + 2)`` with
``M = L // 2``: ``s[c, k, i, m + 1]`` is component k of the spin at row i, column
``j = 2m + (i + c) % 2`` (sublattice c = (i + j) % 2). Columns 0 and M + 1 are ghost copies of
columns M and 1, so the left/right neighbours of every site of a row sit at fixed offsets and the
loop over a row has no special case: it compiles to SIMD code (8 sites per instruction). In a
row of parity p = (i + c) % 2 the site at padded column q has its left/right neighbours (other
sublattice, same row) at q - 1 + p and q + p, and its up/down neighbours (other sublattice, rows
i ∓ 1) at q.

Arithmetic is float32 IEEE without contraction or reassociation, so results do not depend on
the vector width the compiler picked. Random numbers come from per-lane xoshiro128+ generators
(:mod:`~spinsr_tf.physics.rng`), so a sample's result depends on its key alone.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from spinsr_tf.physics.rng import to_unit_float, xoshiro_next

_FM = {"nnan", "ninf", "nsz"}
_OPTS = dict(cache=True, nogil=True, error_model="numpy", fastmath=_FM)

F0 = np.float32(0.0)
F1 = np.float32(1.0)
F2 = np.float32(2.0)


@nb.njit(inline="always")
def _expneg(x):
    """exp(-x) for float32 x >= 0, relative error < 2e-5; exactly 0 for x >= 24.

    exp(-x/64) by its degree-6 Taylor polynomial, then squared six times: only multiplies and
    adds, so it vectorises (libm's exp does not).
    """
    xc = min(x, np.float32(24.0))
    y = xc * np.float32(-0.015625)
    e = F1 + y * (F1 + y * (np.float32(0.5) + y * (np.float32(1.0 / 6.0) + y * (
        np.float32(1.0 / 24.0) + y * (np.float32(1.0 / 120.0) + y * np.float32(1.0 / 720.0))))))
    e = e * e
    e = e * e
    e = e * e
    e = e * e
    e = e * e
    e = e * e
    return e if x < np.float32(24.0) else F0


@nb.njit(inline="always")
def _unit_vector(r1, r2):
    """Uniform random unit vector from two uint32: z uniform in [-1, 1), azimuth uniform.

    The azimuth is a quadrant (top 2 bits of r2) plus an angle in [-π/4, π/4) whose sine and
    cosine are Taylor polynomials (error < 4e-7): no libm call, so the loop vectorises.
    """
    gz = F2 * to_unit_float(r1) - F1
    rr = math.sqrt(max(F1 - gz * gz, F0))
    quad = r2 >> np.uint32(30)
    a = (np.float32(np.int32((r2 & np.uint32(0x3FFFFFFF)) >> np.uint32(6)))
         * np.float32(5.9604644775390625e-08) - np.float32(0.5)) * np.float32(1.5707963267948966)
    a2 = a * a
    sn = a * (F1 + a2 * (np.float32(-1.0 / 6.0) + a2 * (np.float32(1.0 / 120.0)
                                                        + a2 * np.float32(-1.0 / 5040.0))))
    cs = F1 + a2 * (np.float32(-0.5) + a2 * (np.float32(1.0 / 24.0) + a2 * (
        np.float32(-1.0 / 720.0) + a2 * np.float32(1.0 / 40320.0))))
    odd = (quad & np.uint32(1)) != 0
    half = (quad & np.uint32(2)) != 0
    c1 = -sn if odd else cs
    s1 = cs if odd else sn
    c1 = -c1 if half else c1
    s1 = -s1 if half else s1
    return rr * c1, rr * s1, gz


@nb.njit(inline="always")
def _exchange_dmi_field(lx, ly, lz, rx, ry, rz, ux, uy, uz, wx, wy, wz, J, dx0, dx1, dx2,
                        dy0, dy1, dy2):
    """J Σ_nn S + D_x × (S_right - S_left) + D_y × (S_down - S_up) (down = row i + 1 = +y)."""
    ax = rx - lx
    ay = ry - ly
    az = rz - lz
    bx = wx - ux
    by = wy - uy
    bz = wz - uz
    hx = J * (lx + rx + ux + wx) + (dx1 * az - dx2 * ay) + (dy1 * bz - dy2 * by)
    hy = J * (ly + ry + uy + wy) + (dx2 * ax - dx0 * az) + (dy2 * bx - dy0 * bz)
    hz = J * (lz + rz + uz + wz) + (dx0 * ay - dx1 * ax) + (dy0 * by - dy1 * bx)
    return hx, hy, hz


@nb.njit(inline="always")
def _metropolis_site(sx, sy, sz, hx, hy, hz, K, r1, r2, r3, delta, beta):
    """Cone move S' = normalize(S + delta·g), g uniform on the sphere, Metropolis acceptance.

    The proposal density depends only on the angle between S and S', so it is symmetric and
    the plain Metropolis ratio exp(-βΔE) gives detailed balance. ΔE = -h·(S' - S) - K(S'z² - Sz²)
    is exact: h (nearest neighbours and dipolar) does not depend on S itself.
    Returns the new spin and whether the move was accepted.
    """
    gx, gy, gz = _unit_vector(r1, r2)
    nx = sx + delta * gx
    ny = sy + delta * gy
    nz = sz + delta * gz
    n2 = nx * nx + ny * ny + nz * nz
    inv = F1 / math.sqrt(n2)
    nx = nx * inv
    ny = ny * inv
    nz = nz * inv
    de = -(hx * (nx - sx) + hy * (ny - sy) + hz * (nz - sz)) - K * (nz * nz - sz * sz)
    ok = (to_unit_float(r3) < _expneg(max(de * beta, F0))) & (n2 > np.float32(1e-12))
    return (nx if ok else sx), (ny if ok else sy), (nz if ok else sz), ok


@nb.njit(**_OPTS)
def _mc_row(ox, oy, oz, hmx, hmy, hmz, nbx, nby, nbz, upx, upy, upz, dnx, dny, dnz,
            st0, st1, st2, st3, p, beta, delta, J, dx0, dx1, dx2, dy0, dy1, dy2, K, acc):
    """Metropolis update of one sublattice row (see module docstring for the index scheme).

    ``h m*`` is the extra field on this row's sites (dipolar and Zeeman; zeros without
    either), unpadded.
    """
    one = np.uint64(1)
    pp = np.uint64(p)
    for qi in range(1, ox.shape[0] - 1):
        q = np.uint64(qi)
        m = q - one
        ql = m + pp
        qr = q + pp
        hx, hy, hz = _exchange_dmi_field(
            nbx[ql], nby[ql], nbz[ql], nbx[qr], nby[qr], nbz[qr], upx[q], upy[q], upz[q],
            dnx[q], dny[q], dnz[q], J, dx0, dx1, dx2, dy0, dy1, dy2)
        hx += hmx[m]
        hy += hmy[m]
        hz += hmz[m]
        s0 = st0[m]
        s1 = st1[m]
        s2 = st2[m]
        s3 = st3[m]
        r1, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
        r2, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
        r3, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
        st0[m] = s0
        st1[m] = s1
        st2[m] = s2
        st3[m] = s3
        nx, ny, nz, ok = _metropolis_site(ox[q], oy[q], oz[q], hx, hy, hz, K, r1, r2, r3,
                                          delta, beta)
        ox[q] = nx
        oy[q] = ny
        oz[q] = nz
        acc[m] += np.int32(ok)


@nb.njit(**_OPTS)
def _relax_row(ox, oy, oz, hmx, hmy, hmz, nbx, nby, nbz, upx, upy, upz, dnx, dny, dnz,
               p, J, dx0, dx1, dx2, dy0, dy1, dy2, K, omega, tmax):
    """Zero-temperature update of one sublattice row: S ← normalize(S + ω(ĥ - S)).

    ĥ is the unit local field including 2K·Sz ẑ; ω = 1 aligns each spin with its field (the
    exact single-site minimiser for Type I; a descent step for Type II, whose site energy is
    concave in S), ω in (1, 2) over-relaxes, which converges in fewer sweeps. ``tmax[m]`` keeps
    the largest squared torque |S × h|² seen in lane m, measured before the update.
    """
    one = np.uint64(1)
    pp = np.uint64(p)
    for qi in range(1, ox.shape[0] - 1):
        q = np.uint64(qi)
        m = q - one
        ql = m + pp
        qr = q + pp
        hx, hy, hz = _exchange_dmi_field(
            nbx[ql], nby[ql], nbz[ql], nbx[qr], nby[qr], nbz[qr], upx[q], upy[q], upz[q],
            dnx[q], dny[q], dnz[q], J, dx0, dx1, dx2, dy0, dy1, dy2)
        sx = ox[q]
        sy = oy[q]
        sz = oz[q]
        hx += hmx[m]
        hy += hmy[m]
        hz += hmz[m] + F2 * K * sz
        tx = sy * hz - sz * hy
        ty = sz * hx - sx * hz
        tz = sx * hy - sy * hx
        tmax[m] = max(tmax[m], tx * tx + ty * ty + tz * tz)
        h2 = hx * hx + hy * hy + hz * hz
        ih = F1 / math.sqrt(h2)
        nx = sx + omega * (hx * ih - sx)
        ny = sy + omega * (hy * ih - sy)
        nz = sz + omega * (hz * ih - sz)
        inv = F1 / math.sqrt(nx * nx + ny * ny + nz * nz)
        good = h2 > np.float32(1e-20)
        ox[q] = nx * inv if good else sx
        oy[q] = ny * inv if good else sy
        oz[q] = nz * inv if good else sz


@nb.njit(**_OPTS)
def _refresh_ghosts(s, c):
    m = s.shape[3] - 2
    for k in range(3):
        for i in range(s.shape[2]):
            s[c, k, i, 0] = s[c, k, i, m]
            s[c, k, i, m + 1] = s[c, k, i, 1]


@nb.njit(**_OPTS)
def _clear_ghosts(s):
    """Zero the ghost columns: the missing neighbours beyond the left and right edges of an open
    film (every neighbour term is linear in the neighbour's spin, so a zero is no bond)."""
    m = s.shape[3] - 2
    for c in range(2):
        for k in range(3):
            for i in range(s.shape[2]):
                s[c, k, i, 0] = F0
                s[c, k, i, m + 1] = F0


@nb.njit(**_OPTS)
def mc_half_sweep(s, st, hm, c, beta, delta, J, dvec, K, acc, open_=False):
    """Metropolis half-sweep of sublattice ``c`` (all its sites, row by row).

    Parameters
    ----------
    s : ``(2, 3, L, M + 2)`` float32 spins (updated in place, ghosts refreshed).
    st : ``(4, M)`` uint32 lane generators (advanced in place).
    hm : ``(3, L, M)`` float32 extra field on sublattice c's sites (any term whose field does
        not depend on the spin itself: dipolar, Zeeman), zeros if none.
    c : sublattice; beta : 1/T (float32); delta : cone width (float32).
    J, K : float32 couplings; dvec : ``(6,)`` float32 DMI vectors D_x then D_y.
    acc : ``(M,)`` int32 accepted-move counters (incremented).
    open_ : open film: no neighbours beyond the first and last rows, and ghost columns kept
        at zero (:func:`_clear_ghosts`) instead of refreshed.
    """
    L = s.shape[2]
    o = 1 - c
    d = dvec
    zero = np.zeros(s.shape[3], dtype=np.float32)
    for i in range(L):
        iu = i - 1 if i > 0 else L - 1
        idn = i + 1 if i < L - 1 else 0
        ux, uy, uz = s[o, 0, iu], s[o, 1, iu], s[o, 2, iu]
        wx, wy, wz = s[o, 0, idn], s[o, 1, idn], s[o, 2, idn]
        if open_ and i == 0:
            ux, uy, uz = zero, zero, zero
        if open_ and i == L - 1:
            wx, wy, wz = zero, zero, zero
        _mc_row(s[c, 0, i], s[c, 1, i], s[c, 2, i], hm[0, i], hm[1, i], hm[2, i],
                s[o, 0, i], s[o, 1, i], s[o, 2, i], ux, uy, uz, wx, wy, wz,
                st[0], st[1], st[2], st[3],
                (i + c) & 1, beta, delta, J, d[0], d[1], d[2], d[3], d[4], d[5], K, acc)
    if not open_:
        _refresh_ghosts(s, c)


@nb.njit(**_OPTS)
def relax_half_sweep(s, hm, c, J, dvec, K, omega, tmax, open_=False):
    """Zero-temperature half-sweep of sublattice ``c`` (see :func:`_relax_row`); arguments as
    :func:`mc_half_sweep`, ``omega`` float32, ``tmax`` ``(M,)`` float32 (max-updated in place)."""
    L = s.shape[2]
    o = 1 - c
    d = dvec
    zero = np.zeros(s.shape[3], dtype=np.float32)
    for i in range(L):
        iu = i - 1 if i > 0 else L - 1
        idn = i + 1 if i < L - 1 else 0
        ux, uy, uz = s[o, 0, iu], s[o, 1, iu], s[o, 2, iu]
        wx, wy, wz = s[o, 0, idn], s[o, 1, idn], s[o, 2, idn]
        if open_ and i == 0:
            ux, uy, uz = zero, zero, zero
        if open_ and i == L - 1:
            wx, wy, wz = zero, zero, zero
        _relax_row(s[c, 0, i], s[c, 1, i], s[c, 2, i], hm[0, i], hm[1, i], hm[2, i],
                   s[o, 0, i], s[o, 1, i], s[o, 2, i], ux, uy, uz, wx, wy, wz,
                   (i + c) & 1, J, d[0], d[1], d[2], d[3], d[4], d[5], K, omega, tmax)
    if not open_:
        _refresh_ghosts(s, c)


@nb.njit(**_OPTS)
def random_state(s, st):
    """Fill ``s`` with independent uniform unit vectors drawn from the lane generators."""
    L = s.shape[2]
    M = s.shape[3] - 2
    for c in range(2):
        for i in range(L):
            for m in range(M):
                r1, a, b, e, f = xoshiro_next(st[0, m], st[1, m], st[2, m], st[3, m])
                r2, a, b, e, f = xoshiro_next(a, b, e, f)
                st[0, m] = a
                st[1, m] = b
                st[2, m] = e
                st[3, m] = f
                x, y, z = _unit_vector(r1, r2)
                inv = F1 / math.sqrt(x * x + y * y + z * z)
                s[c, 0, i, m + 1] = x * inv
                s[c, 1, i, m + 1] = y * inv
                s[c, 2, i, m + 1] = z * inv
        _refresh_ghosts(s, c)


@nb.njit(**_OPTS)
def unpack(s, out):
    """Sublattice layout ``(2, 3, L, M + 2)`` → image layout ``out`` ``(L, L, 3)``."""
    L = s.shape[2]
    M = s.shape[3] - 2
    for i in range(L):
        for c in range(2):
            p = (i + c) & 1
            for m in range(M):
                for k in range(3):
                    out[i, 2 * m + p, k] = s[c, k, i, m + 1]


@nb.njit(**_OPTS)
def unpack_components(s, out):
    """Sublattice layout → component-first image layout ``out`` ``(3, L, L)`` (for the FFT)."""
    L = s.shape[2]
    M = s.shape[3] - 2
    for k in range(3):
        for i in range(L):
            for c in range(2):
                p = (i + c) & 1
                for m in range(M):
                    out[k, i, 2 * m + p] = s[c, k, i, m + 1]


@nb.njit(**_OPTS)
def shear_sublattice(s, c, out):
    """Sublattice ``c`` of the layout ``s`` → its sheared grid ``out`` ``(3, L, M)``.

    Sublattice c is the group Z_L × Z_M: site ``(u, v)`` is row ``i = u``, column
    ``j = (u + 2v + c) mod L``. On that grid the dipolar sum from sublattice c to sublattice t is
    a cyclic convolution, so each sublattice can be Fourier transformed on its own (half the
    size of the lattice). Packed column ``m`` of row ``i`` is ``v = m − ⌊(i + c)/2⌋ mod M``.
    """
    L = s.shape[2]
    M = s.shape[3] - 2
    for k in range(3):
        for i in range(L):
            shift = ((i + c) // 2) % M
            for v in range(M - shift):   # two contiguous runs: no modulo in the loops
                out[k, i, v] = s[c, k, i, v + shift + 1]
            for v in range(M - shift, M):
                out[k, i, v] = s[c, k, i, v + shift - M + 1]


@nb.njit(**_OPTS)
def unshear_field(h, c, out):
    """The sheared field ``h`` ``(3, L, M)`` on sublattice ``c`` → packed layout ``out``
    ``(3, L, M)`` (the inverse index map of :func:`shear_sublattice`)."""
    L = h.shape[1]
    M = h.shape[2]
    for k in range(3):
        for i in range(L):
            shift = ((i + c) // 2) % M
            for m in range(shift):
                out[k, i, m] = h[k, i, m - shift + M]
            for m in range(shift, M):
                out[k, i, m] = h[k, i, m - shift]


@nb.njit(**_OPTS)
def apply_pair_spectrum(f_same, spec_same, f_other, spec_other, out):
    """``out = K_tt·f_t + K_to·f_o`` per wavevector (complex64): the field on sublattice t from
    both sublattices. ``f_*``: ``(3, L, M//2+1)`` spectra of the sheared spins; ``spec_*``:
    ``(4, L, M//2+1)`` tensor spectra (xx, xy, yy, zz)."""
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            ax, ay, az = f_same[0, i, j], f_same[1, i, j], f_same[2, i, j]
            bx, by, bz = f_other[0, i, j], f_other[1, i, j], f_other[2, i, j]
            out[0, i, j] = (spec_same[0, i, j] * ax + spec_same[1, i, j] * ay
                            + spec_other[0, i, j] * bx + spec_other[1, i, j] * by)
            out[1, i, j] = (spec_same[1, i, j] * ax + spec_same[2, i, j] * ay
                            + spec_other[1, i, j] * bx + spec_other[2, i, j] * by)
            out[2, i, j] = spec_same[3, i, j] * az + spec_other[3, i, j] * bz


@nb.njit(**_OPTS)
def adapt_delta(delta, accepted, attempts, target):
    """Scale the cone width towards the target acceptance, factor in [0.5, 2], width in
    [1e-4, 4] (4 is practically a uniform proposal)."""
    rate = accepted / attempts
    f = min(max((rate + 0.05) / (target + 0.05), 0.5), 2.0)
    return min(max(delta * f, 1e-4), 4.0)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def anneal_local_sample(s, st, betas, J, dvec, K, field, delta0, target, relax_max, tol,
                        omega, open_=False):
    """Whole anneal of one sample of a Hamiltonian without long-range terms (Type I).

    ``field`` ``(3,)`` float32 is a uniform external field (Zeeman), added to every site's
    local field (zeros: none; adding zeros changes no bit); ``open_`` anneals an open film.

    Random start, one Metropolis sweep per entry of ``betas`` (cone width adapted after a sweep
    only if the next temperature differs: at fixed temperature the proposal is fixed, as detailed
    balance needs), then relaxation sweeps until the largest torque is below ``tol`` or ``relax_max``
    sweeps were made. Returns ``(relaxation sweeps made, final max torque)``; ``s`` holds the
    result.
    """
    L = s.shape[2]
    M = s.shape[3] - 2
    hm = np.zeros((3, L, M), dtype=np.float32)
    for k in range(3):
        hm[k] = field[k]
    acc = np.zeros(M, dtype=np.int32)
    tmax = np.zeros(M, dtype=np.float32)
    random_state(s, st)
    if open_:
        _clear_ghosts(s)
    delta = delta0
    for n in range(betas.shape[0]):
        acc[:] = 0
        for c in range(2):
            mc_half_sweep(s, st, hm, c, betas[n], np.float32(delta), J, dvec, K, acc, open_)
        if n + 1 < betas.shape[0] and betas[n + 1] != betas[n]:  # adapt only while cooling
            delta = adapt_delta(delta, acc.sum(), 2.0 * L * M, target)
    tol2 = np.float32(tol * tol)
    torque2 = np.float32(np.inf)
    sweeps = 0
    while sweeps < relax_max:
        tmax[:] = 0
        for c in range(2):
            relax_half_sweep(s, hm, c, J, dvec, K, omega, tmax, open_)
        sweeps += 1
        torque2 = tmax.max()
        if torque2 < tol2:
            break
    return sweeps, math.sqrt(torque2)


@nb.njit(cache=True, parallel=True, error_model="numpy")
def anneal_local_batch(states, lanes, betas, J, dvec, K, field, delta0, target, relax_max, tol,
                       omega, open_, sweeps_out, torque_out):
    """:func:`anneal_local_sample` over a batch, in parallel (one sample per thread at a time).

    ``states`` ``(n, 2, 3, L, M + 2)`` float32 and ``lanes`` ``(n, 4, M)`` uint32 are updated in
    place; sample b touches only ``states[b]`` and ``lanes[b]``, so results do not depend on the
    thread count or on the other samples.
    """
    for b in nb.prange(states.shape[0]):
        n, t = anneal_local_sample(states[b], lanes[b], betas, J, dvec, K, field, delta0,
                                   target, relax_max, tol, omega, open_)
        sweeps_out[b] = n
        torque_out[b] = t


@nb.njit(**_OPTS)
def pack_components(comp, s):
    """Component-first image layout ``comp`` ``(3, L, L)`` → sublattice layout ``s`` (ghosts
    refreshed); the inverse of :func:`unpack_components`."""
    L = s.shape[2]
    M = s.shape[3] - 2
    for c in range(2):
        for k in range(3):
            for i in range(L):
                p = (i + c) & 1
                for m in range(M):
                    s[c, k, i, m + 1] = comp[k, i, 2 * m + p]
        _refresh_ghosts(s, c)
