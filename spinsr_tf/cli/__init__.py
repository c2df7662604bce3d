"""The ``spinsr-tf`` command line.

Each sub-command lives in its own module of this package with two functions:
``add_parser(subparsers)`` registers its arguments (and ``set_defaults(func=run)``), and
``run(args) -> int`` does the work. Modules import heavy libraries (Keras, TensorFlow) inside
``run`` so that ``spinsr-tf --help`` and the data commands start fast.

User mistakes raise :class:`spinsr_tf.base.errors.UserError`; here they become one line on stderr and
exit status 2. Ctrl-C exits with 130 and a hint that the command resumes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

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
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and exit 2), not the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="spinsr-tf",
        description="Unsupervised super-resolution of magnetic spin textures.",
    )
    parser.add_argument("--version", action="version", version=f"spinsr-tf {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"spinsr-tf {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = getattr(args, "resume_hint", "run the same command again to resume")
        print(f"spinsr-tf {args.command}: interrupted; {hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
