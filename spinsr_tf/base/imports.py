"""Run code around the first import of a module, without importing it now.

Two things need it. Keras finds a saved model's custom layers only among the classes registered
when they were defined, so ``import spinsr_tf`` arranges for spinsr_tf's Keras modules to be
imported once Keras is (:func:`after_import`), without paying for Keras itself. And TensorFlow's
C++ libraries print their start-up lines to file descriptor 2 while they load, whatever
``TF_CPP_MIN_LOG_LEVEL`` says; the command line hides them (:func:`stderr_captured_during_import`)
so that a user mistake stays one line, and shows them if the import fails.
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
