"""Benchmarks behind `translator bench`: decoding speed and exactness on a real split.

`decode` times, on the same sentences: `uncached_greedy` (one sentence at a time, the decoder re-run
over the whole prefix each step: the TF tutorial's way), `greedy` (cached, batched) and `beam`
(cached, batched, beam 4), and on request `beam_requests`: the same search given the sentences as the
SavedModel gets them, in requests of 32 in file order, so that the SavedModel's speed can be told apart
from what its requests cost any search (its row's `vs_beam_requests`). Compiled functions are warmed up
on the same data first, so the figures are steady-state speeds, not tracing or XLA compilation.

With `rounds` > 1 every method but `uncached_greedy` is timed that many times, the rounds interleaved
(round 1 of each method, then round 2 of each, ...), and a row gives the median round. Each row other
than `beam` also gives its speed over `beam`'s, per round and the median of those: on a VM whose speed
drifts by a third within minutes, a ratio of two rounds run seconds apart is what compares fairly.

On request it also times the exports of the same checkpoint, each in a process of its own
(`translator.bench.export_worker`), which loads and warms up once and stays up for every round:
`savedmodel` (its `serving_default`, requests of 32 in file order, as TensorFlow Serving receives them),
`ct2_beam` (CTranslate2, float32), `ct2_int8_beam` (int8 weights) and `ct2_int8_shortlist_beam` (int8 and
a lexical shortlist; the CTranslate2 methods are given the whole split, as `beam` is, and batched by their
translator's default), at the same beam size as `beam`, with their BLEU, their agreement with `beam`
(share of sentences with the identical best translation), peak memory and size on disk.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import tensorflow as tf

from translator.bench.export_worker import peak_rss_mb
from translator.bench.machine import describe_machine
from translator.bench.reference import uncached_greedy_search
from translator.constants import EOS_ID
from translator.evaluation import score, split_pairs
from translator.inference import Translator, decode_length
from translator.onednn import cpu_kernels
from translator.precision import export_precision
from translator.rundir import RunDirectory
from translator.shortlist import DEFAULT_PER_SOURCE


def _count_tokens(ids: np.ndarray) -> int:
    """Generated tokens up to and including EOS."""
    ends = np.flatnonzero(ids == EOS_ID)
    return int(ends[0] + 1) if ends.size else int((ids != 0).sum())


def _translate_timer(
    translator: Translator, sources: list[np.ndarray], request_size: int = 0
) -> Callable[[], tuple[float, list]]:
    """A timed call of the batched search over `sources` (or over each request of `request_size` of them,
    in file order, one after the other), after one untimed call (it traces, and compiles, every bucket
    shape)."""
    requests = _requests(sources, request_size)

    def translate() -> list:
        return [result for request in requests for result in translator.translate_ids_batched(request)]

    translate()

    def timed() -> tuple[float, list]:
        start = time.perf_counter()
        results = translate()
        return time.perf_counter() - start, results

    return timed


def _requests(sources: list, size: int) -> list[list]:
    """`sources` in file order, `size` at a time (0: all at once)."""
    size = size or len(sources)
    return [sources[start : start + size] for start in range(0, len(sources), size)]


IN_PROCESS_METHODS = ("uncached_greedy", "greedy", "beam", "beam_requests")
EXPORT_METHODS = ("savedmodel", "ct2_beam", "ct2_int8_beam", "ct2_int8_shortlist_beam")
DEFAULT_METHODS = ("uncached_greedy", "greedy", "beam")
SAVEDMODEL_REQUEST_SIZE = 32  # sentences per request to the SavedModel, as a server would send them


def _size_mb(paths) -> float:
    paths = [Path(path) for path in paths]
    files = [file for path in paths for file in ([path] if path.is_file() else path.rglob("*")) if file.is_file()]
    return round(sum(file.stat().st_size for file in files) / 2**20, 2)


def _batch_size(kind: str, ct2_batch_size: int | None = None, shortlist: int = 0) -> int:
    """Sentences per batch of an export: the SavedModel's requests; CTranslate2's own batches."""
    from translator.ct2 import DEFAULT_BATCH_SIZE, SHORTLIST_BATCH_SIZE

    if kind == "savedmodel":
        return SAVEDMODEL_REQUEST_SIZE
    return ct2_batch_size or (SHORTLIST_BATCH_SIZE if shortlist else DEFAULT_BATCH_SIZE)


class _ExportWorker:
    """An export warmed up in a process of its own (`translator.bench.export_worker`), timed a round at a time."""

    def __init__(self, kind: str, model: Path, sentences: list[str], threads: int, batch_size: int):
        self.kind = kind
        self.errors = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: TensorFlow's logs cannot block it
        command = [sys.executable, "-m", "translator.bench.export_worker", kind, str(model)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors, text=True
        )
        self._send(json.dumps({"sentences": sentences, "batch_size": batch_size, "threads": threads}))
        self.ready = self._receive()

    def _send(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def _receive(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            self.errors.seek(0)
            raise RuntimeError(f"{self.kind} worker failed: {self.errors.read()[-2000:]}")
        return json.loads(line)

    def timed(self) -> tuple[float, list[str] | None]:
        """One timed pass over the sentences: seconds, and the hypotheses (first round only)."""
        self._send("time")
        reply = self._receive()
        return reply["seconds"], reply.get("hypotheses")

    def close(self) -> float:
        """End the worker; its peak resident memory (MiB)."""
        self.process.stdin.close()
        peak = self._receive()["peak_rss_mb"]
        self.process.wait(timeout=60)
        self.errors.close()
        return peak


def _interleaved(timers: dict[str, Callable[[], tuple[float, object]]], rounds: int) -> dict[str, tuple[list, object]]:
    """Each timer's seconds in each round, rounds interleaved across timers, and its first round's output."""
    seconds: dict[str, list[float]] = {name: [] for name in timers}
    first: dict[str, object] = {}
    for _ in range(rounds):
        for name, timer in timers.items():
            took, output = timer()
            seconds[name].append(took)
            first.setdefault(name, output)
    return {name: (seconds[name], first[name]) for name in timers}


def bench_decode(
    run_dir: str,
    split: str = "test",
    limit: int = 0,
    beam_size: int = 4,
    jit_compile: bool | None = None,
    uncached_limit: int = 0,
    methods: tuple[str, ...] = DEFAULT_METHODS,
    threads: int = 0,
    work_dir: str | None = None,
    workers: int | None = None,
    batch_tokens: int | None = None,
    ct2_batch_size: int | None = None,
    precision: str | None = None,
    shortlist: int = DEFAULT_PER_SOURCE,
    rounds: int = 1,
) -> dict:
    from translator.errors import TranslatorError

    unknown = [method for method in methods if method not in IN_PROCESS_METHODS + EXPORT_METHODS]
    if unknown:
        known = ", ".join(IN_PROCESS_METHODS + EXPORT_METHODS)
        raise TranslatorError(f"unknown method(s) {', '.join(unknown)}: choose from {known}")
    if rounds < 1:
        raise TranslatorError(f"rounds must be at least 1, got {rounds}")
    # Defaults: the run's decode.workers and decode.batch_tokens.
    settings = (("workers", workers), ("batch_tokens", batch_tokens), ("precision", precision))
    overrides = {key: value for key, value in settings if value is not None}
    base = Translator.from_run_dir(run_dir, jit_compile=jit_compile, beam_size=1, **overrides)
    model, config, checkpoint = base.model, RunDirectory(run_dir).load_config(), base.checkpoint.path
    _, sentences, references = split_pairs(base, split)
    sentences = sentences[:limit] if limit else sentences
    references = references[: len(sentences)]
    ragged, _ = base.encode_text(tf.constant(sentences))
    sources = [row for row in ragged.numpy()]
    results = []
    best: dict[str, list[str]] = {}  # method → best translation of each sentence

    def record(
        method, beam, seconds, n_sentences, tokens, batches, hypotheses=None, rss=None, size=None, kernels=None, **extra
    ):
        """A row; `seconds` is one per round, the row's speed is the median round's."""
        median = statistics.median(seconds)
        row = {
            "method": method,
            # TensorFlow's CPU kernels where the method ran (a SavedModel's worker chooses its own).
            "cpu_kernels": kernels or ("CTranslate2" if method.startswith("ct2") else cpu_kernels()),
            "beam_size": beam,
            "batch_size": round(n_sentences / batches, 1),
            "sentences": n_sentences,
            "seconds": round(median, 2),
            "sentences_per_s": round(n_sentences / median, 2),
            "tokens_per_s": round(tokens / median, 1),
        }
        if len(seconds) > 1:
            row["rounds_sentences_per_s"] = [round(n_sentences / each, 2) for each in seconds]
        if hypotheses is not None:
            best[method] = hypotheses
            row["bleu"] = score(hypotheses, [references])["bleu"]["score"]
            if method in ("beam_requests", *EXPORT_METHODS) and "beam" in best:
                row["agreement_with_beam"] = round(
                    float(np.mean([a == b for a, b in zip(hypotheses, best["beam"])])), 4
                )
        if rss is not None:
            row["peak_rss_mb"] = rss
        if size is not None:
            row["size_mb"] = size
        row.update(extra)
        results.append(row)

    uncached = _uncached(model, config, sources, uncached_limit, record) if "uncached_greedy" in methods else []
    beam = base.with_config(beam_size=beam_size)
    timers, peaks = {}, {}
    for method, translator in (("greedy", base), ("beam", beam), ("beam_requests", beam)):
        if method in methods:
            request_size = SAVEDMODEL_REQUEST_SIZE if method == "beam_requests" else 0
            timers[method] = _translate_timer(translator, sources, request_size)
            peaks[method] = peak_rss_mb()  # after the warm-up, a pass like the timed ones
    # The SavedModel as `translator export` makes it: decode.precision auto exports float32 (export_precision).
    saved_precision = export_precision(precision, config.decode.precision)
    saved = beam
    if "savedmodel" in methods and saved_precision != beam.config.precision:
        saved = Translator.from_run_dir(
            run_dir, jit_compile=False, **{**overrides, "beam_size": beam_size, "precision": saved_precision}
        )
    scratch = None if work_dir else tempfile.TemporaryDirectory(prefix="bench-decode-")
    exports: dict[str, _Export] = {}
    try:
        for method in (m for m in EXPORT_METHODS if m in methods):
            exports[method] = _start_export(
                method, beam, saved, sentences, threads, Path(work_dir or scratch.name), ct2_batch_size, shortlist
            )
            timers[method] = exports[method].worker.timed
        timed = _interleaved(timers, rounds)
        for method, export in exports.items():
            peaks[method] = export.worker.close()
        greedy = _record_in_process(timed, base, beam, sources, peaks, record)
        _record_exports(timed, exports, beam, sentences, peaks, record)
    finally:
        for export in exports.values():
            if export.worker.process.poll() is None:
                export.worker.process.kill()
        if scratch is not None:
            scratch.cleanup()
    _compare_rows(results, timed)
    agreement = None
    if uncached and greedy is not None:
        # Cached greedy must produce exactly the uncached tokens (compared up to EOS; the cached search
        # pads its output to the bucket's decode length).
        agree = [
            np.array_equal(greedy[i][0][0][: _count_tokens(u)], u[: _count_tokens(u)]) for i, u in enumerate(uncached)
        ]
        agreement = round(float(np.mean(agree)), 4)
    return {
        "benchmark": "decode",
        "run_dir": str(run_dir),
        "checkpoint": checkpoint,
        "split": split,
        "sentences": len(sources),
        "rounds": rounds,
        "model": {
            "layers": config.model.num_layers,
            "decoder_layers": model.decoder_layers,
            "d_model": config.model.d_model,
            "ffn_dim": config.model.ffn_dim,
            "heads": config.model.num_heads,
            "parameters": model.count_params(),
        },
        "xla": base.jit_compile,
        "threads": threads,
        "workers": base.config.workers,
        "batch_tokens": base.config.batch_tokens,
        "precision": base.config.precision,
        "savedmodel_precision": saved.config.precision if "savedmodel" in methods else None,
        "cached_uncached_agreement": agreement,
        "results": results,
        "machine": describe_machine(),
        "date": date.today().isoformat(),
        "tensorflow": tf.__version__,
    }


def _record_in_process(timed, base: Translator, beam: Translator, sources, peaks, record) -> list | None:
    """The rows of `greedy`, `beam` and `beam_requests` (those timed); greedy's outputs, or None."""
    greedy = None
    for method, searcher in (("greedy", base), ("beam", beam), ("beam_requests", beam)):
        if method not in timed:
            continue
        seconds, outputs = timed[method]
        greedy = outputs if method == "greedy" else greedy
        requests = _requests(sources, SAVEDMODEL_REQUEST_SIZE if method == "beam_requests" else 0)
        batches = sum(len(searcher._search_batches([len(s) for s in request])) for request in requests)
        texts = searcher.detokenize([ids[0] for ids, _ in outputs])
        tokens = sum(_count_tokens(ids[0]) for ids, _ in outputs)
        size = None
        if method == "beam":  # the checkpoint's files
            path = Path(base.checkpoint.path)
            size = _size_mb(path.parent.glob(path.name + ".*"))
        record(method, searcher.config.beam_size, seconds, len(sources), tokens, batches, texts, peaks[method], size)
    return greedy


def _compare_rows(results: list[dict], timed: dict[str, tuple[list, object]]) -> None:
    """Each timed row but `beam`'s gets its speed over `beam`'s (`vs_beam`): per round (the two timed
    seconds apart) and the median of those; the SavedModel's also over `beam_requests`'s, the same requests."""
    for row in results:
        _compare(row, timed, "beam")
        if row["method"] == "savedmodel":
            _compare(row, timed, "beam_requests")


def _compare(row: dict, timed: dict[str, tuple[list, object]], reference: str) -> None:
    method = row["method"]
    if method not in timed or reference not in timed or method == reference:
        return
    ratios = [round(r / m, 3) for r, m in zip(timed[reference][0], timed[method][0])]
    row[f"vs_{reference}"] = round(statistics.median(ratios), 3)
    if len(ratios) > 1:
        row[f"rounds_vs_{reference}"] = ratios


def _uncached(model, config, sources, uncached_limit, record) -> list[np.ndarray]:
    # One sentence at a time, no cache: the prefix is re-encoded and re-decoded at every step.
    forward = tf.function(model.call, reduce_retracing=True)
    uncached_sources = sources[:uncached_limit] if uncached_limit else sources
    uncached = []
    uncached_greedy_search(model, tf.constant(uncached_sources[0][None]), 4, forward)  # trace once
    start = time.perf_counter()
    for ids in uncached_sources:
        max_length = int(decode_length(len(ids), config.decode))
        limits = tf.constant([max_length])
        uncached.append(uncached_greedy_search(model, tf.constant(ids[None]), max_length, forward, limits)[0].numpy())
    seconds = time.perf_counter() - start
    record("uncached_greedy", 1, [seconds], len(uncached), sum(map(_count_tokens, uncached)), len(uncached))
    return uncached


EXPORT_FORMATS = {  # method: format, directory, quantization, shortlist
    "savedmodel": ("savedmodel", "savedmodel", "none", 0),
    "ct2_beam": ("ctranslate2", "ct2-float32", "none", 0),
    "ct2_int8_beam": ("ctranslate2", "ct2-int8", "int8", 0),
    "ct2_int8_shortlist_beam": ("ctranslate2", "ct2-int8-shortlist", "int8", None),  # None: `shortlist`
}


@dataclasses.dataclass
class _Export:
    worker: _ExportWorker
    directory: Path
    batch_size: int
    shortlist: int


def _start_export(
    method: str,
    beam: Translator,
    saved: Translator,
    sentences: list[str],
    threads: int,
    root: Path,
    ct2_batch_size: int | None,
    shortlist: int,
) -> _Export:
    """Export the checkpoint as `method` needs it (the SavedModel from `saved`, which may compute in another
    precision than `beam`) and start its worker, warmed up."""
    kind, name, quantization, per_source = EXPORT_FORMATS[method]
    per_source = shortlist if per_source is None else per_source
    exporter = saved if kind == "savedmodel" else beam
    directory = exporter.export(root / name, format=kind, quantization=quantization, shortlist=per_source)
    batch = _batch_size(kind, ct2_batch_size, per_source)
    return _Export(_ExportWorker(kind, directory, sentences, threads, batch), directory, batch, per_source)


def _record_exports(timed, exports: dict[str, _Export], beam: Translator, sentences, peaks, record) -> None:
    for method, export in exports.items():
        seconds, hypotheses = timed[method]
        # Generated tokens, EOS included, counted by re-tokenizing the output text.
        ids = beam.tokenizer.encode_target(tf.constant(hypotheses)) if hypotheses else None
        tokens = int(ids.row_lengths().numpy().sum()) + len(hypotheses) if hypotheses else 0
        batches = max(1, -(-len(sentences) // export.batch_size))
        extra = {"kernels": export.worker.ready.get("cpu_kernels")}
        if export.worker.kind == "ctranslate2":
            extra["shortlist"] = export.shortlist  # candidates per source piece (0: the whole vocabulary)
        size = _size_mb([export.directory])
        record(
            method,
            beam.config.beam_size,
            seconds,
            len(sentences),
            tokens,
            batches,
            hypotheses,
            peaks[method],
            size,
            **extra,
        )
