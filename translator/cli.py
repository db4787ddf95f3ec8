"""The `translator` command line: a thin front end over the modules; each subcommand builds one
config object and hands it down.

Errors the user can fix (`TranslatorError`) print one line and exit with status 2; `--debug` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported; --debug restores it

from translator.errors import TranslatorError  # noqa: E402

EXAMPLES = {
    "train": "translator train --config small --run-dir runs/small\n"
    "translator train --config tiny --set train.steps=200 --run-dir runs/tiny\n"
    "translator train --config small --set data.train=tfds:ted_hrlr_translate/pt_to_en:train "
    "--set data.source_lang=pt --run-dir runs/pt-en",
    "evaluate": "translator evaluate --run-dir runs/small --split test\n"
    "translator evaluate --run-dir runs/small --src test.es --ref test.en --ref test2.en\n"
    "translator evaluate --ct2-dir runs/small/ctranslate2 --split test --threads 2",
    "translate": "echo 'Y dijo Dios: Sea la luz.' | translator translate --run-dir runs/small\n"
    "translator translate --export-dir runs/small/export --input in.es --output out.en --n-best 4\n"
    "translator translate --ct2-dir runs/small/ctranslate2 --input in.es --output out.en --threads 2",
    "export": "translator export --run-dir runs/small\n"
    "translator export --run-dir runs/small --format ctranslate2 --output runs/small/ctranslate2 --quantization int8\n"
    "saved_model_cli show --dir runs/small/export --tag_set serve --signature_def serving_default",
    "info": "translator info --run-dir runs/small",
    "average": "translator average --run-dir runs/small --last 5",
    "bench": "translator bench decode --run-dir runs/small --split test --json\n"
    "translator bench decode --run-dir runs/small --limit 100 --no-xla\n"
    "translator bench decode --run-dir runs/tutorial --methods beam,savedmodel,ct2_beam,ct2_int8_beam --json\n"
    "translator bench train --config tutorial --steps 100 --json\n"
    "translator bench train --config tiny --methods bucketed,bucketed+xla+bf16",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="translator",
        description="Neural machine translation: train, evaluate, translate and export Transformers.",
        epilog="examples:\n" + textwrap.indent("\n".join(EXAMPLES.values()), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and TensorFlow logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog="examples:\n" + textwrap.indent(EXAMPLES[name], "  "),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument("--debug", action="store_true", help="show tracebacks and TensorFlow logs")
        return sub

    train = command("train", "train a model, or resume the run in --run-dir")
    train.add_argument("--config", default="small", help="preset name (tiny, small, base) or YAML file")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    train.add_argument("--run-dir", required=True, type=Path)
    train.add_argument("--strategy", choices=["auto", "default", "mirrored", "multiworker", "tpu"])
    train.add_argument("--cpu-devices", type=int, help="split the CPU into N logical devices (testing)")

    evaluate = command("evaluate", "translate a split or files and score with sacrebleu (BLEU, chrF, TER)")
    evaluated = evaluate.add_mutually_exclusive_group(required=True)
    evaluated.add_argument("--run-dir", type=Path)
    evaluated.add_argument("--ct2-dir", type=Path, help="a CTranslate2 export (reports go to CT2_DIR/eval)")
    evaluate.add_argument("--split", default="test", help="dev or test (from the run's config)")
    evaluate.add_argument("--src", type=Path, help="source file (one sentence per line) instead of a split")
    evaluate.add_argument("--ref", type=Path, action="append", default=[], help="reference file (repeatable)")
    evaluate.add_argument("--checkpoint", default="auto", help="auto, averaged, best or latest")
    _decode_flags(evaluate)
    _ct2_flags(evaluate)

    translate = command("translate", "translate stdin to stdout, or --input to --output")
    source = translate.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-dir", type=Path)
    source.add_argument("--export-dir", type=Path, help="an exported SavedModel instead of a run directory")
    source.add_argument("--ct2-dir", type=Path, help="a CTranslate2 export instead of a run directory")
    translate.add_argument("--input", type=Path)
    translate.add_argument("--output", type=Path)
    translate.add_argument("--n-best", type=int, default=1, help="print N 'score<TAB>translation' lines per input")
    translate.add_argument("--checkpoint", default="auto")
    _decode_flags(translate)
    _ct2_flags(translate)

    export = command("export", "write a SavedModel (for TensorFlow Serving) or a CTranslate2 model (fastest on CPU)")
    export.add_argument("--run-dir", required=True, type=Path)
    export.add_argument("--output", type=Path, help="default: RUN_DIR/export, or RUN_DIR/ctranslate2")
    export.add_argument("--format", default="savedmodel", choices=["savedmodel", "ctranslate2"])
    export.add_argument(
        "--quantization",
        choices=["none", "int8", "int8_float32", "int16", "float16"],
        help="CTranslate2 weights (default none: float32, the fastest on our CPU at the tutorial size)",
    )
    export.add_argument("--checkpoint", default="auto")
    _decode_flags(export)

    info = command("info", "show a run's config, step, size, vocabulary and last evaluation")
    info.add_argument("--run-dir", required=True, type=Path)

    average = command("average", "average the last K checkpoints into checkpoints/averaged (used by default)")
    average.add_argument("--run-dir", required=True, type=Path)
    average.add_argument("--last", type=int, default=5)

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
    decode.add_argument("--run-dir", required=True, type=Path)
    decode.add_argument("--split", default="test")
    decode.add_argument("--limit", type=int, default=0, help="only the first N sentences")
    decode.add_argument(
        "--uncached-limit",
        type=int,
        default=0,
        help="time the slow uncached decoder on the first N only (its speed is per sentence)",
    )
    decode.add_argument("--beam-size", type=int, default=4)
    decode.add_argument("--no-xla", action="store_true", help="run the searches without XLA")
    decode.add_argument(
        "--methods",
        default="uncached_greedy,greedy,beam",
        help="comma-separated, of uncached_greedy, greedy, beam, savedmodel, ct2_beam, ct2_int8_beam",
    )
    decode.add_argument("--threads", type=int, default=0, help="CTranslate2 threads (0: its default)")
    decode.add_argument("--work-dir", type=Path, help="exports for savedmodel/ct2 methods (default: a temporary one)")
    decode.add_argument("--json", action="store_true", help="print one JSON object")
    train_bench = benchmark("train", "training throughput: padded vs bucketed batches, with/without XLA")
    train_bench.add_argument("--config", default="small", help="preset name or YAML file (the model size)")
    train_bench.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    train_bench.add_argument("--steps", type=int, default=100, help="steady-state steps measured per method")
    train_bench.add_argument("--warmup", type=int, default=5, help="first steps not measured")
    train_bench.add_argument(
        "--methods",
        default="padded,bucketed,bucketed+xla",
        help="comma-separated: padded or bucketed, each optionally +xla and/or +bf16",
    )
    train_bench.add_argument("--work-dir", type=Path, help="tokenizer and corpus cache (default: runs/bench-CONFIG)")
    train_bench.add_argument("--json", action="store_true", help="print one JSON object")
    for sub in (decode, train_bench):
        sub.add_argument("--debug", action="store_true", help="show tracebacks and TensorFlow logs")
    return parser


def _decode_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--beam-size", type=int, help="1 for greedy search (default: the run's decode.beam_size)")
    parser.add_argument("--length-penalty", type=float, help="GNMT alpha (default: decode.length_penalty)")
    parser.add_argument("--max-length", type=int, help="maximum target tokens (default: decode.max_length)")


def _ct2_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=0, help="with --ct2-dir: CPU threads (0: CTranslate2's default)")
    parser.add_argument("--batch-size", type=int, default=32, help="with --ct2-dir: sentences per batch")


def _decode_overrides(args: argparse.Namespace) -> dict:
    names = {"beam_size": args.beam_size, "length_penalty": args.length_penalty, "max_length": args.max_length}
    return {key: value for key, value in names.items() if value is not None}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.debug:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    try:
        from translator import commands

        decode = _decode_overrides(args) if hasattr(args, "length_penalty") else {}
        return getattr(commands, args.command)(args, decode)
    except TranslatorError as error:
        if args.debug:
            raise
        print(f"translator {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
