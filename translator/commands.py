"""What each `translator` subcommand does, given its parsed arguments (see `translator.cli`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from translator.errors import TranslatorError


def train(args: argparse.Namespace, _decode: dict) -> int:
    from translator.config import load_config
    from translator.train import train as run_training

    overrides = list(args.set)
    if args.strategy:
        overrides.append(f"train.strategy={args.strategy}")
    if args.cpu_devices:
        overrides.append(f"train.cpu_devices={args.cpu_devices}")
    config = load_config(args.config, overrides)
    run_training(config, args.run_dir, log=lambda line: print(line, flush=True))
    return 0


def _translator(args: argparse.Namespace, decode: dict):
    from translator.inference import Translator
    from translator.rundir import RunDirectory

    model, tokenizer, config, checkpoint = RunDirectory(args.run_dir).load_model(args.checkpoint)
    decode_config = dataclasses.replace(config.decode, **decode)
    return Translator(model, tokenizer, decode_config, config.data.max_source_length), config, checkpoint


def evaluate(args: argparse.Namespace, decode: dict) -> int:
    from translator.corpus import read_lines, read_pairs
    from translator.evaluate import score, translate_all, write_report
    from translator.rundir import RunDirectory

    translator, config, checkpoint = _translator(args, decode)
    if args.src:
        if not args.ref:
            raise TranslatorError("--src needs at least one --ref")
        sources = list(read_lines(args.src))
        references = [list(read_lines(path)) for path in args.ref]
        for path, stream in zip(args.ref, references):
            if len(stream) != len(sources):
                raise TranslatorError(f"{path} has {len(stream)} lines but {args.src} has {len(sources)}")
        name, corpus = args.src.stem, str(args.src)
    else:
        corpus = getattr(config.data, args.split, None) if args.split in ("train", "dev", "test") else None
        if not corpus:
            raise TranslatorError(f"--split {args.split!r}: the run's config has no data.{args.split}")
        sources, reference = read_pairs(
            corpus, config.data.source_lang, config.data.target_lang, config.data.tfds_data_dir
        )
        references, name = [reference], args.split
    hypotheses = translate_all(translator, sources, progress=sys.stderr.isatty())
    scores = score(hypotheses, references)
    extra = {
        "corpus": corpus,
        "checkpoint": checkpoint,
        "sentences": len(sources),
        "beam_size": translator.config.beam_size,
        "length_penalty": translator.config.length_penalty,
    }
    path = write_report(RunDirectory(args.run_dir).eval_dir, name, hypotheses, scores, extra)
    for metric in scores.values():
        print(f"{metric['text']}\n  signature: {metric['signature']}")
    print(f"wrote {path} and {path.with_suffix('.hyp')}")
    return 0


def translate(args: argparse.Namespace, decode: dict) -> int:
    from translator.corpus import read_lines

    lines = read_lines(args.input) if args.input else (line.rstrip("\n") for line in sys.stdin)
    output = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        if args.export_dir:
            from translator.export import load_exported

            translate_batch = load_exported(args.export_dir, args.n_best)
        else:
            translator, _, _ = _translator(args, decode)

            def translate_batch(batch: list[str]) -> list[list[tuple[float, str]]]:
                return [[(t.score, t.text) for t in n] for n in translator.translate(batch, args.n_best)]

        if args.input:  # a progress bar for files, on a terminal only
            from tqdm import tqdm

            lines = tqdm(lines, unit=" lines", desc="translating", disable=not sys.stderr.isatty(), leave=False)
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) == 1000:
                _write(output, translate_batch(batch), args.n_best)
                batch = []
        if batch:
            _write(output, translate_batch(batch), args.n_best)
    finally:
        if args.output:
            output.close()
    return 0


def _write(output, results, n_best: int) -> None:
    for candidates in results:
        if n_best > 1:
            for score, text in candidates:
                output.write(f"{score:.4f}\t{text}\n")
        else:
            output.write(candidates[0][1] + "\n")
    output.flush()


def export(args: argparse.Namespace, decode: dict) -> int:
    from translator.export import export_saved_model
    from translator.rundir import RunDirectory

    translator, _, checkpoint = _translator(args, decode)
    output = args.output or RunDirectory(args.run_dir).export_dir
    export_saved_model(translator, output)
    print(
        f"exported {checkpoint} to {output} (beam {translator.config.beam_size}, "
        f"length penalty {translator.config.length_penalty})"
    )
    return 0


def info(args: argparse.Namespace, _decode: dict) -> int:
    import tensorflow as tf
    import yaml

    from translator.rundir import RunDirectory

    run = RunDirectory(args.run_dir)
    config = run.load_config()
    print(yaml.safe_dump(config.to_dict(), sort_keys=False).rstrip())
    latest = tf.train.latest_checkpoint(str(run.checkpoint_dir))
    step = int(tf.train.load_variable(latest, "step/.ATTRIBUTES/VARIABLE_VALUE")) if latest else 0
    print(f"checkpoint: {latest or 'none'} (step {step})")
    if run.tokenizer_dir.exists():
        model, tokenizer, _, _ = run.load_model("latest") if latest else (None, None, None, None)
        if model is not None:
            print(f"parameters: {model.count_params():,}")
            print(
                f"vocabulary: source {tokenizer.source_vocab_size:,}, target {tokenizer.target_vocab_size:,}"
                f"{' (shared)' if tokenizer.shared else ''}"
            )
    for report in sorted(run.eval_dir.glob("*.json")):
        scores = json.loads(report.read_text(encoding="utf-8"))
        print(
            f"eval {report.stem}: BLEU {scores['bleu']['score']}, chrF {scores['chrf']['score']}, "
            f"TER {scores['ter']['score']} ({scores.get('checkpoint', '')})"
        )
    return 0


def bench(args: argparse.Namespace, _decode: dict) -> int:
    return bench_train(args) if args.what == "train" else bench_decode(args)


def bench_decode(args: argparse.Namespace) -> int:
    from translator.bench import bench_decode as run_benchmark

    report = run_benchmark(
        str(args.run_dir), args.split, args.limit, args.beam_size, not args.no_xla, args.uncached_limit
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{report['sentences']} sentences of {report['split']}, XLA {'on' if report['xla'] else 'off'}, "
        f"cached/uncached greedy agreement {report['cached_uncached_agreement']:.3f}"
    )
    for row in report["results"]:
        print(
            f"{row['method']:>16}  beam {row['beam_size']}  batch {row['batch_size']:>6}  "
            f"{row['sentences_per_s']:>8.2f} sent/s  {row['tokens_per_s']:>9.1f} tok/s"
        )
    return 0


def bench_train(args: argparse.Namespace) -> int:
    from translator.bench_train import bench_train as run_benchmark
    from translator.config import load_config

    config = load_config(args.config, args.set)
    work_dir = args.work_dir or Path("runs") / f"bench-{Path(args.config).stem}"
    methods = tuple(method.strip() for method in args.methods.split(",") if method.strip())
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    report = run_benchmark(config, work_dir, args.steps, args.warmup, methods, log=log)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"best: {report['best']}, {report['best_vs_padded']}× the padded pipeline's target tokens/s")
    return 0


def average(args: argparse.Namespace, _decode: dict) -> int:
    from translator.average import average_checkpoints

    path = average_checkpoints(str(args.run_dir), args.last)
    print(f"averaged the last {args.last} checkpoints into {path}")
    return 0
