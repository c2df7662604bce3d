"""Training throughput and inference latency of the SR network on this CPU.

For ×4, ×8, ×16 (LR 32², 16², 8² → HR 128²) at batch 32 it prints samples/s, the analytic
FLOPs per sample (forward + backward of the convolutions), the GFLOP/s this achieves, and the
ratio to a large float32 matrix product measured in the same run (what the CPU's BLAS reaches).
Variants: the plain Keras build (``compile_sr_model``: graph mode, no XLA on CPU), XLA
(``jit_compile=True``), batch 64, and the ``mixed_bfloat16`` policy. Then the latency of one
SR map of 128² (LR 32², ×4) and of 1024² (LR 256², ×4), and how long the HDF5 stream takes to
deliver one batch (to show it is not the bottleneck).

Usage: ``python benchmarks/bench_training.py [--steps 6] [--scales 4 8 16] [--quick]``.
Timings depend on what else runs on the machine; compare ratios, not absolute figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from spinsr_tf.model import build_sr_model, compile_sr_model  # noqa: E402

HR = 128


def conv_flops_per_sample(model: keras.Model) -> int:
    """Forward + backward FLOPs of one sample through the Conv2D layers.

    A 'valid' k×k convolution producing ``Hout·Wout·Cout`` values costs
    ``2·k²·Cin·Cout·Hout·Wout`` (multiply + add) forward; the backward pass costs about twice
    that (gradients w.r.t. input and kernel), hence ×3. Padding, BN, activations, up-sampling
    and the fixed Gaussian degradation (two small matrix products) are left out.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, hout, wout, _ = layer.output.shape
            total += 2 * kh * kw * cin * cout * hout * wout
    return 3 * total


def _mm(x, y):
    return tf.matmul(x, y)


def matmul_gflops(n: int = 2048, repeats: int = 7) -> dict[str, float]:
    """float32 ``n×n @ n×n`` GFLOP/s (median of ``repeats``) three ways: NumPy (OpenBLAS),
    TensorFlow graph mode and TensorFlow with XLA. The best of them is the reference."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    ta, tb = tf.constant(a), tf.constant(b)
    runs = {"numpy": lambda: a @ b}
    for name, jit in (("tf", False), ("tf_xla", True)):
        f = tf.function(_mm, jit_compile=jit)
        runs[name] = lambda f=f: f(ta, tb).numpy()
    out = {}
    for name, run in runs.items():
        run()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            run()
            times.append(time.perf_counter() - t)
        out[name] = 2 * n ** 3 / statistics.median(times) / 1e9
    return out


def train_throughput(scale: int, batch: int, steps: int, variant: str) -> tuple[float, int, float]:
    """(samples/s, FLOPs/sample, first-step seconds) of ``train_on_batch`` on random data."""
    policy = keras.config.dtype_policy()
    if variant == "bf16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        model = build_sr_model(scale=scale, channels=3, input_size=HR // scale)
        compile_sr_model(model)
        if variant == "xla":
            model.jit_compile = True
        model.optimizer.build(model.trainable_variables)
        x = np.random.default_rng(0).uniform(-1, 1, (batch, HR // scale, HR // scale, 3))
        x = tf.constant(x.astype(np.float32))
        t = time.perf_counter()
        model.train_on_batch(x, x)
        first = time.perf_counter() - t
        model.train_on_batch(x, x)
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            model.train_on_batch(x, x)
            times.append(time.perf_counter() - t)
        return batch / statistics.median(times), conv_flops_per_sample(model), first
    finally:
        keras.config.set_dtype_policy(policy)


def inference_latency(lr_size: int, repeats: int) -> float:
    """Median seconds for one ``lr_size``² LR map → ×4 SR map (batch 1, inference mode)."""
    from spinsr_tf.export import serving_model

    keras.utils.set_random_seed(0)
    sr = serving_model(build_sr_model(scale=4, channels=3))
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (1, lr_size, lr_size, 3)),
                    dtype=tf.float32)
    f = tf.function(lambda v: sr(v, training=False))
    f(x).numpy()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f(x).numpy()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def stream_batch_seconds(batch: int = 32, scale: int = 4, repeats: int = 5) -> float:
    """Seconds to read ``batch`` gzip-compressed 128² HR maps from HDF5 and degrade them."""
    import h5py

    from spinsr_tf.data.stream import open_training_data

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "hr.h5"
        v = np.random.default_rng(0).normal(size=(4 * batch, HR, HR, 3)).astype(np.float32)
        v /= np.linalg.norm(v, axis=-1, keepdims=True)
        with h5py.File(path, "w") as f:
            f.create_dataset("spins", data=v, chunks=(1, HR, HR, 3), compression="gzip",
                             compression_opts=4, shuffle=True)
        data = open_training_data(path, scale)
        rng = np.random.default_rng(1)
        times = []
        for _ in range(repeats):
            idx = rng.permutation(4 * batch)[:batch]
            t = time.perf_counter()
            data.lr(idx)
            times.append(time.perf_counter() - t)
        data.close()
    return statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6, help="timed training steps per case")
    p.add_argument("--scales", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--variants", nargs="+", default=["keras", "xla", "batch64", "bf16"],
                   choices=["keras", "xla", "batch64", "bf16"])
    p.add_argument("--quick", action="store_true", help="2 steps, x4 only, keras + xla")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.scales, args.variants = 2, [4], ["keras", "xla"]

    cores = os.cpu_count()
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {cores} CPU core(s); "
          "other work on the machine affects absolute figures")
    ref = matmul_gflops()
    mm = max(ref.values())
    print("float32 matmul 2048^3 GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in ref.items())
          + f" -> reference {mm:.1f}")
    print(f"{'case':<16}{'samples/s':>10}{'GFLOP/sample':>14}{'GFLOP/s':>9}{'of matmul':>11}"
          f"{'1st step s':>12}")
    for scale in args.scales:
        for variant in args.variants:
            batch = 64 if variant == "batch64" else 32
            rate, flops, first = train_throughput(scale, batch, args.steps,
                                                  "keras" if variant == "batch64" else variant)
            gflops = rate * flops / 1e9
            print(f"x{scale:<3}{variant:<12}{rate:>10.1f}{flops / 1e9:>14.3f}{gflops:>9.1f}"
                  f"{gflops / mm:>10.0%}{first:>12.1f}", flush=True)
    ref_end = matmul_gflops()
    print("float32 matmul again at the end: " + ", ".join(f"{k} {v:.1f}" for k, v in ref_end.items())
          + " (a drift shows other load on the machine)")
    for lr_size in (32, 256):
        sec = inference_latency(lr_size, repeats=5 if lr_size == 256 else 20)
        print(f"inference x4, LR {lr_size}^2 -> SR {4 * lr_size}^2: {1e3 * sec:.1f} ms", flush=True)
    sec = stream_batch_seconds()
    print(f"HDF5 stream: 32 HR maps of 128^2 read + degraded in {1e3 * sec:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
