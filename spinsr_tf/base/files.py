"""Small text files (JSON, tables) written so that a crash never leaves half of one.

The text goes to a hidden temporary name in the same folder, which then replaces the target in
one ``os.replace``: a reader sees the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary name; return the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def save_npy_atomic(path: str | os.PathLike, array) -> Path:
    """``np.save`` of ``array`` as float32 through a temporary name; return the path."""
    import numpy as np

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array, dtype=np.float32))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
