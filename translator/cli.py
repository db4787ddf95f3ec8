"""The `translator` command line: a thin front end over the modules; each subcommand builds one
config object and hands it down.

Errors the user can fix (`TranslatorError`) print one line and exit with status 2; `--debug` shows
the traceback instead. TensorFlow's native start-up noise is hidden unless `--verbose` or `--debug`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import textwrap
from pathlib import Path

from translator.config import DECODE_PRECISIONS
from translator.errors import TranslatorError
from translator.shortlist import DEFAULT_PER_SOURCE

# Run directories are strings, not Paths: pathlib would fold gs://bucket into gs:/bucket.
RUN_DIR_HELP = "the run directory: a local path or any TensorFlow file system (gs://bucket/runs/NAME, ...)"
ENSEMBLE_HELP = "; repeat it for an ensemble of runs sharing one tokenizer (their mean log-probabilities)"

EXAMPLES = {
    "train": "translator train --config small --run-dir runs/small\n"
    "translator train --config tiny --set train.steps=200 --run-dir runs/tiny\n"
    "translator train --config small --set data.train=tfds:ted_hrlr_translate/pt_to_en:train "
    "--set data.source_lang=pt --run-dir runs/pt-en\n"
    "translator train --config small --init-from runs/small:best --run-dir runs/small-psalms "
    "--set data.train=tsv:psalms/train.tsv --set train.steps=500 --set train.warmup_steps=100",
    "evaluate": "translator evaluate --run-dir runs/small --split test\n"
    "translator evaluate --run-dir runs/small --src test.es --ref test.en --ref test2.en\n"
    "translator evaluate --run-dir runs/small-a --run-dir runs/small-b --split test   # an ensemble\n"
    "translator evaluate --ct2-dir runs/small/ctranslate2 --split test --workers 2 --threads 1",
    "translate": "echo 'Y dijo Dios: Sea la luz.' | translator translate --run-dir runs/small\n"
    "translator translate --export-dir runs/small/export --input in.es --output out.en --n-best 4\n"
    "translator translate --run-dir runs/small-a --run-dir runs/small-b --input in.es   # an ensemble\n"
    "translator translate --run-dir runs/small --input mono.en --sampling-topk 0 --seed 1   # back-translation\n"
    "translator translate --run-dir runs/small --input in.es --sampling-topk 0 --sampling-topp 0.9 "
    "--sampling-temperature 0.8\n"
    "translator translate --run-dir runs/small --input in.es --prefix-file starts.en   # force each start\n"
    "translator translate --ct2-dir runs/small/ctranslate2 --input in.es --output out.en --workers 2\n"
    "translator translate --run-dir runs/small --split-sentences --input paragraphs.es --output paragraphs.en\n"
    "echo 'Y dijo Dios: Sea la luz.' | translator translate --run-dir runs/small --alignments",
    "export": "translator export --run-dir runs/small\n"
    "translator export --run-dir runs/small --format ctranslate2 --output runs/small/ctranslate2 --quantization int8\n"
    "translator export --run-dir runs/small --format ctranslate2 --quantization int8 --shortlist\n"
    "saved_model_cli show --dir runs/small/export --tag_set serve --signature_def serving_default",
    "serve": "translator serve --run-dir runs/small\n"
    "translator serve --export-dir runs/small/export --port 8501 --grpc-port 8500 --model-name translator\n"
    "TRANSLATOR_API_KEY=secret translator serve --export-dir runs/small/export --host 0.0.0.0\n"
    "curl -s localhost:8501/v1/models/translator:predict -d @docs/serving_request.json",
    "score": "translator score --run-dir runs/small --src corpus.es --tgt corpus.en --output scores.tsv\n"
    "translator score --ct2-dir runs/small/ctranslate2 --src hyp.es --tgt hyp.en",
    "info": "translator info --run-dir runs/small\ntranslator info --ct2-dir runs/small/ctranslate2",
    "average": "translator average --run-dir runs/small --last 5",
    "plot": "translator plot --run-dir runs/small --output small-curves.png",
    "plot-alignment": "translator plot-alignment --run-dir runs/small --checkpoint averaged "
    "--sentence 'Y dijo Dios: Sea la luz: y fué la luz.' --output docs/alignment.png",
    "bench": "translator bench decode --run-dir runs/small --split test --json\n"
    "translator bench decode --run-dir runs/small --limit 100 --no-xla\n"
    "translator bench decode --run-dir runs/tutorial --methods beam,savedmodel,ct2_beam,ct2_int8_beam --json\n"
    "translator bench train --config tutorial --methods bucketed,fixed+xla,packed+xla --json\n"
    "translator bench train --config tiny --methods fixed+xla --budget-minutes 1\n"
    "translator bench train --config tiny --methods bucketed,bucketed+xla+bf16\n"
    "translator bench opennmt-tf --config tutorial --onmt-main .venv-opennmt/bin/onmt-main --json\n"
    "translator bench serve --run-dir runs/tutorial --requests 40\n"
    "translator bench serve --export-dir runs/small/export --clients 16 --json",
}


def _at_least(minimum: int | float):
    """An argparse type: a number (whole if `minimum` is) not below `minimum`. A count of zero or
    below would otherwise reach CTranslate2, range() or a socket as a traceback, or be ignored."""
    kind = type(minimum)

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {'whole ' if kind is int else ''}number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value

    return parse


def _more_than(minimum: float):
    """An argparse type: a number above `minimum` (a time budget of zero trains nothing)."""

    def parse(text: str) -> float:
        value = _at_least(minimum)(text)
        if value <= minimum:
            raise argparse.ArgumentTypeError(f"must be more than {minimum:g}, got {text}")
        return value

    return parse


def _port(text: str) -> int:
    """A TCP port: 0 (any free one, named in the ready line) to 65535."""
    value = _at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="translator",
        description="Neural machine translation: train, evaluate, translate and export Transformers.",
        epilog="examples:\n" + textwrap.indent("\n".join(EXAMPLES.values()), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _verbosity_flags(parser, argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog="examples:\n" + textwrap.indent(EXAMPLES[name], "  "),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _verbosity_flags(sub, argparse.SUPPRESS)
        return sub

    train = command("train", "train a model, or resume the run in --run-dir")
    train.add_argument("--config", default="small", help="preset name (tiny, small, base) or YAML file")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    train.add_argument("--run-dir", required=True, help=RUN_DIR_HELP)
    train.add_argument("--strategy", choices=["auto", "default", "mirrored", "multiworker", "tpu"])
    train.add_argument("--cpu-devices", type=_at_least(1), help="split the CPU into N logical devices (testing)")
    train.add_argument(
        "--init-from",
        metavar="PARENT_RUN[:CHECKPOINT]",
        help="fine-tune: start a new run from this run's weights (auto, averaged, best or latest checkpoint) "
        "and tokenizer, with a fresh optimizer and schedule; ignored once --run-dir has checkpoints",
    )

    evaluate = command("evaluate", "translate a split or files and score with sacrebleu (BLEU, chrF, TER)")
    evaluated = evaluate.add_mutually_exclusive_group(required=True)
    evaluated.add_argument("--run-dir", action="append", help=RUN_DIR_HELP + ENSEMBLE_HELP)
    evaluated.add_argument(
        "--export-dir", action="append", help="an exported SavedModel (reports go to EXPORT_DIR/eval)"
    )
    evaluated.add_argument("--ct2-dir", action="append", help="a CTranslate2 export (reports go to CT2_DIR/eval)")
    evaluate.add_argument("--split", default="test", help="dev or test (from the run's config)")
    evaluate.add_argument("--src", type=Path, help="source file (one sentence per line) instead of a split")
    evaluate.add_argument("--ref", type=Path, action="append", default=[], help="reference file (repeatable)")
    evaluate.add_argument("--checkpoint", default="auto", help="auto, averaged, best or latest")
    _decode_flags(evaluate)
    _ct2_flags(evaluate)

    translate = command("translate", "translate stdin to stdout, or --input to --output")
    source = translate.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-dir", action="append", help=RUN_DIR_HELP + ENSEMBLE_HELP)
    source.add_argument(
        "--export-dir", action="append", help="an exported SavedModel instead of a run directory (local or gs://...)"
    )
    source.add_argument("--ct2-dir", action="append", help="a CTranslate2 export instead of a run directory")
    translate.add_argument("--input", type=Path)
    translate.add_argument("--output", type=Path)
    translate.add_argument(
        "--n-best",
        type=_at_least(1),
        default=1,
        help="print N 'score<TAB>translation' lines per input",
    )
    translate.add_argument(
        "--prefix-file",
        type=Path,
        help="target prefixes, one per input line (an empty line: none): each translation starts with its prefix",
    )
    translate.add_argument(
        "--split-sentences",
        action="store_true",
        help="split each input line into sentences (sentencex), translate them in one batch and join them with a "
        "space: a paragraph longer than the model's maximum source length is translated whole",
    )
    translate.add_argument(
        "--source-lang", help="with --split-sentences: the splitting rules' language (default: the run's)"
    )
    translate.add_argument(
        "--alignments",
        action="store_true",
        help="print 'translation<TAB>alignment' per line: source-target word pairs in Pharaoh format (0-0 1-2 ...) "
        "from the last decoder layer's cross-attention (--run-dir only)",
    )
    translate.add_argument("--checkpoint", default="auto")
    _decode_flags(translate)
    _sampling_flags(translate)
    _ct2_flags(translate)

    export = command("export", "write a SavedModel (for TensorFlow Serving) or a CTranslate2 model (fastest on CPU)")
    export.add_argument("--run-dir", required=True, help=RUN_DIR_HELP)
    export.add_argument("--output", help="default: RUN_DIR/export, or RUN_DIR/ctranslate2 (local or gs://...)")
    export.add_argument("--format", default="savedmodel", choices=["savedmodel", "ctranslate2"])
    export.add_argument(
        "--quantization",
        choices=["none", "int8", "int8_float32", "int16", "float16"],
        help="CTranslate2 weights (default none: float32, the fastest on our CPU at the tutorial size)",
    )
    export.add_argument(
        "--shortlist",
        type=_at_least(1),
        nargs="?",
        const=DEFAULT_PER_SOURCE,
        metavar="N",
        help="CTranslate2: decode with a lexical shortlist of N target pieces per source piece (default "
        f"{DEFAULT_PER_SOURCE}), counted in the run's training pairs: faster, and may change translations",
    )
    export.add_argument("--checkpoint", default="auto")
    _decode_flags(export)

    serve = command(
        "serve", "serve a model over HTTP and gRPC (TensorFlow Serving's APIs), with batching and a web page"
    )
    served = serve.add_mutually_exclusive_group(required=True)
    served.add_argument("--export-dir", help="an exported SavedModel")
    served.add_argument("--run-dir", help="a run directory (its --checkpoint; XLA if its decode.xla is true)")
    served.add_argument("--ct2-dir", help="a CTranslate2 export")
    serve.add_argument("--checkpoint", default="auto", help="with --run-dir: auto, averaged, best or latest")
    _serve_flags(serve)
    serve.add_argument("--beam-size", type=int, help="with --run-dir: 1 for greedy (default: decode.beam_size)")
    serve.add_argument("--length-penalty", type=float, help="with --run-dir: GNMT alpha (default: the run's)")
    _precision_flag(serve, "with --run-dir: ")
    serve.add_argument("--grpc-port", type=_port, default=8500, help="TensorFlow Serving's gRPC API (default: 8500)")
    serve.add_argument("--no-grpc", action="store_true", help="serve HTTP only")
    serve.add_argument("--model-name", default="translator", help="the NAME in /v1/models/NAME (default: translator)")
    serve.add_argument(
        "--max-request-sentences",
        type=_at_least(1),
        default=256,
        help="sentences per request (default: 256)",
    )
    serve.add_argument(
        "--max-request-bytes",
        type=_at_least(1),
        default=1 << 20,
        help="bytes per request (default: 1 MiB)",
    )
    serve.add_argument(
        "--max-queued-sentences",
        type=_at_least(1),
        default=4096,
        help="beyond this many waiting, answer 503 (default: 4096)",
    )
    serve.add_argument(
        "--api-key",
        default=os.environ.get("TRANSLATOR_API_KEY"),
        help="require this key on every endpoint but /healthz (default: $TRANSLATOR_API_KEY)",
    )

    score = command(
        "score",
        "score sentence pairs by the model: one TSV line per pair, total log-probability, per token, tokens "
        "(to filter a noisy corpus or rank hypotheses)",
    )
    scorer = score.add_mutually_exclusive_group(required=True)
    scorer.add_argument("--run-dir", help=RUN_DIR_HELP)
    scorer.add_argument("--ct2-dir", help="a CTranslate2 export instead of a run directory")
    score.add_argument("--src", required=True, type=Path, help="source sentences, one per line")
    score.add_argument("--tgt", required=True, type=Path, help="target sentences, line-aligned with --src")
    score.add_argument("--output", type=Path, help="default: standard output")
    score.add_argument("--checkpoint", default="auto", help="with --run-dir: auto, averaged, best or latest")
    score.add_argument("--threads", type=_at_least(0), default=0, help="with --ct2-dir: CPU threads (0: all)")
    score.add_argument(
        "--batch-size", type=_at_least(1), help="with --ct2-dir: sentences per batch (default 16, 8 with a shortlist)"
    )

    info = command("info", "show a run's or an export's config, checkpoint, size and evaluations")
    described = info.add_mutually_exclusive_group(required=True)
    described.add_argument("--run-dir", help=RUN_DIR_HELP)
    described.add_argument("--export-dir", help="an exported SavedModel")
    described.add_argument("--ct2-dir", help="a CTranslate2 export")

    average = command("average", "average the last K checkpoints into checkpoints/averaged (used by default)")
    average.add_argument("--run-dir", required=True, help=RUN_DIR_HELP)
    average.add_argument("--last", type=_at_least(1), default=5)

    plot = command("plot", "draw a run's training loss and dev BLEU curves (from its TensorBoard logs) into a PNG")
    plot.add_argument("--run-dir", required=True, help=RUN_DIR_HELP)
    plot.add_argument("--output", required=True, help="the PNG to write")
    plot.add_argument("--title", help="default: the run directory")

    plot_alignment = command(
        "plot-alignment",
        "translate one sentence and draw its cross-attention and word alignment (Pharaoh) into a PNG",
    )
    plot_alignment.add_argument("--run-dir", required=True, help=RUN_DIR_HELP)
    plot_alignment.add_argument("--checkpoint", default="auto", help="auto, averaged, best or latest")
    plot_alignment.add_argument("--sentence", required=True, help="the source sentence")
    plot_alignment.add_argument("--output", required=True, help="the PNG to write")
    plot_alignment.add_argument("--title", help="default: the sentence, its translation and the checkpoint")
    _decode_flags(plot_alignment)

    bench = command("bench", "benchmarks: decoding speed and exactness, training throughput")
    what = bench.add_subparsers(dest="what", required=True, metavar="WHAT")
    examples = EXAMPLES["bench"].splitlines()

    def benchmark(name: str, help_text: str) -> argparse.ArgumentParser:
        mine = "\n".join(line for line in examples if line.startswith(f"translator bench {name}"))
        return what.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog="examples:\n" + textwrap.indent(mine, "  "),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    decode = benchmark("decode", "decoding speed and cached/uncached agreement on a split")
    decode.add_argument("--run-dir", required=True, help=RUN_DIR_HELP)
    decode.add_argument("--split", default="test")
    decode.add_argument("--limit", type=_at_least(0), default=0, help="only the first N sentences")
    decode.add_argument(
        "--uncached-limit",
        type=_at_least(0),
        default=0,
        help="time the slow uncached decoder on the first N only (its speed is per sentence)",
    )
    decode.add_argument("--beam-size", type=int, default=4)
    decode.add_argument(
        "--xla",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile the searches with XLA, or not (default: the run's decode.xla)",
    )
    decode.add_argument(
        "--methods",
        default="uncached_greedy,greedy,beam",
        help="comma-separated, of uncached_greedy, greedy, beam, beam_requests (the search on the SavedModel's "
        "requests of 32), savedmodel, ct2_beam, ct2_int8_beam, ct2_int8_shortlist_beam",
    )
    decode.add_argument(
        "--threads",
        type=_at_least(0),
        default=0,
        help="CTranslate2 threads per batch (0: the cores shared among the workers)",
    )
    decode.add_argument(
        "--ct2-batch-size",
        type=_at_least(1),
        help="CTranslate2's sentences per batch (default: its translator's, 16, or 8 with a shortlist)",
    )
    decode.add_argument(
        "--shortlist",
        type=_at_least(1),
        default=DEFAULT_PER_SOURCE,
        metavar="N",
        help=f"ct2_int8_shortlist_beam's target pieces per source piece (default {DEFAULT_PER_SOURCE})",
    )
    decode.add_argument(
        "--rounds",
        type=_at_least(1),
        default=1,
        metavar="N",
        help="time each method N times, the rounds interleaved across methods; report the median round and "
        "each method's speed over beam's per round (on a machine whose speed drifts, use 3 or more)",
    )
    _precision_flag(decode, "our search: ")
    decode.add_argument("--workers", type=int, help="batches decoded at once (default: the run's decode.workers)")
    decode.add_argument(
        "--batch-tokens",
        type=int,
        help="source tokens per batch, padding included (default: the run's decode.batch_tokens)",
    )
    decode.add_argument("--work-dir", type=Path, help="exports for savedmodel/ct2 methods (default: a temporary one)")
    decode.add_argument("--json", action="store_true", help="print one JSON object")
    train_bench = benchmark("train", "training throughput: padded, bucketed, fixed or packed batches, with/without XLA")
    train_bench.add_argument("--config", default="small", help="preset name or YAML file (the model size)")
    train_bench.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    train_bench.add_argument(
        "--budget-minutes",
        type=_more_than(0.0),
        default=10.0,
        help="wall-clock minutes each method trains, compilation included (its tokens in that time are reported)",
    )
    train_bench.add_argument(
        "--steps",
        type=_at_least(0),
        default=0,
        help="stop a method earlier, after this many steady-state steps (0: no limit)",
    )
    train_bench.add_argument("--warmup", type=_at_least(0), default=5, help="first steps not measured")
    train_bench.add_argument(
        "--methods",
        default="",
        help="comma-separated: padded, bucketed, fixed or packed, each optionally +xla and/or +bf16 (default: "
        "padded,bucketed,bucketed+xla,fixed,fixed+xla, and fixed+bf16 on a CPU with AMX or AVX512_BF16)",
    )
    train_bench.add_argument("--work-dir", help="tokenizer and corpus cache (default: runs/bench-CONFIG)")
    train_bench.add_argument("--json", action="store_true", help="print one JSON object")
    peer = benchmark("opennmt-tf", "OpenNMT-tf's training throughput on the same corpus, model size and machine")
    peer.add_argument("--config", default="tutorial", help="preset name or YAML file (the model size)")
    peer.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    peer.add_argument(
        "--onmt-main",
        default=".venv-opennmt/bin/onmt-main",
        help="OpenNMT-tf's onmt-main in its own venv (default: the one `make bench-opennmt` builds)",
    )
    peer.add_argument(
        "--budget-minutes",
        type=_more_than(0.0),
        default=10.0,
        help="wall-clock minutes, start-up included",
    )
    peer.add_argument("--jit-compile", action="store_true", help="OpenNMT-tf's own --jit_compile (XLA)")
    peer.add_argument("--work-dir", help="tokenizer, corpus cache and the peer's files (default: runs/bench-CONFIG)")
    peer.add_argument("--json", action="store_true", help="print one JSON object")
    serve_bench = benchmark("serve", "throughput and latency of `translator serve`, batching on and off")
    served = serve_bench.add_mutually_exclusive_group(required=True)
    served.add_argument("--run-dir", help="a run directory (e.g. the tutorial-size runs/tutorial)")
    served.add_argument("--export-dir", help="an exported SavedModel")
    served.add_argument("--ct2-dir", help="a CTranslate2 export")
    serve_bench.add_argument("--clients", type=_at_least(1), default=16, help="concurrent clients (default: 16)")
    serve_bench.add_argument("--requests", type=_at_least(1), default=40, help="requests per client (default: 40)")
    sent = serve_bench.add_mutually_exclusive_group()
    sent.add_argument("--sentence", default="Y dijo Dios: Sea la luz: y fué la luz.", help="the one test sentence")
    sent.add_argument(
        "--input", help="send this file's lines instead, in turn (sentences of every length, as real traffic)"
    )
    serve_bench.add_argument(
        "--batch-sizes", default="32,1", help="--max-batch-sentences of each server compared (default: 32,1)"
    )
    serve_bench.add_argument("--batch-timeout-ms", type=_at_least(0.0), default=5.0)
    serve_bench.add_argument("--beam-size", type=int, help="with --run-dir: the served beam (default: the run's)")
    serve_bench.add_argument("--json", action="store_true", help="print one JSON object")
    for sub in (decode, train_bench, peer, serve_bench):
        _verbosity_flags(sub, argparse.SUPPRESS)
    return parser


def _serve_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)"
    )
    parser.add_argument("--port", type=_port, default=8501, help="HTTP port (default: 8501, as TensorFlow Serving)")
    parser.add_argument(
        "--max-batch-sentences",
        type=_at_least(1),
        default=32,
        help="sentences decoded together at most (default: 32; 1: off)",
    )
    parser.add_argument(
        "--batch-timeout-ms",
        type=_at_least(0.0),
        default=5.0,
        help="how long the oldest sentence waits for others (default: 5)",
    )


def _verbosity_flags(parser: argparse.ArgumentParser, default) -> None:
    """--debug and --verbose, accepted before or after the subcommand. The default is SUPPRESS so
    that a subcommand's parser never overwrites a flag given before it."""
    parser.add_argument("--debug", action="store_true", default=default, help="show tracebacks and TensorFlow logs")
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="show TensorFlow's logs")


def _decode_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--beam-size", type=int, help="1 for greedy search (default: the run's decode.beam_size)")
    parser.add_argument("--length-penalty", type=float, help="GNMT alpha (default: decode.length_penalty)")
    parser.add_argument("--max-length", type=int, help="maximum target tokens (default: decode.max_length)")
    _precision_flag(parser)


def _precision_flag(parser: argparse.ArgumentParser, scope: str = "") -> None:
    parser.add_argument(
        "--precision",
        choices=DECODE_PRECISIONS,
        help=f"{scope}bfloat16: the matrix products in bfloat16, faster on AMX CPUs and GPUs; auto: bfloat16 "
        "for a model trained in bfloat16 on such hardware, else float32 (default: the run's decode.precision)",
    )


def _sampling_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sampling-topk",
        type=int,
        metavar="K",
        help="sample each token instead of searching (one translation per input, for back-translation): "
        "from the K most likely, 0 for the whole vocabulary (default: decode.sampling_topk, 1 = no sampling)",
    )
    parser.add_argument(
        "--sampling-topp", type=float, metavar="P", help="with sampling: only from the most likely tokens reaching P"
    )
    parser.add_argument(
        "--sampling-temperature", type=float, metavar="T", help="with sampling: logits divided by T (default 1)"
    )
    parser.add_argument("--seed", type=int, help="with sampling: the random stream (default: decode.seed, 0)")


def _ct2_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        help="batches decoded at once, each on its own thread; with --ct2-dir, CTranslate2's inter_threads "
        "(default: decode.workers, 2)",
    )
    parser.add_argument(
        "--threads",
        type=_at_least(0),
        default=0,
        help="with --ct2-dir: CPU threads per worker (0: the cores shared among them)",
    )
    parser.add_argument(
        "--batch-size", type=_at_least(1), help="with --ct2-dir: sentences per batch (default 16, 8 with a shortlist)"
    )


def _decode_overrides(args: argparse.Namespace) -> dict:
    names = {"beam_size": args.beam_size, "length_penalty": args.length_penalty}
    for key in ("max_length", "precision", "sampling_topk", "sampling_topp", "sampling_temperature", "seed", "workers"):
        names[key] = getattr(args, key, None)
    return {key: value for key, value in names.items() if value is not None}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    debug, verbose = getattr(args, "debug", False), getattr(args, "verbose", False)
    args.debug = debug
    if args.command == "train" or (args.command == "bench" and args.what == "train"):
        from translator.onednn import use_onednn_for_training

        use_onednn_for_training()  # before TensorFlow's import, which reads it
    elif args.command in ("translate", "evaluate", "serve") or (args.command == "bench" and args.what == "decode"):
        from translator.commands import choose_decoding_kernels

        choose_decoding_kernels(args)  # before TensorFlow's import, which reads it
    if debug or verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
    else:
        from translator.quiet import import_tensorflow_quietly

        import_tensorflow_quietly()
    try:
        from translator import commands

        decode = _decode_overrides(args) if hasattr(args, "length_penalty") else {}
        return getattr(commands, args.command.replace("-", "_"))(args, decode)
    except TranslatorError as error:
        if args.debug:
            raise
        print(f"translator {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `translator translate ... | head`: the reader has what it wanted
        with contextlib.suppress(OSError, ValueError):  # no second error at exit's flush of stdout
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command ended by it
    except OSError as error:  # the file system's refusal (permissions, a full disk): one line too
        if args.debug:
            raise
        where = f"{error.filename}: " if error.filename else ""
        print(f"translator {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:  # 128 + the signal, as a shell reports it (130: Ctrl-C, 143: SIGTERM)
        return 128 + (getattr(error, "signum", 0) or signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
