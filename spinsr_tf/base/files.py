"""Files written so that a crash never leaves half of one: one mechanism for every writer.

:func:`atomic_path` hands out a hidden temporary name in the target's folder (keeping the
target's suffix, since h5py, PIL, Keras and matplotlib choose the format by it); the target is
replaced by it in one ``os.replace`` when the block finishes, and the temporary file is removed
if it does not. A reader sees the old file or the new one, never a truncated one.

:func:`output_lock` keeps two commands off one output: a second command on a run folder or file
that another command is writing is refused before it touches anything.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
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
    except OSError as exc:   # name the target, not the hidden temporary, in the one-line error
        if exc.errno is None and _SHORT_WRITE.search(str(exc)):
            code = _short_write_errno(tmp)
            raise OSError(code, os.strerror(code), str(path)) from None
        if exc.errno is not None and (exc.filename is None or str(exc.filename) == str(tmp)):
            exc.filename = str(path)
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


#: NumPy's words for a write the file system cut short (``tofile``: no errno).
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def _short_write_errno(tmp: Path) -> int:
    """Why a write was cut short: EFBIG when the file reached this process's size limit
    (``ulimit -f``), else ENOSPC (a full disk)."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        size = tmp.stat().st_size
    except (ImportError, OSError):   # Windows has no such limit
        return errno.ENOSPC
    return errno.EFBIG if limit != resource.RLIM_INFINITY and size >= limit else errno.ENOSPC


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary name; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, value, sort_keys: bool = True) -> Path:
    """``value`` as indented JSON (one space, keys sorted unless told not to, a final newline:
    the layout of every record the package writes), through a temporary name."""
    import json

    return write_text_atomic(path, json.dumps(value, indent=1, sort_keys=sort_keys) + "\n")


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


def lock_name(path: str | os.PathLike, level: int = 0) -> Path:
    """The lock file of output ``path``: ``.NAME.lock`` beside it; at ``level`` k > 0, in its
    k-th folder up, for an output whose folders do not exist yet (``.A%B%NAME.lock``)."""
    path = Path(os.path.abspath(path))
    if not path.name:
        return path / ".spinsr-tf.lock"
    parts = path.parts[len(path.parts) - 1 - level:]
    return path.parents[level] / ("." + "%".join(parts) + ".lock")


def _lock_levels(path: Path) -> int:
    """How many folders up of ``path`` the nearest existing one is, less one (0: its folder)."""
    path = Path(os.path.abspath(path))
    for level, folder in enumerate(path.parents):
        if folder.is_dir():
            return level
    return len(path.parents) - 1


def _lock_holder(fd: int) -> str:
    """``"process PID on HOST"`` as the holder of a lock file wrote it, or a general phrase."""
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except OSError:
        text = []
    if len(text) >= 2 and text[0].isdigit():
        return f"process {text[0]} on {text[1]}"
    return "another process"


def _refuse_if_held(lock: Path, path, label: str, create: bool):
    """Open ``lock`` and take it (``create``) or probe it; the descriptor (None for a probe or a
    filesystem without locks), or a :class:`UserError` naming the holder."""
    import fcntl

    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    while True:
        try:
            fd = os.open(lock, flags, 0o644)
        except OSError as exc:
            if exc.errno == errno.ENOENT and not create:
                return None
            what = ("is a symbolic link" if exc.errno == errno.ELOOP
                    else f"cannot be opened ({exc.strerror or exc})")
            raise UserError(f"the lock file {str(lock)!r} of {label} {str(path)!r} {what}; "
                            "remove it or choose another output") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if create else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise UserError(f"{label} {str(path)!r} is in use by {holder}; wait until it "
                            "finishes or choose another output") from None
        except OSError:             # a filesystem without locks: go on unlocked, as before
            os.close(fd)
            return None
        if not create:
            os.close(fd)
            return None
        try:                        # a holder releasing just now removed the name we opened
            if os.path.samestat(os.fstat(fd), os.lstat(lock)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextlib.contextmanager
def output_lock(path: str | os.PathLike, label: str = "--out"):
    """``with output_lock(out):`` hold ``out`` (a run folder or file) for this process alone.

    A second holder, in this process or another, is refused with a one-line
    :class:`UserError` naming the holder (pid and host), having created nothing. The lock is an
    advisory ``fcntl.flock`` on a file beside the output (:func:`lock_name`), which the kernel
    releases when its process ends however it ends: the lock of a killed command is stale by
    construction and the next command takes it over. The file is removed on release. An output
    whose folder does not exist yet is locked in its nearest existing folder up, and every
    command also probes the names further up, so one that comes after the folders were made
    still meets the lock of the command that made them.
    """
    path = Path(os.path.abspath(path))
    level = _lock_levels(path)
    lock = lock_name(path, level)
    fd = _refuse_if_held(lock, path, label, create=True)
    try:
        for up in range(level + 1, len(path.parents)):
            _refuse_if_held(lock_name(path, up), path, label, create=False)
        if fd is not None:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        yield lock
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(lock)
            os.close(fd)
