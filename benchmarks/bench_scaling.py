"""Strong scaling of data generation: ``python benchmarks/bench_scaling.py [--n 32] [--quick]``.

Prints, measured side by side in one run, the wall time to anneal the same ``--n`` Type I
samples (``--size``², default schedule, blocks of ``--block``) three ways:

1. the single-process path, numba on ``--threads`` threads (the reference);
2. ``--scheduler local:1``: one Dask worker process, one numba thread;
3. ``--scheduler local:2``: two Dask worker processes, one numba thread each;

with each one's speed relative to the reference and the Dask efficiency (2 workers vs 2 × 1
worker), checks that the three files hold the same ``spins`` bit for bit, and projects the
paper's full data set (40,100 samples per type) onto N machines from the per-sample times given
by ``--type1-s`` / ``--type2-s`` (measured with ``benchmarks/bench_annealing.py``).

The load average is printed next to the figures: other work on the machine slows every
variant, and the ratios are only meaningful within one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spinsr_tf.data.generate import generate_dataset  # noqa: E402
from spinsr_tf.physics import Schedule, TypeI, default_schedule  # noqa: E402

PAPER_SAMPLES = 40_100


def _load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def _timed(out: Path, args, ham, schedule, **kwargs) -> float:
    start = time.perf_counter()
    generate_dataset(out, ham, n=args.n, size=args.size, seed=args.seed, schedule=schedule,
                     block=args.block, progress=False, **kwargs)
    return time.perf_counter() - start


def _cluster_start(n_workers: int) -> float:
    """Seconds to start and stop an empty ``local:N`` cluster (overhead inside each Dask time)."""
    import distributed

    start = time.perf_counter()
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=50):
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="samples (default 32)")
    parser.add_argument("--size", type=int, default=128, help="lattice side (default 128)")
    parser.add_argument("--block", type=int, default=4, help="samples per task (default 4)")
    parser.add_argument("--threads", type=int, default=2,
                        help="numba threads of the single-process reference (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--type1-s", type=float, default=0.60,
                        help="s/sample of Type I on one machine, for the projection")
    parser.add_argument("--type2-s", type=float, default=0.78,
                        help="s/sample of Type II on one machine, for the projection")
    parser.add_argument("--quick", action="store_true", help="8 samples of 32², 50 sweeps")
    args = parser.parse_args()
    ham = TypeI()
    schedule = default_schedule(ham)
    if args.quick:
        args.n, args.size, args.block = 8, 32, 2
        schedule = Schedule(sweeps=50)

    print(f"# Strong scaling of generation: {args.n} Type I samples of {args.size}², "
          f"sweeps={schedule.sweeps}, relax_sweeps={schedule.relax_sweeps}, block={args.block}, "
          f"{os.cpu_count()} CPUs")
    print(f"# before: {_load()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # Compile/load the numba kernels once so that no variant pays it in its timing.
        generate_dataset(tmp / "warm.h5", ham, n=1, size=8, schedule=Schedule(sweeps=2),
                         progress=False)
        variants = [
            (f"single process, {args.threads} numba threads", "ref.h5",
             dict(workers=args.threads)),
            ("dask local:1 (1 worker x 1 thread)", "w1.h5", dict(scheduler="local:1")),
            ("dask local:2 (2 workers x 1 thread)", "w2.h5", dict(scheduler="local:2")),
        ]
        times, loads = [], []
        for label, name, kwargs in variants:
            times.append(_timed(tmp / name, args, ham, schedule, **kwargs))
            loads.append(_load())
        startup = [_cluster_start(1), _cluster_start(2)]
        with h5py.File(tmp / "ref.h5") as f:
            ref = f["spins"][()]
        same = []
        for name in ("w1.h5", "w2.h5"):
            with h5py.File(tmp / name) as f:
                same.append(bool(np.array_equal(f["spins"][()], ref)))

    print()
    print("| variant | wall s | s/sample | speed vs single process | load after |")
    print("|---|---|---|---|---|")
    for (label, _, _), t, load in zip(variants, times, loads):
        print(f"| {label} | {t:.1f} | {t / args.n:.3f} | {times[0] / t:.2f} | {load} |")
    print()
    print(f"dask 2 workers vs 1 worker: speed-up {times[1] / times[2]:.2f} "
          f"(efficiency {times[1] / (2 * times[2]):.0%})")
    print(f"empty cluster start + stop: local:1 {startup[0]:.1f} s, local:2 {startup[1]:.1f} s "
          "(included in the dask times above)")
    print(f"spins identical to the single-process file: local:1 {same[0]}, local:2 {same[1]}")

    # Projection: one task per block, no communication but the block files, so N machines of
    # the measured kind anneal N times as fast, times the steady-state efficiency of 2
    # single-threaded workers vs the 2-thread single process (cluster start-up, paid once per
    # run, taken out: it is seconds against hours).
    efficiency = times[0] / max(times[2] - startup[1], 1e-9)
    print(f"steady-state speed of local:2 vs single process (cluster start-up taken out): "
          f"{efficiency:.2f}")
    print()
    print(f"# Projection for the paper's {PAPER_SAMPLES:,} samples per type on N machines like "
          f"this one (2 workers each), per-sample times {args.type1_s} s (Type I) and "
          f"{args.type2_s} s (Type II) on one machine with 2 threads, times 1 / {efficiency:.2f} "
          f"(steady-state local:2 vs single process, measured above), tasks of {args.block} "
          "samples, start-up and assembly ignored")
    print()
    print("| machines N | Type I hours | Type II hours | both types hours |")
    print("|---|---|---|---|")
    for machines in (1, 2, 4, 8, 16, 32, 64):
        t1 = PAPER_SAMPLES * args.type1_s / (machines * efficiency) / 3600
        t2 = PAPER_SAMPLES * args.type2_s / (machines * efficiency) / 3600
        print(f"| {machines} | {t1:.2f} | {t2:.2f} | {t1 + t2:.2f} |")
    print(f"\n# after: {_load()}")


if __name__ == "__main__":
    main()
