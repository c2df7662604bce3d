"""The ``spinsr-tf`` command line.

Each sub-command lives in its own module of this package with two functions:
``add_parser(subparsers)`` registers its arguments (and ``set_defaults(func=run)``), and
``run(args) -> int`` does the work. Modules import heavy libraries (Keras, TensorFlow) inside
``run`` so that ``spinsr-tf --help`` and the data commands start fast.

What every command shares is done here, once, before ``run`` starts: the files a command reads
must exist and be files, no output may be one of its inputs, and an existing output file is
replaced only with ``--force`` (:func:`check_paths`). A sub-parser states which flags name
inputs and outputs with ``set_defaults(inputs=..., outputs=..., output_files=...)``; without
that, :data:`INPUTS` and :data:`OUTPUTS` are assumed, and only a folder given as an input and an
output that is an input are refused here (the command checks the rest in its own order).

User mistakes raise :class:`spinsr_tf.base.errors.UserError`; here they become one line on
stderr and exit status 2, with TensorFlow's start-up lines hidden. Warnings are one line each.
This is also the one boundary of failed reads and writes: an ``OSError`` (a full disk, a
file-size limit, a failing device) or a ``MemoryError`` is one line too, exit status 1 where the
system is at fault (:data:`SYSTEM_ERRORS`), 2 where the user's file is; the readers turn errors
that carry no errno (a damaged HDF5 chunk, a decompression bomb) into ``UserError`` first.
``--quiet`` leaves stdout empty; ``--verbose`` adds TensorFlow's own log.

The long commands, those that continue where they stopped (``set_defaults(resume_hint=...)``),
hold a lock on each output they build (:data:`LOCKED`, or ``set_defaults(locks=...)``;
:func:`spinsr_tf.base.files.output_lock`): a second command on the same output is refused in one
line, exit 2, before it touches anything. Every command runs under one SIGINT/SIGTERM handler
(:mod:`spinsr_tf.base.interrupts`): training stops at the next batch or epoch end, the rest at
once; the command prints one line (with a hint to run it again where that continues it) and
exits with 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import signal
import sys
import warnings

from spinsr_tf._version import __version__
from spinsr_tf.base.errors import UserError

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = (
    "quickstart",
    "generate",
    "downsample",
    "train",
    "evaluate",
    "export",
    "upscale",
    "reproduce",
    "physics_sr",
    "fit_image",
    "make_pretrained",
)

#: Flags that name files a command reads, where its parser does not say (``inputs``).
INPUTS = ("input", "image", "data", "hr", "model")
#: Flags that name what a command writes, where its parser does not say (``outputs``).
OUTPUTS = ("out", "json", "table")

#: Flags that name what a resumable command builds and locks, where its parser does not say
#: (``locks``).
LOCKED = ("out",)

#: The interrupt hint of commands that continue an interrupted run when run again.
RESUME_HINT = "run the same command again to continue"

EPILOG = ("Commands that build a data set or a run (generate, train, quickstart, reproduce, "
          "physics-sr, make-pretrained) continue where an interrupted call stopped when the same "
          "command is run again; other parameters are refused, and so is a second command on an "
          "output another one is building. No command replaces an existing "
          "file it did not create, or one of its inputs, unless given --force (never an input).")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and exit 2), not the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def scale_factor(text: str) -> int:
    """argparse type of ``--scale``: what the network builds, a power of two >= 2."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2 or value & (value - 1):
        raise argparse.ArgumentTypeError(f"must be a power of two >= 2 (2, 4, 8, 16, 32, ...), "
                                         f"got {text!r}")
    return value


def add_experiment_arguments(p, preset_help: str, out_help: str = "output folder") -> None:
    """The flags every table-making experiment shares: --preset, --out, --type, --seed, --quiet
    (``check_seed`` checks the seed)."""
    p.add_argument("--preset", default="medium", choices=["smoke", "medium", "paper"],
                   help=preset_help)
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--type", dest="types", action="append", choices=["I", "II"],
                   help="only this type (repeatable; default both)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="print nothing but errors and warnings")


def check_seed(args: argparse.Namespace) -> None:
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")


def model_argument(text: str) -> str:
    """argparse type of ``--model``: a model file, or ``pretrained:NAME`` for a shipped one."""
    from spinsr_tf.base.pretrained import resolve_model

    try:
        return resolve_model(text)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="spinsr-tf",
        description="Unsupervised super-resolution of magnetic spin textures.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"spinsr-tf {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    for sub in dict.fromkeys(subparsers.choices.values()):   # aliases: once
        sub.add_argument("--verbose", action="store_true",
                         help="also show TensorFlow's own log (C++ notices, retracing warnings)")
    return parser


def _label(dest: str) -> str:
    return "input" if dest in ("input", "image") else "--" + dest.replace("_", "-")


def _paths(args: argparse.Namespace, key: str, default) -> list[tuple[str, str]]:
    """``(label, path)`` of the flags ``args.<key>`` names (dest names, or a function of args)."""
    spec = getattr(args, key, default)
    if callable(spec):
        return [(label, str(path)) for label, path in spec(args)]
    out = []
    for dest in spec:
        value = getattr(args, dest, None)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None and not isinstance(item, bool):
                out.append((_label(dest), str(item)))
    return out


def check_paths(args: argparse.Namespace) -> None:
    """Before the first byte is read or written: inputs exist and are files, no output is an
    input, and output files can be written without replacing anything unasked."""
    from spinsr_tf.base.files import (check_input_file, check_output_file,
                                      remove_stale_temporaries, same_file)

    inputs = _paths(args, "inputs", INPUTS)
    for label, path in inputs:
        if hasattr(args, "inputs") or os.path.isdir(path):  # else the command's own order
            check_input_file(path, label)
    files = {label for label, _ in _paths(args, "output_files", ())}
    seen = {}
    for label, path in _paths(args, "outputs", OUTPUTS):
        for name, source in inputs:
            if same_file(path, source):
                given = "" if name == "input" else f" given as {name}"
                raise UserError(f"{label} {path!r} is the input file{given}: it would overwrite "
                                "the input; choose another output")
        target = os.path.abspath(path)
        if target in seen:
            raise UserError(f"{label} and {seen[target]} name the same file {path!r}")
        seen[target] = label
        if label in files:
            check_output_file(path, label, force=getattr(args, "force", False))
            remove_stale_temporaries(os.path.dirname(target),
                                     os.path.splitext(os.path.basename(target))[0])


def _lock_outputs(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    """Hold the lock of every output a resumable command builds, for the whole command."""
    from spinsr_tf.base.files import output_lock

    if not hasattr(args, "resume_hint"):
        return
    for label, path in _paths(args, "locks", LOCKED):
        stack.enter_context(output_lock(path, label))


#: errno values that are the system's fault, not the user's (exit status 1, not 2), with the
#: words of the one-line error.
SYSTEM_ERRORS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file size limit exceeded (ulimit -f)",
    errno.EIO: "input/output error",
    errno.ENOMEM: "out of memory",
    errno.EROFS: "read-only file system",
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files",
}


def describe_os_error(exc: OSError) -> tuple[str, int]:
    """One line and an exit status for a read or write that failed: 1 where the system is at
    fault (a full disk, a size limit, a failing device), 2 where the user's file is (missing,
    unreadable, damaged)."""
    where = exc.filename
    if exc.errno in SYSTEM_ERRORS:
        text, status = SYSTEM_ERRORS[exc.errno], 1
    else:
        text = exc.strerror or (str(exc.args[0]) if exc.args else "") or type(exc).__name__
        text, status = (text.strip().splitlines() or [type(exc).__name__])[0], 2
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) and where:
        return f"{text} writing {str(where)!r}", status
    return f"{text}{f': {str(where)!r}' if where else ''}", status


def system_fault_in_words(exc: BaseException) -> int | None:
    """The errno of a full disk, a size limit or a failing device that a library reports in
    words only (TensorFlow's ``OutOfRangeError: ...; File too large [Op:SaveV2]``), or None."""
    text = str(exc)
    return next((code for code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO)
                 if os.strerror(code) in text), None)


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    text = " ".join(str(message).split())
    print(f"spinsr-tf: warning: {text}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # TensorFlow's log (C++ notices, a oneDNN one at error level, retracing warnings): off
    # unless --verbose or TF_CPP_MIN_LOG_LEVEL set; what fails reaches Python as an exception
    from spinsr_tf.base.imports import (quiet_tensorflow, show_tensorflow_log,
                                        stderr_captured_during_import)

    verbose = getattr(args, "verbose", False)
    if verbose:
        show_tensorflow_log()
    else:
        quiet_tensorflow()
    from spinsr_tf.base import interrupts

    if hasattr(signal, "SIGXFSZ"):   # a file-size limit (ulimit -f): EFBIG and one line, not a
        with contextlib.suppress(ValueError):   # core dump (ValueError: not the main thread)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(interrupts.handled())
            stack.enter_context(warnings.catch_warnings())
            warnings.showwarning = _one_line_warning
            if not verbose:
                stack.enter_context(stderr_captured_during_import("tensorflow"))
            if getattr(args, "quiet", False):
                devnull = stack.enter_context(open(os.devnull, "w"))
                stack.enter_context(contextlib.redirect_stdout(devnull))
            _lock_outputs(args, stack)
            check_paths(args)
            return int(args.func(args) or 0)
    except UserError as exc:
        print(f"spinsr-tf {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        hint = getattr(args, "resume_hint", None)
        status = getattr(exc, "exit_status", 130)
        what = "interrupted" if status == 130 else f"stopped by {exc}"
        print(f"spinsr-tf {args.command}: {what}" + (f"; {hint}" if hint else ""),
              file=sys.stderr)
        return status
    except MemoryError:
        print(f"spinsr-tf {args.command}: error: out of memory (the data is too large for this "
              "machine; use fewer or smaller maps)", file=sys.stderr)
        return 1
    except OSError as exc:
        line, status = describe_os_error(exc)
        print(f"spinsr-tf {args.command}: error: {line}", file=sys.stderr)
        return status
    except Exception as exc:    # a library's own error type for a failed write (TensorFlow)
        code = system_fault_in_words(exc)
        if code is None:
            raise
        out = getattr(args, "out", None)
        line, status = describe_os_error(OSError(code, os.strerror(code), out))
        print(f"spinsr-tf {args.command}: error: {line}", file=sys.stderr)
        return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
