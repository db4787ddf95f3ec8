"""TensorFlow's start-up for the command line: its native messages kept off a CPU user's terminal, and
no time spent on a plotting library no command needs at that point.

On a machine without a GPU every TensorFlow process prints "Could not find cuda drivers", "failed call
to cuInit" and a oneDNN notice from C++ before its logging is configured, so TF_CPP_MIN_LOG_LEVEL
cannot hide them. The command line imports TensorFlow and probes its devices once with the process's
native stderr pointed at /dev/null; `--verbose` and `--debug` leave them visible.

Keras 3, which TensorFlow imports, imports matplotlib (pyplot and patches) whenever it is installed, for
image helpers (`keras.visualization`) that no command calls: about 0.6 s and 29 MiB of the command line's
TensorFlow import, which took about 5 s on a 2-core AMX Xeon (docs/benchmarks.md, "Test-suite time", stop
48). The command line hides matplotlib during that import (those helpers then stay without it, as where it
is not installed); the commands that plot import it afterwards as usual.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

UNNEEDED_AT_IMPORT = "matplotlib"  # hidden, the package hides its submodules too


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration (Python's own exceptions still propagate)."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def module_hidden(name: str) -> Iterator[None]:
    """`import name` raises ImportError for the duration, unless the module is imported already; after it,
    the module imports as usual."""
    hidden = name not in sys.modules
    if hidden:
        sys.modules[name] = None  # the import system's mark for "not importable"
    try:
        yield
    finally:
        if hidden and name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and probe its devices, where the start-up messages are printed, silently, and
    without matplotlib (see above)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_silenced(), module_hidden(UNNEEDED_AT_IMPORT):
        import tensorflow as tf

        tf.config.list_physical_devices()  # probes CUDA; the runtime itself stays uninitialised, so
        # --cpu-devices can still split the CPU afterwards
