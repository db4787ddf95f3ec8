"""One worker of a MultiWorkerMirroredStrategy run (TF_CONFIG set by the test): trains the tiny
preset, then saves its final weights to WEIGHTS_FILE for comparison with the other worker."""

import sys

import numpy as np

from translator.config import load_config
from translator.training import Trainer

run_dir, weights_file, steps = sys.argv[1], sys.argv[2], sys.argv[3]
config = load_config("tiny", ["train.strategy=multiworker", f"train.steps={steps}", "train.checkpoint_every=5"])
trainer = Trainer(config, run_dir)
trainer.run_loop()
np.savez(weights_file, *trainer.model.get_weights())
