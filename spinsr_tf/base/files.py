"""Files written so that a crash never leaves half of one: one mechanism for every writer.

:func:`atomic_path` hands out a hidden temporary name in the target's folder (keeping the
target's suffix, since h5py, PIL, Keras and matplotlib choose the format by it); the target is
replaced by it in one ``os.replace`` when the block finishes, and the temporary file is removed
if it does not. A reader sees the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from spinsr_tf.base.errors import UserError


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


#: The names :func:`temporary_name` hands out: ``.STEM.tmp-PID-HEX8SUFFIX``.
_TEMPORARY = re.compile(r"\..*\.tmp-(\d+)-[0-9a-f]{8}(\.[^.]*)?")


def _process_runs(pid: int) -> bool:
    """Whether process ``pid`` still runs here (and may still be writing its temporary)."""
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike, stem: str | None = None) -> list[Path]:
    """Remove the temporaries of :func:`temporary_name` in ``folder`` whose writer no longer runs.

    A save killed by SIGKILL (or the machine going down) leaves its temporary behind; the next
    start cleans them, for every target (``stem=None``) or one target's stem. Temporaries of a
    writer still running are kept. Returns the paths removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        match = _TEMPORARY.fullmatch(path.name)
        if not match or (stem is not None and not path.name.startswith(f".{stem}.tmp-")):
            continue
        if _process_runs(int(match.group(1))):
            continue
        with contextlib.suppress(FileNotFoundError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        removed.append(path)
    return removed


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named like a temporary of :func:`temporary_name`."""
    return _TEMPORARY.fullmatch(Path(path).name) is not None


#: Files up to this size are kept in memory by :func:`unchanged_unless_committed` to restore them.
_RESTORABLE_BYTES = 1 << 20


@contextlib.contextmanager
def unchanged_unless_committed(folder: str | os.PathLike):
    """``with unchanged_unless_committed(d) as commit:``: an exception before ``commit()`` leaves
    ``d`` as it was.

    For work that writes its bookkeeping (configuration, history) before the first result it
    can keep: if it fails first, the files it created are removed, the small files it changed
    are put back (bytes and times), and ``d`` itself is removed if it did not exist. So a failed
    call changes nothing on disk, and the same command after fixing the cause is not refused.
    """
    folder = Path(folder)
    existed = folder.exists()
    before: dict[Path, os.stat_result] = {}
    contents: dict[Path, bytes] = {}
    if existed and folder.is_dir():
        for path in folder.rglob("*"):
            info = path.lstat()
            before[path] = info
            if path.is_file() and not path.is_symlink() and info.st_size <= _RESTORABLE_BYTES:
                contents[path] = path.read_bytes()
    state = {"committed": False}

    def commit() -> None:
        state["committed"] = True

    try:
        yield commit
    except BaseException:
        if not state["committed"]:
            _restore(folder, existed, before, contents)
        raise


def _restore(folder: Path, existed: bool, before: dict, contents: dict) -> None:
    if not existed:
        shutil.rmtree(folder, ignore_errors=True)
        return
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path not in before:
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
    for path, data in contents.items():
        info = before[path]
        try:
            now = path.lstat()
            if now.st_size == info.st_size and now.st_mtime_ns == info.st_mtime_ns:
                continue
        except FileNotFoundError:
            pass
        if is_temporary(path):
            continue
        with contextlib.suppress(OSError):
            write_bytes_atomic(path, data)
            os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary name; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def check_output_file(path: str | os.PathLike, label: str = "output", force: bool = False,
                      inputs: dict | None = None) -> Path:
    """Check, before any work, that a command may write the file ``path``; return it.

    Refused (one line naming ``label``): the same file as one of ``inputs`` (``{label: path}``;
    even with ``force``), an existing file without ``force`` (a command never replaces what it
    did not create unless told so), a folder, a missing or read-only output folder.
    """
    path = Path(path)
    for name, source in (inputs or {}).items():
        if same_file(path, source):
            raise UserError(f"{label} {str(path)!r} would overwrite the input {name} "
                            f"{str(source)!r}; choose another output")
    if path.is_dir():
        raise UserError(f"{label} {str(path)!r} is a directory")
    check_writable_folder(path.parent)
    if (path.exists() or path.is_symlink()) and not force:
        raise UserError(f"{label} {str(path)!r} exists; pass --force to replace it")
    return path


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name one existing file or folder (links, ``..`` and all)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_input_file(path: str | os.PathLike, label: str = "input") -> Path:
    """An existing file (not a folder), or a one-line error naming ``label``."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{label} {str(path)!r} is a directory, not a file")
    if not path.exists():
        raise UserError(f"{label} {str(path)!r} does not exist")
    return path


def check_writable_folder(folder: str | os.PathLike, what: str = "output directory") -> None:
    """Refuse a missing or unwritable folder, probed by creating a file in it: unlike
    ``os.access``, that also holds for root and for read-only file systems."""
    folder = Path(folder) if str(folder) else Path(".")
    if not folder.is_dir():
        raise UserError(f"{what} {str(folder)!r} does not exist")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".spinsr-probe-")
    except OSError as exc:
        raise UserError(f"{what} {str(folder)!r} is not writable ({exc.strerror or exc})") \
            from None
    os.close(fd)
    os.unlink(probe)


def check_replaceable(path: str | os.PathLike, label: str, force: bool, is_ours, kind: str) -> None:
    """An existing output ``path`` may be replaced only if ``is_ours(path)`` says this command
    wrote it (a previous ``kind``), and only with ``force``; anything else is never replaced."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    if not is_ours(path):
        raise UserError(f"{label} {str(path)!r} exists and is not a {kind}; it is never "
                        "replaced, not even with --force (choose another name)")
    if not force:
        raise UserError(f"{label} {str(path)!r} holds a previous export ({kind}); pass "
                        "force=True / --force to replace it")


def check_output_folder(path: str | os.PathLike, marks, what: str) -> Path:
    """A folder a command may fill: new, empty, or one it filled before (holding one of the
    names ``marks``); anything else holds files the command did not create, which it would
    replace. Returns the path (not created)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"output folder {str(path)!r} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not any((path / m).exists() for m in marks):
        raise UserError(f"output folder {str(path)!r} holds other files, not {what}; choose "
                        "an empty or new folder")
    return path
