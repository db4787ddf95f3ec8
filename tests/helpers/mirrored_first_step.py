"""Run in a fresh process (logical CPU devices must be configured before TensorFlow starts).

Takes one step of the tiny preset under MirroredStrategy over 2 logical CPUs, and the same step on
one device over the same global batch (the union of the replicas' batches), starting from the same
weights. Prints JSON with both losses and the largest weight difference after the step.

Both sides update with plain SGD (learning rate 1, inside the same loss-scale guard the trainer uses),
so the weight change is the gradient itself: Adam's first step, lr·g/(|g|+ε), turns float rounding in
near-zero gradients into differences as large as the learning rate.
"""

import json
import sys

import keras
import numpy as np
import tensorflow as tf

from translator.config import load_config
from translator.losses import smoothed_cross_entropy_sum
from translator.model import build_model
from translator.training import Trainer


def sgd() -> keras.optimizers.LossScaleOptimizer:
    return keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(1.0), initial_scale=1.0)


run_dir = sys.argv[1]
config = load_config("tiny", ["train.strategy=mirrored", "train.cpu_devices=2", "train.batch_tokens=1024"])
trainer = Trainer(config, run_dir, log=lambda line: None)
assert trainer.strategy.num_replicas_in_sync == 2
with trainer.strategy.scope():
    trainer.optimizer = sgd()
    trainer.optimizer.build(trainer.model.trainable_variables)
initial = [w.copy() for w in trainer.model.get_weights()]

peek = trainer._datasets()
features, labels = next(peek)
local_features = [
    {key: trainer.strategy.experimental_local_results(value)[i] for key, value in features.items()} for i in range(2)
]
local_labels = trainer.strategy.experimental_local_results(labels)

loss_sum, tokens = trainer._train_step_fn()(trainer._datasets())
mirrored_loss = float(loss_sum / tokens)
mirrored_weights = trainer.model.get_weights()

# The same step on one device: one model, the global mean loss over both replicas' batches.
single = build_model(trainer.config, trainer.tokenizer)
single.set_weights(initial)
optimizer = sgd()
optimizer.build(single.trainable_variables)
with tf.GradientTape() as tape:
    sums, counts = zip(
        *[
            smoothed_cross_entropy_sum(y, single(x, training=True), config.train.label_smoothing)
            for x, y in zip(local_features, local_labels)
        ]
    )
    single_loss = tf.add_n(sums) / tf.add_n(counts)
optimizer.apply_gradients(zip(tape.gradient(single_loss, single.trainable_variables), single.trainable_variables))
difference = max(float(np.abs(a - b).max()) for a, b in zip(mirrored_weights, single.get_weights()))
moved = max(float(np.abs(a - b).max()) for a, b in zip(initial, single.get_weights()))
print(
    json.dumps(
        {
            "mirrored_loss": mirrored_loss,
            "single_loss": float(single_loss),
            "weight_difference": difference,
            "weights_moved": moved,
            "replica_batches": [int(x["source_ids"].shape[0]) for x in local_features],
        }
    )
)
