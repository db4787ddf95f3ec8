"""The run directory's layout, and the check that a command's config continues the run in it.

RUN_DIR/config.yaml     the resolved config (written by `train`, read by every other command)
RUN_DIR/tokenizer/      SentencePiece models
RUN_DIR/checkpoints/    model + optimizer + step (the last K), best/ (by dev BLEU), averaged/
RUN_DIR/logs/           TensorBoard
RUN_DIR/eval/           SPLIT.json scores and SPLIT.hyp hypotheses
RUN_DIR/export/         the SavedModel
RUN_DIR/cache/          the tokenized training corpus

What lives in these folders is made elsewhere: the tokenizer by `translator.tokenizer`, the model by
`translator.model`, checkpoints and their choice by `translator.checkpoints`.
"""

from __future__ import annotations

import os

from translator import storage
from translator.config import ExperimentConfig, config_from_dict, config_to_yaml, parse_yaml
from translator.constants import EXPORT_MARKERS
from translator.errors import TranslatorError

# Sections that define what the run *is*; changing them on an existing run would corrupt it.
_FIXED_SECTIONS = ("data", "tokenizer", "model")


class RunDirectory:
    """Paths are strings and every access goes through `translator.storage` (tf.io.gfile), so a run
    directory may be `gs://bucket/runs/base` as well as `runs/base`."""

    def __init__(self, path: str | os.PathLike, flag: str = "--run-dir"):
        """`flag` is the command-line option that chose `path`, for error messages."""
        self.path = os.fspath(path)
        self.flag = flag
        self.config_path = storage.join(self.path, "config.yaml")
        self.tokenizer_dir = storage.join(self.path, "tokenizer")
        self.checkpoint_dir = storage.join(self.path, "checkpoints")
        self.best_dir = storage.join(self.checkpoint_dir, "best")
        self.averaged_dir = storage.join(self.checkpoint_dir, "averaged")
        self.log_dir = storage.join(self.path, "logs")
        self.eval_dir = storage.join(self.path, "eval")
        self.export_dir = storage.join(self.path, "export")
        self.cache_dir = storage.join(self.path, "cache")

    def exists(self) -> bool:
        return storage.exists(self.config_path)

    def missing(self) -> TranslatorError:
        """The error for a path that holds no run."""
        return self.export_mistaken_for_a_run() or TranslatorError(
            f"{self.path} is not a run directory (no config.yaml): train one with `translator train`"
        )

    def export_mistaken_for_a_run(self) -> TranslatorError | None:
        """The error for an export given where a run directory is expected, naming the flag that takes
        it; None if the path holds no export."""
        if storage.exists(storage.join(self.path, EXPORT_MARKERS["savedmodel"])):
            return TranslatorError(
                f"{self.path} is an exported SavedModel, not a run directory: "
                "translate, evaluate, serve and info take it as --export-dir"
            )
        if storage.exists(storage.join(self.path, EXPORT_MARKERS["ctranslate2"])):
            return TranslatorError(
                f"{self.path} is a CTranslate2 export, not a run directory: "
                "translate, evaluate, score and info take it as --ct2-dir"
            )
        return None

    def load_config(self) -> ExperimentConfig:
        if not self.exists():
            raise self.missing()
        values = parse_yaml(storage.read_text(self.config_path), self.config_path)
        return config_from_dict(values, origin=self.config_path)

    def prepare(self, config: ExperimentConfig, write: bool = True) -> ExperimentConfig:
        """Check that `config` continues this run (if any) and record it as config.yaml."""
        if self.exists():
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
            storage.write_text(self.config_path, config_to_yaml(config))
        return config
