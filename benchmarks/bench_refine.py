"""Speed of per-image physics refinement (``spinsr_tf.inference.refine``) on this CPU.

For one annealed 128² map of each type at ×8 (LR 16²) it prints the seconds per map of
:func:`~spinsr_tf.inference.refine.refine` (300 steps, the default) at batch 1 and batch 8, the cost of one
step, and, measured in the same run, the cost of the two pieces a step is made of: one effective
field (:func:`~spinsr_tf.physics.local_field`) and one degradation + adjoint. The target is
≤ 2 s per 128² map at ×8; the ratio to it is printed.

Usage: ``python benchmarks/bench_refine.py [--steps 300]``. Timings depend on what else runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from spinsr_tf.data.degradation import Degradation, gaussian_downsample  # noqa: E402
from spinsr_tf.physics import TypeI, TypeII, anneal, local_field  # noqa: E402
from spinsr_tf.inference.refine import refine  # noqa: E402

TARGET_S = 2.0


def best_of(fn, rounds=3):
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(steps: int) -> None:
    print(f"refinement of 128² maps at x8, {steps} steps (Adam on the sphere, float64 NumPy)")
    for ham in (TypeI(), TypeII()):
        hr = np.repeat(anneal(ham, 128, seed=0, indices=[0]), 8, axis=0)
        lr = gaussian_downsample(hr, 8)
        one = best_of(lambda: refine(lr[:1], ham, 0.01, 8, steps=steps), rounds=2)
        eight = best_of(lambda: refine(lr, ham, 0.01, 8, steps=steps), rounds=1) / 8
        m = hr[:1].astype(np.float64)
        field = best_of(lambda: [local_field(m, ham) for _ in range(20)]) / 20
        deg = Degradation(8)
        degrade = best_of(lambda: [deg.adjoint(deg.apply(m, dtype=np.float64))
                                   for _ in range(20)]) / 20
        kind = type(ham).__name__
        print(f"  {kind:6s} batch 1: {one:6.2f} s/map ({one / steps * 1e3:5.2f} ms/step) | "
              f"batch 8: {eight:5.2f} s/map | target {TARGET_S:.0f} s: ratio {one / TARGET_S:4.2f} "
              f"| per step: local field {field * 1e3:5.2f} ms, degrade+adjoint "
              f"{degrade * 1e3:5.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    main(parser.parse_args().steps)
