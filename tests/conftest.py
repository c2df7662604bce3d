import os

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


@pytest.fixture(scope="session")
def textures():
    """Two relaxed 32×32 Type I labyrinths (seed 0): the shared test texture."""
    from spinsr_tf.physics import TypeI, anneal

    return anneal(TypeI(), 32, seed=0, indices=[0, 1])
