"""The one exception type users see.

Anything raised as `TranslatorError` is a problem with the user's input (a file, a flag, a run
directory), not a bug: the command line prints its message on one line and exits non-zero, without a
traceback unless `--debug` is given.
"""


class TranslatorError(Exception):
    """A user-facing error whose message names the file, line, field or flag at fault."""
