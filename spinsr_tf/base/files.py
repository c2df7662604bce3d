"""Files written so that a crash never leaves half of one: one mechanism for every writer.

:func:`atomic_path` hands out a hidden temporary name in the target's folder (keeping the
target's suffix, since h5py, PIL, Keras and matplotlib choose the format by it); the target is
replaced by it in one ``os.replace`` when the block finishes, and the temporary file is removed
if it does not. A reader sees the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path


def temporary_name(path: str | os.PathLike) -> Path:
    """A hidden name beside ``path``, unique per process and call, with ``path``'s suffix."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """``with atomic_path(p) as tmp: write(tmp)``: ``p`` appears complete or not at all."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary name; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def save_npy_atomic(path: str | os.PathLike, array) -> Path:
    """``np.save`` of ``array`` as float32 through a temporary name; return the path."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.asarray(array, dtype=np.float32))
    return Path(path)
