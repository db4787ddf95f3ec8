"""`translator bench`: the reports' contents, on the tiny preset (speed targets live in docs/benchmarks.md)."""

import json
import os
import platform
import time
from datetime import datetime, timedelta

import numpy as np
import pytest
import tensorflow as tf

from translator.bench.train import _measure
from translator.cli import main
from translator.onednn import ONEDNN_VARIABLE, X86_MACHINES
from translator.shortlist import DEFAULT_PER_SOURCE

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


def test_bench_train_measures_padded_bucketed_and_fixed_pipelines(seeded_run, capsys):
    methods = "padded,bucketed,fixed"
    args = ["bench", "train", "--config", "tiny", "--steps", "4", "--warmup", "1", "--methods", methods]
    assert main([*args, "--work-dir", str(seeded_run("bench")), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    padded, bucketed, fixed = report["results"]
    assert (padded["method"], bucketed["method"], fixed["method"]) == ("padded", "bucketed", "fixed")
    for row in (padded, bucketed, fixed):
        assert row["steps"] == 4 and row["excluded_steps"] >= 1 and row["target_tokens_per_s"] > 0
        assert row["tokens_in_budget"] is None and row["compile_seconds"] >= 0  # stopped by --steps
    # Length buckets under a token budget keep padding low; fixed-size batches do not.
    assert bucketed["target_padding"] < 0.10 < padded["target_padding"]
    # Fixed shapes pad 8-10% (target) and 10-11% (source) over the corpus (tests/test_data.py checks < 10%
    # of target positions over 60 batches); 4 batches are a noisy sample of that.
    assert max(fixed["target_padding"], fixed["source_padding"]) < 0.2 < padded["target_padding"]
    # The fixed shapes are known before training, and few; length buckets can meet many more.
    assert fixed["batch_shapes"] <= fixed["possible_shapes"] <= 16 < bucketed["possible_shapes"]
    assert padded["possible_shapes"] is None
    assert report["dropped_pairs"] > 0 and report["model"]["d_model"] == 32
    # Which pipeline wins is a speed question for `make bench`; the report must name the fastest row it measured.
    fastest = max(report["results"], key=lambda row: row["target_tokens_per_s"])
    assert report["best"] == fastest["method"]
    assert report["best_vs_padded"] == round(fastest["target_tokens_per_s"] / padded["target_tokens_per_s"], 2) >= 1


def test_bench_train_rejects_an_unknown_method(tmp_path, capsys):
    args = ["bench", "train", "--config", "tiny", "--methods", "fixed+jit", "--work-dir", str(tmp_path)]
    assert main(args) == 2
    assert "unknown method 'fixed+jit'" in capsys.readouterr().err


class SleepyStep:
    """A stand-in train step: traced in 0.25 s before the first step (`get_concrete_function`, as
    `_measure` does for the dataset's shapes), then 0.05 s a step."""

    def __init__(self):
        self.traces = 0

    def experimental_get_tracing_count(self) -> int:
        return self.traces

    def get_concrete_function(self, batches):
        self.traces += 1
        time.sleep(0.25)

    def __call__(self, batches):
        time.sleep(0.05)
        ((_, labels),) = batches
        return 0.0, tf.reduce_sum(tf.cast(labels != 0, tf.float32))


def test_bench_train_counts_the_tokens_of_a_time_budget_compilation_included():
    labels = tf.constant([[5, 6, 1, 0], [7, 1, 0, 0]])  # 5 real target tokens per batch
    dataset = tf.data.Dataset.from_tensors(({"source_ids": labels, "target_input_ids": labels}, labels)).repeat()
    row = _measure("fake", SleepyStep(), dataset, steps=0, warmup=1, xla=True, budget_seconds=0.6)
    # Every step that ended within the budget counts, the slow first one included; the last ran over.
    assert row["tokens_in_budget"] == 5 * (row["total_steps"] - 1) and row["seconds"] >= 0.6
    # The first step took 0.3 s (and the pipeline's start) against a steady step's 0.05 s.
    assert row["excluded_steps"] == 1 and 0.2 <= row["compile_seconds"] < row["excluded_seconds"]
    assert row["batch_shapes"] == 1 and row["source_padding"] == row["target_padding"] == 0.375
    early = _measure("fake", SleepyStep(), dataset, steps=3, warmup=1, xla=True, budget_seconds=60)
    assert early["steps"] == 3 and early["tokens_in_budget"] is None  # stopped before its budget


def test_bench_decode_times_the_exports_in_their_own_processes(trained_run, tmp_path, capsys):
    pytest.importorskip("ctranslate2", reason="ctranslate2 is not installed (pip install '.[ctranslate2]')")
    methods = "beam,beam_requests,savedmodel,ct2_beam,ct2_int8_beam,ct2_int8_shortlist_beam"
    args = ["bench", "decode", "--run-dir", str(trained_run), "--limit", "8", "--methods", methods, "--no-xla"]
    options = ["--batch-tokens", "40", "--ct2-batch-size", "3", "--rounds", "3", "--work-dir", str(tmp_path), "--json"]
    assert main([*args, *options]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {row["method"]: row for row in report["results"]}
    assert list(rows) == methods.split(",") and report["cached_uncached_agreement"] is None
    # Three rounds of each, the median round reported; each method's speed over beam's, round by round.
    assert report["rounds"] == 3 and "vs_beam" not in rows["beam"]
    for method, row in rows.items():
        speeds = row["rounds_sentences_per_s"]
        assert len(speeds) == 3 and row["sentences_per_s"] == pytest.approx(sorted(speeds)[1], rel=0.01)
        if method != "beam":
            beam_speeds = rows["beam"]["rounds_sentences_per_s"]
            expected = [speed / beam for speed, beam in zip(speeds, beam_speeds)]
            assert row["rounds_vs_beam"] == pytest.approx(expected, rel=0.01)
            assert row["vs_beam"] == sorted(row["rounds_vs_beam"])[1]
    # 40 source tokens over 4 beams: a batch holds one sentence (every sentence pads to 8 tokens or more).
    assert report["batch_tokens"] == 40 and rows["beam"]["batch_size"] == 1.0
    # The SavedModel gets requests of 32 (here all 8 at once); CTranslate2 batches of 3: 3, 3 and 2.
    assert rows["savedmodel"]["batch_size"] == 8.0 and rows["ct2_beam"]["batch_size"] == 2.7
    # The SavedModel runs our own search: the same translations as `beam`, and as `beam_requests` (our search
    # given the SavedModel's requests), whose speed its own is also given over, round by round.
    assert rows["savedmodel"]["agreement_with_beam"] == 1.0 and rows["savedmodel"]["bleu"] == rows["beam"]["bleu"]
    assert rows["beam_requests"]["agreement_with_beam"] == 1.0 and rows["beam_requests"]["batch_size"] == 1.0
    speeds = rows["savedmodel"]["rounds_sentences_per_s"]
    expected = [speed / other for speed, other in zip(speeds, rows["beam_requests"]["rounds_sentences_per_s"])]
    assert rows["savedmodel"]["rounds_vs_beam_requests"] == pytest.approx(expected, rel=0.01)
    assert rows["savedmodel"]["vs_beam_requests"] == sorted(rows["savedmodel"]["rounds_vs_beam_requests"])[1]
    assert "vs_beam_requests" not in rows["ct2_beam"]
    # Its worker chose its CPU kernels from the export (float32: Eigen on x86) and says which.
    if platform.machine().lower() in X86_MACHINES and ONEDNN_VARIABLE not in os.environ:
        assert rows["savedmodel"]["cpu_kernels"] == "Eigen"
    assert rows["savedmodel"]["cpu_kernels"] in ("Eigen", "oneDNN")
    assert rows["ct2_beam"]["cpu_kernels"] == "CTranslate2" and rows["beam"]["cpu_kernels"] in ("Eigen", "oneDNN")
    for method in ("savedmodel", "ct2_beam", "ct2_int8_beam", "ct2_int8_shortlist_beam"):
        assert rows[method]["beam_size"] == 4 and rows[method]["sentences"] == 8
        assert 0 <= rows[method]["agreement_with_beam"] <= 1 and rows[method]["size_mb"] > 0
    # A CTranslate2 worker never imports TensorFlow: its memory is a fraction of the SavedModel's.
    assert rows["ct2_beam"]["peak_rss_mb"] < rows["savedmodel"]["peak_rss_mb"] / 2
    assert rows["ct2_int8_beam"]["size_mb"] < rows["ct2_beam"]["size_mb"]
    assert (
        rows["ct2_int8_shortlist_beam"]["shortlist"] == DEFAULT_PER_SOURCE and rows["ct2_int8_beam"]["shortlist"] == 0
    )


def test_bench_decode_interleaves_the_rounds_of_its_methods():
    """Round 1 of every method, then round 2 of every method: a drift of the machine's speed hits each
    method's round alike, instead of all the rounds of whichever method ran last."""
    from translator.bench.decode import _interleaved

    calls = []

    def timer(name, seconds):
        def timed():
            calls.append(name)
            return seconds[len([call for call in calls if call == name]) - 1], f"{name} output {len(calls)}"

        return timed

    timed = _interleaved({"beam": timer("beam", [1.0, 2.0]), "ct2": timer("ct2", [0.5, 0.4])}, rounds=2)
    assert calls == ["beam", "ct2", "beam", "ct2"]
    assert timed == {"beam": ([1.0, 2.0], "beam output 1"), "ct2": ([0.5, 0.4], "ct2 output 2")}


def test_an_export_worker_that_fails_says_why(tmp_path):
    """A worker that dies before it is ready: its own error, not a hang or an empty JSON line."""
    from translator.bench.decode import _ExportWorker

    why = r"ctranslate2 worker failed: (?s:.*)(not a CTranslate2 export|needs the ctranslate2 package)"
    with pytest.raises(RuntimeError, match=why):
        _ExportWorker("ctranslate2", tmp_path, ["Hola."], threads=0, batch_size=8)


def test_serve_bench_compares_batching_pair_by_pair():
    """--batch-sizes 32,1,32,1: each batched row against the unbatched row right after it, never the
    best of one kind against the worst of the other."""
    from translator.bench.serve import pairwise_speedups

    rows = [{"sentences_per_s": speed} for speed in (57.23, 19.65, 54.48, 17.64)]
    assert pairwise_speedups(rows) == [2.91, 3.09]
    assert pairwise_speedups(rows[:3]) == [2.91]
    assert pairwise_speedups([{"sentences_per_s": 5.0}, {"sentences_per_s": 0.0}]) == []


def test_serve_bench_clients_send_a_file_in_order_round_by_round():
    """--input: at each round of requests the clients send the file's next sentences, cycling at its end;
    one sentence alone is every request."""
    from translator.bench.serve import schedule

    lines = tuple(f"s{index}" for index in range(5))
    sent = schedule(lines, clients=3, requests=4)  # per client
    assert [sent[client][turn] for turn in range(4) for client in range(3)] == [*lines, *lines, *lines[:2]]
    assert schedule(("one",), clients=2, requests=3) == [["one"] * 3] * 2


def test_opennmt_tf_gets_our_token_sequences_and_model_size(tokenizer, tmp_path):
    """The peer trains on exactly our ids: each written piece maps back to the id it came from."""
    import sentencepiece
    import yaml

    from tests.conftest import read_corpus
    from translator.bench.opennmt_tf import write_peer_inputs
    from translator.config import load_config
    from translator.data import TokenizedCorpus

    sources, targets = read_corpus("dev", 20)
    source_ids = [tokenizer.encode_source(tf.constant([text]))[0].numpy() for text in sources]
    target_ids = [tokenizer.encode_target(tf.constant([text]))[0].numpy() for text in targets]
    corpus = TokenizedCorpus(
        source_values=np.concatenate(source_ids),
        source_lengths=np.array([len(ids) + 1 for ids in source_ids]),
        target_values=np.concatenate(target_ids),
        target_lengths=np.array([len(ids) + 1 for ids in target_ids]),
    )
    config = load_config("tutorial", ["model.share_embeddings=false", "model.pre_norm=false"])
    settings = write_peer_inputs(config, corpus, tokenizer, tmp_path)
    pieces = sentencepiece.SentencePieceProcessor(model_proto=tokenizer.source_model_proto)
    written = (tmp_path / "train.src").read_text(encoding="utf-8").splitlines()
    assert [[pieces.piece_to_id(piece) for piece in line.split(" ")] for line in written] == [
        ids.tolist() for ids in source_ids
    ]
    vocabulary = (tmp_path / "src-vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(vocabulary) == len(set(vocabulary)) == pieces.get_piece_size() - 4  # <pad>, <unk>, <s>, </s>: its own
    assert len((tmp_path / "train.tgt").read_text(encoding="utf-8").splitlines()) == 20
    model = (tmp_path / "model.py").read_text()
    for fragment in ("num_layers=4,", "num_units=128,", "num_heads=8,", "ffn_inner_dim=512,", "pre_norm=False,"):
        assert fragment in model, model
    assert "EmbeddingsSharingLevel.NONE" in model
    deep_shallow = load_config("tutorial", ["model.decoder_layers=2"])
    write_peer_inputs(deep_shallow, corpus, tokenizer, tmp_path / "deep-shallow")
    assert "num_layers=(4, 2)," in (tmp_path / "deep-shallow" / "model.py").read_text()
    assert yaml.safe_load((tmp_path / "config.yml").read_text()) == settings
    assert settings["train"]["batch_size"] == 4096 and settings["train"]["effective_batch_size"] is None


def test_opennmt_tf_figures_come_from_its_log():
    from translator.bench.opennmt_tf import parse_rates, summarize_rates
    from translator.errors import TranslatorError

    line = "Step = {} ; steps/s = {}, tokens/s = 1 ({} source, {} target) ; Learning rate = 0.000100 ; Loss = 9.1"
    lines = [
        (50.0, line.format(50, "1.00", 4000, 3000)),  # start-up and tracing: not steady state
        (75.0, line.format(100, "2.00", 8000, 7000)),
        (100.0, line.format(150, "2.00", 8200, 7200)),
        (125.0, "Saving checkpoint"),
        (130.0, line.format(200, "2.00", 8400, 7400)),
    ]
    rows = parse_rates(lines)
    assert [row["step"] for row in rows] == [50, 100, 150, 200]
    # Its own time stamps win over the time a (block-buffered) line reached the pipe.
    start = datetime(2026, 12, 1, 22, 0, 0)
    stamped = [
        (500.0, f"{start + timedelta(seconds=at):%Y-%m-%d %H:%M:%S.%f}: I runner.py:310] {text}") for at, text in lines
    ]
    assert [row["seconds"] for row in parse_rates(stamped, start)] == [50.0, 75.0, 100.0, 130.0]
    summary = summarize_rates(rows, budget_seconds=110)
    assert summary["target_tokens_per_s"] == 7200 and summary["source_tokens_per_s"] == 8200
    # 50 steps at 1 step/s × 3,000, then 2 × 25 s at 7,000 and 7,200; the line at 130 s is past the budget.
    assert summary["tokens_in_budget"] == 50 * 3000 + 25 * 7000 + 25 * 7200 and summary["steps"] == 200
    with pytest.raises(TranslatorError, match="1 throughput line"):
        summarize_rates(rows[:1], budget_seconds=600)


def test_opennmt_tf_without_its_venv_says_how_to_get_it(tmp_path, capsys):
    assert main(["bench", "opennmt-tf", "--onmt-main", str(tmp_path / "onmt-main"), "--work-dir", str(tmp_path)]) == 2
    assert "make bench-opennmt" in capsys.readouterr().err
