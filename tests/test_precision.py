"""train.mixed_precision: auto resolves per machine, and the run records what it resolved to."""

import pytest
import tensorflow as tf

from translator.config import load_config
from translator.errors import TranslatorError
from translator.precision import cpu_flags, resolve_precision
from translator.rundir import RunDirectory
from translator.training import train

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile
processor\t: 1
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile
"""


def test_cpu_flags_are_read_from_cpuinfo_and_empty_without_it(tmp_path):
    (tmp_path / "cpuinfo").write_text(CPUINFO)
    assert {"avx2", "amx_bf16", "avx512_bf16"} <= cpu_flags(tmp_path / "cpuinfo")
    assert "vendor_id" not in cpu_flags(tmp_path / "cpuinfo")
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="the CPU rule applies without GPUs")
def test_auto_picks_bfloat16_only_on_cpus_with_amx():
    strategy = tf.distribute.get_strategy()
    assert resolve_precision("auto", strategy, frozenset({"avx2", "avx512_bf16", "amx_bf16"}))[0] == "mixed_bfloat16"
    # avx512_bf16 alone (no AMX) and AVX2-only CPUs stay on float32: bfloat16 was not measured to pay there.
    assert resolve_precision("auto", strategy, frozenset({"avx2", "avx512_bf16"})) == (
        "float32",
        "auto: this CPU has no AMX bfloat16 units",
    )
    assert resolve_precision("auto", strategy, frozenset())[0] == "float32"
    for explicit in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert resolve_precision(explicit, strategy, frozenset({"amx_bf16"})) == (explicit, "as configured")


def test_an_unknown_precision_is_refused_in_one_line():
    with pytest.raises(TranslatorError, match="train.mixed_precision must be auto, float32, mixed_bfloat16 or"):
        load_config("tiny", ["train.mixed_precision=bfloat16"])


@pytest.mark.slow
def test_a_run_with_auto_precision_records_and_logs_the_resolved_policy(seeded_run):
    expected, reason = resolve_precision("auto", tf.distribute.get_strategy())
    lines = []
    run_dir = seeded_run()
    settings = ["train.mixed_precision=auto", "train.jit_compile=false", "train.steps=2", "train.eval_every=0"]
    train(load_config("tiny", settings), run_dir, log=lines.append)
    assert RunDirectory(run_dir).load_config().train.mixed_precision == expected
    assert any(f"precision: {expected} ({reason})" in line for line in lines)
