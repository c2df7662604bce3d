"""Ctrl-C and SIGTERM for the command line: never lost, and taken where the work can stop.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when SIGINT arrives:
inside a garbage-collection callback (XLA's, for one) it is printed as "Exception ignored" and
lost, inside a C extension it can leave an object half-built. The command line runs each command
inside :func:`handled`, whose handler, for SIGINT and SIGTERM alike,

- records the signal, and only records it inside :func:`deferred` (code that stops at safe points
  of its own, e.g. training between batches, which calls :func:`check` there); a second signal
  there raises at once;
- raises :class:`Interrupted` (a ``KeyboardInterrupt``) at once elsewhere, as Python would.

A signal whose exception was swallowed on its way up stays recorded: the next :func:`check`, the
end of :func:`deferred` or the end of :func:`handled` raises it. The command line turns it into
one line and exit status 128 + signal number: 130 for SIGINT, 143 for SIGTERM. Without
:func:`handled` (the library used from Python) nothing here changes how signals behave.
"""

from __future__ import annotations

import contextlib
import signal
import threading

#: The signals handled: Ctrl-C and the polite kill of a scheduler or ``kill``.
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_state = {"signal": None, "deferred": 0}


class Interrupted(KeyboardInterrupt):
    """The command was asked to stop by signal ``signum``; ``exit_status`` is 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def _handler(signum, frame):
    first = _state["signal"] is None
    _state["signal"] = signum
    if _state["deferred"] and first:
        return                      # the running code stops at its next safe point
    raise Interrupted(signum)


def requested() -> int | None:
    """The signal number received and not yet acted on, or None."""
    return _state["signal"]


def check() -> None:
    """A safe point: raise :class:`Interrupted` if a signal was received."""
    if _state["signal"] is not None:
        raise Interrupted(_state["signal"])


@contextlib.contextmanager
def deferred():
    """``with deferred():`` a signal only sets the flag that :func:`check` (called by the code
    at its safe points) acts on; it is acted on at the latest when the block ends."""
    _state["deferred"] += 1
    try:
        yield
    finally:
        _state["deferred"] -= 1
    check()


@contextlib.contextmanager
def handled():
    """Install the handler for :data:`SIGNALS` for the block (main thread only; elsewhere the
    block runs as it is), restore the previous handlers after it, and raise a signal that was
    received but not yet acted on when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    _state.update(signal=None, deferred=0)
    try:
        for s in SIGNALS:
            signal.signal(s, _handler)
        yield
        check()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _state.update(signal=None, deferred=0)
