"""Shared fixtures: a tiny tokenizer and model, and one tiny trained run reused by the slow tests.

What every test would otherwise pay again is made once per session: the shipped corpus as a TFDS
dataset (built under the session's temporary directory, never in ~/tensorflow_datasets), one trained
`tiny` run (shared by the pytest-xdist workers too), and its tokenizer and tokenized corpus, which
`seeded_run` copies into the fresh run directories of tests whose point is not the tokenizer.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import gzip
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "data" / "bible-es-en"


# The session's TFDS directory, made by the process pytest was started in and inherited by its
# pytest-xdist workers (they start after its pytest_configure): the corpus is built there once.
SESSION_TFDS_DIR = "TRANSLATOR_TESTS_TFDS_DIR"


def pytest_configure(config):
    """TFDS reads TFDS_DATA_DIR when it is imported: set it before any test module imports it, for this
    process and every subprocess and notebook kernel it starts. One directory per session, removed by the
    process that made it; the first process to read the corpus builds it there, under the file lock of
    `translator.corpus` (the others wait, then read it)."""
    inherited = os.environ.get(SESSION_TFDS_DIR)
    if inherited and os.environ.get("PYTEST_XDIST_WORKER"):
        config.tfds_data_dir, config.owns_tfds_data_dir = inherited, False
    else:
        config.tfds_data_dir, config.owns_tfds_data_dir = tempfile.mkdtemp(prefix="translator-tests-tfds-"), True
        os.environ[SESSION_TFDS_DIR] = config.tfds_data_dir
    os.environ["TFDS_DATA_DIR"] = config.tfds_data_dir


# The modules that take longest, run first (each keeps its own order): two pytest-xdist workers then
# finish close together instead of one waiting for the other's last notebook (`make test` passes
# --no-loadscope-reorder, so that xdist keeps this order instead of handing out its biggest groups first).
# test_storage.py holds one test of 15-19 s that, last in file order, ran alone at the end of a run while
# the other worker idled.
LONGEST_FIRST = (
    "test_notebooks.py",
    "test_distributed.py",
    "test_serve.py",
    "test_train.py",
    "test_cli.py",
    "test_storage.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: module order kept otherwise


# TRANSLATOR_TEST_TIMELINE=FILE: each process appends when each of its tests ends (JSON lines), and the run ends
# with when each pytest-xdist worker finished its last test: how far apart the workers end (docs/benchmarks.md).
TIMELINE = "TRANSLATOR_TEST_TIMELINE"


def pytest_runtest_logfinish(nodeid, location):
    if os.environ.get(TIMELINE):
        with open(os.environ[TIMELINE], "a") as timeline:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            timeline.write(json.dumps({"worker": worker, "test": nodeid, "ended": time.time()}) + "\n")


def pytest_terminal_summary(terminalreporter, config):
    path = os.environ.get(TIMELINE)
    if not path or os.environ.get("PYTEST_XDIST_WORKER") or not os.path.exists(path):
        return
    last = {}
    with open(path) as timeline:
        for end in map(json.loads, timeline):
            last[end["worker"]] = max(last.get(end["worker"], 0.0), end["ended"])
    if len(last) > 1:  # under pytest-xdist the controller hears every report too: only the workers count
        last.pop("main", None)
    said = ", ".join(f"{worker} at {seconds - min(last.values()):+.1f} s" for worker, seconds in sorted(last.items()))
    terminalreporter.write_line(
        f"last test ended, by worker: {said} ({max(last.values()) - min(last.values()):.1f} s apart)"
    )


def pytest_unconfigure(config):
    if getattr(config, "owns_tfds_data_dir", False):
        shutil.rmtree(config.tfds_data_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def kernel_settings_stay_in_their_test():
    """The decoding commands set TF_NUM_INTRAOP_THREADS for their process (`translator.threads`), the
    training commands TF_ENABLE_ONEDNN_OPTS (`translator.onednn`). Run in-process by a test, they would
    hand them to every later subprocess and kernel of this worker; they are put back after each test."""
    from translator.onednn import ONEDNN_VARIABLE
    from translator.threads import INTRA_OP_VARIABLE

    names = (INTRA_OP_VARIABLE, ONEDNN_VARIABLE)
    values = {name: os.environ.get(name) for name in names}
    yield
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session", autouse=True)
def shipped_corpus(pytestconfig) -> str:
    """The shipped corpus built once as a TFDS dataset, before any test (or subprocess of one) reads it."""
    from translator.corpus import read_pairs

    read_pairs("bible_es_en/kjv:dev[:1]", "es", "en")
    assert (Path(pytestconfig.tfds_data_dir) / "bible_es_en" / "kjv").is_dir()  # not ~/tensorflow_datasets
    return pytestconfig.tfds_data_dir


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """Held by one process at a time: the pytest-xdist workers of one session agree on who builds."""
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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


def _built_once(directory: Path, build) -> Path:
    """`build(directory)` unless a complete build is there: one pytest-xdist worker builds, under a file
    lock beside the directory, and the others wait for it; a `finished` file marks a complete build, so a
    worker that died half-way leaves a directory the next one starts again."""
    with _exclusive(directory.with_name(directory.name + ".lock")):
        if not (directory / "finished").exists():
            shutil.rmtree(directory, ignore_errors=True)
            build(directory)
            (directory / "finished").touch()
    return directory


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A tiny run trained for 40 steps on the shipped corpus (shared by the slow tests). Under
    pytest-xdist the first worker to need it trains it and the others wait for it: its directory is
    in the session's common temporary directory."""
    from translator.config import load_config
    from translator.training import train

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    config = load_config("tiny", ["train.steps=40", "train.checkpoint_every=20"])
    return _built_once(shared / "trained-tiny", lambda run_dir: train(config, run_dir, log=lambda line: None))


@pytest.fixture(scope="session")
def run_translator(trained_run):
    """`translator.load(trained_run)`, one per process: tests that only read it share its compiled
    searches (one trace per search setting and bucket length) instead of tracing them again."""
    import translator

    return translator.load(trained_run)


@pytest.fixture(scope="session")
def exported_run(trained_run) -> Path:
    """`trained_run` exported once as a SavedModel (`translator.load(run).export(...)`), read by the
    export, serve and API tests alike: the export is the same whoever asks, and each costs a trace of
    the whole search. Built by the first pytest-xdist worker to need it, as `trained_run` is; its last
    folder is a version number, as TensorFlow Serving wants."""
    import translator

    exports = _built_once(
        trained_run.parent / "exported-tiny", lambda root: translator.load(trained_run).export(root / "1")
    )
    return exports / "1"


def seed_run_dir(source: str | os.PathLike, run_dir: str | os.PathLike) -> str:
    """Copy the tokenizer and the tokenized-corpus cache of run `source` into a new `run_dir` (any
    tf.io.gfile path), so that a `tiny` run there skips training SentencePiece and tokenizing the corpus.
    Only for runs with the tiny preset's data and tokenizer settings (else the cache is simply not hit)."""
    import tensorflow as tf

    run_dir = os.fspath(run_dir)
    for folder in ("tokenizer", "cache"):
        tf.io.gfile.makedirs(f"{run_dir}/{folder}")
        for path in tf.io.gfile.glob(f"{os.fspath(source)}/{folder}/*"):
            tf.io.gfile.copy(path, f"{run_dir}/{folder}/{os.path.basename(path)}")
    return run_dir


@pytest.fixture
def seeded_run(trained_run, tmp_path):
    """`seeded_run(name)`: a new run directory tmp_path/name holding the shared tiny run's tokenizer and
    tokenized corpus (see `seed_run_dir`); a path with "://" is seeded where it says."""

    def make(name: str = "run") -> Path | str:
        if "://" in name:
            return seed_run_dir(trained_run, name)
        return Path(seed_run_dir(trained_run, tmp_path / name))

    return make


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
def second_trained_run(trained_run) -> Path:
    """Another tiny run for ensembles: `trained_run`'s tokenizer (and tokenized corpus), its own seed,
    20 steps. Trained once a session beside `trained_run`, by the first pytest-xdist worker to need it."""
    from translator.config import load_config
    from translator.training import train

    def build(run_dir: Path) -> None:
        for shared in ("tokenizer", "cache"):
            shutil.copytree(trained_run / shared, run_dir / shared)
        config = load_config("tiny", ["train.steps=20", "train.checkpoint_every=20", "train.seed=7"])
        train(config, run_dir, log=lambda line: None)

    return _built_once(trained_run.parent / "trained-tiny-b", build)
