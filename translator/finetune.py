"""Fine-tuning: a new run that starts from another run's weights and tokenizer.

`translator train --init-from PARENT_RUN[:checkpoint] --run-dir CHILD` (config key `train.init_from`)
makes CHILD a run of its own: its data may differ from the parent's, its optimizer state and
learning-rate schedule start afresh (so `train.warmup_steps`, `train.learning_rate` and `train.steps`
apply to the child), and its step count starts at 0. What must not differ is what the weights were
trained for: the tokenizer (copied from the parent, so a conflicting `tokenizer.*` setting is refused)
and the model's shape (`model.*`, except the dropout rates, which only regularize). The parent is only
read, never written.

The child's config.yaml records the parent's path (`train.init_from`) and the checkpoint actually used
(`train.init_checkpoint`). Once the child has checkpoints of its own, `train` resumes the child and
`--init-from` is ignored (with a note), so a resumed fine-tuning never jumps back to the parent.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from collections.abc import Callable

import tensorflow as tf

from translator import storage
from translator.checkpoints import CHOICES, CheckpointChoice, choose_checkpoint
from translator.config import ExperimentConfig
from translator.errors import TranslatorError
from translator.rundir import RunDirectory

# Model keys that change no weight's shape or meaning: a child may set its own.
_FREE_MODEL_KEYS = ("dropout", "attention_dropout")


@dataclasses.dataclass(frozen=True)
class Parent:
    """The run a child starts from, and the checkpoint of it that is used."""

    run: RunDirectory
    checkpoint: CheckpointChoice


def parse_init_from(spec: str) -> tuple[str, str]:
    """`PARENT_RUN[:checkpoint]` → (parent path, auto|averaged|best|latest). Only a known checkpoint
    name after the last colon is split off, so `gs://bucket/runs/base` stays one path."""
    path, sep, which = spec.rpartition(":")
    if sep and which in CHOICES and path:
        return path, which
    return spec, "auto"


def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def resolve_parent(
    config: ExperimentConfig, run: RunDirectory, log: Callable[[str], None] = print
) -> tuple[ExperimentConfig, Parent | None]:
    """The config to record for the run in `run`, and the parent to initialize it from (None when
    there is nothing to initialize: no `train.init_from`, or the run has checkpoints of its own).

    Checks that the parent is a trained run whose tokenizer and model settings the config shares.
    """
    if tf.train.latest_checkpoint(str(run.checkpoint_dir)):
        recorded = run.load_config().train
        if config.train.init_from:
            log(
                f"note: {run.path} has checkpoints of its own: resuming it, not re-initializing from "
                f"{config.train.init_from} (--init-from is ignored)"
            )
        train = dataclasses.replace(
            config.train, init_from=recorded.init_from, init_checkpoint=recorded.init_checkpoint
        )
        return config.replace(train=train), None
    if not config.train.init_from:
        return config.replace(train=dataclasses.replace(config.train, init_checkpoint="")), None
    path, which = parse_init_from(config.train.init_from)
    parent_run = RunDirectory(path, flag="--init-from")
    if _absolute(parent_run.path) == _absolute(run.path):
        raise TranslatorError(f"--init-from {config.train.init_from}: the parent must be another run than --run-dir")
    parent_config = parent_run.load_config()
    check_compatible(parent_config, config, config.train.init_from)
    parent = Parent(parent_run, choose_checkpoint(parent_run, which))
    train = dataclasses.replace(
        config.train, init_from=_absolute(parent_run.path), init_checkpoint=_absolute(parent.checkpoint.path)
    )
    return config.replace(train=train), parent


def check_compatible(parent: ExperimentConfig, child: ExperimentConfig, spec: str) -> None:
    """Refuse a child whose tokenizer or model settings differ from its parent's, naming the key."""
    for section, free in (("tokenizer", ()), ("model", _FREE_MODEL_KEYS)):
        mine, theirs = getattr(child, section).__dict__, getattr(parent, section).__dict__
        for key, value in theirs.items():
            if key not in free and mine[key] != value:
                raise TranslatorError(
                    f"--init-from {spec}: {section}.{key}={mine[key]!r} but the parent has {value!r}: a fine-tuned "
                    f"run keeps its parent's {'tokenizer' if section == 'tokenizer' else 'model shape'} "
                    f"(drop the setting, or --set {section}.{key}={value!r})"
                )


def copy_tokenizer(parent: Parent, run: RunDirectory) -> None:
    """Copy the parent's SentencePiece model(s) into the child's tokenizer/ (the parent is only read).
    A child that already holds another tokenizer is refused rather than overwritten."""
    names = [posixpath.basename(path) for path in storage.glob(storage.join(parent.run.tokenizer_dir, "*.model"))]
    if not names:
        raise TranslatorError(f"--init-from {parent.run.path}: {parent.run.tokenizer_dir} holds no tokenizer")
    for name in names:
        source, target = storage.join(parent.run.tokenizer_dir, name), storage.join(run.tokenizer_dir, name)
        data = storage.read_bytes(source)
        if storage.exists(target):
            if storage.read_bytes(target) != data:
                raise TranslatorError(
                    f"{target} is not the tokenizer of the parent {parent.run.path}: use a new --run-dir"
                )
            continue
        storage.write_bytes(target, data)
