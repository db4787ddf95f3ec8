"""Benchmarks behind `translator bench`: decoding speed and exactness on a real split.

`decode` times, on the same sentences: `uncached_greedy` (one sentence at a time, the decoder re-run
over the whole prefix each step: the TF tutorial's way), `greedy` (cached, batched) and `beam`
(cached, batched, beam 4). Compiled functions are warmed up on the same data first, so the figures
are steady-state speeds, not tracing or XLA compilation.

On request it also times the exports of the same checkpoint, each in a fresh process of its own
(`translator.bench.export_worker`): `savedmodel` (its `serving_default`, requests of 32 in file order,
as TensorFlow Serving receives them), `ct2_beam` (CTranslate2, float32) and `ct2_int8_beam` (CTranslate2,
int8 weights; both given the whole split, as `beam` is, and batched by their translator's default), at the
same beam size as `beam`, with their BLEU, their agreement with `beam` (share of
sentences with the identical best translation), peak memory and size on disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
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


def _timed_translate(translator: Translator, sources: list[np.ndarray]) -> tuple[float, list]:
    translator.translate_ids_batched(sources)  # warm-up: trace and compile every bucket shape
    start = time.perf_counter()
    results = translator.translate_ids_batched(sources)
    return time.perf_counter() - start, results


IN_PROCESS_METHODS = ("uncached_greedy", "greedy", "beam")
EXPORT_METHODS = ("savedmodel", "ct2_beam", "ct2_int8_beam", "ct2_int8_shortlist_beam")
DEFAULT_METHODS = IN_PROCESS_METHODS
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


def _run_export(kind: str, model: Path, sentences: list[str], threads: int, batch_size: int) -> dict:
    """Time an export in a fresh process (see `translator.bench.export_worker`)."""
    request = json.dumps({"sentences": sentences, "batch_size": batch_size, "threads": threads})
    command = [sys.executable, "-m", "translator.bench.export_worker", kind, str(model)]
    done = subprocess.run(command, input=request, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


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
) -> dict:
    unknown = [method for method in methods if method not in IN_PROCESS_METHODS + EXPORT_METHODS]
    if unknown:
        from translator.errors import TranslatorError

        known = ", ".join(IN_PROCESS_METHODS + EXPORT_METHODS)
        raise TranslatorError(f"unknown method(s) {', '.join(unknown)}: choose from {known}")
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
        method,
        beam,
        seconds,
        n_sentences,
        tokens,
        batches,
        hypotheses=None,
        rss=None,
        size=None,
        kernels=None,
        shortlist=None,
    ):
        row = {
            "method": method,
            # TensorFlow's CPU kernels where the method ran (a SavedModel's worker chooses its own).
            "cpu_kernels": kernels or ("CTranslate2" if method.startswith("ct2") else cpu_kernels()),
            "beam_size": beam,
            "batch_size": round(n_sentences / batches, 1),
            "sentences": n_sentences,
            "seconds": round(seconds, 2),
            "sentences_per_s": round(n_sentences / seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1),
        }
        if hypotheses is not None:
            best[method] = hypotheses
            row["bleu"] = score(hypotheses, [references])["bleu"]["score"]
            if method in EXPORT_METHODS and "beam" in best:
                row["agreement_with_beam"] = round(
                    float(np.mean([a == b for a, b in zip(hypotheses, best["beam"])])), 4
                )
        if rss is not None:
            row["peak_rss_mb"] = rss
        if size is not None:
            row["size_mb"] = size
        if shortlist is not None:
            row["shortlist"] = shortlist  # candidates per source piece (0: the whole vocabulary)
        results.append(row)

    agreement = _in_process(base, model, config, sources, uncached_limit, methods, beam_size, record)
    beam = base.with_config(beam_size=beam_size)
    # The SavedModel as `translator export` makes it: decode.precision auto exports float32 (export_precision).
    saved_precision = export_precision(precision, config.decode.precision)
    saved = beam
    if "savedmodel" in methods and saved_precision != beam.config.precision:
        saved = Translator.from_run_dir(
            run_dir, jit_compile=False, **{**overrides, "beam_size": beam_size, "precision": saved_precision}
        )
    if any(method in EXPORT_METHODS for method in methods):
        _exports(beam, saved, sentences, methods, threads, work_dir, record, ct2_batch_size, shortlist)
    return {
        "benchmark": "decode",
        "run_dir": str(run_dir),
        "checkpoint": checkpoint,
        "split": split,
        "sentences": len(sources),
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


def _in_process(base, model, config, sources, uncached_limit, methods, beam_size, record) -> float | None:
    """The in-process methods; returns the cached/uncached greedy agreement (None unless both ran)."""
    uncached, greedy = [], None
    if "uncached_greedy" in methods:
        uncached = _uncached(model, config, sources, uncached_limit, record)
    if "greedy" in methods:
        batches = len(list(base._batches([len(s) for s in sources])))
        seconds, greedy = _timed_translate(base, sources)
        texts = base.detokenize([ids[0] for ids, _ in greedy])
        tokens = sum(_count_tokens(ids[0]) for ids, _ in greedy)
        record("greedy", 1, seconds, len(sources), tokens, batches, texts, peak_rss_mb())
    if "beam" in methods:
        beam = base.with_config(beam_size=beam_size)
        batches = len(list(beam._batches([len(s) for s in sources])))
        seconds, beamed = _timed_translate(beam, sources)
        texts = beam.detokenize([ids[0] for ids, _ in beamed])
        tokens = sum(_count_tokens(ids[0]) for ids, _ in beamed)
        checkpoint_files = list(Path(base.checkpoint.path).parent.glob(Path(base.checkpoint.path).name + ".*"))
        record(
            "beam", beam_size, seconds, len(sources), tokens, batches, texts, peak_rss_mb(), _size_mb(checkpoint_files)
        )
    if not uncached or greedy is None:
        return None
    # Cached greedy must produce exactly the uncached tokens (compared up to EOS; the cached search
    # pads its output to the bucket's decode length).
    agree = [np.array_equal(greedy[i][0][0][: _count_tokens(u)], u[: _count_tokens(u)]) for i, u in enumerate(uncached)]
    return round(float(np.mean(agree)), 4)


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
    record("uncached_greedy", 1, seconds, len(uncached), sum(map(_count_tokens, uncached)), len(uncached))
    return uncached


def _exports(
    beam: Translator,
    saved: Translator,
    sentences: list[str],
    methods,
    threads: int,
    work_dir,
    record,
    ct2_batch_size: int | None,
    shortlist: int,
) -> None:
    """Export the checkpoint in the formats asked for (the SavedModel from `saved`, which may compute in
    another precision than `beam`), and time each in its own process."""
    scratch = None if work_dir else tempfile.TemporaryDirectory(prefix="bench-decode-")
    root = Path(work_dir or scratch.name)
    formats = {  # method: format, directory, quantization, shortlist
        "savedmodel": ("savedmodel", "savedmodel", "none", 0),
        "ct2_beam": ("ctranslate2", "ct2-float32", "none", 0),
        "ct2_int8_beam": ("ctranslate2", "ct2-int8", "int8", 0),
        "ct2_int8_shortlist_beam": ("ctranslate2", "ct2-int8-shortlist", "int8", shortlist),
    }
    try:
        for method in (m for m in EXPORT_METHODS if m in methods):
            kind, name, quantization, per_source = formats[method]
            exporter = saved if kind == "savedmodel" else beam
            directory = exporter.export(root / name, format=kind, quantization=quantization, shortlist=per_source)
            batch = _batch_size(kind, ct2_batch_size, per_source)
            run = _run_export(kind, directory, sentences, threads, batch)
            hypotheses = run["hypotheses"]
            # Generated tokens, EOS included, counted by re-tokenizing the output text.
            ids = beam.tokenizer.encode_target(tf.constant(hypotheses)) if hypotheses else None
            tokens = int(ids.row_lengths().numpy().sum()) + len(hypotheses) if hypotheses else 0
            batches = max(1, -(-len(sentences) // batch))
            size = _size_mb([directory])
            record(
                method,
                beam.config.beam_size,
                run["seconds"],
                len(sentences),
                tokens,
                batches,
                hypotheses,
                run["peak_rss_mb"],
                size,
                run.get("cpu_kernels"),
                per_source if kind == "ctranslate2" else None,
            )
    finally:
        if scratch is not None:
            scratch.cleanup()
