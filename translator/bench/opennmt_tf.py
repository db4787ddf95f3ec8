"""`translator bench opennmt-tf`: the peer's training throughput on our corpus and model, on this machine.

Speeds are only comparable within one machine and one day, so the peer is measured here, by the same
command family as `translator bench train`, rather than quoted. OpenNMT-tf 2.32 needs TensorFlow < 2.14
and so its own interpreter (`make bench-opennmt` builds a Python 3.11 venv with `opennmt-tf==2.32.0` and
`tensorflow-cpu==2.13.1`); this module only writes its inputs, runs `onmt-main` and reads its log.

The peer trains what we train:
- the same token sequences: our tokenized corpus (the preset's SentencePiece model and length limits),
  written as SentencePiece pieces, one sentence per line, with the pieces as its vocabulary;
- the preset's model size, dropout, pre-/post-norm and embedding sharing, as `opennmt.models.Transformer`;
- the preset's token budget per batch, with `--auto_config` (its recipe: LazyAdam, Noam decay, label
  smoothing 0.1) but no gradient accumulation, so one step is one batch, as in `bench train`.

Its throughput is its own: the "tokens/s = N (S source, T target)" lines it logs every `LOG_EVERY` steps.
Steady state is the median of those lines after the first (the first holds start-up and tracing);
"tokens in budget" sums the target tokens of every logged interval that ended within the budget, counted
from the process start, so start-up and compilation count, as they do in a time-limited run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import statistics
import subprocess
import threading
import time
from datetime import date, datetime
from pathlib import Path

import numpy as np
import yaml

from translator.bench.machine import describe_machine
from translator.bench.train import model_summary, prepared_corpus
from translator.config import ExperimentConfig
from translator.data import TokenizedCorpus
from translator.errors import TranslatorError
from translator.tokenizer import Tokenizer

LOG_EVERY = 50
_STAMP = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+): ")
_RATE_LINE = re.compile(r"Step = (\d+) ; steps/s = ([\d.]+), tokens/s = \d+ \((\d+) source, (\d+) target\)")

MODEL_FILE = '''\
"""The preset's Transformer, written by translator's `bench opennmt-tf`."""
import opennmt


def model():
    return opennmt.models.Transformer(
        source_inputter=opennmt.inputters.WordEmbedder(embedding_size={d_model}),
        target_inputter=opennmt.inputters.WordEmbedder(embedding_size={d_model}),
        num_layers={num_layers},
        num_units={d_model},
        num_heads={num_heads},
        ffn_inner_dim={ffn_dim},
        dropout={dropout},
        attention_dropout={attention_dropout},
        ffn_dropout={dropout},
        pre_norm={pre_norm},
        share_embeddings=opennmt.models.EmbeddingsSharingLevel.{sharing},
    )
'''


def _pieces(model_proto: bytes) -> list[str]:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=model_proto)
    return [processor.id_to_piece(index) for index in range(processor.get_piece_size())]


def _write_side(path: Path, values: np.ndarray, lengths: np.ndarray, pieces: list[str]) -> None:
    """One sentence per line as space-separated pieces (`lengths` count our EOS, which is not written:
    OpenNMT-tf adds its own to targets)."""
    ends = np.cumsum(lengths - 1)
    with path.open("w", encoding="utf-8") as out:
        for start, end in zip(np.concatenate([[0], ends[:-1]]), ends):
            out.write(" ".join(pieces[i] for i in values[start:end]) + "\n")


def _write_vocabulary(path: Path, pieces: list[str]) -> None:
    """Every piece but SentencePiece's control symbols: OpenNMT-tf adds its own <blank>, <s>, </s> and an
    unknown bucket."""
    path.write_text("".join(f"{piece}\n" for piece in pieces if piece not in ("<unk>", "<s>", "</s>", "<pad>")))


def write_peer_inputs(config: ExperimentConfig, corpus: TokenizedCorpus, tokenizer: Tokenizer, peer_dir: Path) -> dict:
    """The corpus, vocabularies, model file and YAML config OpenNMT-tf trains from, under `peer_dir`."""
    peer_dir.mkdir(parents=True, exist_ok=True)
    source_pieces = _pieces(tokenizer.source_model_proto)
    target_pieces = _pieces(tokenizer.target_model_proto)
    _write_side(peer_dir / "train.src", corpus.source_values, corpus.source_lengths, source_pieces)
    _write_side(peer_dir / "train.tgt", corpus.target_values, corpus.target_lengths, target_pieces)
    _write_vocabulary(peer_dir / "src-vocab.txt", source_pieces)
    _write_vocabulary(peer_dir / "tgt-vocab.txt", target_pieces)
    model = config.model
    encoder_layers, decoder_layers = model.depths
    (peer_dir / "model.py").write_text(
        MODEL_FILE.format(
            d_model=model.d_model,
            # OpenNMT-tf takes one depth, or (encoder layers, decoder layers) as a pair
            num_layers=encoder_layers if encoder_layers == decoder_layers else (encoder_layers, decoder_layers),
            num_heads=model.num_heads,
            ffn_dim=model.ffn_dim,
            dropout=model.dropout,
            attention_dropout=model.attention_dropout,
            pre_norm=model.pre_norm,
            sharing="ALL" if model.share_embeddings else "NONE",
        )
    )
    settings = {
        "model_dir": str(peer_dir / "model"),
        "data": {
            "train_features_file": str(peer_dir / "train.src"),
            "train_labels_file": str(peer_dir / "train.tgt"),
            "source_vocabulary": str(peer_dir / "src-vocab.txt"),
            "target_vocabulary": str(peer_dir / "tgt-vocab.txt"),
        },
        "train": {
            "batch_size": config.train.batch_tokens,
            "batch_type": "tokens",
            "effective_batch_size": None,  # auto_config's 25,000 would accumulate ~6 batches per update
            "maximum_features_length": config.data.max_source_length,
            "maximum_labels_length": config.data.max_target_length,
            "save_summary_steps": LOG_EVERY,
            "save_checkpoints_steps": 10**7,  # the budget ends the run, not a checkpoint
            "max_step": 10**7,
        },
    }
    (peer_dir / "config.yml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return settings


def parse_rates(timed_lines: list[tuple[float, str]], start: datetime | None = None) -> list[dict]:
    """Every throughput line OpenNMT-tf logged, with the seconds since `start` at which it was logged: by
    the time stamp the line carries (its log may reach the pipe late, in blocks), else by its arrival."""
    rows = []
    for seconds, line in timed_lines:
        match = _RATE_LINE.search(line)
        if match:
            stamp = _STAMP.match(line)
            if stamp and start is not None:
                seconds = (datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S.%f") - start).total_seconds()
            step, steps_per_s, source, target = match.groups()
            rows.append(
                {
                    "seconds": seconds,
                    "step": int(step),
                    "steps_per_s": float(steps_per_s),
                    "source_tokens_per_s": int(source),
                    "target_tokens_per_s": int(target),
                }
            )
    return rows


def summarize_rates(rows: list[dict], budget_seconds: float) -> dict:
    """Steady-state target tokens/s (median after the first line) and target tokens within the budget."""
    if len(rows) < 2:
        raise TranslatorError(
            f"OpenNMT-tf logged {len(rows)} throughput line(s) within the budget: give it more minutes"
        )
    in_budget, previous_step = 0.0, 0
    for row in rows:
        if row["seconds"] <= budget_seconds and row["steps_per_s"] > 0:
            in_budget += row["target_tokens_per_s"] * (row["step"] - previous_step) / row["steps_per_s"]
        previous_step = row["step"]
    return {
        "target_tokens_per_s": statistics.median(row["target_tokens_per_s"] for row in rows[1:]),
        "source_tokens_per_s": statistics.median(row["source_tokens_per_s"] for row in rows[1:]),
        "steps": rows[-1]["step"],
        "tokens_in_budget": round(in_budget),
        "first_log_seconds": round(rows[0]["seconds"], 1),
    }


def _run_timed(command: list[str], seconds: float, log_path: Path) -> list[tuple[float, str]]:
    """Run `command` for at most `seconds` (then SIGINT, then SIGKILL), keeping every output line with
    the time it arrived."""
    start = time.monotonic()
    lines: list[tuple[float, str]] = []
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=environment
    )

    def read():
        with log_path.open("w", encoding="utf-8") as log_file:
            for line in process.stdout:
                lines.append((time.monotonic() - start, line.rstrip("\n")))
                log_file.write(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    reader.join(timeout=10)
    return lines


def bench_opennmt_tf(
    config: ExperimentConfig,
    work_dir: str | Path,
    onmt_main: str,
    budget_minutes: float = 10.0,
    jit_compile: bool = False,
    log=print,
) -> dict:
    """Train OpenNMT-tf on the preset's data and model size for `budget_minutes`; its figures from its log."""
    if not Path(onmt_main).exists():
        raise TranslatorError(f"{onmt_main}: no such program (make bench-opennmt builds an OpenNMT-tf venv)")
    config, tokenizer, corpus = prepared_corpus(config, work_dir, log)
    peer_dir = Path(work_dir) / ("opennmt-tf+xla" if jit_compile else "opennmt-tf")
    write_peer_inputs(config, corpus, tokenizer, peer_dir)
    shutil.rmtree(peer_dir / "model", ignore_errors=True)  # a fresh start every time, never a resumed one
    command = [onmt_main, "--model", str(peer_dir / "model.py"), "--config", str(peer_dir / "config.yml")]
    command += ["--auto_config", *(["--jit_compile"] if jit_compile else []), "train"]
    log(f"$ {' '.join(command)}  ({budget_minutes:g} minutes)")
    started = datetime.now()  # the peer stamps its log lines in local time
    lines = _run_timed(command, budget_minutes * 60, peer_dir / "train.log")
    rows = parse_rates(lines, started)
    try:
        summary = summarize_rates(rows, budget_minutes * 60)
    except TranslatorError as error:
        tail = "\n".join(line for _, line in lines[-15:])
        raise TranslatorError(f"{error}; its last lines ({peer_dir / 'train.log'}):\n{tail}") from None
    version = next((line.split()[-1] for _, line in lines if "OpenNMT-tf version" in line), None)
    log(
        f"OpenNMT-tf{' +xla' if jit_compile else ''}: {summary['target_tokens_per_s']:,.0f} tgt tok/s steady, "
        f"{summary['tokens_in_budget']:,} tgt tokens in {budget_minutes:g} min, step {summary['steps']}"
    )
    return {
        "benchmark": "opennmt-tf",
        "date": date.today().isoformat(),
        "machine": describe_machine(),
        "command": command,
        "opennmt_tf": version,
        "jit_compile": jit_compile,
        "model": model_summary(config),
        "batch_tokens": config.train.batch_tokens,
        "training_pairs": len(corpus),
        "budget_minutes": budget_minutes,
        **summary,
        "log": str(peer_dir / "train.log"),
        "rates": rows,
    }
