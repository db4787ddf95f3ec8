"""train.mixed_precision: auto resolves per machine, and the run records what it resolved to."""

import pytest
import tensorflow as tf

from translator.config import load_config
from translator.errors import TranslatorError
from translator.precision import cpu_flags, resolve_decode_precision, resolve_precision
from translator.rundir import RunDirectory
from translator.training import resolve_compilation, train

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
def test_auto_trains_in_bfloat16_on_cpus_with_amx_or_avx512_bf16():
    strategy = tf.distribute.get_strategy()
    assert resolve_precision("auto", strategy, frozenset({"avx2", "avx512_bf16", "amx_bf16"})) == (
        "mixed_bfloat16",
        "auto: this CPU has AMX bfloat16 units",
    )
    # AVX512_BF16 without AMX (AMD's Zen 4 EPYCs): bfloat16 training measured faster there too.
    assert resolve_precision("auto", strategy, frozenset({"avx2", "avx512f", "avx512_bf16"})) == (
        "mixed_bfloat16",
        "auto: this CPU has AVX512_BF16 bfloat16 dot products (no AMX)",
    )
    # AVX2-only and AVX-512 CPUs without bfloat16 instructions stay on float32.
    for flags in (frozenset({"avx2"}), frozenset({"avx2", "avx512f", "avx512_vnni"}), frozenset()):
        assert resolve_precision("auto", strategy, flags) == (
            "float32",
            "auto: this CPU has neither AMX bfloat16 units nor AVX512_BF16",
        )
    for explicit in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert resolve_precision(explicit, strategy, frozenset({"amx_bf16"})) == (explicit, "as configured")


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="the CPU rule applies without GPUs")
def test_auto_decodes_in_bfloat16_only_a_bfloat16_trained_model_on_amx():
    amx, no_amx = frozenset({"avx512_bf16", "amx_bf16"}), frozenset({"avx2", "avx512_bf16"})
    assert resolve_decode_precision("auto", "mixed_bfloat16", amx) == (
        "bfloat16",
        "auto: the model trained in mixed_bfloat16 and this CPU has AMX bfloat16 units",
    )
    assert resolve_decode_precision("auto", "mixed_bfloat16", no_amx)[0] == "float32"
    for trained in ("float32", "mixed_float16"):
        assert resolve_decode_precision("auto", trained, amx) == ("float32", f"auto: the model trained in {trained}")
    for explicit in ("float32", "bfloat16"):
        assert resolve_decode_precision(explicit, "float32", no_amx) == (explicit, "as configured")


def test_an_unknown_precision_is_refused_in_one_line():
    with pytest.raises(TranslatorError, match="train.mixed_precision must be auto, float32, mixed_bfloat16 or"):
        load_config("tiny", ["train.mixed_precision=bfloat16"])


def test_auto_compiles_with_xla_in_float32_only_and_batches_in_fixed_shapes_on_one_machine():
    assert resolve_compilation("auto", "auto", "float32") == (True, "fixed", "auto: training in float32")
    for precision in ("mixed_bfloat16", "mixed_float16"):  # uncompiled, but still at most batch_shapes shapes
        assert resolve_compilation("auto", "auto", precision) == (False, "fixed", f"auto: training in {precision}")
    assert resolve_compilation(False, "auto", "float32") == (False, "fixed", "auto: training in float32")
    assert resolve_compilation("auto", "packed", "float32") == (True, "packed", "auto: training in float32")
    assert resolve_compilation(True, "bucketed", "mixed_bfloat16") == (True, "bucketed", "as configured")
    several = "auto: training in float32 on several CPU replicas"
    assert resolve_compilation("auto", "auto", "float32", xla_works=False) == (False, "bucketed", several)
    tpu = resolve_compilation("auto", "auto", "mixed_bfloat16", on_tpu=True)  # every TPU step is compiled
    assert tpu == (False, "fixed", "auto: training in mixed_bfloat16")
    with pytest.raises(TranslatorError, match="train.jit_compile must be true, false or auto, got 'sometimes'"):
        load_config("tiny", ["train.jit_compile=sometimes"])
    with pytest.raises(TranslatorError, match="train.batching must be bucketed, fixed, packed or auto"):
        load_config("tiny", ["train.batching=dynamic"])


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="the CPU rule applies without GPUs")
@pytest.mark.parametrize("preset", ["small", "tutorial"])
def test_the_real_presets_train_in_bfloat16_uncompiled_on_bf16_cpus_and_float32_with_xla_elsewhere(preset):
    """The two paths docs/benchmarks.md measured each preset's choice on: `make bench`'s default
    methods follow them (`translator.bench.train.default_methods`)."""
    from translator.bench.train import DEFAULT_METHODS, default_methods

    config = load_config(preset)
    train_config = config.train
    amx, avx2 = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16"}), frozenset({"avx2"})
    zen4 = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})
    bfloat16, float32 = ("mixed_bfloat16", False, "fixed"), ("float32", True, "fixed")
    for flags, expected in ((amx, bfloat16), (zen4, bfloat16), (avx2, float32)):
        precision, _ = resolve_precision(train_config.mixed_precision, tf.distribute.get_strategy(), flags)
        jit_compile, batching, _ = resolve_compilation(train_config.jit_compile, train_config.batching, precision)
        assert (precision, jit_compile, batching) == expected
    assert train_config.batch_shapes <= 16  # issue 13: at most 16 shapes a run, on every CPU
    # The bfloat16-trained model decodes in bfloat16 at `small` only: the tutorial size's products are too narrow.
    decoded = resolve_decode_precision(config.decode.precision, "mixed_bfloat16", amx)[0]
    assert decoded == {"small": "bfloat16", "tutorial": "float32"}[preset]
    assert default_methods(amx) == default_methods(zen4) == (*DEFAULT_METHODS, "fixed+bf16")
    assert default_methods(avx2) == DEFAULT_METHODS
    # It decodes in float32 on a CPU without AMX: bfloat16 decoding was measured to pay on AMX only.
    assert resolve_decode_precision(config.decode.precision, "mixed_bfloat16", zen4)[0] == "float32"


@pytest.mark.slow
def test_a_run_with_auto_precision_records_and_logs_the_resolved_policy(seeded_run):
    """`auto` precision, XLA and batching: the run records and logs what they resolved to on this machine."""
    expected, reason = resolve_precision("auto", tf.distribute.get_strategy())
    xla, batching, why = resolve_compilation("auto", "auto", expected)
    lines = []
    run_dir = seeded_run()
    settings = ["train.mixed_precision=auto", "train.jit_compile=auto", "train.batching=auto", "train.steps=2"]
    train(load_config("tiny", [*settings, "train.eval_every=0"]), run_dir, log=lines.append)
    recorded = RunDirectory(run_dir).load_config().train
    assert (recorded.mixed_precision, recorded.jit_compile, recorded.batching) == (expected, xla, batching)
    assert any(f"precision: {expected} ({reason})" in line for line in lines)
    assert any(line.endswith(f", XLA {'on' if xla else 'off'} ({why})") for line in lines), lines
    shapes = next(line for line in lines if line.startswith("batch shapes: "))
    assert f"({batching} batching" in shapes and ("XLA compiles each the first time it comes" in shapes) == xla, lines


def test_bfloat16_decoding_runs_the_float32_weights_in_bfloat16(trained_run, tmp_path):
    """decode.precision: bfloat16 builds the decoding model under mixed_bfloat16 from the same float32
    checkpoint; it scores a translation within bfloat16 round-off of float32, and a SavedModel exported
    from it decodes in bfloat16 too."""
    import numpy as np

    from tests.conftest import read_corpus
    from translator.config import DecodeConfig
    from translator.export import SavedModelTranslator
    from translator.inference import Translator

    full = Translator.from_run_dir(trained_run, jit_compile=False, beam_size=2)
    half = Translator.from_run_dir(trained_run, jit_compile=False, beam_size=2, precision="bfloat16")
    assert (full.model.dtype_policy.name, half.model.dtype_policy.name) == ("float32", "mixed_bfloat16")
    assert all(np.array_equal(a, b) for a, b in zip(full.model.get_weights(), half.model.get_weights()))
    sources = read_corpus("test", 12)[0]
    targets = full.translate(sources)
    per_token = [
        abs(a.log_prob - b.log_prob) / a.tokens
        for a, b in zip(full.score(sources, targets), half.score(sources, targets))
    ]
    # bfloat16 keeps 8 bits of mantissa: close, not equal (a wrong weight or mask would be off by whole units).
    assert 0 < max(per_token) < 0.1
    translations = half.translate(sources)
    assert len(translations) == len(sources) and all(isinstance(text, str) for text in translations)

    with pytest.raises(TranslatorError, match="decode.precision is chosen when the model is loaded"):
        full.with_config(precision="bfloat16")
    with pytest.raises(TranslatorError, match="decode.precision must be auto, float32, bfloat16"):
        DecodeConfig(precision="float16")

    exported = SavedModelTranslator(half.export(tmp_path / "savedmodel"))
    assert exported.translate(sources[:4]) == half.translate(sources[:4])
    scores = {
        name: np.array([best[0].score for best in translator.translate_nbest(sources[:4])])
        for name, translator in (("exported", exported), ("half", half), ("full", full))
    }
    # The export computes in bfloat16 as `half` does, up to bfloat16's round-off: where bfloat16 is emulated
    # (an AVX2 CPU) a product's rounding depends on the shapes each path batches into (seen there: 3.6e-3
    # apart on scores near -35, within 1e-5 on an AMX CPU), while float32 is about 0.1 away from both.
    to_half, to_full = (np.abs(scores["exported"] - scores[name]).max() for name in ("half", "full"))
    assert to_half < 1e-2 and to_full > 10 * to_half, (to_half, to_full)


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="the CPU rule applies without GPUs")
def test_a_loaded_translator_holds_the_precision_auto_resolved_to(trained_run, tmp_path, monkeypatch, capsys):
    """decode.precision: auto (the default) resolves at load against the run's recorded training
    precision and the CPU: a float32 run decodes in float32 everywhere, a bfloat16 run in bfloat16 on
    an AMX CPU only; a translator built around a model takes its model's policy. `translator export`
    makes auto float32 (a SavedModel may be served elsewhere, and gained nothing from bfloat16)."""
    import shutil

    import yaml

    from translator import precision
    from translator.config import DecodeConfig
    from translator.inference import Translator

    assert DecodeConfig().precision == "auto"
    assert load_config("tiny").train.mixed_precision == "float32"  # what trained_run recorded
    bf16_run = tmp_path / "bf16"
    shutil.copytree(trained_run, bf16_run, ignore=shutil.ignore_patterns("eval", "export*", "ctranslate2"))
    config = yaml.safe_load((bf16_run / "config.yaml").read_text())
    config["train"]["mixed_precision"] = "mixed_bfloat16"
    (bf16_run / "config.yaml").write_text(yaml.safe_dump(config))

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    float32_run = Translator.from_run_dir(trained_run, jit_compile=False)
    assert (float32_run.config.precision, float32_run.model.dtype_policy.name) == ("float32", "float32")
    loaded = Translator.from_run_dir(bf16_run, jit_compile=False)
    assert (loaded.config.precision, loaded.model.dtype_policy.name) == ("bfloat16", "mixed_bfloat16")
    assert Translator(loaded.model, loaded.tokenizer, DecodeConfig(), jit_compile=False).config.precision == "bfloat16"
    assert (
        Translator.from_run_dir(bf16_run, jit_compile=False, precision="float32").model.dtype_policy.name == "float32"
    )

    from translator.cli import main

    assert main(["export", "--run-dir", str(bf16_run), "--output", str(tmp_path / "saved")]) == 0
    assert "precision float32)" in capsys.readouterr().out

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    loaded = Translator.from_run_dir(bf16_run, jit_compile=False)
    assert (loaded.config.precision, loaded.model.dtype_policy.name) == ("float32", "float32")
