"""Annealing speed and quality: ``python benchmarks/bench_annealing.py [--png PATH] [--quick]``.

Prints, measured side by side in one run:

1. Metropolis spin updates per second of :func:`spinsr_tf.physics.anneal` (numba, checkerboard,
   ``--threads`` threads) for Type I and Type II, and the ratio to a straightforward vectorised
   NumPy checkerboard Metropolis written below (same moves, same half-sweep dipolar refresh);
2. seconds per finished sample (annealing + relaxation) of the default schedule, with its
   energy per spin and final torque, side by side with the previous default schedule (1,000
   sweeps from T = 2, over-relaxation ω = 1.9; Type II with the minimum-image dipolar sum), the
   L-BFGS relaxation, and (Type I) a plain numba implementation of the same schedule (sequential
   Metropolis and over-relaxation, scalar code, one thread; its time divided by ``--threads``
   as if the samples ran in parallel), and the projected time for the paper's 40,100 samples
   per type;
3. quality against sweep count: final energy per spin and torque after relaxation, a few samples
   each, from which the ``Schedule`` default is chosen;
4. with ``--png``, a panel of Sz/Sx/Sy maps of default-schedule samples of both types;
5. the whole command a user types, ``spinsr-tf generate --type I --size 128`` with 4 and 32
   samples, in fresh processes, beside the fixed start-up every numba program pays (a process
   that imports numba and calls one cached function): what the engine adds is the difference.

Timings depend on what else runs on the machine; the ratios are taken within one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spinsr_tf.physics import (Schedule, TypeI, TypeII, anneal, default_schedule, energy,  # noqa: E402
                               max_torque)
from spinsr_tf.physics.dipolar import dipolar_field  # noqa: E402

PAPER_SAMPLES = 40_100


def numpy_metropolis(ham, spins, temps, rng, delta=0.5):
    """Reference: vectorised NumPy checkerboard Metropolis on a batch ``(N, L, L, 3)`` float64.

    Cone moves S' = normalize(S + δ g) with Gaussian g, exact ΔE from the local field (the
    dipolar field by NumPy FFT refreshed per half-sweep, as in the library).
    """
    s = spins.copy()
    L = s.shape[1]
    mask = (np.add.outer(np.arange(L), np.arange(L)) % 2)[None]
    if isinstance(ham, TypeI):
        dx, dy = ham.dmi_vectors()
    for t in temps:
        for c in (0, 1):
            xp, xm = np.roll(s, -1, 2), np.roll(s, 1, 2)
            yp, ym = np.roll(s, -1, 1), np.roll(s, 1, 1)
            h = ham.J * (xp + xm + yp + ym)
            if isinstance(ham, TypeI):
                h += np.cross(dx, xp - xm) + np.cross(dy, yp - ym)
                k = 0.0
            else:
                h += dipolar_field(s, ham.dipolar, ham.dipolar_factor)
                k = ham.anisotropy
            new = s + delta * rng.normal(size=s.shape)
            new /= np.linalg.norm(new, axis=-1, keepdims=True)
            de = -np.sum(h * (new - s), axis=-1) - k * (new[..., 2] ** 2 - s[..., 2] ** 2)
            ok = (rng.random(de.shape) < np.exp(-np.maximum(de, 0.0) / t)) & (mask == c)
            s = np.where(ok[..., None], new, s)
    return s


@numba.njit(cache=True, inline="always")
def _plain_field(s, i, j, L, dmi):
    """Exchange + interfacial DMI field on site (i, j) of an (L, L, 3) lattice, periodic."""
    jl, jr, iu, idn = (j - 1) % L, (j + 1) % L, (i - 1) % L, (i + 1) % L
    ax = s[i, jr, 0] - s[i, jl, 0]
    by = s[idn, j, 1] - s[iu, j, 1]
    hx = s[i, jl, 0] + s[i, jr, 0] + s[iu, j, 0] + s[idn, j, 0] + dmi * (s[i, jr, 2] - s[i, jl, 2])
    hy = s[i, jl, 1] + s[i, jr, 1] + s[iu, j, 1] + s[idn, j, 1] + dmi * (s[idn, j, 2] - s[iu, j, 2])
    hz = s[i, jl, 2] + s[i, jr, 2] + s[iu, j, 2] + s[idn, j, 2] - dmi * ax - dmi * by
    return hx, hy, hz


@numba.njit(cache=True)
def plain_numba(s, temps, dmi, seed, relax_max, tol, omega):
    """What a careful new user would write, with the library's algorithm: sequential
    single-site Metropolis on an ``(L, L, 3)`` float64 lattice (Type I, interfacial DMI), cone
    moves, the width adapted while cooling, then sequential over-relaxed sweeps
    S ← normalize(S + ω(ĥ − S)) until the largest torque is below ``tol``. Scalar arithmetic,
    no allocation in the loops; one thread, no sublattice layout, NumPy's generator."""
    np.random.seed(seed)
    L = s.shape[0]
    delta = 1.0
    for n in range(temps.shape[0]):
        t = temps[n]
        acc = 0
        for i in range(L):
            for j in range(L):
                hx, hy, hz = _plain_field(s, i, j, L, dmi)
                gx, gy, gz = np.random.normal(), np.random.normal(), np.random.normal()
                gn = np.sqrt(gx * gx + gy * gy + gz * gz)
                nx = s[i, j, 0] + delta * gx / gn
                ny = s[i, j, 1] + delta * gy / gn
                nz = s[i, j, 2] + delta * gz / gn
                nn = np.sqrt(nx * nx + ny * ny + nz * nz)
                nx, ny, nz = nx / nn, ny / nn, nz / nn
                de = -(hx * (nx - s[i, j, 0]) + hy * (ny - s[i, j, 1]) + hz * (nz - s[i, j, 2]))
                if de <= 0 or np.random.random() < np.exp(-de / t):
                    s[i, j, 0], s[i, j, 1], s[i, j, 2] = nx, ny, nz
                    acc += 1
        if n + 1 < temps.shape[0] and temps[n + 1] != t:
            delta = min(max(delta * min(max((acc / L ** 2 + 0.05) / 0.45, 0.5), 2.0), 1e-4), 4.0)
    sweeps, tmax = 0, np.inf
    while sweeps < relax_max and tmax >= tol:
        tmax = 0.0
        for i in range(L):
            for j in range(L):
                hx, hy, hz = _plain_field(s, i, j, L, dmi)
                x, y, z = s[i, j, 0], s[i, j, 1], s[i, j, 2]
                tx, ty, tz = y * hz - z * hy, z * hx - x * hz, x * hy - y * hx
                tmax = max(tmax, np.sqrt(tx * tx + ty * ty + tz * tz))
                hn = np.sqrt(hx * hx + hy * hy + hz * hz)
                x, y, z = x + omega * (hx / hn - x), y + omega * (hy / hn - y), z + omega * (hz / hn - z)
                nn = np.sqrt(x * x + y * y + z * z)
                s[i, j, 0], s[i, j, 1], s[i, j, 2] = x / nn, y / nn, z / nn
        sweeps += 1
    return sweeps


#: The default schedules before the over-relaxation was retuned and the annealing shortened.
OLD_SCHEDULES = {"Type I": Schedule(t_start=2.0, t_end=0.05, sweeps=1000, relax_omega=1.9,
                                    relax_sweeps=10000),
                 "Type II": Schedule(t_start=2.0, t_end=0.05, sweeps=1000, relax_omega=1.9,
                                     relax_sweeps=200)}


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def speed(ham, size, samples, sweeps, ref_sweeps):
    sched = Schedule(sweeps=sweeps, relax_sweeps=0)
    anneal(ham, size, 0, [0], Schedule(sweeps=2, relax_sweeps=1))  # compile / load the cache
    _, t = _timed(lambda: anneal(ham, size, 1, range(samples), sched))
    ours = samples * sweeps * size * size / t
    rng = np.random.default_rng(0)
    start = rng.normal(size=(samples, size, size, 3))
    start /= np.linalg.norm(start, axis=-1, keepdims=True)
    temps = Schedule(sweeps=ref_sweeps).temperatures()
    _, t_ref = _timed(lambda: numpy_metropolis(ham, start, temps, rng))
    ref = samples * ref_sweeps * size * size / t_ref
    return ours, ref


def wall_fraction(spins):
    """Fraction of nearest-neighbour bonds across which Sz changes sign (domain-wall density)."""
    sz = np.sign(spins[..., 2])
    return 0.5 * ((sz != np.roll(sz, 1, -1)).mean() + (sz != np.roll(sz, 1, -2)).mean())


def quality(ham, size, sweeps_list, samples):
    rows = []
    for sweeps in sweeps_list:
        sched = dataclasses.replace(default_schedule(ham), sweeps=sweeps)
        (spins, info), t = _timed(lambda: anneal(ham, size, 100, range(samples), sched,
                                                return_info=True))
        e = energy(spins, ham) / size ** 2
        rows.append((sweeps, e.mean(), e.std(), info["relax_sweeps"].mean(),
                     int((info["relax_sweeps"] >= sched.relax_sweeps).sum()),
                     max_torque(spins, ham).max(), wall_fraction(spins), t / samples))
    return rows


def write_png(path: Path, panels: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(name, b) for name, spins in panels.items() for b in range(len(spins))]
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for r, (name, b) in enumerate(rows):
        for c, (comp, label) in enumerate(((2, "Sz"), (0, "Sx"), (1, "Sy"))):
            ax = axes[r, c]
            ax.imshow(panels[name][b][..., comp], cmap="RdBu_r", vmin=-1, vmax=1,
                      interpolation="nearest")
            ax.set_title(f"{name} #{b}: {label}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=path.name, suffix=".tmp.png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=80)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--threads", type=int, default=min(2, numba.config.NUMBA_NUM_THREADS))
    p.add_argument("--png", default=None, help="write Sz/Sx/Sy maps of both types here")
    p.add_argument("--quick", action="store_true", help="fewer samples and sweep counts")
    p.add_argument("--only", choices=["speed", "schedule", "quality", "command"], default=None,
                   help="run one section only")
    p.add_argument("--quality-sweeps", default=None,
                   help="comma-separated sweep counts for the quality table")
    args = p.parse_args(argv)
    numba.set_num_threads(args.threads)
    L = args.size
    hams = {"Type I": TypeI(), "Type II": TypeII()}
    samples = 2 * args.threads
    print(f"lattice {L}x{L}, {args.threads} numba threads, {os.cpu_count()} CPUs "
          "(timings depend on other load on the machine)")

    def want(section):
        return args.only in (None, section)

    if want("speed"):
        _speed_section(hams, L, samples)
    panels = _schedule_section(hams, L, samples, args) if want("schedule") or args.png else {}
    if want("quality"):
        _quality_section(hams, L, samples, args)
    if want("command"):
        _command_section(args)
    if args.png:
        write_png(Path(args.png), panels)
        print(f"\nwrote {args.png}")
    return 0


#: The smallest numba program: import numba, call one cached function (its start-up is fixed:
#: the import, then the CPU target's initialisation on the first call, which loads every
#: implementation registry and SciPy's BLAS).
_NUMBA_FLOOR = "import numba\n@numba.njit(cache=True)\ndef f(x):\n    return x + 1\nf(1)\n"


def _wall(cmd, env=None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _command_section(args):
    print("\n5. Whole command in a fresh process (wall seconds, best of 3; "
          f"NUMBA_NUM_THREADS={args.threads})")
    env = {**os.environ, "NUMBA_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory() as tmp:
        floor = Path(tmp) / "floor.py"
        floor.write_text(_NUMBA_FLOOR)
        _wall([sys.executable, str(floor)], env)  # fills numba's cache for this file
        base = min(_wall([sys.executable, str(floor)], env) for _ in range(3))
        print(f"{'numba start-up (import + one cached call)':48s}{base:8.2f}")
        for n in (4, 32):
            out = Path(tmp) / f"g{n}.h5"
            cmd = [sys.executable, "-m", "spinsr_tf", "generate", "--type", "I", "--n", str(n),
                   "--size", str(args.size), "--out", str(out), "--quiet"]
            times = []
            for _ in range(3):
                out.unlink(missing_ok=True)
                times.append(_wall(cmd, env))
            t = min(times)
            print(f"{f'generate --type I --n {n} --size {args.size}':48s}{t:8.2f}"
                  f"   beyond the start-up {t - base:6.2f} s = {(t - base) / n:.3f} s/sample",
                  flush=True)


def _speed_section(hams, L, samples):
    print("\n1. Metropolis spin updates per second (annealing phase)")
    print(f"{'':10s}{'spinsr_tf':>14s}{'NumPy ref':>14s}{'ratio':>9s}")
    for name, ham in hams.items():
        sweeps = 200 if isinstance(ham, TypeI) else 60
        ours, ref = speed(ham, L, samples, sweeps, ref_sweeps=5 if isinstance(ham, TypeI) else 2)
        print(f"{name:10s}{ours / 1e6:11.1f} M/s{ref / 1e6:11.2f} M/s{ours / ref:8.0f}x", flush=True)


def _schedule_section(hams, L, samples, args):
    print("\n2. Seconds per finished sample (annealing + relaxation), same samples, one run")
    print(f"{'':10s}{'variant':34s}{'s/sample':>9s}{'E/N':>10s}{'med max torque':>15s}"
          f"{'relax':>12s}{'40,100 samples':>15s}")
    panels = {}
    n = samples if args.quick else 2 * samples
    for name, ham in hams.items():
        old_ham = dataclasses.replace(ham, dipolar_images="minimum") if name == "Type II" else ham
        variants = [("default", ham, default_schedule(ham)),
                    ("previous default", old_ham, OLD_SCHEDULES[name]),
                    ("default + L-BFGS", ham,
                     dataclasses.replace(default_schedule(ham), relax_method="lbfgs"))]
        for label, h, sched in variants:
            anneal(h, 16, 0, [0], dataclasses.replace(sched, sweeps=2, relax_sweeps=1))
            (spins, info), t = _timed(lambda: anneal(h, L, 0, range(n), sched, return_info=True))
            if label == "default":
                panels[name] = spins[:3]
            _row(name, label, t / n, energy(spins, h) / L ** 2, max_torque(spins, h),
                 info["relax_sweeps"])
        if name == "Type I":
            sched = default_schedule(ham)
            temps = sched.temperatures()
            rng = np.random.default_rng(0)
            plain_numba(np.ones((8, 8, 3)) / np.sqrt(3), temps[:2], ham.dmi, 0, 1, 1e-4,
                        sched.relax_omega)
            starts = rng.normal(size=(n, L, L, 3))
            starts /= np.linalg.norm(starts, axis=-1, keepdims=True)
            t0 = time.perf_counter()
            relax = [plain_numba(x, temps, ham.dmi, k, sched.relax_sweeps, sched.torque_tol,
                                 sched.relax_omega) for k, x in enumerate(starts)]
            per = (time.perf_counter() - t0) / n / args.threads  # serial: as if parallel
            _row(name, "plain numba, same schedule", per,
                 energy(starts, ham) / L ** 2, max_torque(starts, ham), np.array(relax))
    return panels


def _row(name, label, per, e, torque, relax):
    print(f"{name:10s}{label:34s}{per:9.3f}{e.mean():10.5f}{np.median(torque):15.1e}"
          f"{f'{relax.min()}-{relax.max()}':>12s}{PAPER_SAMPLES * per / 3600:13.1f} h", flush=True)


def _quality_section(hams, L, samples, args):
    print("\n3. Quality against annealing sweeps (then relaxation to the default tolerance)")
    if args.quality_sweeps:
        sweep_list = [int(v) for v in args.quality_sweeps.split(",")]
    else:
        sweep_list = [30, 100, 300, 1000] if args.quick else [30, 100, 300, 1000, 3000]
    n = samples if args.quick else 2 * samples
    print(f"{'':10s}{'sweeps':>7s}{'E/N mean':>11s}{'± std':>9s}{'relax':>8s}{'capped':>7s}"
          f"{'max torque':>12s}{'walls':>8s}{'s/sample':>9s}")
    for name, ham in hams.items():
        for row in quality(ham, L, sweep_list, n):
            sw, e, es, rel, capped, tq, walls, t = row
            print(f"{name:10s}{sw:7d}{e:11.5f}{es:9.5f}{rel:8.0f}{capped:7d}{tq:12.1e}"
                  f"{walls:8.4f}{t:9.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
