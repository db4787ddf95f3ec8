"""The one place that turns `train.mixed_precision: auto` into a Keras dtype policy.

bfloat16 pays where the hardware multiplies it natively and the model is big enough: on a CPU with AMX
units (Intel Sapphire Rapids and later) the `small` preset trains 1.33x faster under `mixed_bfloat16`
(docs/benchmarks.md, "Packed rows, and bfloat16 on an AMX CPU"). Elsewhere on CPUs it was not shown to pay, so `auto`
keeps float32 there; TPUs and NVIDIA GPUs of compute capability 8.0 or more (Ampere and later) get
`mixed_bfloat16` from the vendors' documentation. The run records the policy it resolved to in its
config.yaml, so a run directory says how it was trained."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as Linux reports them; empty where there is no /proc/cpuinfo."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def resolve_precision(
    name: str, strategy: tf.distribute.Strategy, flags: frozenset[str] | None = None
) -> tuple[str, str]:
    """(policy, why): `name` itself unless it is `auto`."""
    if name != "auto":
        return name, "as configured"
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16", "auto: a TPU"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = [tf.config.experimental.get_device_details(gpu) for gpu in gpus]
        if all(tuple(detail.get("compute_capability", (0, 0))) >= (8, 0) for detail in details):
            return "mixed_bfloat16", "auto: GPUs of compute capability 8.0 or more"
        return "float32", "auto: a GPU without native bfloat16 (compute capability < 8.0)"
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "mixed_bfloat16", "auto: this CPU has AMX bfloat16 units"
    return "float32", "auto: this CPU has no AMX bfloat16 units"
