"""What each `translator` subcommand does, given its parsed arguments (see `translator.cli`)."""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from translator.errors import TranslatorError

# Input lines handed to a translator at once: its batches by length fill, and memory stays bounded.
TRANSLATE_BATCH_LINES = 1000


def train(args: argparse.Namespace, _decode: dict) -> int:
    from translator.config import load_config
    from translator.training import train as run_training

    overrides = list(args.set)
    if args.strategy:
        overrides.append(f"train.strategy={args.strategy}")
    if args.cpu_devices:
        overrides.append(f"train.cpu_devices={args.cpu_devices}")
    config = load_config(args.config, overrides)
    if args.init_from:
        import dataclasses

        config = config.replace(train=dataclasses.replace(config.train, init_from=args.init_from))
    run_training(config, args.run_dir, log=lambda line: print(line, flush=True))
    return 0


SAMPLING_KEYS = ("sampling_topk", "sampling_topp", "sampling_temperature", "seed")


def _flags(keys) -> str:
    return ", ".join("--" + key.replace("_", "-") for key in keys)


def _paths(args: argparse.Namespace, name: str) -> list[str]:
    """The values of a model flag (repeatable for --run-dir in translate and evaluate), as strings."""
    value = getattr(args, name, None)
    return [] if value is None else [str(path) for path in (value if isinstance(value, list) else [value])]


def choose_decoding_kernels(args: argparse.Namespace) -> None:
    """Before TensorFlow's import (it reads the choice once): Eigen rather than oneDNN for a command whose
    searches run in float32 outside XLA (`translator.onednn`). CTranslate2 decodes without TensorFlow's kernels."""
    from translator.onednn import float32_search_before_tensorflow, use_eigen_for_decoding

    run_dirs, export_dirs, ct2_dirs = (_paths(args, name) for name in ("run_dir", "export_dir", "ct2_dir"))
    if ct2_dirs:
        return
    precision, xla = getattr(args, "precision", None), getattr(args, "xla", None)
    export_dir = export_dirs[0] if export_dirs else None
    use_eigen_for_decoding(float32_search_before_tensorflow(run_dirs, export_dir, precision, xla))


def _translator(args: argparse.Namespace, decode: dict, decoding: bool = False):
    """The translator a command names (--run-dir with its --checkpoint, several for an ensemble,
    --export-dir or --ct2-dir), with the decode flags applied; notes about the checkpoint choice go to
    stderr. `decoding`: the command runs the search's loops side by side, which then share the cores
    (`_share_cores`); scoring and exporting run one batch at a time, on every core."""
    from translator.api import load
    from translator.rundir import RunDirectory

    run_dirs, export_dirs, ct2_dirs = (_paths(args, name) for name in ("run_dir", "export_dir", "ct2_dir"))
    for flag, paths in (("--export-dir", export_dirs), ("--ct2-dir", ct2_dirs)):
        if len(paths) > 1:
            raise TranslatorError(
                f"{flag} given {len(paths)} times: an ensemble is made of run directories (--run-dir A --run-dir B)"
            )
    sampling = [key for key in SAMPLING_KEYS if key in decode]
    if ct2_dirs:
        from translator.ct2 import CTranslate2Translator

        if sampling:
            raise TranslatorError(f"{_flags(sampling)}: sampling needs --run-dir (not --ct2-dir)")
        batching = {} if args.batch_size is None else {"batch_size": args.batch_size}
        return CTranslate2Translator(ct2_dirs[0], threads=args.threads, **batching, **decode)
    if decoding:
        _share_cores(run_dirs, decode.get("workers"))
    if export_dirs:
        if "workers" in decode:
            raise TranslatorError("--workers: give it with --run-dir or --ct2-dir (a SavedModel decodes as served)")
        if sampling:
            raise TranslatorError(f"{_flags(sampling)}: sampling needs --run-dir (not --export-dir)")
        if decode:
            raise TranslatorError(
                f"{_flags(decode)}: fixed in the SavedModel at export; export again, or use --run-dir"
            )
        return load(export_dirs[0])
    for run in map(RunDirectory, run_dirs):  # `load` would take an export too, which has no checkpoint to choose
        mistake = None if run.exists() else run.export_mistaken_for_a_run()
        if mistake:
            raise mistake
    translator = load(run_dirs if len(run_dirs) > 1 else run_dirs[0], args.checkpoint, **decode)
    if getattr(args, "threads", 0) or getattr(args, "batch_size", None) is not None:
        raise TranslatorError("--threads and --batch-size apply to --ct2-dir only")
    for member in getattr(translator, "members", [translator]):
        if member.checkpoint.note:
            print(f"note: {member.checkpoint.note}", file=sys.stderr)
    return translator


def _share_cores(run_dirs: list[str], workers: int | None = None, xla: bool | None = None) -> None:
    """Before TensorFlow's first operation: the decoding loops of these runs (or of a SavedModel, with no
    runs) get the cores shared among them (`translator.threads`). Not under XLA, whose compiled search
    spreads its own work over every core: given one thread a loop, it ran at half its speed."""
    from translator.config import DecodeConfig
    from translator.rundir import RunDirectory
    from translator.threads import share_cores_among_workers

    runs = [RunDirectory(path) for path in run_dirs]
    settings = [run.load_config().decode for run in runs if run.exists()]  # a missing run: load's error
    if xla is None:
        xla = any(setting.xla for setting in settings)
    if not xla:
        share_cores_among_workers(workers or (settings[0].workers if settings else DecodeConfig.workers))


def evaluate(args: argparse.Namespace, decode: dict) -> int:
    from translator import storage
    from translator.corpus import read_lines
    from translator.evaluation import evaluate_translator, write_report
    from translator.rundir import RunDirectory

    sources = references = None
    if args.src:
        if not args.ref:
            raise TranslatorError("--src needs at least one --ref")
        sources = list(read_lines(args.src))
        references = [list(read_lines(path)) for path in args.ref]
        for path, stream in zip(args.ref, references):
            if len(stream) != len(sources):
                raise TranslatorError(f"{path} has {len(stream)} lines but {args.src} has {len(sources)}")
    translator = _translator(args, decode, decoding=True)
    result = evaluate_translator(translator, args.split, sources, references, progress=sys.stderr.isatty())
    name = args.src.stem if args.src else args.split
    ct2_dir = args.ct2_dir[0] if args.ct2_dir else None
    export_dir = args.export_dir[0] if args.export_dir else None
    members = getattr(translator, "members", None)
    extra = {
        "corpus": str(args.src) if args.src else result["corpus"],
        "checkpoint": translator.checkpoint_path,
        "sentences": result["sentences"],
        "beam_size": translator.config.beam_size,
        "length_penalty": translator.config.length_penalty,
        "precision": translator.config.precision,
    }
    extra["truncated"] = result["truncated"]  # sources longer than the model's maximum, cut before translation
    scores = {metric: result[metric] for metric in ("bleu", "chrf", "ter")}
    if ct2_dir:
        extra["ctranslate2"] = str(ct2_dir)
        extra["quantization"] = translator.info.get("quantization", "none")  # what CTranslate2 computes in
        extra["shortlist"] = translator.info.get("shortlist", {}).get("per_source", 0)
    if export_dir:
        extra["savedmodel"] = str(export_dir)
    if members:  # reported beside the first run's own evaluations, never over them
        name = f"ensemble-{name}"
        extra["checkpoint"] = [member.checkpoint.path for member in members]
        extra["ensemble"] = [member.run_dir for member in members]
    export = ct2_dir or export_dir
    eval_dir = storage.join(export, "eval") if export else RunDirectory(args.run_dir[0]).eval_dir
    path = write_report(eval_dir, name, result["hypotheses"], scores, extra)
    for metric in scores.values():
        print(f"{metric['text']}\n  signature: {metric['signature']}")
    print(f"wrote {path} and {path.removesuffix('.json')}.hyp")
    from translator.evaluation import truncation_note

    note = truncation_note(result["truncated"], result["sentences"], getattr(translator, "max_source_length", None))
    if note:
        print(note, file=sys.stderr)
    return 0


def translate(args: argparse.Namespace, decode: dict) -> int:
    from translator.corpus import read_lines, read_stdin_batches

    # Before the output is touched: a failed load destroys nothing.
    translator = _translator(args, decode, decoding=True)
    if args.input:  # a progress bar for files, on a terminal only
        from tqdm import tqdm

        lines = read_lines(args.input)
        lines = tqdm(lines, unit=" lines", desc="translating", disable=not sys.stderr.isatty(), leave=False)
        batches = _batches(lines, TRANSLATE_BATCH_LINES)
    else:  # each line as soon as it arrives when the input comes a line at a time (a terminal, a dialogue)
        batches = read_stdin_batches(sys.stdin, TRANSLATE_BATCH_LINES)
    prefixes = None
    if args.prefix_file:  # line-aligned with the input, so both are read before anything is written
        prefixes, lines = list(read_lines(args.prefix_file)), [line for batch in batches for line in batch]
        if len(prefixes) != len(lines):
            raise TranslatorError(
                f"{args.input or 'standard input'} has {len(lines)} lines but {args.prefix_file} has {len(prefixes)}"
            )
        batches = _batches(lines, TRANSLATE_BATCH_LINES)
    if args.n_best > 1 and (args.split_sentences or args.alignments):
        raise TranslatorError("--n-best: not with --split-sentences or --alignments (they print the best translation)")
    if args.n_best > translator.hypotheses:  # the help promises N lines per input: not fewer, silently
        raise TranslatorError(_more_than_the_search_keeps(args, translator))
    if args.split_sentences and args.alignments:
        raise TranslatorError("--alignments: not with --split-sentences (align the split sentences instead)")
    if args.prefix_file and (args.split_sentences or args.alignments):
        raise TranslatorError("--prefix-file: not with --split-sentences or --alignments")
    if args.alignments and not hasattr(translator, "translate_aligned"):
        raise TranslatorError("--alignments needs --run-dir: the model's attention is not in an export")
    if args.alignments and getattr(translator, "members", None):
        raise TranslatorError("--alignments: one --run-dir only (each model of an ensemble attends its own way)")
    language = _source_lang(args, translator) if args.split_sentences else None
    output = _AtomicOutput(args.output) if args.output else None
    stream = output.file if output else sys.stdout
    counts = {"sources": 0, "truncated": 0}
    done = 0
    for batch in batches:
        _translate_batch(translator, batch, _slice(prefixes, done, batch), args, language, stream, counts)
        done += len(batch)
    if output:
        output.commit()
    from translator.evaluation import truncation_note

    note = truncation_note(counts["truncated"], counts["sources"], getattr(translator, "max_source_length", None))
    if note:
        print(note, file=sys.stderr)
    return 0


def _more_than_the_search_keeps(args: argparse.Namespace, translator) -> str:
    if getattr(getattr(translator, "config", None), "sampling", False):
        return f"--n-best {args.n_best}: sampling draws one translation per input"
    remedy = f"export it again with --beam-size {args.n_best}" if args.export_dir else f"add --beam-size {args.n_best}"
    return f"--n-best {args.n_best}: the search keeps {translator.hypotheses} per input (the beam size); {remedy}"


def _batches(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _slice(prefixes: list[str] | None, start: int, batch: list[str]) -> list[str] | None:
    return None if prefixes is None else prefixes[start : start + len(batch)]


def _translate_batch(
    translator, lines: list[str], prefixes: list[str] | None, args, language: str | None, stream, counts: dict
) -> None:
    """Translate and write one batch of input lines (with their target prefixes, if any) as the flags
    ask; count the sources and the truncated ones (sentences, with --split-sentences)."""
    if language is not None:
        from translator.documents import translate_paragraphs

        documents = translate_paragraphs(translator, lines, language)
        counts["sources"] += sum(len(document.sentences) for document in documents)
        counts["truncated"] += sum(document.truncated for document in documents)
        stream.write("".join(document.text + "\n" for document in documents))
    elif args.alignments:
        aligned = translator.translate_aligned(lines)
        counts["sources"] += len(aligned)
        counts["truncated"] += sum(translation.truncated for translation, _ in aligned)
        stream.write("".join(f"{translation.text}\t{alignment.pharaoh}\n" for translation, alignment in aligned))
    else:
        results = translator.translate_nbest(lines, args.n_best, prefixes)
        counts["sources"] += len(results)
        counts["truncated"] += sum(candidates[0].truncated for candidates in results)
        _write(stream, results, args.n_best)
    stream.flush()


def _source_lang(args: argparse.Namespace, translator) -> str:
    """--source-lang, else the run's (or CTranslate2 export's) data.source_lang."""
    if args.source_lang:
        return args.source_lang
    from translator.rundir import RunDirectory

    config = getattr(translator, "experiment_config", None)
    run_dir = getattr(translator, "run_dir", None)
    if config is None and run_dir is not None:
        config = RunDirectory(run_dir).load_config()
    if config is None:
        raise TranslatorError(
            "--split-sentences: give --source-lang (this SavedModel was exported before exports recorded the "
            "run's config and language)"
        )
    return config.data.source_lang


class _AtomicOutput:
    """A file written beside its destination and renamed over it only once complete; its directory is
    made if missing, as `export` and `plot` make theirs."""

    def __init__(self, path: Path):
        self.path = path
        self.temporary = path.with_name(f".{path.name}.partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.temporary, "w", encoding="utf-8")
        except OSError as error:  # named as the user wrote it, not by its temporary name
            raise TranslatorError(f"{path}: cannot be written ({error.strerror})") from error

    def commit(self) -> None:
        self.file.close()
        os.replace(self.temporary, self.path)


def score(args: argparse.Namespace, _decode: dict) -> int:
    """One line per pair: total log-probability (target tokens and EOS), per-token average, tokens."""
    from translator.corpus import read_lines

    translator = _translator(args, {})
    sources, targets = list(read_lines(args.src)), list(read_lines(args.tgt))
    if len(sources) != len(targets):
        raise TranslatorError(f"{args.src} has {len(sources)} lines but {args.tgt} has {len(targets)}")
    output = _AtomicOutput(args.output) if args.output else None
    stream = output.file if output else sys.stdout
    for start in range(0, len(sources), 1000):  # bounded memory; each chunk is batched by length
        for result in translator.score(sources[start : start + 1000], targets[start : start + 1000]):
            stream.write(f"{result.log_prob:.4f}\t{result.per_token:.4f}\t{result.tokens}\n")
    if output:
        output.commit()
    else:
        stream.flush()
    return 0


def _write(output, results, n_best: int) -> None:
    for candidates in results:
        if n_best > 1:
            for candidate in candidates:
                output.write(f"{candidate.score:.4f}\t{candidate.text}\n")
        else:
            output.write(candidates[0].text + "\n")
    output.flush()


def export(args: argparse.Namespace, decode: dict) -> int:
    from translator import storage
    from translator.precision import export_precision
    from translator.rundir import RunDirectory

    configured = RunDirectory(args.run_dir).load_config().decode.precision
    decode["precision"] = export_precision(decode.get("precision"), configured)
    translator = _translator(args, decode)
    run = RunDirectory(args.run_dir)
    output = args.output or (run.export_dir if args.format == "savedmodel" else storage.join(run.path, "ctranslate2"))
    translator.export(output, format=args.format, quantization=args.quantization, shortlist=args.shortlist or 0)
    computes = (
        f"weights {args.quantization or 'none'}"
        + (f", shortlist {args.shortlist} per source piece" if args.shortlist else "")
        if args.format == "ctranslate2"
        else f"precision {translator.config.precision}"  # auto resolved on this machine: say to what
    )
    print(
        f"exported {translator.checkpoint.path} to {output} as {args.format} (beam {translator.config.beam_size}, "
        f"length penalty {translator.config.length_penalty}, {computes})"
    )
    return 0


def info(args: argparse.Namespace, _decode: dict) -> int:
    if args.export_dir or args.ct2_dir:
        return _export_info(args.export_dir or args.ct2_dir, "savedmodel" if args.export_dir else "ctranslate2")
    import tensorflow as tf
    import yaml

    from translator.rundir import RunDirectory

    run = RunDirectory(args.run_dir)
    config = run.load_config()
    print(yaml.safe_dump(config.to_dict(), sort_keys=False).rstrip())
    latest = tf.train.latest_checkpoint(str(run.checkpoint_dir))
    step = int(tf.train.load_variable(latest, "step/.ATTRIBUTES/VARIABLE_VALUE")) if latest else 0
    print(f"checkpoint: {latest or 'none'} (step {step})")
    if config.train.init_from:
        print(f"fine-tuned from: {config.train.init_from} ({config.train.init_checkpoint or 'not initialized yet'})")
    if latest:
        from translator.inference import Translator

        translator = Translator.from_run_dir(run.path, "latest")
        tokenizer = translator.tokenizer
        print(f"parameters: {translator.model.count_params():,}")
        print(
            f"vocabulary: source {tokenizer.source_vocab_size:,}, target {tokenizer.target_vocab_size:,}"
            f"{' (shared)' if tokenizer.shared else ''}"
        )
        print(f"translate/evaluate/export use: {_describe_choice(run)}")
        from translator.precision import resolve_decode_precision

        precision, why = resolve_decode_precision(config.decode.precision, config.train.mixed_precision)
        print(f"decoding precision here: {precision} ({why})")
        from translator.onednn import decoding_kernels, float32_search_before_tensorflow

        print(f"decoding CPU kernels here: {decoding_kernels(float32_search_before_tensorflow([str(run.path)]))}")
    _print_evaluations(run.eval_dir)
    return 0


def _print_evaluations(eval_dir: str) -> None:
    from translator import storage

    for report in storage.glob(storage.join(eval_dir, "*.json")):
        scores = json.loads(storage.read_text(report))
        print(
            f"eval {posixpath.basename(report).removesuffix('.json')}: "
            f"BLEU {scores['bleu']['score']}, chrF {scores['chrf']['score']}, "
            f"TER {scores['ter']['score']} ({scores.get('checkpoint', '')})"
        )


def _export_info(path: str, format: str) -> int:
    """What an export holds, from the record written beside it (`export.json`, or the SavedModel's
    `assets.extra/translator.json`), without loading the model: which checkpoint, decode settings, what it
    computes in, the run's config, its size and its evaluations."""
    import yaml

    from translator import storage
    from translator.constants import EXPORT_MARKERS
    from translator.ct2 import EXPORT_INFO as CT2_INFO
    from translator.onednn import EXPORT_INFO as SAVEDMODEL_INFO

    kind, flag = ("SavedModel", "--export-dir") if format == "savedmodel" else ("CTranslate2", "--ct2-dir")
    if not storage.exists(storage.join(path, EXPORT_MARKERS[format])):
        raise TranslatorError(f"{flag} {path}: not a {kind} export (no {EXPORT_MARKERS[format]})")
    record_path = storage.join(path, SAVEDMODEL_INFO if format == "savedmodel" else CT2_INFO)
    record = json.loads(storage.read_text(record_path)) if storage.exists(record_path) else {}
    if record.get("config"):
        print(yaml.safe_dump(record["config"], sort_keys=False).rstrip())
    checkpoint = record.get("checkpoint") or {}
    if checkpoint.get("path"):
        print(f"checkpoint: {checkpoint['path']} (step {checkpoint['step']}, {checkpoint['kind']})")
    else:  # exported before exports recorded it, or from a model built in Python
        print("checkpoint: not recorded")
    decode = record.get("decode") or record
    if format == "savedmodel":
        computes = f"precision {decode.get('precision', 'float32')}"
    else:
        per_source = (record.get("shortlist") or {}).get("per_source", 0)
        computes = f"weights {record.get('quantization', 'none')}" + (
            f", shortlist {per_source} per source piece" if per_source else ""
        )
    print(
        f"export: {kind}, beam {decode.get('beam_size', '?')}, length penalty "
        f"{decode.get('length_penalty', '?')}, {computes}"
    )
    if "://" not in path:  # object stores: listing every file to add up sizes is slow and rarely wanted
        files = [
            file for file in Path(path).rglob("*") if file.is_file() and "eval" not in file.relative_to(path).parts
        ]
        print(f"size on disk: {sum(file.stat().st_size for file in files) / 2**20:.2f} MB")
    _print_evaluations(storage.join(path, "eval"))
    return 0


def _describe_choice(run) -> str:
    from translator.checkpoints import choose_checkpoint

    choice = choose_checkpoint(run, "auto")
    return f"{choice.path} ({choice.kind}, step {choice.step})" + (f"; {choice.note}" if choice.note else "")


def plot(args: argparse.Namespace, _decode: dict) -> int:
    from translator.curves import plot_curves

    print(f"wrote {plot_curves(str(args.run_dir), args.output, args.title)}")
    return 0


def plot_alignment(args: argparse.Namespace, decode: dict) -> int:
    from translator.alignment_plot import plot_alignment as draw

    translator = _translator(args, decode)
    ((translation, alignment),) = translator.translate_aligned([args.sentence])
    title = args.title or f"{args.sentence}\n→ {translation.text}\n({translator.checkpoint.path})"
    print(f"{translation.text}\t{alignment.pharaoh}")
    print(f"wrote {draw(alignment, args.output, title)}")
    return 0


def serve(args: argparse.Namespace, decode: dict) -> int:
    from translator.api import load

    try:
        from translator.serve.server import ServeOptions
        from translator.serve.server import serve as run_server
    except ImportError as error:
        raise TranslatorError(f"serving needs the serve extra: pip install 'translator[serve]' ({error})") from error
    path = args.export_dir or args.ct2_dir or args.run_dir
    if args.ct2_dir and decode:
        raise TranslatorError("--beam-size, --length-penalty: give them with --run-dir")
    translator = load(path) if args.ct2_dir else _translator(args, decode, decoding=True)
    options = ServeOptions(
        model_name=args.model_name,
        version=posixpath.basename(path.rstrip("/")) if posixpath.basename(path.rstrip("/")).isdigit() else "1",
        host=args.host,
        port=args.port,
        grpc_port=None if args.no_grpc else args.grpc_port,
        max_batch_sentences=args.max_batch_sentences,
        batch_timeout_ms=args.batch_timeout_ms,
        max_request_sentences=args.max_request_sentences,
        max_request_bytes=args.max_request_bytes,
        max_queued_sentences=args.max_queued_sentences,
        api_key=args.api_key or None,
    )
    run_server(translator, options, log=lambda line: print(line, flush=True))
    return 0


def bench(args: argparse.Namespace, _decode: dict) -> int:
    benchmarks = {"train": bench_train, "decode": bench_decode, "serve": bench_serve, "opennmt-tf": bench_opennmt_tf}
    return benchmarks[args.what](args)


def bench_serve(args: argparse.Namespace) -> int:
    from translator.bench.serve import bench_serve as run_benchmark
    from translator.bench.serve import format_report

    model_flag = next(
        (flag, path)
        for flag, path in (("--run-dir", args.run_dir), ("--export-dir", args.export_dir), ("--ct2-dir", args.ct2_dir))
        if path is not None
    )
    if args.beam_size is not None:
        model_flag = (*model_flag, "--beam-size", args.beam_size)
    sizes = [int(size) for size in args.batch_sizes.split(",") if size.strip()]
    sentences = (args.sentence,)
    if args.input:
        from translator.corpus import read_lines

        sentences = tuple(line for line in read_lines(args.input) if line.strip())
        if not sentences:
            raise TranslatorError(f"{args.input}: no sentences to send (the file has no non-empty line)")
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    report = run_benchmark(
        list(map(str, model_flag)), sizes, args.clients, args.requests, sentences, args.batch_timeout_ms, log=log
    )
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0 if all(row["errors"] == 0 for row in report["results"]) else 1


def bench_decode(args: argparse.Namespace) -> int:
    from translator.bench.decode import bench_decode as run_benchmark

    methods = tuple(method.strip() for method in args.methods.split(",") if method.strip())
    _share_cores([str(args.run_dir)], args.workers, args.xla)  # the SavedModel's worker process inherits it
    report = run_benchmark(
        str(args.run_dir),
        args.split,
        args.limit,
        args.beam_size,
        args.xla,
        args.uncached_limit,
        methods,
        args.threads,
        str(args.work_dir) if args.work_dir else None,
        args.workers,
        args.batch_tokens,
        args.ct2_batch_size,
        args.precision,
        args.shortlist,
        args.rounds,
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    agreement = report["cached_uncached_agreement"]
    print(
        f"{report['sentences']} sentences of {report['split']}, XLA {'on' if report['xla'] else 'off'}, "
        f"{report['workers']} worker(s)"
        + (f", the median of {report['rounds']} interleaved rounds" if report["rounds"] > 1 else "")
        + (f", cached/uncached greedy agreement {agreement:.3f}" if agreement is not None else "")
    )
    for row in report["results"]:
        extra = "".join(
            f"  {label} {row[key]}"
            for key, label in (
                ("vs_beam", "vs beam"),
                ("rounds_vs_beam", "per round"),
                ("bleu", "BLEU"),
                ("agreement_with_beam", "agrees with beam"),
                ("peak_rss_mb", "peak RSS MB"),
                ("size_mb", "MB on disk"),
            )
            if key in row
        )
        print(
            f"{row['method']:>16}  beam {row['beam_size']}  batch {row['batch_size']:>6}  "
            f"{row['sentences_per_s']:>8.2f} sent/s  {row['tokens_per_s']:>9.1f} tok/s{extra}"
        )
    return 0


def bench_train(args: argparse.Namespace) -> int:
    from translator.bench.train import bench_train as run_benchmark
    from translator.config import load_config

    config = load_config(args.config, args.set)
    work_dir = args.work_dir or Path("runs") / f"bench-{Path(args.config).stem}"
    methods = tuple(method.strip() for method in args.methods.split(",") if method.strip()) or None
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    report = run_benchmark(
        config, work_dir, args.steps, args.warmup, methods, log=log, budget_minutes=args.budget_minutes
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        against = report["best_vs_padded"]  # None unless `padded` was among the methods
        print(f"best: {report['best']}" + (f", {against}× the padded pipeline's target tokens/s" if against else ""))
    return 0


def bench_opennmt_tf(args: argparse.Namespace) -> int:
    from translator.bench.opennmt_tf import bench_opennmt_tf as run_benchmark
    from translator.config import load_config

    config = load_config(args.config, args.set)
    work_dir = args.work_dir or Path("runs") / f"bench-{Path(args.config).stem}"
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    report = run_benchmark(config, work_dir, args.onmt_main, args.budget_minutes, args.jit_compile, log=log)
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


def average(args: argparse.Namespace, _decode: dict) -> int:
    from translator.checkpoints import average_checkpoints

    path = average_checkpoints(str(args.run_dir), args.last)
    print(f"averaged the last {args.last} checkpoints into {path}")
    return 0
