"""Run in a fresh process (logical CPU devices must be configured before TensorFlow starts).

Trains 3 updates of the tiny preset under MirroredStrategy over 2 logical CPUs — Adam on the warm-up
schedule, gradient clipping, 2 accumulated batches per update, label smoothing — and the same 3
updates on one device over the same global batches (the union of every replica's batches), from the
same weights. Prints JSON with the largest weight difference after them.

Adam runs with ε = 1e-6 on both sides: with the preset's 1e-9, Adam's first steps, lr·g/(|g|+ε), turn
float rounding in gradients of ~1e-9 (summed in another order on two replicas) into differences as
large as the learning rate; a larger ε keeps the comparison about the training step, not about that.
"""

import json
import sys

import keras
import numpy as np
import tensorflow as tf

from translator.config import load_config
from translator.losses import smoothed_cross_entropy_sum
from translator.model import build_model
from translator.optimizers import transformer_adam
from translator.training import Trainer

STEPS, ACCUMULATE, CLIP = 3, 2, 0.05


def adam(config) -> keras.optimizers.LossScaleOptimizer:
    inner = transformer_adam(config.model.d_model, config.train.warmup_steps, config.train.learning_rate, epsilon=1e-6)
    return keras.optimizers.LossScaleOptimizer(inner, initial_scale=1.0)


run_dir = sys.argv[1]
config = load_config(
    "tiny",
    [
        "train.strategy=mirrored",
        "train.cpu_devices=2",
        "train.batch_tokens=1024",
        f"train.accumulate_steps={ACCUMULATE}",
        f"train.clip_norm={CLIP}",
        "train.label_smoothing=0.1",
    ],
)
trainer = Trainer(config, run_dir, log=lambda line: None)
assert trainer.strategy.num_replicas_in_sync == 2
with trainer.strategy.scope():
    trainer.optimizer = adam(config)
    trainer.optimizer.build(trainer.model.trainable_variables)
initial = [w.copy() for w in trainer.model.get_weights()]

peek = trainer._datasets()
updates = []  # per update: the (features, labels) of every replica and accumulation step
for _ in range(STEPS):
    batches = []
    for _ in range(ACCUMULATE):
        features, labels = next(peek)
        for replica in range(2):
            local = {
                key: trainer.strategy.experimental_local_results(value)[replica] for key, value in features.items()
            }
            batches.append((local, trainer.strategy.experimental_local_results(labels)[replica]))
    updates.append(batches)

train_step, iterator = trainer._train_step_fn(), trainer._datasets()
for _ in range(STEPS):
    train_step(iterator)
mirrored_weights = trainer.model.get_weights()

# The same updates on one device: the gradient of the mean loss over every real token of the global
# batch, its global norm clipped, then Adam.
single = build_model(trainer.config, trainer.tokenizer)
single.set_weights(initial)
optimizer = adam(config)
optimizer.build(single.trainable_variables)
norms = []
for batches in updates:
    with tf.GradientTape() as tape:
        sums, counts = zip(
            *[smoothed_cross_entropy_sum(y, single(x, training=True), config.train.label_smoothing) for x, y in batches]
        )
        loss = tf.add_n(sums) / tf.add_n(counts)
    gradients = tape.gradient(loss, single.trainable_variables)
    norms.append(float(tf.linalg.global_norm(gradients)))
    gradients, _ = tf.clip_by_global_norm(gradients, CLIP)
    optimizer.apply_gradients(zip(gradients, single.trainable_variables))
difference = max(float(np.abs(a - b).max()) for a, b in zip(mirrored_weights, single.get_weights()))
moved = max(float(np.abs(a - b).max()) for a, b in zip(initial, single.get_weights()))
print(json.dumps({"weight_difference": difference, "weights_moved": moved, "gradient_norms": norms}))
