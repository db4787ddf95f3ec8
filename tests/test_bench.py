"""`translator bench`: the reports' contents, on the tiny preset (speed targets live in docs/benchmarks.md)."""

import json

import pytest

from translator.cli import main

pytestmark = pytest.mark.slow


def test_bench_decode_reports_every_method_and_exact_agreement(trained_run, capsys):
    args = ["bench", "decode", "--run-dir", str(trained_run), "--limit", "12", "--uncached-limit", "6", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cached_uncached_agreement"] == 1.0
    methods = {row["method"]: row for row in report["results"]}
    assert set(methods) == {"uncached_greedy", "greedy", "beam"}
    assert methods["uncached_greedy"]["batch_size"] == 1 and methods["uncached_greedy"]["sentences"] == 6
    assert methods["beam"]["beam_size"] == 4 and methods["greedy"]["sentences"] == 12
    for row in report["results"]:
        assert row["sentences_per_s"] > 0 and row["tokens_per_s"] > 0


def test_bench_train_measures_padded_and_bucketed_pipelines(tmp_path, capsys):
    args = ["bench", "train", "--config", "tiny", "--steps", "4", "--warmup", "1", "--methods", "padded,bucketed"]
    assert main([*args, "--work-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    padded, bucketed = report["results"]
    assert (padded["method"], bucketed["method"]) == ("padded", "bucketed")
    for row in (padded, bucketed):
        assert row["steps"] == 4 and row["excluded_steps"] >= 1 and row["target_tokens_per_s"] > 0
    # Length buckets under a token budget keep padding low; fixed-size batches do not.
    assert bucketed["target_padding"] < 0.10 < padded["target_padding"]
    assert report["dropped_pairs"] > 0 and report["model"]["d_model"] == 32
    assert report["best"] in ("padded", "bucketed") and report["best_vs_padded"] > 0


def test_bench_train_rejects_an_unknown_method(tmp_path, capsys):
    args = ["bench", "train", "--config", "tiny", "--methods", "bucketed+jit", "--work-dir", str(tmp_path)]
    assert main(args) == 2
    assert "unknown method 'bucketed+jit'" in capsys.readouterr().err


def test_bench_decode_times_the_exports_in_their_own_processes(trained_run, tmp_path, capsys):
    pytest.importorskip("ctranslate2", reason="ctranslate2 is not installed (pip install '.[ctranslate2]')")
    methods = "beam,savedmodel,ct2_beam,ct2_int8_beam"
    args = ["bench", "decode", "--run-dir", str(trained_run), "--limit", "8", "--methods", methods, "--no-xla"]
    assert main([*args, "--work-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {row["method"]: row for row in report["results"]}
    assert list(rows) == methods.split(",") and report["cached_uncached_agreement"] is None
    # The SavedModel runs our own search: the same translations as `beam`.
    assert rows["savedmodel"]["agreement_with_beam"] == 1.0 and rows["savedmodel"]["bleu"] == rows["beam"]["bleu"]
    for method in ("savedmodel", "ct2_beam", "ct2_int8_beam"):
        assert rows[method]["beam_size"] == 4 and rows[method]["sentences"] == 8
        assert 0 <= rows[method]["agreement_with_beam"] <= 1 and rows[method]["size_mb"] > 0
    # A CTranslate2 worker never imports TensorFlow: its memory is a fraction of the SavedModel's.
    assert rows["ct2_beam"]["peak_rss_mb"] < rows["savedmodel"]["peak_rss_mb"] / 2
    assert rows["ct2_int8_beam"]["size_mb"] < rows["ct2_beam"]["size_mb"]
