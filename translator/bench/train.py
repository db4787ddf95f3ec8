"""`translator bench train`: training throughput of input pipelines and compilation, side by side.

Each method trains a fresh model of the same preset on the same tokenized corpus:

- `padded`: 64 sentence pairs per batch padded to the longest, no XLA (the TF tutorial's pipeline);
- `bucketed`: length buckets under the preset's token budget (the training pipeline), no XLA;
- `bucketed+xla`: the same with the gradient computation compiled by XLA;
- `fixed`, `fixed+xla`: at most `train.batch_shapes` batch shapes chosen before training
  (`train.batching: fixed`, `translator.data.fixed_shapes`), without and with XLA;
- `packed`, `packed+xla`: several pairs per row of `train.pack_width` tokens (`train.batching: packed`,
  `translator.packing`), one or two batch shapes, without and with XLA;
- `+bf16` on any of them: under `mixed_bfloat16` (on request, and `fixed+bf16` by default on CPUs with
  AMX or AVX512_BF16, where the presets train that way).

Each method trains for `budget_minutes` of wall-clock time (compilation included, as in a real run with
a time budget), or until `steps` steady-state steps are measured if `steps` is given, whichever comes
first. A step is timed from the end of the previous step to the end of this one, so input waits count.
Steady state excludes the first `warmup` steps, every step that traced the step function, and with XLA
every step whose batch shape is new (XLA compiles each shape once); those are reported apart, with the
time they took beyond a steady step's ("compile seconds"). "Tokens in budget" counts every step that
ended within the budget: what a time-limited run gets, compilation and all. Throughput counts real
target tokens, never padding.
"""

from __future__ import annotations

import math
import time
from datetime import date
from pathlib import Path

import tensorflow as tf

from translator.bench.machine import describe_machine
from translator.config import ExperimentConfig
from translator.data import (
    TokenizedCorpus,
    batch_shapes,
    fixed_shapes,
    load_training_data,
    teacher_forcing,
    training_dataset,
)
from translator.errors import TranslatorError
from translator.model import build_model
from translator.precision import bfloat16_training_pays
from translator.rundir import RunDirectory
from translator.tokenizer import Tokenizer
from translator.training import build_optimizer, build_train_step

DEFAULT_METHODS = ("padded", "bucketed", "bucketed+xla", "fixed", "fixed+xla")
PADDED_BATCH_SIZE = 64


def default_methods(flags: frozenset[str] | None = None) -> tuple[str, ...]:
    """The methods `bench train` measures unless told: `DEFAULT_METHODS`, and on a CPU with AMX or
    AVX512_BF16 also `fixed+bf16`, the path the `small` and `tutorial` presets' `auto` settings take
    there, so that `make bench` measures what a real run does on the machine it runs on. `flags` stands
    for /proc/cpuinfo's (tests)."""
    pays, _ = bfloat16_training_pays(flags=flags, cpu_only=True)
    return (*DEFAULT_METHODS, "fixed+bf16") if pays else DEFAULT_METHODS


def padded_dataset(corpus: TokenizedCorpus, batch_size: int, seed: int) -> tf.data.Dataset:
    """Fixed-size batches padded to their longest pair: the TF tutorial's pipeline, for comparison."""
    dataset = corpus.pairs().shuffle(len(corpus), seed=seed).repeat()
    dataset = dataset.padded_batch(batch_size, padded_shapes=([None], [None]), drop_remainder=True)
    return dataset.map(teacher_forcing, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _parse_method(method: str) -> tuple[str, bool, str]:
    parts = method.split("+")
    if parts[0] not in ("padded", "bucketed", "fixed", "packed") or not set(parts[1:]) <= {"xla", "bf16"}:
        raise TranslatorError(
            f"unknown method {method!r}: padded, bucketed, fixed or packed, optionally with +xla and/or +bf16 "
            "(e.g. packed+xla)"
        )
    return parts[0], "xla" in parts, "mixed_bfloat16" if "bf16" in parts else "float32"


def prepared_corpus(
    config: ExperimentConfig, work_dir: str | Path, log=print
) -> tuple[ExperimentConfig, Tokenizer, TokenizedCorpus]:
    """The preset's tokenizer and tokenized training split, kept in `work_dir` between benchmarks."""
    run = RunDirectory(str(work_dir), flag="--work-dir")
    config = run.prepare(config, write=True)
    return config, *load_training_data(run.tokenizer_dir, run.cache_dir, config, write=True, log=log)


def model_summary(config: ExperimentConfig) -> dict:
    """The model size a training benchmark reports."""
    model = config.model
    return {
        "layers": model.depths[0],
        "decoder_layers": model.depths[1],
        "d_model": model.d_model,
        "ffn_dim": model.ffn_dim,
        "heads": model.num_heads,
        "vocab_size": config.tokenizer.vocab_size,
    }


def bench_train(
    config: ExperimentConfig,
    work_dir: str | Path,
    steps: int = 0,
    warmup: int = 5,
    methods: tuple[str, ...] | None = None,
    log=print,
    budget_minutes: float = 10.0,
) -> dict:
    """Train each method (`default_methods()` if None) for `budget_minutes` (or until `steps` > 0
    steady-state steps are measured)."""
    parsed = [(method, *_parse_method(method)) for method in (methods or default_methods())]
    config, tokenizer, corpus = prepared_corpus(config, work_dir, log)
    strategy = tf.distribute.get_strategy()
    results = []
    for method, pipeline, xla, precision in parsed:
        model = build_model(config, tokenizer, dtype=precision)
        optimizer = build_optimizer(config)
        optimizer.build(model.trainable_variables)
        update = build_train_step(model, optimizer, strategy, config.train.label_smoothing, xla, config.train.clip_norm)
        shapes = fixed_shapes(corpus, config.train.batch_shapes) if pipeline == "fixed" else None
        if pipeline == "padded":
            dataset, possible = padded_dataset(corpus, PADDED_BATCH_SIZE, config.train.seed), None
        else:
            tokens, max_target = config.train.batch_tokens, config.data.max_target_length
            width = config.train.pack_width if pipeline == "packed" else 0
            dataset = training_dataset(corpus, tokens, max_target, config.train.seed, shapes=shapes, pack_width=width)
            possible = len(batch_shapes(corpus, tokens, max_target, shapes, width))
        row = {
            **_measure(method, update, dataset, steps, warmup, xla, budget_minutes * 60),
            "possible_shapes": possible,
        }
        results.append(row)
        in_budget = (
            f"{row['tokens_in_budget']:,} tgt tokens in {budget_minutes:g} min"
            if row["tokens_in_budget"] is not None
            else f"stopped before the {budget_minutes:g}-minute budget"
        )
        log(
            f"{method:>18}: {row['target_tokens_per_s']:>8,.0f} tgt tok/s steady  {row['pairs_per_s']:>6.1f} pairs/s  "
            f"padding {row['target_padding']:.1%} (source {row['source_padding']:.1%})  {row['batch_shapes']} shapes"
            + (f" of {possible} possible" if possible else "")
            + f"  compile {row['compile_seconds']:.0f} s  {in_budget}  ({row['steps']} steady steps of "
            f"{row['total_steps']}; {row['excluded_steps']} warm-up/new-shape steps, {row['excluded_seconds']:.0f} s, "
            "excluded)"
        )
    padded = next((r["target_tokens_per_s"] for r in results if r["method"] == "padded"), None)
    best = max(results, key=lambda r: r["target_tokens_per_s"])
    return {
        "benchmark": "train",
        "date": date.today().isoformat(),
        "machine": describe_machine(),
        "tensorflow": tf.__version__,
        "model": {**model_summary(config), "parameters": model.count_params()},
        "batch_tokens": config.train.batch_tokens,
        "training_pairs": len(corpus),
        "dropped_pairs": corpus.dropped + corpus.empty,
        "results": results,
        "best": best["method"],
        "best_vs_padded": round(best["target_tokens_per_s"] / padded, 2) if padded else None,
        "budget_minutes": budget_minutes,
    }


def _measure(
    method: str, update, dataset: tf.data.Dataset, steps: int, warmup: int, xla: bool, budget_seconds: float
) -> dict:
    seen_shapes: set = set()
    measured = {"seconds": 0.0, "tokens": 0.0, "pairs": 0, "steps": 0}
    excluded: list[tuple[float, float]] = []  # (seconds, tokens) of the steps left out of steady state
    padded_positions = real_tokens = source_positions = source_tokens = 0.0
    tokens_in_budget, total_steps = 0, 0
    iterator = iter(dataset)
    start = last = time.perf_counter()
    # One trace for the dataset's shapes (unknown lengths), as the training loop's step over its
    # iterator has: later batches of new shapes reuse it (XLA still compiles each shape when run).
    update.get_concrete_function([dataset.element_spec])
    while last - start < budget_seconds and not (steps and measured["steps"] >= steps):
        features, labels = next(iterator)
        traces = update.experimental_get_tracing_count()
        _, tokens = update([(features, labels)])
        traced = update.experimental_get_tracing_count() != traces
        tokens = float(tokens)  # waits for the step to finish
        now = time.perf_counter()
        elapsed, last = now - last, now
        total_steps += 1
        if now - start <= budget_seconds:
            tokens_in_budget += int(tokens)
        padded_positions += float(tf.size(labels))
        real_tokens += tokens
        source = features["source_ids"]
        source_positions += float(tf.size(source))
        source_tokens += float(tf.math.count_nonzero(source))
        shape = (tuple(source.shape), tuple(labels.shape))
        new_shape = shape not in seen_shapes
        seen_shapes.add(shape)
        if total_steps <= warmup or traced or (xla and new_shape):
            excluded.append((elapsed, tokens))
            continue
        measured["seconds"] += elapsed
        measured["tokens"] += tokens
        segments = features.get("target_segment_ids")  # packed rows hold several pairs each
        measured["pairs"] += (
            int(labels.shape[0]) if segments is None else int(tf.reduce_sum(tf.reduce_max(segments, 1)))
        )
        measured["steps"] += 1
    seconds = max(measured["seconds"], 1e-9)
    rate = measured["tokens"] / seconds if measured["steps"] else math.inf
    return {
        "method": method,
        "steps": measured["steps"],
        "total_steps": total_steps,
        "target_tokens_per_s": round(measured["tokens"] / seconds, 1),
        "pairs_per_s": round(measured["pairs"] / seconds, 2),
        "target_padding": round(1 - real_tokens / max(padded_positions, 1), 4),
        "source_padding": round(1 - source_tokens / max(source_positions, 1), 4),
        "batch_shapes": len(seen_shapes),
        "excluded_steps": len(excluded),
        "excluded_seconds": round(sum(elapsed for elapsed, _ in excluded), 2),
        # Beyond what a steady step would have taken for the same tokens: tracing and XLA compilation.
        "compile_seconds": round(sum(max(elapsed - tokens / rate, 0.0) for elapsed, tokens in excluded), 2),
        "tokens_in_budget": tokens_in_budget if last - start >= budget_seconds else None,
        "seconds": round(last - start, 1),
    }
