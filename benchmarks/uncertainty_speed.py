"""Speed of :func:`~spinsr_tf.inference.uncertainty.symmetry_spread`: the symmetric copies of
the LR maps as one stacked batch (the default) against one predict call per symmetry element
(``CHUNK_BYTES = 0``, which is how the members were computed before), side by side from one run.

The two are timed alternately, ``--repeats`` times each (the median is printed: the machine may
be shared), on the same seeded maps and model, and their outputs compared (they agree to
float32 rounding: only the batches the forward passes see differ).

Networks: ``small`` is a plain Keras model (Conv2D(16) → ×f nearest up-sampling → Conv2D(C)),
where the cost of a predict call dominates; ``paper`` is the untrained spinsr network of
:func:`~spinsr_tf.nn.network.build_sr_model` (its default reference, "redegraded", runs every
member twice). Usage::

    python benchmarks/uncertainty_speed.py [--network small|paper] [--maps 8] [--size 64]
        [--scale 4] [--repeats 3] [--batch-size 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def small_model(scale: int, channels: int):
    import keras

    x = keras.Input((None, None, channels))
    y = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    y = keras.layers.UpSampling2D(scale)(y)
    return keras.Model(x, keras.layers.Conv2D(channels, 3, padding="same")(y))


def main(argv=None) -> None:
    import keras

    from spinsr_tf.data.degradation import Degradation
    from spinsr_tf.inference import uncertainty
    from spinsr_tf.nn.network import build_sr_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--network", choices=("small", "paper"), default="small")
    p.add_argument("--maps", type=int, default=8)
    p.add_argument("--size", type=int, default=64, help="LR map side, pixels")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    lr = rng.normal(size=(args.maps, args.size, args.size, 3)).astype(np.float32)
    lr /= np.linalg.norm(lr, axis=-1, keepdims=True)
    model = (small_model(args.scale, 3) if args.network == "small"
             else build_sr_model(Degradation(args.scale), 3))
    run = lambda: uncertainty.symmetry_spread(model, lr, batch_size=args.batch_size)  # noqa: E731
    run()                                         # build the predict functions once
    default, times, outputs = uncertainty.CHUNK_BYTES, {"per element": [], "stacked": []}, {}
    for _ in range(args.repeats):
        for name, budget in (("per element", 0), ("stacked", default)):
            uncertainty.CHUNK_BYTES = budget
            t0 = time.perf_counter()
            outputs[name] = run()
            times[name].append(time.perf_counter() - t0)
    uncertainty.CHUNK_BYTES = default
    n_ops = len(uncertainty.group_ops("lattice", None, 3, lr.shape[1:3]))
    print(f"symmetry_spread, {args.network} network, {args.maps} maps {args.size}x{args.size} "
          f"x{args.scale}, {n_ops} elements, batch size {args.batch_size}, "
          f"median of {args.repeats}:")
    for name, values in times.items():
        print(f"  {name:12s} {statistics.median(values):8.2f} s   "
              f"({', '.join(f'{v:.2f}' for v in values)})")
    old, new = (statistics.median(times[k]) for k in ("per element", "stacked"))
    print(f"  speed-up     {old / new:8.2f}x")
    for i, what in enumerate(("sr", "uncertainty")):
        diff = np.abs(outputs["stacked"][i] - outputs["per element"][i]).max()
        print(f"  max |stacked - per element| {what}: {diff:.2e}")


if __name__ == "__main__":
    main()
