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
from pathlib import Path

from translator.config import ExperimentConfig, config_from_dict, read_yaml, save_config
from translator.errors import TranslatorError

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

    def exists(self) -> bool:
        return self.config_path.exists()

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
