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
