"""Run code around the first import of a module, without importing it now.

Two things need it. Keras finds a saved model's custom layers only among the classes registered
when they were defined, so ``import spinsr_tf`` arranges for spinsr_tf's Keras modules to be
imported once Keras is (:func:`after_import`), without paying for Keras itself. And TensorFlow's
C++ libraries print their start-up lines to file descriptor 2 while they load, whatever
``TF_CPP_MIN_LOG_LEVEL`` says; the command line hides them (:func:`stderr_captured_during_import`)
so that a user mistake stays one line, and shows them if the import fails.

TensorFlow's log (:func:`quiet_tensorflow`): ``import spinsr_tf`` hides its C++ lines, its
start-up lines and its Python logger's warnings, unless the user chose a level by setting
``TF_CPP_MIN_LOG_LEVEL``; ``spinsr-tf --verbose`` shows them (:func:`show_tensorflow_log`). What
fails reaches Python as an exception anyway.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import tempfile


class _Hook(importlib.abc.MetaPathFinder):
    """Wraps the loading of module ``name`` in ``around()`` (a context manager), once."""

    def __init__(self, name: str, around):
        self.name, self.around, self._finding = name, around, False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name or self._finding:
            return None
        self._finding = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        self.remove()
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original, around = loader.exec_module, self.around

        def exec_module(module):
            try:
                with around():
                    original(module)
            finally:
                with contextlib.suppress(AttributeError):
                    del loader.exec_module   # the instance attribute; the class's method stays

        loader.exec_module = exec_module
        return spec

    def remove(self) -> None:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)


def around_import(name: str, around) -> _Hook | None:
    """Wrap the first import of top-level module ``name`` in the context manager ``around()``.

    Returns the hook (``.remove()`` withdraws it), or None if ``name`` is imported already.
    """
    if name in sys.modules:
        return None
    hook = _Hook(name, around)
    sys.meta_path.insert(0, hook)
    return hook


def initializing(prefix: str) -> bool:
    """Whether a module ``prefix`` or ``prefix.*`` other than ``prefix`` itself is being imported
    right now (its code has started and not finished)."""
    for name, module in list(sys.modules.items()):
        if name.startswith(prefix + ".") and getattr(getattr(module, "__spec__", None),
                                                     "_initializing", False):
            return True
    return False


def after_import(name: str, callback) -> None:
    """Call ``callback()`` once module ``name`` is imported: now if it is, else right after its
    first import succeeds."""
    if name in sys.modules:
        callback()
        return

    @contextlib.contextmanager
    def around():
        yield
        callback()

    around_import(name, around)


@contextlib.contextmanager
def stderr_captured():
    """Send file descriptor 2 (C and C++ writers included) to a temporary file; replay what it
    caught on the real stderr only if the block raises."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):   # no usable fd 2: nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                caught.seek(0)
                os.write(2, caught.read())


@contextlib.contextmanager
def stderr_captured_during_import(name: str):
    """Within the block, the first import of ``name`` runs under :func:`stderr_captured`."""
    hook = around_import(name, stderr_captured)
    try:
        yield
    finally:
        if hook is not None:
            hook.remove()


#: ``TF_CPP_MIN_LOG_LEVEL`` of :func:`quiet_tensorflow`: no info, warning or error line (oneDNN's
#: notices, one of them logged as an error, are what a user otherwise sees).
QUIET_LEVEL = "3"

# what quiet_tensorflow changed, so that show_tensorflow_log can undo exactly that
_quieted: dict = {}


def _tensorflow_logger_errors_only() -> None:
    """TensorFlow's Python logger (``tf.function`` retracing notes and the like): errors only."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)


@contextlib.contextmanager
def _quiet_import():
    with stderr_captured():
        yield
    _tensorflow_logger_errors_only()   # again: TensorFlow sets INFO in an interactive session


def quiet_tensorflow() -> bool:
    """Hide TensorFlow's log unless the user set ``TF_CPP_MIN_LOG_LEVEL``; return whether it did.

    Sets the level to :data:`QUIET_LEVEL`, hides the lines its C++ libraries print while they
    load (shown if the import fails) and limits its Python logger to errors. Idempotent; undone
    by :func:`show_tensorflow_log`.
    """
    import logging

    if _quieted:
        return True
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return False
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_LEVEL
    _quieted["logger_level"] = logging.getLogger("tensorflow").level
    _quieted["hook"] = around_import("tensorflow", _quiet_import)
    _tensorflow_logger_errors_only()
    return True


def show_tensorflow_log() -> None:
    """Undo :func:`quiet_tensorflow` (``--verbose``): TensorFlow logs as it would by itself."""
    import logging

    if not _quieted:
        return
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == QUIET_LEVEL:
        del os.environ["TF_CPP_MIN_LOG_LEVEL"]
    if _quieted["hook"] is not None:
        _quieted["hook"].remove()
    logging.getLogger("tensorflow").setLevel(_quieted["logger_level"])
    _quieted.clear()
