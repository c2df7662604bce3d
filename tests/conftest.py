import os

import numpy as np

# Quiet TensorFlow's C++ logging and keep tests on the CPU, deterministic and small.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def run_training(data, out_dir, resume=False, progress=False, supervised=False, **fields):
    """Train through :func:`spinsr_tf.nn.training.train` with a :class:`TrainConfig` made of
    ``fields`` (``supervised=True``: the oracle's term instead of the LR term)."""
    from spinsr_tf.nn.config import TrainConfig
    from spinsr_tf.nn.losses import LRConsistency, Supervised
    from spinsr_tf.nn.training import train

    fields.setdefault("losses", (Supervised(),) if supervised else (LRConsistency(),))
    return train(TrainConfig(data=data, **fields), out_dir, resume=resume, progress=progress)


import pytest  # noqa: E402


def shared_folder(tmp_path_factory, name, make):
    """A folder ``make(folder)`` fills once per test run and every pytest-xdist worker reuses.

    Session fixtures run once per worker; a trained model costs each worker seconds of graph
    tracing. The first worker to get the lock (``fcntl.flock``, released when its process
    ends, so a killed worker leaves no stale lock) builds the folder under a temporary name and
    renames it; the others wait, then find it. The folder is read-only by agreement: a test
    that changes anything works on a copy."""
    import fcntl
    import shutil

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent                      # the run's folder, above every worker's own
    root = base / "shared"
    root.mkdir(exist_ok=True)
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not folder.is_dir():
            partial = root / f"{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            make(partial)
            partial.rename(folder)
    return folder


#: The reference training run (default losses, graph mode: XLA compilation would double the
#: time of so small a run): 16 smooth 32² maps → 8² at ×4, 3 epochs of 4 steps (batch 4,
#: 2 maps for validation).
REFERENCE_RUN = dict(scale=4, epochs=3, batch_size=4, val_fraction=0.125, seed=3,
                     progress=False, jit_compile=False)


def write_reference_data(path):
    """The reference run's HR file: ``smooth_unit_spins(16, 32, seed=0)``, one map a chunk,
    with the attributes ``seed=0, hamiltonian="test"``; returns the path."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("spins", data=smooth_unit_spins(16, 32, 0), chunks=(1, 32, 32, 3))
        f.attrs.update({"seed": 0, "hamiltonian": "test"})
    return path


@pytest.fixture(scope="session")
def reference_data(tmp_path_factory):
    """The path of :func:`write_reference_data`'s file, one per test run. Read-only."""
    folder = shared_folder(tmp_path_factory, "reference_data",
                           lambda folder: write_reference_data(folder / "hr.h5"))
    return folder / "hr.h5"


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory, reference_data):
    """(run folder, history) of :data:`REFERENCE_RUN` on ``reference_data``, trained once per
    test run (several test files compare their runs with it). Read-only."""
    import json

    def make(folder):
        history = run_training(reference_data, folder / "run", **REFERENCE_RUN)
        (folder / "history.json").write_text(json.dumps(history))

    folder = shared_folder(tmp_path_factory, "reference_run", make)
    return folder / "run", json.loads((folder / "history.json").read_text())


@pytest.fixture(scope="session")
def textures():
    """Two relaxed 32×32 Type I labyrinths (seed 0): the shared test texture."""
    from spinsr_tf.physics import TypeI, anneal

    return anneal(TypeI(), 32, seed=0, indices=[0, 1])


def write_type_i_file(path, textures, dmi_kind="interfacial"):
    """An HR spins file of four Type I maps (``textures`` and a shifted copy) with the
    ``hamiltonian.*`` attributes ``spinsr-tf generate`` writes; returns the path."""
    import h5py

    with h5py.File(path, "w") as f:
        f["spins"] = np.concatenate([textures, np.roll(textures, 5, axis=2)]).astype("float32")
        f.attrs.update({"hamiltonian.type": "I", "hamiltonian.J": 1.0, "hamiltonian.dmi": 0.3,
                        "hamiltonian.dmi_kind": dmi_kind})
    return path


def random_unit_spins(shape, seed=0, dtype=np.float32):
    """Unit vectors drawn uniformly on the sphere: ``shape`` ends with the 3 components."""
    v = np.random.default_rng(seed).normal(size=shape)
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(dtype)


def smooth_unit_spins(n, size, seed):
    """Unit vectors from low-pass filtered Gaussian noise (a texture with structure at ×4)."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(size)
    lowpass = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * 0.06 ** 2))
    noise = rng.normal(size=(n, size, size, 3))
    v = np.fft.ifft2(np.fft.fft2(noise, axes=(1, 2)) * lowpass[None, :, :, None], axes=(1, 2)).real
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def fingerprint(folder, suffixes=None):
    """The files under ``folder`` (those ending in ``suffixes``, if given) by relative path:
    (inode, mtime in ns, SHA-256). An atomic rewrite changes the inode even within one mtime
    tick, and any change of content the hash, so equal fingerprints mean nothing was written."""
    import hashlib
    from pathlib import Path

    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns,
                                         hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and (suffixes is None or p.suffix in suffixes)}


def randomize_batchnorm(model, seed):
    """Random BatchNorm weights and moving statistics, so that an untrained network's output is
    not flat and inference mode (moving statistics) differs from training mode."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.name.endswith("_bn"):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([1 + 0.2 * rng.normal(size=gamma.shape),
                               0.1 * rng.normal(size=beta.shape),
                               0.3 * rng.normal(size=mean.shape),
                               rng.uniform(0.5, 2, size=var.shape)])
    return model


def benchmark_module(name):
    """The module ``benchmarks/NAME.py`` (the benchmarks are scripts, not a package), once per
    name: its siblings import it by that name (``import foreign_textures``)."""
    import importlib.util
    import sys
    from pathlib import Path

    if name in sys.modules:
        return sys.modules[name]
    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def vector_labyrinth(size=256, period=24.0, wall=0.5):
    """Unit spins of a smooth labyrinth-like pattern: Sz = tanh(s / wall) of two crossed
    sinusoids ``s`` (periods ``period`` and 1.3 ``period`` HR pixels), Néel walls (the
    in-plane part along the gradient of ``s``)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    s = (np.sin(2 * np.pi * (x + 0.7 * y) / period)
         + 0.6 * np.sin(2 * np.pi * (0.5 * x - y) / (1.3 * period)))
    sz = np.tanh(s / wall)
    gy, gx = np.gradient(s)
    g = np.hypot(gx, gy) + 1e-12
    r = np.sqrt(1 - sz ** 2)
    return np.stack([r * gx / g, r * gy / g, sz], -1)
