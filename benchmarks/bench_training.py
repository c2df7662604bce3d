"""Training throughput and inference latency of the SR network on this CPU; the input pipeline.

For ×4, ×8, ×16 (LR 32², 16², 8² → HR 128²) at batch 32 it prints samples/s, the analytic
FLOPs per sample (forward + backward of the convolutions), the GFLOP/s this achieves, and the
ratio to a large float32 matrix product measured in the same run (what the CPU's BLAS reaches).
Variants: the plain Keras build (``compile_sr_model``: graph mode, no XLA on CPU), XLA
(``jit_compile=True``, what :func:`spinsr_tf.nn.training.train` uses), XLA at batch 64, the
``mixed_bfloat16`` policy with and without XLA, and a what-if: XLA with the periodic padding
done by slicing instead of ``ops.take`` (patched into the built model, checked equal).
Then the cost of the loss terms (LR consistency alone against LR + equivariance, which runs
the network a second time on a transformed copy of its output), the latency of one SR map of
128² (LR 32², ×4) and of 1024² (LR 256², ×4), and how long one unprepared batch of 32 gzip HR
maps takes to read and degrade.

``--pipeline`` measures the training input instead, from an HR file (``spins``, degraded by
the pipeline) and from LR files (``lr``, as ``spinsr-tf downsample`` writes them) at each of
``--scales``: the input alone (what ``train`` asks of the data per epoch, validation included)
and short ``fit`` runs as ``train`` runs them; ``--before REV`` adds the columns of the
``stream`` module of a git revision (or a ``stream.py`` path), measured in the same run.

Usage: ``python benchmarks/bench_training.py [--rounds 6] [--scales 4 8 16] [--quick]``,
``python benchmarks/bench_training.py --pipeline [--before REV] [--train-scales 16]``.
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

from spinsr_tf.nn.network import build_sr_model, compile_sr_model  # noqa: E402

tf.get_logger().setLevel("ERROR")  # retracing notices: many models are built in one process

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


def _slice_pad(self, inputs):
    """What-if padding: periodic wrap by slicing + concatenation instead of ``ops.take``."""
    from keras import ops

    x = inputs
    for axis, (before, after) in zip((1, 2), self.padding):
        n = x.shape[axis]
        cut = (lambda a, b: x[:, a:b]) if axis == 1 else (lambda a, b: x[:, :, a:b])
        x = ops.concatenate([cut(n - before, n), x, cut(0, after)], axis=axis)
    return x


#: Variant → (batch size, dtype policy, XLA, what-if slicing padding).
VARIANTS = {
    "keras": (32, "float32", False, False),
    "xla": (32, "float32", True, False),
    "xla_b64": (64, "float32", True, False),
    "keras_bf16": (32, "mixed_bfloat16", False, False),
    "xla_bf16": (32, "mixed_bfloat16", True, False),
    "xla_slicepad": (32, "float32", True, True),
}


def _train_case(scale: int, variant: str):
    """A compiled model and its batch; the first two (compiling) steps already taken."""
    import types

    from spinsr_tf.nn.layers import PeriodicPadding2D

    batch, policy, xla, slicepad = VARIANTS[variant]
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = build_sr_model(scale, channels=3, input_size=HR // scale)
    finally:
        keras.config.set_dtype_policy(before)
    compile_sr_model(model)
    model.jit_compile = xla
    model.optimizer.build(model.trainable_variables)
    if slicepad:
        probe = tf.random.normal((2, 5, 6, 3))
        for layer in model.layers:
            if isinstance(layer, PeriodicPadding2D):
                reference = layer(probe)
                layer.call = types.MethodType(_slice_pad, layer)
                np.testing.assert_array_equal(layer(probe), reference)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, HR // scale, HR // scale, 3))
    x = tf.constant(x.astype(np.float32))
    t = time.perf_counter()
    model.train_on_batch(x, x)
    first = time.perf_counter() - t
    model.train_on_batch(x, x)
    return model, x, first


def train_throughput(scale: int, variants, rounds: int) -> dict:
    """{variant: (samples/s, FLOPs/sample, first-step s)} of ``train_on_batch`` on random data.

    All variants are built first, then stepped in turn for ``rounds`` rounds, and each keeps
    its fastest step: load from other processes then hits every variant alike.
    """
    cases = {v: _train_case(scale, v) for v in variants}
    times = {v: [] for v in variants}
    for _ in range(rounds):
        for v, (model, x, _) in cases.items():
            t = time.perf_counter()
            model.train_on_batch(x, x)
            times[v].append(time.perf_counter() - t)
    return {v: (len(x) / min(times[v]), conv_flops_per_sample(model), first)
            for v, (model, x, first) in cases.items()}


def loss_term_throughput(scale: int, rounds: int, batch: int = 16) -> dict:
    """{case: samples/s} of the training graph (:func:`spinsr_tf.nn.training.build_training_graph`,
    residual unit-vector network, XLA) with the LR term alone and with the equivariance term
    (one symmetry per batch, one per sample); stepped in turn, fastest step kept."""
    from spinsr_tf.nn.config import TrainConfig
    from spinsr_tf.nn.losses import Equivariance, LRConsistency
    from spinsr_tf.nn.training import build_training_graph

    cases = {"lr only": (LRConsistency(),),
             "lr + equivariance": (LRConsistency(), Equivariance()),
             "lr + equiv/sample": (LRConsistency(), Equivariance(draw="sample"))}
    x = np.random.default_rng(0).normal(size=(batch, HR // scale, HR // scale, 3))
    x = tf.constant((x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32))
    built = {}
    for name, terms in cases.items():
        keras.utils.set_random_seed(0)
        config = TrainConfig(data="unused.h5", scale=scale, output="unit", residual=True,
                             padding="periodic", learning_rate=1e-3, losses=terms)
        model = build_training_graph(build_sr_model(scale, output="unit", residual=True), config)
        model.jit_compile = True
        targets = {t.name: (x if t.name == "lr" else np.zeros(batch, np.float32)) for t in terms}
        model.train_on_batch(x, targets)
        model.train_on_batch(x, targets)
        built[name] = (model, targets)
    times = {name: [] for name in built}
    for _ in range(rounds):
        for name, (model, targets) in built.items():
            t = time.perf_counter()
            model.train_on_batch(x, targets)
            times[name].append(time.perf_counter() - t)
    return {name: batch / min(v) for name, v in times.items()}


def inference_latency(lr_size: int, repeats: int) -> float:
    """Median seconds for one ``lr_size``² LR map → ×4 SR map (batch 1, inference mode)."""
    from spinsr_tf.nn.export import serving_model

    keras.utils.set_random_seed(0)
    sr = serving_model(build_sr_model(4, channels=3))
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


def _smooth_unit_maps(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Unit vectors from low-pass filtered noise: textures that gzip compresses like real maps."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(size)
    lowpass = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * 0.06 ** 2))
    v = np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, size, size, 3)), axes=(1, 2))
                     * lowpass[None, :, :, None], axes=(1, 2)).real
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def pipeline_files(folder: Path, n: int, scales) -> dict:
    """An HR file as ``spinsr-tf generate`` writes it and one LR file per scale as
    ``spinsr-tf downsample`` writes it (gzip 4 + shuffle, one map per chunk)."""
    import h5py

    from spinsr_tf.data import gaussian_downsample

    hr = _smooth_unit_maps(n, HR)
    files = {"hr": folder / "hr.h5"}
    with h5py.File(files["hr"], "w") as f:
        f.create_dataset("spins", data=hr, chunks=(1, HR, HR, 3), compression="gzip",
                         compression_opts=4, shuffle=True)
    for scale in scales:
        lr = gaussian_downsample(hr, scale)
        files[scale] = folder / f"lr{scale}.h5"
        with h5py.File(files[scale], "w") as f:
            f.create_dataset("lr", data=lr, chunks=(1, *lr.shape[1:]), compression="gzip",
                             compression_opts=4, shuffle=True)
            f.attrs.update(factor=scale, kernel_size=23, sigma=1.0, padding="periodic")
    return files


def load_stream_module(before: str):
    """The ``stream`` module of the "before" column: a path to a ``stream.py``, or a git
    revision whose ``spinsr_tf/data/stream.py`` is taken (``git show``), imported under its own
    name beside the current one."""
    import importlib.util
    import subprocess

    path = Path(before)
    if not path.is_file():
        root = Path(__file__).resolve().parent.parent
        text = subprocess.run(["git", "show", f"{before}:spinsr_tf/data/stream.py"], cwd=root,
                              check=True, capture_output=True, text=True).stdout
        path = Path(tempfile.mkdtemp()) / "stream_before.py"
        path.write_text(text)
    spec = importlib.util.spec_from_file_location("stream_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["stream_before"] = module
    spec.loader.exec_module(module)
    if not hasattr(module.TrainingData, "prepare"):  # what the trainer calls, absent before
        module.TrainingData.prepare = lambda self, *a, **k: {}
        module.TrainingData.remove_cache = lambda self: None
    return module


def pipeline_rate(stream, path, scale: int, hr_path=None, epochs: int = 3, batch: int = 32,
                  val_fraction: float = 0.1) -> tuple[float, float]:
    """(seconds to open and prepare, samples/s of one later epoch) of the input alone: what
    ``train`` asks of the data per epoch (the training batches of the plan, the validation
    batches, and the validation LR + HR maps of ``val_sr_mse``; ``hr_path``: the HR maps of an
    LR file), fastest epoch kept."""
    t = time.perf_counter()
    data = stream.open_training_data(path, scale, hr_path=hr_path)
    train_idx, val_idx = stream.split_indices(data.n, val_fraction)
    data.prepare(hr_indices=val_idx if data.has_hr else ())
    prep = time.perf_counter() - t
    plan = stream.BatchPlan(train_idx, batch, seed=0)
    times = []
    for epoch in range(epochs):
        t = time.perf_counter()
        for step in range(plan.steps_per_epoch):
            data.lr(plan.batch(epoch, step))
        for _ in range(2):  # Keras' validation pass, then SRValidation's
            for a in range(0, len(val_idx), batch):
                data.lr(val_idx[a:a + batch])
        if data.has_hr:
            for a in range(0, len(val_idx), batch):
                data.hr(val_idx[a:a + batch])
        times.append(time.perf_counter() - t)
    data.close()
    return prep, len(train_idx) / min(times)


def training_rates(impls: dict, files: dict, scale: int, n: int, rounds: int = 2) -> dict:
    """{(impl, "HR"/"LR"): (training samples/s, samples per CPU-second of this process)} of
    ``fit`` as :func:`spinsr_tf.nn.training.train` runs it (its batches, validation data and
    ``val_sr_mse`` callback; batch 32, XLA) on one compiled training graph shared by all cases.

    Each round fits every case for two epochs in turn and times the second (the first pays
    for tracing and the first batches); the fastest round is kept, so load from other
    processes hits every case alike. The LR file gets the HR file as ``hr_data``, so both
    cases compute the same ``val_sr_mse``. CPU seconds count all threads of this process:
    the work done, less disturbed by other processes than the wall clock.
    """
    from spinsr_tf.nn import training
    from spinsr_tf.nn.config import TrainConfig

    config = TrainConfig(data=str(files["hr"]), scale=scale, batch_size=32, seed=0)
    keras.utils.set_random_seed(0)
    network = build_sr_model(scale, channels=3)
    model = training.build_training_graph(network, config)
    model.optimizer.build(model.trainable_variables)
    model.jit_compile = True
    marks = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: marks.append((time.perf_counter(), time.process_time())),
        on_epoch_end=lambda e, logs: marks.append((time.perf_counter(), time.process_time())))
    cases = {}
    for name, stream in impls.items():
        for src, path, hr in (("HR", files["hr"], None), ("LR", files[scale], files["hr"])):
            data = stream.open_training_data(path, scale, hr_path=hr, max_samples=n)
            train_idx, val_idx = stream.split_indices(data.n, 0.2)
            data.prepare(hr_indices=val_idx)
            cases[name, src] = (stream, data, train_idx, val_idx,
                                training.SRValidation(network, data, val_idx, 32))
    best = {key: (0.0, 0.0) for key in cases}
    for r in range(rounds):
        for key, (stream, data, train_idx, val_idx, monitor) in cases.items():
            plan = stream.BatchPlan(train_idx, 32, seed=0)
            marks.clear()
            model.fit(training._Batches(data, plan, 2 * r, 2, config.losses),
                      validation_data=training._Batches(
                          data, stream.BatchPlan(val_idx, 32, shuffle=False), 0, 1,
                          config.losses),
                      epochs=2, steps_per_epoch=plan.steps_per_epoch, shuffle=False,
                      callbacks=[monitor, timer], verbose=0)
            (wall0, cpu0), (wall1, cpu1) = marks[2], marks[3]
            rate = (len(train_idx) / (wall1 - wall0), len(train_idx) / (cpu1 - cpu0))
            best[key] = max(best[key], rate)
    for _, data, *_ in cases.values():
        data.close()
    return best


def pipeline_report(scales, before: str | None, n_pipe: int, n_train: int,
                    train_scales, rounds: int = 2) -> None:
    """Print the input pipeline's samples/s from an HR file and from an LR file at each scale
    (before/after side by side when ``before`` names the old stream module), then the same
    for short training runs at ``train_scales``."""
    from spinsr_tf.data import stream as after

    impls = {"after": after}
    if before:
        impls = {"before": load_stream_module(before), **impls}
    with tempfile.TemporaryDirectory() as d:
        files = pipeline_files(Path(d), max(n_pipe, n_train), scales)
        print(f"input pipeline alone ({n_pipe} maps of {HR}^2, batch 32, 10% validation; "
              "samples/s of one epoch with its validation, fastest of 3 (open + prepare, once "
              "per run); the LR files get the HR file as hr_data for val_sr_mse")
        head = "".join(f"{k + ' ' + src:>22}" for k in impls for src in ("HR", "LR"))
        print(f"{'scale':<6}{head}{'HR/LR after':>13}" + (f"{'HR after/before':>17}"
                                                          if before else ""))
        for scale in scales:
            row, rates = "", {}
            for name, module in impls.items():
                for src, path, hr in (("HR", files["hr"], None),
                                      ("LR", files[scale], files["hr"])):
                    prep, rate = pipeline_rate(module, path, scale, hr_path=hr)
                    rates[name, src] = rate
                    row += f"{rate:>12.0f} ({prep:5.2f} s)"
            ratio = rates["after", "HR"] / rates["after", "LR"]
            extra = (f"{rates['after', 'HR'] / rates['before', 'HR']:>16.0f}x" if before else "")
            print(f"x{scale:<5}{row}{ratio:>12.2f}x{extra}", flush=True)
        if not train_scales:
            return
        print(f"short training ({n_train} maps of {HR}^2, 80% trained, batch 32, XLA, fit as "
              f"train runs it, validation included; fastest of {rounds} rounds): samples/s "
              "(samples per CPU-second)")
        cols = "".join(f"{k + ' ' + src:>20}" for k in impls for src in ("HR", "LR"))
        print(f"{'scale':<6}{cols}{'HR/LR after':>16}" + (f"{'HR after/before':>18}"
                                                          if before else ""))
        for scale in train_scales:
            rates = training_rates(impls, files, scale, n_train, rounds)
            row = "".join(f"{rates[k][0]:>11.1f} ({rates[k][1]:5.1f})" for k in rates)
            a, b = rates["after", "HR"], rates["after", "LR"]
            row += f"{a[0] / b[0]:>9.2f} ({a[1] / b[1]:.2f})"
            if before:
                c = rates["before", "HR"]
                row += f"{a[0] / c[0]:>11.2f} ({a[1] / c[1]:.2f})"
            print(f"x{scale:<5}{row}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=6, help="timed steps per case (fastest kept)")
    p.add_argument("--scales", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--quick", action="store_true", help="2 rounds, x4 only, keras + xla")
    p.add_argument("--pipeline", action="store_true",
                   help="only the input pipeline: HR file against LR file, at --scales")
    p.add_argument("--before", metavar="REV_OR_PATH",
                   help="with --pipeline: a git revision (or a stream.py) for a 'before' column")
    p.add_argument("--pipeline-maps", type=int, default=256, help="maps in the pipeline's file")
    p.add_argument("--train-maps", type=int, default=160, help="maps of the short trainings")
    p.add_argument("--train-scales", type=int, nargs="*", default=[16],
                   help="scales of the short trainings (none: skip them)")
    p.add_argument("--train-rounds", type=int, default=2, help="rounds of the short trainings")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.scales, args.variants = 2, [4], ["keras", "xla"]
    if args.pipeline:
        pipeline_report(args.scales, args.before, args.pipeline_maps, args.train_maps,
                        args.train_scales, args.train_rounds)
        return 0

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU "
          "core(s); other work on the machine affects absolute figures, less the ratios")
    ref = matmul_gflops()
    print("float32 matmul 2048^3 GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in ref.items()))
    print("'of best': of the fastest of the three matmuls, measured again after each scale; "
          "'of tf': of TensorFlow's own graph-mode matmul")
    print(f"{'case':<18}{'samples/s':>10}{'GFLOP/sample':>14}{'GFLOP/s':>9}{'of best':>9}"
          f"{'of tf':>7}{'1st step s':>12}")
    for scale in args.scales:
        results = train_throughput(scale, args.variants, args.rounds)
        ref = matmul_gflops(repeats=3)
        best = max(ref.values())
        for variant, (rate, flops, first) in results.items():
            gflops = rate * flops / 1e9
            print(f"x{scale:<3}{variant:<14}{rate:>10.1f}{flops / 1e9:>14.3f}{gflops:>9.1f}"
                  f"{gflops / best:>9.0%}{gflops / ref['tf']:>7.0%}{first:>12.1f}", flush=True)
        print(f"    (matmul right after: best {best:.1f}, tf {ref['tf']:.1f} GFLOP/s)")
    for scale in args.scales:
        rates = loss_term_throughput(scale, args.rounds)
        base = rates["lr only"]
        print(f"x{scale} loss terms, batch 16, XLA: " + ", ".join(
            f"{k} {v:.1f} samples/s ({v / base:.2f}x)" for k, v in rates.items()), flush=True)
    for lr_size in (32, 256):
        sec = inference_latency(lr_size, repeats=5 if lr_size == 256 else 20)
        print(f"inference x4, batch 1, LR {lr_size}^2 -> SR {4 * lr_size}^2: {1e3 * sec:.1f} ms",
              flush=True)
    sec = stream_batch_seconds()
    print(f"HDF5 stream: 32 gzip HR maps of 128^2 read + degraded in {1e3 * sec:.0f} ms "
          "(once per run: training degrades every map once; see --pipeline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
