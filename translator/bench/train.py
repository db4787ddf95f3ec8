"""`translator bench train`: training throughput of input pipelines and compilation, side by side.

Each method trains a fresh model of the same preset on the same tokenized corpus:

- `padded`: 64 sentence pairs per batch padded to the longest, no XLA (the TF tutorial's pipeline);
- `bucketed`: length buckets under the preset's token budget (the training pipeline), no XLA;
- `bucketed+xla`: the same with the gradient computation compiled by XLA;
- `bucketed+bf16`, `bucketed+xla+bf16` (on request): under `mixed_bfloat16`.

A step is timed from the end of the previous step to the end of this one, so input waits count.
Steady state excludes the first `warmup` steps, every step that traced the step function, and with XLA
every step whose batch shape is new (XLA compiles each shape once); those are reported apart.
Throughput counts real target tokens, never padding.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import tensorflow as tf

from translator.bench.machine import describe_machine
from translator.config import ExperimentConfig
from translator.data import TokenizedCorpus, teacher_forcing, training_dataset
from translator.errors import TranslatorError
from translator.model import build_model
from translator.rundir import RunDirectory
from translator.tokenizer import load_or_train_tokenizer
from translator.training import build_optimizer, build_train_step

DEFAULT_METHODS = ("padded", "bucketed", "bucketed+xla")
PADDED_BATCH_SIZE = 64


def padded_dataset(corpus: TokenizedCorpus, batch_size: int, seed: int) -> tf.data.Dataset:
    """Fixed-size batches padded to their longest pair: the TF tutorial's pipeline, for comparison."""
    dataset = corpus.pairs().shuffle(len(corpus), seed=seed).repeat()
    dataset = dataset.padded_batch(batch_size, padded_shapes=([None], [None]), drop_remainder=True)
    return dataset.map(teacher_forcing, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _parse_method(method: str) -> tuple[str, bool, str]:
    parts = method.split("+")
    if parts[0] not in ("padded", "bucketed") or not set(parts[1:]) <= {"xla", "bf16"}:
        raise TranslatorError(
            f"unknown method {method!r}: padded or bucketed, optionally with +xla and/or +bf16 (e.g. bucketed+xla)"
        )
    return parts[0], "xla" in parts, "mixed_bfloat16" if "bf16" in parts else "float32"


def bench_train(
    config: ExperimentConfig,
    work_dir: str | Path,
    steps: int = 100,
    warmup: int = 5,
    methods: tuple[str, ...] = DEFAULT_METHODS,
    log=print,
) -> dict:
    """Measure each method for `steps` steady-state steps (at most 4 × steps + warmup in all)."""
    parsed = [(method, *_parse_method(method)) for method in methods]
    # The work directory holds the tokenizer and the tokenized-corpus cache between benchmarks.
    run = RunDirectory(work_dir, flag="--work-dir")
    config = run.prepare(config, write=True)
    tokenizer = load_or_train_tokenizer(run.tokenizer_dir, config, write=True, log=log)
    corpus = TokenizedCorpus.load_or_build(config.data.train, config.data, tokenizer, run.cache_dir)
    strategy = tf.distribute.get_strategy()
    results = []
    for method, pipeline, xla, precision in parsed:
        model = build_model(config, tokenizer, dtype=precision)
        optimizer = build_optimizer(config)
        optimizer.build(model.trainable_variables)
        update = build_train_step(model, optimizer, strategy, config.train.label_smoothing, xla, config.train.clip_norm)
        dataset = (
            padded_dataset(corpus, PADDED_BATCH_SIZE, config.train.seed)
            if pipeline == "padded"
            else training_dataset(corpus, config.train.batch_tokens, config.data.max_target_length, config.train.seed)
        )
        results.append(_measure(method, update, dataset, steps, warmup, xla))
        row = results[-1]
        log(
            f"{method:>18}: {row['target_tokens_per_s']:>8,.0f} tgt tok/s  {row['pairs_per_s']:>6.1f} pairs/s  "
            f"padding {row['target_padding']:.1%}  ({row['steps']} steps; {row['excluded_steps']} warm-up/new-shape "
            f"steps, {row['excluded_seconds']:.0f} s, excluded)"
        )
    padded = next((r["target_tokens_per_s"] for r in results if r["method"] == "padded"), None)
    best = max(results, key=lambda r: r["target_tokens_per_s"])
    return {
        "benchmark": "train",
        "date": date.today().isoformat(),
        "machine": describe_machine(),
        "tensorflow": tf.__version__,
        "model": {
            "layers": config.model.num_layers,
            "d_model": config.model.d_model,
            "ffn_dim": config.model.ffn_dim,
            "heads": config.model.num_heads,
            "vocab_size": config.tokenizer.vocab_size,
            "parameters": model.count_params(),
        },
        "batch_tokens": config.train.batch_tokens,
        "training_pairs": len(corpus),
        "dropped_pairs": corpus.dropped,
        "results": results,
        "best": best["method"],
        "best_vs_padded": round(best["target_tokens_per_s"] / padded, 2) if padded else None,
    }


def _measure(method: str, update, dataset: tf.data.Dataset, steps: int, warmup: int, xla: bool) -> dict:
    seen_shapes: set = set()
    measured = {"seconds": 0.0, "tokens": 0.0, "pairs": 0, "steps": 0}
    excluded_steps, excluded_seconds = 0, 0.0
    padded_positions = real_tokens = 0.0
    iterator = iter(dataset)
    last = time.perf_counter()
    for index in range(4 * steps + warmup):
        features, labels = next(iterator)
        traces = update.experimental_get_tracing_count()
        _, tokens = update([(features, labels)])
        traced = update.experimental_get_tracing_count() != traces
        tokens = float(tokens)  # waits for the step to finish
        now = time.perf_counter()
        elapsed, last = now - last, now
        padded_positions += float(tf.size(labels))
        real_tokens += tokens
        shape = (tuple(features["source_ids"].shape), tuple(labels.shape))
        new_shape = shape not in seen_shapes
        seen_shapes.add(shape)
        if index < warmup or traced or (xla and new_shape):
            excluded_steps, excluded_seconds = excluded_steps + 1, excluded_seconds + elapsed
            continue
        measured["seconds"] += elapsed
        measured["tokens"] += tokens
        measured["pairs"] += int(labels.shape[0])
        measured["steps"] += 1
        if measured["steps"] == steps:
            break
    seconds = max(measured["seconds"], 1e-9)
    return {
        "method": method,
        "steps": measured["steps"],
        "target_tokens_per_s": round(measured["tokens"] / seconds, 1),
        "pairs_per_s": round(measured["pairs"] / seconds, 2),
        "target_padding": round(1 - real_tokens / max(padded_positions, 1), 4),
        "batch_shapes": len(seen_shapes),
        "excluded_steps": excluded_steps,
        "excluded_seconds": round(excluded_seconds, 1),
    }
