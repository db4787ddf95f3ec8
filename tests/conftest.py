"""Shared fixtures: a tiny tokenizer and model, and one tiny trained run reused by the slow tests."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "data" / "bible-es-en"


def read_corpus(split: str, limit: int | None = None, target: str = "en_kjv") -> tuple[list[str], list[str]]:
    with gzip.open(CORPUS / f"{split}.tsv.gz", "rt", encoding="utf-8", newline="") as lines:
        rows = list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))[:limit]
    return [row["es"] for row in rows], [row[target] for row in rows]


@pytest.fixture(scope="session")
def tokenizer():
    from translator.config import TokenizerConfig
    from translator.tokenizer import Tokenizer

    sources, targets = read_corpus("train", 3000)
    return Tokenizer.train(TokenizerConfig(vocab_size=400), sources, targets)


def tiny_model(vocab_size: int = 60, seed: int = 0, **overrides):
    from translator.model import Seq2SeqTransformer

    # Seeds go to the initializers: keras.utils.set_random_seed would reset TensorFlow's eager
    # kernel cache and with it the SentencePiece resources of tokenizers already built.
    settings = dict(num_layers=2, d_model=32, num_heads=4, ffn_dim=64, dropout=0.0)
    settings.update(overrides)
    model = Seq2SeqTransformer(vocab_size, vocab_size, **settings)
    model.build()
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") if w.ndim > 1 else w for w in model.get_weights()])
    return model


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A tiny run trained for 40 steps on the shipped corpus (shared by the slow tests)."""
    from translator.config import load_config
    from translator.training import train

    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    config = load_config("tiny", ["train.steps=40", "train.checkpoint_every=20"])
    train(config, run_dir, log=lambda line: None)
    return run_dir


def train_command(run_dir: Path, *settings: str, strategy: str | None = None, cpu_devices: int = 0) -> list[str]:
    """`python -m translator.cli train --config tiny --run-dir RUN_DIR --set ...`, for tests that must
    train in a fresh process (logical CPU devices, signals, multi-worker)."""
    import sys

    command = [sys.executable, "-m", "translator.cli", "train", "--config", "tiny", "--run-dir", str(run_dir)]
    for setting in settings:
        command += ["--set", setting]
    if strategy:
        command += ["--strategy", strategy]
    if cpu_devices:
        command += ["--cpu-devices", str(cpu_devices)]
    return command


def checkpoint_weights(path: str) -> dict[str, np.ndarray]:
    """Every tensor of a checkpoint — model weights, optimizer slots, counters, dropout generator state,
    input position — by name, except the wall-clock time spent, which no two runs share."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(path)
    names = [name for name, _ in tf.train.list_variables(path) if name.endswith("VARIABLE_VALUE")]
    return {name: reader.get_tensor(name) for name in names if not name.startswith(("seconds/", "save_counter/"))}


@pytest.fixture(scope="session")
def second_trained_run(trained_run, tmp_path_factory) -> Path:
    """Another tiny run for ensembles: `trained_run`'s tokenizer (and tokenized corpus), its own seed,
    20 steps."""
    import shutil

    from translator.config import load_config
    from translator.training import train

    run_dir = tmp_path_factory.mktemp("runs") / "tiny-b"
    for shared in ("tokenizer", "cache"):
        shutil.copytree(trained_run / shared, run_dir / shared)
    config = load_config("tiny", ["train.steps=20", "train.checkpoint_every=20", "train.seed=7"])
    train(config, run_dir, log=lambda line: None)
    return run_dir
