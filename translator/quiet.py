"""TensorFlow's native start-up messages, kept off a CPU user's terminal.

On a machine without a GPU every TensorFlow process prints "Could not find cuda drivers", "failed call
to cuInit" and a oneDNN notice from C++ before its logging is configured, so TF_CPP_MIN_LOG_LEVEL
cannot hide them. The command line imports TensorFlow and probes its devices once with the process's
native stderr pointed at /dev/null; `--verbose` and `--debug` leave them visible.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


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


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and probe its devices, where the start-up messages are printed, silently."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()  # probes CUDA; the runtime itself stays uninitialised, so
        # --cpu-devices can still split the CPU afterwards
