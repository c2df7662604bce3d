"""Where progress goes: redrawn bars on a terminal or in a notebook, a few plain lines in a file.

A progress bar redraws itself with carriage returns and colour codes; written to a log file or a
pipe that is hundreds of kilobytes of escape codes. Keras's bar and tqdm's are therefore shown
only where :func:`bars_fit` says so; elsewhere the long steps print a line now and then.
"""

from __future__ import annotations

import sys


def bars_fit(stream=None) -> bool:
    """Whether ``stream`` (default: standard output) shows a redrawn progress bar as one bar:
    a terminal, or a Jupyter notebook (its output streams are no terminal, but draw bars)."""
    stream = sys.stdout if stream is None else stream
    if "ipykernel" in sys.modules:
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):   # replaced or closed stream
        return False
