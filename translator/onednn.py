"""oneDNN kernels for training on x86 CPUs where TensorFlow leaves them off.

TensorFlow's x86 build contains oneDNN but turns it on by default only on CPUs with AVX-512 VNNI, BF16
or AMX; on the others (AVX2 CPUs such as many AMD EPYCs) its matrix products run on Eigen.
`TF_ENABLE_ONEDNN_OPTS=1` turns oneDNN on there, for TensorFlow's own kernels and for the matrix
products of XLA-compiled steps. On a 2-core AMD EPYC with AVX2 only (2026-12-05/06) it made
tutorial-size training steps 1.23x faster bucketed and 1.26x with XLA, and `make train` reached step
3,636 in its hour instead of 3,064; beam search without XLA, on the other hand, ran at 0.70-0.77x
(docs/benchmarks.md, "oneDNN on the same EPYC" and "oneDNN by default for training"). So the training
commands turn it on and the decoding commands leave TensorFlow's default.
"""

from __future__ import annotations

import os
import platform
from collections.abc import MutableMapping

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
X86_MACHINES = frozenset({"x86_64", "amd64", "x64"})


def use_onednn_for_training(environ: MutableMapping[str, str] | None = None, machine: str | None = None) -> bool:
    """Ask TensorFlow for oneDNN kernels in a process that trains; True when it will be asked.

    TensorFlow reads the variable once, when its runtime starts, so this must come before TensorFlow's
    import; the processes this one starts (local multi-worker training) inherit it. A value the user set
    wins, and machines other than x86 are left alone (oneDNN there goes through other libraries, not
    measured).
    """
    environ = os.environ if environ is None else environ
    machine = (machine or platform.machine()).lower()
    if machine in X86_MACHINES:
        environ.setdefault(ONEDNN_VARIABLE, "1")
    return environ.get(ONEDNN_VARIABLE, "").strip().lower() in ("1", "true")


def cpu_kernels() -> str:
    """Which library TensorFlow's CPU kernels in this process use: "oneDNN" or "Eigen", for logs and
    benchmark records (speeds differ by up to 1.3x between the two on one CPU)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # no public API says it
    except ImportError:
        return "unknown"
    return "oneDNN" if _pywrap_util_port.IsMklEnabled() else "Eigen"
