"""Checkpoints of a run: which one a command uses, restoring it, and averaging the last K.

A run keeps the last `train.keep_checkpoints` training checkpoints (model, optimizer, step) in
`checkpoints/`, the best by dev BLEU in `checkpoints/best/`, and the mean of the last K in
`checkpoints/averaged/`. Every checkpoint file name ends in its step (`ckpt-920`), which is how
`auto` tells a stale averaged or best checkpoint from a current one.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from translator.errors import TranslatorError
from translator.rundir import RunDirectory

CHOICES = ("auto", "averaged", "best", "latest")


@dataclasses.dataclass(frozen=True)
class CheckpointChoice:
    path: str
    step: int
    kind: str  # averaged | best | latest
    note: str = ""  # why `auto` passed over an older checkpoint, for the user


def checkpoint_step(path: str) -> int:
    """The step a checkpoint was written at, from its name (`.../ckpt-920` → 920)."""
    return int(path.rsplit("-", 1)[-1])


def choose_checkpoint(run: RunDirectory, which: str = "auto") -> CheckpointChoice:
    """The checkpoint `which` names. `auto` takes the averaged checkpoint, else the best one, but
    only when it is as new as the latest training checkpoint: after a resumed run an old averaged or
    best checkpoint is passed over for the latest one, and `note` says so."""
    if which not in CHOICES:
        raise TranslatorError(f"unknown checkpoint {which!r}: choose {', '.join(CHOICES)}")
    folders = {"averaged": run.averaged_dir, "best": run.best_dir, "latest": run.checkpoint_dir}
    found = {kind: tf.train.latest_checkpoint(str(folder)) for kind, folder in folders.items()}
    if which != "auto":
        if not found[which]:
            raise TranslatorError(f"{folders[which]}: no {which} checkpoint; train first (`translator train`)")
        return CheckpointChoice(found[which], checkpoint_step(found[which]), which)
    latest = found["latest"]
    if not latest:
        for kind in ("averaged", "best"):  # a run directory copied without its training checkpoints
            if found[kind]:
                return CheckpointChoice(found[kind], checkpoint_step(found[kind]), kind)
        raise TranslatorError(
            f"{run.checkpoint_dir}: no checkpoint yet; train first (`translator train --run-dir ...`)"
        )
    latest_step = checkpoint_step(latest)
    stale = [
        f"{kind} (step {checkpoint_step(found[kind])})"
        for kind in ("averaged", "best")
        if found[kind] and checkpoint_step(found[kind]) < latest_step
    ]
    kind = next((k for k in ("averaged", "best") if found[k] and checkpoint_step(found[k]) >= latest_step), "latest")
    note = f"passed over the older {' and '.join(stale)}: choose one with --checkpoint" if stale else ""
    return CheckpointChoice(found[kind], checkpoint_step(found[kind]), kind, note)


def restore(checkpoint: tf.train.Checkpoint, path: str, partial: bool = False) -> None:
    """Restore `path` into `checkpoint`, or fail with one line naming the checkpoint. `partial` allows
    a checkpoint holding more than `checkpoint` tracks (the optimizer, when only the model is wanted)."""
    try:
        status = checkpoint.restore(path)
        (status.expect_partial() if partial else status).assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError, IndexError) as error:  # IndexError: a truncated file
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TranslatorError(f"checkpoint {path} cannot be restored ({first})") from error


def average_checkpoints(run_dir: str, last: int) -> str:
    """Average the model weights of the last `last` checkpoints into RUN_DIR/checkpoints/averaged/.

    Returns the path of the new checkpoint. Only model weights are averaged; the optimizer state is
    not carried over (the averaged checkpoint is for evaluation, translation and export).
    """
    from translator.model import build_model
    from translator.tokenizer import Tokenizer

    if last < 1:  # [-0:] would be every checkpoint
        raise TranslatorError(f"average: the number of checkpoints must be at least 1, got {last}")
    run = RunDirectory(run_dir)
    config = run.load_config()
    state = tf.train.get_checkpoint_state(str(run.checkpoint_dir))
    paths = list(state.all_model_checkpoint_paths)[-last:] if state else []
    if len(paths) < last:
        limit = (
            f" (train.keep_checkpoints keeps {config.train.keep_checkpoints})"
            if len(paths) == config.train.keep_checkpoints
            else ""
        )
        raise TranslatorError(
            f"{run.checkpoint_dir}: {len(paths)} checkpoint(s), cannot average the last {last}{limit}"
        )
    model = build_model(config, Tokenizer.load(run.tokenizer_dir))
    checkpoint = tf.train.Checkpoint(model=model)
    total = None
    for path in paths:
        restore(checkpoint, path, partial=True)
        weights = [w.astype(np.float64) for w in model.get_weights()]
        total = weights if total is None else [t + w for t, w in zip(total, weights)]
    model.set_weights([(t / len(paths)).astype(np.float32) for t in total])
    manager = tf.train.CheckpointManager(checkpoint, str(run.averaged_dir), max_to_keep=1)
    return manager.save(checkpoint_number=checkpoint_step(paths[-1]))
