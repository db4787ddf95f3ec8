"""The run directory: everything a run produces, and the checks that a command matches it.

RUN_DIR/config.yaml     the resolved config (written by `train`, read by every other command)
RUN_DIR/tokenizer/      SentencePiece models
RUN_DIR/checkpoints/    model + optimizer + step (the last K), best/ (by dev BLEU), averaged/
RUN_DIR/logs/           TensorBoard
RUN_DIR/eval/           SPLIT.json scores and SPLIT.hyp hypotheses
RUN_DIR/export/         the SavedModel
RUN_DIR/cache/          the tokenized training corpus
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import tensorflow as tf

from translator.config import ExperimentConfig, config_from_dict, read_yaml, save_config
from translator.corpus import read_pairs
from translator.errors import TranslatorError
from translator.model import Seq2SeqTransformer
from translator.tokenizer import Tokenizer

# Sections that define what the run *is*; changing them on an existing run would corrupt it.
_FIXED_SECTIONS = ("data", "tokenizer", "model")


class RunDirectory:
    def __init__(self, path: str | Path, flag: str = "--run-dir"):
        """`flag` is the command-line option that chose `path`, for error messages."""
        self.path = Path(path)
        self.flag = flag
        self.config_path = self.path / "config.yaml"
        self.tokenizer_dir = self.path / "tokenizer"
        self.checkpoint_dir = self.path / "checkpoints"
        self.best_dir = self.checkpoint_dir / "best"
        self.averaged_dir = self.checkpoint_dir / "averaged"
        self.log_dir = self.path / "logs"
        self.eval_dir = self.path / "eval"
        self.export_dir = self.path / "export"
        self.cache_dir = self.path / "cache"

    def load_config(self) -> ExperimentConfig:
        if not self.config_path.exists():
            raise TranslatorError(
                f"{self.path} is not a run directory (no config.yaml): train one with `translator train`"
            )
        return config_from_dict(read_yaml(self.config_path), origin=str(self.config_path))

    def prepare(self, config: ExperimentConfig, write: bool = True) -> ExperimentConfig:
        """Check that `config` continues this run (if any) and record it as config.yaml."""
        if self.config_path.exists():
            saved = self.load_config()
            for section in _FIXED_SECTIONS:
                old, new = getattr(saved, section).__dict__, getattr(config, section).__dict__
                for key in old:
                    if old[key] != new[key]:
                        raise TranslatorError(
                            f"{self.config_path} has {section}.{key}={old[key]!r} but this command asks for "
                            f"{new[key]!r}: use a new {self.flag}, or the run's own config"
                        )
        if write:
            self.path.mkdir(parents=True, exist_ok=True)
            temporary = self.config_path.with_suffix(".yaml.tmp")
            save_config(config, temporary)
            os.replace(temporary, self.config_path)
        return config

    def tokenizer(self, config: ExperimentConfig, write: bool = True, log=print) -> Tokenizer:
        """Load the run's tokenizer, or train it on the training split (only the writer trains)."""
        if any(self.tokenizer_dir.glob("*.model")):
            return Tokenizer.load(self.tokenizer_dir)
        if not write:  # another worker trains it: wait for its atomic write
            for _ in range(600):
                if any(self.tokenizer_dir.glob("*.model")):
                    return Tokenizer.load(self.tokenizer_dir)
                time.sleep(1)
            raise TranslatorError(f"{self.tokenizer_dir}: the chief did not write the tokenizer in 10 minutes")
        log(
            f"training SentencePiece ({config.tokenizer.model_type}, vocabulary {config.tokenizer.vocab_size}) "
            f"on {config.data.train}"
        )
        sources, targets = read_pairs(
            config.data.train, config.data.source_lang, config.data.target_lang, config.data.tfds_data_dir
        )
        tokenizer = Tokenizer.train(config.tokenizer, sources, targets)
        staging = self.path / "tokenizer.tmp"
        tokenizer.save(staging)
        os.replace(staging, self.tokenizer_dir)
        return tokenizer

    def build_model(self, config: ExperimentConfig, tokenizer: Tokenizer, dtype=None) -> Seq2SeqTransformer:
        model = Seq2SeqTransformer.from_model_config(
            config.model, tokenizer.source_vocab_size, tokenizer.target_vocab_size, dtype=dtype
        )
        model.build()
        return model

    def checkpoint_path(self, which: str = "auto") -> str:
        """Path prefix of a model checkpoint: `best`, `averaged`, `latest`, or `auto` (averaged, best, latest)."""
        choices = {"averaged": self.averaged_dir, "best": self.best_dir, "latest": self.checkpoint_dir}
        order = ["averaged", "best", "latest"] if which == "auto" else [which]
        if which not in choices and which != "auto":
            raise TranslatorError(f"unknown checkpoint {which!r}: choose auto, averaged, best or latest")
        for name in order:
            path = tf.train.latest_checkpoint(str(choices[name]))
            if path:
                return path
        raise TranslatorError(
            f"{self.checkpoint_dir}: no {'' if which == 'auto' else which + ' '}checkpoint yet; "
            "train first (`translator train --run-dir ...`)"
        )

    def load_model(self, which: str = "auto") -> tuple[Seq2SeqTransformer, Tokenizer, ExperimentConfig, str]:
        """The trained model (float32, for inference), its tokenizer and config, and the checkpoint used."""
        config = self.load_config()
        if not self.tokenizer_dir.exists():
            raise TranslatorError(f"{self.tokenizer_dir}: missing; the run directory is incomplete")
        tokenizer = Tokenizer.load(self.tokenizer_dir)
        pieces = max(tokenizer.source_vocab_size, tokenizer.target_vocab_size)
        if pieces > config.tokenizer.vocab_size:
            raise TranslatorError(
                f"{self.tokenizer_dir}: a vocabulary of {pieces} pieces, but {self.config_path} says "
                f"tokenizer.vocab_size={config.tokenizer.vocab_size}: the tokenizer belongs to another run"
            )
        model = self.build_model(config, tokenizer)
        path = self.checkpoint_path(which)
        restore(tf.train.Checkpoint(model=model), path, partial=True)
        return model, tokenizer, config, path


def restore(checkpoint: tf.train.Checkpoint, path: str, partial: bool = False) -> None:
    """Restore `path` into `checkpoint`, or fail with one line naming the checkpoint. `partial` allows
    a checkpoint holding more than `checkpoint` tracks (the optimizer, when only the model is wanted)."""
    try:
        status = checkpoint.restore(path)
        (status.expect_partial() if partial else status).assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError, IndexError) as error:  # IndexError: a truncated file
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TranslatorError(f"checkpoint {path} cannot be restored ({first})") from None
