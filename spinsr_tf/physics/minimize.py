"""Zero-temperature relaxation by L-BFGS on the product of spheres.

Why: a labyrinth relaxed by over-relaxed single-spin sweeps needs thousands of sweeps, because
its last motions (stripe ends and walls creeping) are soft collective modes that local updates
follow slowly. A quasi-Newton method takes long steps along them.

Parametrisation (orthogonal spin optimisation): each step rotates every spin by a small
rotation vector θ_i, S_i ← normalize(S_i + θ_i × S_i). The gradient of the energy with respect
to θ_i at θ = 0 is g_i = h_i × S_i (h = -∂E/∂S the effective field, units of J), so |g_i| is the
local torque |S_i × h_i| and the stopping test is the usual max_i |S_i × h_i| < tol. The L-BFGS
memory keeps pairs (θ_k, g_{k+1} - g_k) in the global frame; the search direction is capped so
that no spin turns by more than ``max_rotation`` radians in one step, and a step that raises the
energy is undone and followed by a restart from steepest descent with a shorter initial step.
All energies of the Hamiltonians are quadratic forms, so E = -½ Σ S·h comes with the field.

Arithmetic is float64; reductions use four interleaved partial sums in a fixed order, so the
result does not depend on the thread count or the vector width.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

_OPTS = dict(cache=True, nogil=True, error_model="numpy")


@nb.njit(**_OPTS)
def _dot(a, b):
    n = a.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    k4 = n - n % 4
    for k in range(0, k4, 4):
        s0 += a[k] * b[k]
        s1 += a[k + 1] * b[k + 1]
        s2 += a[k + 2] * b[k + 2]
        s3 += a[k + 3] * b[k + 3]
    for k in range(k4, n):
        s0 += a[k] * b[k]
    return (s0 + s1) + (s2 + s3)


@nb.njit(**_OPTS)
def local_field_energy(s, hext, J, dvec, K, field, h, g, open_=False):
    """Field, energy and gradient of a local Hamiltonian plus an external field.

    ``s`` ``(3, L, W)`` float64 spins (component first, periodic); ``hext`` ``(3, L, W)`` extra
    field (dipolar) added to h, or shape ``(3, 0, 0)`` for none; ``dvec`` the DMI vectors D_x, D_y
    (6,); K the anisotropy; ``field`` (3,) the uniform Zeeman field. Writes ``h`` (effective
    field) and ``g = h × S`` (the gradient in the rotation parameters). Returns
    ``(E, max_i |g_i|²)``; E = -½ Σ S·(h + field) counts each pair once and the linear Zeeman
    term in full (exact when ``hext`` is the field of a quadratic form, as the dipolar one is).
    ``open_``: an open film, no neighbours beyond its edges.
    """
    L = s.shape[1]
    W = s.shape[2]
    dx0, dx1, dx2, dy0, dy1, dy2 = dvec[0], dvec[1], dvec[2], dvec[3], dvec[4], dvec[5]
    fx, fy, fz = field[0], field[1], field[2]
    ez = 0.0
    ext = hext.shape[1] > 0
    e0 = e1 = 0.0
    tmax = 0.0
    for i in range(L):
        iu = i - 1 if i > 0 else L - 1
        idn = i + 1 if i < L - 1 else 0
        for j in range(W):
            jl = j - 1 if j > 0 else W - 1
            jr = j + 1 if j < W - 1 else 0
            lx, ly, lz = s[0, i, jl], s[1, i, jl], s[2, i, jl]
            rx, ry, rz = s[0, i, jr], s[1, i, jr], s[2, i, jr]
            ux, uy, uz = s[0, iu, j], s[1, iu, j], s[2, iu, j]
            wx, wy, wz = s[0, idn, j], s[1, idn, j], s[2, idn, j]
            if open_:
                if j == 0:
                    lx = ly = lz = 0.0
                if j == W - 1:
                    rx = ry = rz = 0.0
                if i == 0:
                    ux = uy = uz = 0.0
                if i == L - 1:
                    wx = wy = wz = 0.0
            ax, ay, az = rx - lx, ry - ly, rz - lz
            bx, by, bz = wx - ux, wy - uy, wz - uz
            sx, sy, sz = s[0, i, j], s[1, i, j], s[2, i, j]
            hx = J * (lx + rx + ux + wx) + (dx1 * az - dx2 * ay) + (dy1 * bz - dy2 * by)
            hy = J * (ly + ry + uy + wy) + (dx2 * ax - dx0 * az) + (dy2 * bx - dy0 * bz)
            hz = J * (lz + rz + uz + wz) + (dx0 * ay - dx1 * ax) + (dy0 * by - dy1 * bx)
            hz += 2.0 * K * sz
            hx += fx
            hy += fy
            hz += fz
            ez += sx * fx + sy * fy + sz * fz
            if ext:
                hx += hext[0, i, j]
                hy += hext[1, i, j]
                hz += hext[2, i, j]
            h[0, i, j] = hx
            h[1, i, j] = hy
            h[2, i, j] = hz
            gx = hy * sz - hz * sy
            gy = hz * sx - hx * sz
            gz = hx * sy - hy * sx
            g[0, i, j] = gx
            g[1, i, j] = gy
            g[2, i, j] = gz
            t2 = gx * gx + gy * gy + gz * gz
            tmax = max(tmax, t2)
            if j % 2 == 0:
                e0 += sx * hx + sy * hy + sz * hz
            else:
                e1 += sx * hx + sy * hy + sz * hz
    return -0.5 * (e0 + e1) - 0.5 * ez, tmax


@nb.njit(**_OPTS)
def _direction(g, sm, ym, rho, count, head, alpha, r):
    """L-BFGS two-loop recursion: ``r = -H g`` from the ``count`` newest pairs of the ring
    buffers ``sm``, ``ym`` ``(m, n)`` (newest at ``head``). Returns False if there is no memory
    (``r`` is then -g)."""
    m = sm.shape[0]
    n = g.shape[0]
    for k in range(n):
        r[k] = g[k]
    for c in range(count):
        b = (head - c) % m
        a = rho[b] * _dot(sm[b], r)
        alpha[b] = a
        yb = ym[b]
        for k in range(n):
            r[k] -= a * yb[k]
    if count > 0:
        gam = _dot(sm[head], ym[head]) / _dot(ym[head], ym[head])
        for k in range(n):
            r[k] *= gam
    for c in range(count - 1, -1, -1):
        b = (head - c) % m
        beta = rho[b] * _dot(ym[b], r)
        sb = sm[b]
        d = alpha[b] - beta
        for k in range(n):
            r[k] += d * sb[k]
    for k in range(n):
        r[k] = -r[k]
    return count > 0


@nb.njit(**_OPTS)
def _rotate(s, p, out):
    """``out_i = normalize(S_i + p_i × S_i)`` (a retraction onto the spheres); ``s``, ``p``,
    ``out`` ``(3, L, W)``."""
    L = s.shape[1]
    W = s.shape[2]
    for i in range(L):
        for j in range(W):
            sx, sy, sz = s[0, i, j], s[1, i, j], s[2, i, j]
            px, py, pz = p[0, i, j], p[1, i, j], p[2, i, j]
            nx = sx + (py * sz - pz * sy)
            ny = sy + (pz * sx - px * sz)
            nz = sz + (px * sy - py * sx)
            inv = 1.0 / math.sqrt(nx * nx + ny * ny + nz * nz)
            out[0, i, j] = nx * inv
            out[1, i, j] = ny * inv
            out[2, i, j] = nz * inv


@nb.njit(**_OPTS)
def _max_norm2(p):
    """max_i |p_i|² over the sites of a ``(3, L, W)`` field."""
    best = 0.0
    for i in range(p.shape[1]):
        for j in range(p.shape[2]):
            v = p[0, i, j] ** 2 + p[1, i, j] ** 2 + p[2, i, j] ** 2
            best = max(best, v)
    return best


@nb.njit(**_OPTS)
def _lbfgs_step(s, g, trial, p, sm, ym, rho, alpha, count, head, step0, max_rotation):
    """Direction ``p`` and trial configuration of one L-BFGS iteration (the caller evaluates
    it): no spin turns by more than ``max_rotation`` radians. Returns whether the memory was
    used (False: steepest descent, step ``step0``)."""
    pf = p.reshape(-1)
    gf = g.reshape(-1)
    has = _direction(gf, sm, ym, rho, count, head, alpha, pf)
    if has and _dot(pf, gf) >= 0.0:  # not a descent direction: forget the memory
        has = False
    if not has:
        for k in range(pf.shape[0]):
            pf[k] = -step0 * gf[k]
    mx = math.sqrt(_max_norm2(p))
    scale = 1.0
    if mx > max_rotation:
        scale = max_rotation / mx
        for k in range(pf.shape[0]):
            pf[k] *= scale
    _rotate(s, p, trial)
    return has


@nb.njit(**_OPTS)
def _accept(s, h, g, trial, h_new, g_new, p, sm, ym, rho, count, head):
    """Store the pair (p, g_new - g) if it has positive curvature, and move to the trial state.
    Returns the new ``(count, head)``."""
    m = sm.shape[0]
    pf = p.reshape(-1)
    gf = g.reshape(-1)
    gnf = g_new.reshape(-1)
    nxt = (head + 1) % m
    yb = ym[nxt]
    for k in range(pf.shape[0]):
        yb[k] = gnf[k] - gf[k]
    sy = _dot(pf, yb)
    if sy > 1e-300:
        sb = sm[nxt]
        for k in range(pf.shape[0]):
            sb[k] = pf[k]
        rho[nxt] = 1.0 / sy
        head = nxt
        count = min(count + 1, m)
    s[...] = trial
    h[...] = h_new
    g[...] = g_new
    return count, head


@nb.njit(**_OPTS)
def lbfgs_local(s, J, dvec, K, field, tol, max_iter, memory, max_rotation, open_=False):
    """L-BFGS relaxation of a local Hamiltonian (exchange, DMI, anisotropy, Zeeman ``field``
    (3,)), in place.

    ``s`` ``(3, L, W)`` float64 unit spins. Stops when max torque < ``tol`` (J) or after
    ``max_iter`` iterations (one field evaluation each); ``open_`` for an open film. Returns
    ``(iterations, max torque)``.
    """
    shape = s.shape
    n = s.size
    none = np.zeros((3, 0, 0))
    h = np.zeros(shape)
    g = np.zeros(shape)
    h_new = np.zeros(shape)
    g_new = np.zeros(shape)
    trial = np.zeros(shape)
    p = np.zeros(shape)
    sm = np.zeros((memory, n))
    ym = np.zeros((memory, n))
    rho = np.zeros(memory)
    alpha = np.zeros(memory)
    E, t2 = local_field_energy(s, none, J, dvec, K, field, h, g, open_)
    count, head = 0, memory - 1
    step0 = 0.1
    it = 0
    tol2 = tol * tol
    while t2 >= tol2 and it < max_iter:
        _lbfgs_step(s, g, trial, p, sm, ym, rho, alpha, count, head, step0, max_rotation)
        E_new, t2_new = local_field_energy(trial, none, J, dvec, K, field, h_new, g_new, open_)
        it += 1
        if E_new > E + 1e-13 * abs(E):
            count = 0
            step0 *= 0.5
            continue
        count, head = _accept(s, h, g, trial, h_new, g_new, p, sm, ym, rho, count, head)
        E, t2 = E_new, t2_new
    return it, math.sqrt(t2)


def lbfgs_dipolar(s, J, dvec, K, field, spectrum, tol, max_iter, memory, max_rotation):
    """L-BFGS relaxation with a long-range dipolar field, in place (the loop of
    :func:`lbfgs_local`, with one FFT convolution per iteration).

    ``s`` ``(3, L, L)`` float64 unit spins; ``spectrum`` ``(4, L, L//2 + 1)`` the real rFFT of
    ``-Ddip·W`` (xx, xy, yy, zz), so the dipolar field is ``irfft(spectrum · rfft(S))``, the
    self-image term included; ``dvec``, ``K``, ``field`` as :func:`lbfgs_local`. Returns
    ``(iterations, max torque)``.
    """
    import scipy.fft

    shape = s.shape
    L = shape[1]

    def dip(x):
        f = scipy.fft.rfft2(x, workers=1)
        out = np.empty_like(f)
        out[0] = spectrum[0] * f[0] + spectrum[1] * f[1]
        out[1] = spectrum[1] * f[0] + spectrum[2] * f[1]
        out[2] = spectrum[3] * f[2]
        return scipy.fft.irfft2(out, s=(L, L), workers=1)

    n = s.size
    h, g, h_new, g_new, trial, p = (np.zeros(shape) for _ in range(6))
    sm, ym = np.zeros((memory, n)), np.zeros((memory, n))
    rho, alpha = np.zeros(memory), np.zeros(memory)
    E, t2 = local_field_energy(s, dip(s), J, dvec, K, field, h, g)
    count, head, step0, it = 0, memory - 1, 0.1, 0
    while t2 >= tol * tol and it < max_iter:
        _lbfgs_step(s, g, trial, p, sm, ym, rho, alpha, count, head, step0, max_rotation)
        E_new, t2_new = local_field_energy(trial, dip(trial), J, dvec, K, field, h_new, g_new)
        it += 1
        if E_new > E + 1e-13 * abs(E):
            count = 0
            step0 *= 0.5
            continue
        count, head = _accept(s, h, g, trial, h_new, g_new, p, sm, ym, rho, count, head)
        E, t2 = E_new, t2_new
    return it, math.sqrt(t2)
