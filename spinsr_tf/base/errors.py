"""The one exception type for user mistakes.

A ``UserError`` carries a one-line message naming the argument and the offending value. The
command line prints it and exits with status 2; anything else that escapes is a bug and keeps
its traceback.
"""


class UserError(ValueError):
    """A mistake in the user's input (argument, file, data), not a bug in spinsr_tf."""


class RepairWarning(UserWarning):
    """A damaged file of spinsr_tf's own making (a block of an interrupted ``generate``, a cached
    result) was found and is made again: nothing for the user to do, but worth a line."""
