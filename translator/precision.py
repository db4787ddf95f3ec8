"""The one place that turns `auto` precisions into concrete ones: `train.mixed_precision: auto` into a
Keras dtype policy, `decode.precision: auto` into float32 or bfloat16.

bfloat16 pays where the hardware multiplies it natively and the model is big enough: on a CPU with AMX
units (Intel Sapphire Rapids and later) the `small` preset trains 1.33x faster under `mixed_bfloat16`
(docs/benchmarks.md, "Packed rows, and bfloat16 on an AMX CPU"), and on an AMD EPYC with AVX512_BF16 (no AMX)
the tutorial preset's steps 1.21-1.25x (`bfloat16_training_pays`). On AVX2 CPUs it was not shown to pay, so
`auto` keeps float32 there; TPUs and NVIDIA GPUs of compute capability 8.0 or more (Ampere and later) get
`mixed_bfloat16` from the vendors' documentation. Decoding in bfloat16 pays on AMX CPUs only
(`native_bfloat16`). The run records the policy it resolved to in its
config.yaml, so a run directory says how it was trained."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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


def native_bfloat16(
    strategy: tf.distribute.Strategy | None = None, flags: frozenset[str] | None = None, cpu_only: bool = False
) -> tuple[bool, str]:
    """(whether this hardware multiplies bfloat16 natively, why): TPUs, NVIDIA GPUs of compute
    capability 8.0 or more, CPUs with AMX units. `flags` stands for /proc/cpuinfo's (tests).
    `cpu_only` asks about the CPU alone, without importing TensorFlow (`translator.onednn` asks it
    before TensorFlow's import, about the CPU kernels TensorFlow should load)."""
    return _bfloat16_hardware(strategy, flags, cpu_only, vector_units_count=False)


def _accelerator_bfloat16(strategy: tf.distribute.Strategy | None) -> tuple[bool, str] | None:
    """(native, why) for the TPU or the GPUs training runs on; None on a CPU."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.TPUStrategy):
        return True, "a TPU"
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = [tf.config.experimental.get_device_details(gpu) for gpu in gpus]
    if all(tuple(detail.get("compute_capability", (0, 0))) >= (8, 0) for detail in details):
        return True, "GPUs of compute capability 8.0 or more"
    return False, "a GPU without native bfloat16 (compute capability < 8.0)"


def bfloat16_training_pays(
    strategy: tf.distribute.Strategy | None = None, flags: frozenset[str] | None = None, cpu_only: bool = False
) -> tuple[bool, str]:
    """(whether `train.mixed_precision: auto` trains under mixed_bfloat16 here, why): where bfloat16 is
    native (`native_bfloat16`), and on CPUs whose vector units have bfloat16 dot products (AVX512_BF16
    without AMX, as AMD's Zen 4 EPYCs), where oneDNN runs the training step's products in bfloat16. On
    such an AMD EPYC the tutorial preset's bfloat16 steps (bucketed, no XLA) ran 1.21-1.25x as fast as
    its float32 XLA steps, with 7 s of tracing instead of 85 s of compilation: 1.45x the target tokens in
    the first 10 minutes (docs/benchmarks.md, "bfloat16 training on an AMD EPYC with AVX512_BF16").
    The `small` preset's steps: 1.32x. Decoding is another matter: there a bfloat16 search ran at 0.88x
    the float32 one, so `resolve_decode_precision` keeps bfloat16 to AMX CPUs."""
    return _bfloat16_hardware(strategy, flags, cpu_only, vector_units_count=True)


def _bfloat16_hardware(
    strategy: tf.distribute.Strategy | None, flags: frozenset[str] | None, cpu_only: bool, vector_units_count: bool
) -> tuple[bool, str]:
    """The TPU or GPUs if training runs on them, else the CPU: AMX units, and with `vector_units_count`
    AVX512_BF16's dot products too."""
    accelerator = None if cpu_only else _accelerator_bfloat16(strategy)
    if accelerator is not None:
        return accelerator
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return True, "this CPU has AMX bfloat16 units"
    if not vector_units_count:
        return False, "this CPU has no AMX bfloat16 units"
    if "avx512_bf16" in flags:
        return True, "this CPU has AVX512_BF16 bfloat16 dot products (no AMX)"
    return False, "this CPU has neither AMX bfloat16 units nor AVX512_BF16"


def resolve_precision(
    name: str, strategy: tf.distribute.Strategy, flags: frozenset[str] | None = None
) -> tuple[str, str]:
    """(policy, why) for training: `name` itself unless it is `auto`."""
    if name != "auto":
        return name, "as configured"
    pays, why = bfloat16_training_pays(strategy, flags)
    return ("mixed_bfloat16" if pays else "float32"), f"auto: {why}"


def resolve_decode_precision(
    name: str, trained: str, flags: frozenset[str] | None = None, cpu_only: bool = False
) -> tuple[str, str]:
    """(decode.precision, why): `name` itself unless it is `auto`, which decodes in bfloat16 a model that
    trained under `mixed_bfloat16` (`trained`: the run's recorded train.mixed_precision) on hardware that
    multiplies bfloat16 natively, and in float32 otherwise. A model trained in bfloat16 loses nothing it
    had: on an AMX CPU the `small` run decoded 1.28-1.38x faster at the same BLEU (35.00 → 35.02). A
    float32-trained model stays float32: the tutorial-size run lost 0.28 BLEU and gained no speed
    (docs/benchmarks.md, "bfloat16 decoding"). Products as narrow as the tutorial size's (d_model 128)
    do not pay even for a bfloat16-trained model (0.83-0.94x the float32 search, two runs), so that
    preset says float32."""
    if name != "auto":
        return name, "as configured"
    if trained != "mixed_bfloat16":
        return "float32", f"auto: the model trained in {trained}"
    native, why = native_bfloat16(flags=flags, cpu_only=cpu_only)
    return ("bfloat16" if native else "float32"), f"auto: the model trained in mixed_bfloat16 and {why}"


def export_precision(requested: str | None, configured: str) -> str:
    """decode.precision for an export: `requested` (--precision) if given, else the run's `configured`
    one, where `auto` is float32. A SavedModel may be served
    on other hardware, where bfloat16 without native units is slow, and on an AMX CPU it gained nothing
    from bfloat16 (`small`: 38.79 against 37.44 sentences/s, docs/benchmarks.md, 2026-12-05: its
    sub-batches of 16 sentences make products too small for bfloat16 to pay) although our in-process
    search gains 1.3×. CTranslate2 exports compute as their quantization says."""
    chosen = requested or configured
    return "float32" if chosen == "auto" else chosen
