"""Checkpoint averaging: the mean of the last K checkpoints' weights, often better than any one of them."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from translator.errors import TranslatorError
from translator.rundir import RunDirectory, restore
from translator.tokenizer import Tokenizer


def average_checkpoints(run_dir: str, last: int) -> str:
    """Average the model weights of the last `last` checkpoints into RUN_DIR/checkpoints/averaged/.

    Returns the path of the new checkpoint. Only model weights are averaged; the optimizer state is
    not carried over (the averaged checkpoint is for evaluation, translation and export).
    """
    run = RunDirectory(run_dir)
    config = run.load_config()
    state = tf.train.get_checkpoint_state(str(run.checkpoint_dir))
    paths = list(state.all_model_checkpoint_paths)[-last:] if state else []
    if len(paths) < max(last, 1):
        raise TranslatorError(
            f"{run.checkpoint_dir}: {len(paths)} checkpoint(s) kept, cannot average the last {last}"
            " (raise train.keep_checkpoints)"
        )
    model = run.build_model(config, Tokenizer.load(run.tokenizer_dir))
    checkpoint = tf.train.Checkpoint(model=model)
    total = None
    for path in paths:
        restore(checkpoint, path, partial=True)
        weights = [w.astype(np.float64) for w in model.get_weights()]
        total = weights if total is None else [t + w for t, w in zip(total, weights)]
    model.set_weights([(t / len(paths)).astype(np.float32) for t in total])
    step = int(paths[-1].rsplit("-", 1)[-1])
    manager = tf.train.CheckpointManager(checkpoint, str(run.averaged_dir), max_to_keep=1)
    return manager.save(checkpoint_number=step)
