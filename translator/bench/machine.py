"""What a benchmark ran on, recorded beside its numbers: machines change between runs, and a figure
is only comparable with another taken on the same CPU."""

import os
import platform

import tensorflow as tf

from translator.onednn import cpu_kernels


def cpu_model() -> str:
    """The CPU's model name and its widest vector extension (AVX-512 or AVX2), from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            lines = info.read().splitlines()
    except OSError:
        return platform.processor() or "unknown CPU"
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{fields.get('model name', platform.processor() or 'unknown CPU')} ({vector})"


def describe_machine() -> str:
    gpus = len(tf.config.list_physical_devices("GPU"))
    return (
        f"{cpu_model()}, {platform.machine()}, {os.cpu_count()} CPU cores, {gpus} GPU(s), {platform.system()}, "
        f"{cpu_kernels()} CPU kernels"
    )
