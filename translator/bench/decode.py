"""Benchmarks behind `translator bench`: decoding speed and exactness on a real split.

`decode` times, on the same sentences: `uncached_greedy` (one sentence at a time, the decoder re-run
over the whole prefix each step: the TF tutorial's way), `greedy` (cached, batched) and `beam`
(cached, batched, beam 4). Compiled functions are warmed up on the same data first, so the figures
are steady-state speeds, not tracing or XLA compilation.
"""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import tensorflow as tf

from translator.bench.machine import describe_machine
from translator.bench.reference import uncached_greedy_search
from translator.constants import EOS_ID
from translator.evaluation import split_pairs
from translator.inference import Translator, decode_length
from translator.rundir import RunDirectory


def _count_tokens(ids: np.ndarray) -> int:
    """Generated tokens up to and including EOS."""
    ends = np.flatnonzero(ids == EOS_ID)
    return int(ends[0] + 1) if ends.size else int((ids != 0).sum())


def _timed_translate(translator: Translator, sources: list[np.ndarray]) -> tuple[float, list]:
    translator.translate_ids_batched(sources)  # warm-up: trace and compile every bucket shape
    start = time.perf_counter()
    results = translator.translate_ids_batched(sources)
    return time.perf_counter() - start, results


def bench_decode(
    run_dir: str,
    split: str = "test",
    limit: int = 0,
    beam_size: int = 4,
    jit_compile: bool = True,
    uncached_limit: int = 0,
) -> dict:
    base = Translator.from_run_dir(run_dir, jit_compile=jit_compile, beam_size=1)
    model, config, checkpoint = base.model, RunDirectory(run_dir).load_config(), base.checkpoint.path
    _, sentences, _ = split_pairs(base, split)
    sentences = sentences[:limit] if limit else sentences
    ragged, _ = base.encode_text(tf.constant(sentences))
    sources = [row for row in ragged.numpy()]
    results = []

    def record(method, beam, seconds, n_sentences, tokens, batches):
        results.append(
            {
                "method": method,
                "beam_size": beam,
                "batch_size": round(n_sentences / batches, 1),
                "sentences": n_sentences,
                "seconds": round(seconds, 2),
                "sentences_per_s": round(n_sentences / seconds, 2),
                "tokens_per_s": round(tokens / seconds, 1),
            }
        )

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

    batches = len(list(base._batches([len(s) for s in sources])))
    seconds, greedy = _timed_translate(base, sources)
    record("greedy", 1, seconds, len(sources), sum(_count_tokens(ids[0]) for ids, _ in greedy), batches)

    # Cached greedy must produce exactly the uncached tokens (compared up to EOS; the cached search
    # pads its output to the bucket's decode length).
    agree = [np.array_equal(greedy[i][0][0][: _count_tokens(u)], u[: _count_tokens(u)]) for i, u in enumerate(uncached)]

    beam = base.with_config(beam_size=beam_size)
    batches = len(list(beam._batches([len(s) for s in sources])))
    seconds, beamed = _timed_translate(beam, sources)
    record("beam", beam_size, seconds, len(sources), sum(_count_tokens(ids[0]) for ids, _ in beamed), batches)
    return {
        "benchmark": "decode",
        "run_dir": str(run_dir),
        "checkpoint": checkpoint,
        "split": split,
        "sentences": len(sources),
        "model": {
            "layers": config.model.num_layers,
            "d_model": config.model.d_model,
            "ffn_dim": config.model.ffn_dim,
            "heads": config.model.num_heads,
            "parameters": model.count_params(),
        },
        "xla": jit_compile,
        "cached_uncached_agreement": round(float(np.mean(agree)), 4),
        "results": results,
        "machine": describe_machine(),
        "date": date.today().isoformat(),
        "tensorflow": tf.__version__,
    }
