"""Which CPU kernels TensorFlow loads: oneDNN for training, Eigen for decoding in float32, on x86.

TensorFlow's x86 build contains oneDNN but turns it on by default only on CPUs with AVX-512 VNNI, BF16
or AMX; on the others (AVX2 CPUs such as many AMD EPYCs) its matrix products run on Eigen.
`TF_ENABLE_ONEDNN_OPTS=1` turns oneDNN on there, for TensorFlow's own kernels and for the matrix
products of XLA-compiled steps. On a 2-core AMD EPYC with AVX2 only (2026-12-05/06) it made
tutorial-size training steps 1.23x faster bucketed and 1.26x with XLA, and `make train` reached step
3,636 in its hour instead of 3,064 (docs/benchmarks.md, "oneDNN on the same EPYC" and "oneDNN by
default for training"). So the training commands turn it on.

Decoding is the opposite case. A search step is hundreds of small operations whose shapes change at
every step (the self-attention cache grows by one position, finished sentences leave the batch), and
oneDNN builds a new primitive for each new shape: on the AVX2 EPYC beam search ran at 0.70-0.77x with
it, and on an AMX Xeon, where TensorFlow turns it on by itself, our float32 search ran at 0.77-0.90x and
the exported SavedModel at 0.72-0.81x of their Eigen speeds (docs/benchmarks.md, "Eigen kernels for decoding").
So the decoding commands turn it off when they decode in float32. bfloat16 decoding keeps TensorFlow's
default: its products reach AMX units only through oneDNN.
"""

from __future__ import annotations

import os
import platform
from collections.abc import MutableMapping
from pathlib import Path

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
# Written into every exported SavedModel (where TensorFlow Serving keeps extra files): what it computes in.
EXPORT_INFO = "assets.extra/translator.json"
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


def use_eigen_for_decoding(
    float32_search: bool, environ: MutableMapping[str, str] | None = None, machine: str | None = None
) -> bool:
    """Ask TensorFlow for its Eigen kernels in a process whose searches run in float32 outside XLA
    (`float32_search`, from `float32_search_before_tensorflow`); True when they will be used. As for
    training, before TensorFlow's import; the user's value wins, and machines other than x86 are left alone."""
    environ = os.environ if environ is None else environ
    machine = (machine or platform.machine()).lower()
    if machine in X86_MACHINES and float32_search:
        environ.setdefault(ONEDNN_VARIABLE, "0")
    return environ.get(ONEDNN_VARIABLE, "").strip().lower() in ("0", "false")


def float32_search_before_tensorflow(
    run_dirs: list[str], export_dir: str | None = None, precision: str | None = None, xla: bool | None = None
) -> bool:
    """Whether a decoding command's searches will run in float32 and outside XLA, as far as it can be
    read without TensorFlow: the export's info file (`EXPORT_INFO`; a SavedModel never runs XLA), or
    each run's config.yaml, its decode.precision resolved as `translator.precision` resolves it on this
    CPU, with `precision` (--precision) and `xla` (--xla) given on the command line taking precedence.
    False where it cannot be read here (remote paths, exports written before the info file): TensorFlow
    keeps its default. XLA's compiled search has fixed shapes, so oneDNN's primitives are built once there."""
    import json

    from translator.config import config_from_dict, read_yaml
    from translator.errors import TranslatorError
    from translator.precision import resolve_decode_precision

    if export_dir is not None:
        try:
            info = json.loads((Path(export_dir) / EXPORT_INFO).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return info.get("precision") == "float32"
    if not run_dirs:
        return False
    for run_dir in run_dirs:
        path = Path(run_dir) / "config.yaml"
        if "://" in run_dir or not path.is_file():
            return False
        try:
            config = config_from_dict(read_yaml(path), str(path))
        except (OSError, TranslatorError):  # the command itself will report it
            return False
        decode = config.decode
        chosen, _ = resolve_decode_precision(precision or decode.precision, config.train.mixed_precision, cpu_only=True)
        if chosen != "float32" or (decode.xla if xla is None else xla):
            return False
    return True


def decoding_kernels(float32_search: bool, environ: MutableMapping[str, str] | None = None) -> str:
    """The CPU kernels `use_eigen_for_decoding` gives a decoding command started with `environ` (default:
    this process's environment), in words: for `translator info`, which runs no search itself."""
    environ = dict(os.environ if environ is None else environ)
    if ONEDNN_VARIABLE in environ:
        return f"as you set them ({ONEDNN_VARIABLE}={environ[ONEDNN_VARIABLE]})"
    if use_eigen_for_decoding(float32_search, environ):
        return f"Eigen (a float32 search outside XLA: {ONEDNN_VARIABLE}=0)"
    return f"TensorFlow's default for this CPU ({cpu_kernels()})"


def cpu_kernels() -> str:
    """Which library TensorFlow's CPU kernels in this process use: "oneDNN" or "Eigen", for logs and
    benchmark records (speeds differ by up to 1.3x between the two on one CPU)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # no public API says it
    except ImportError:
        return "unknown"
    return "oneDNN" if _pywrap_util_port.IsMklEnabled() else "Eigen"
