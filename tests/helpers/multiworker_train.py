"""One worker of a MultiWorkerMirroredStrategy run (TF_CONFIG set by the test): trains the tiny
preset with time-based checkpoints every CHECKPOINT_MINUTES (and any further KEY=VALUE settings), then
saves its final weights to WEIGHTS_FILE for comparison with the other worker."""

import sys

import numpy as np

from translator.config import load_config
from translator.training import Trainer

run_dir, weights_file, steps, minutes, *settings = sys.argv[1:]
config = load_config(
    "tiny",
    [
        "train.strategy=multiworker",
        f"train.steps={steps}",
        "train.checkpoint_every=1000",  # only the clock decides: each worker's own, so they must agree
        f"train.checkpoint_minutes={minutes}",
        "train.log_every=5",
        "data.dev=",
        *settings,
    ],
)
trainer = Trainer(config, run_dir, log=lambda line: print(line, flush=True))
trainer.run_loop()
np.savez(weights_file, *trainer.model.get_weights())
