"""Learning-rate schedules: the inverse-square-root schedule of "Attention Is All You Need", and the
cooldown (linear or 1-sqrt) that ends a run at a learning rate of zero."""

from __future__ import annotations

import keras
import tensorflow as tf

from translator.config import COOLDOWN_SHAPES

NEVER = 2**62  # a cooldown start no run reaches: the factor stays exactly 1


class Cooldown(tf.Module):
    """Where the learning rate falls to zero: over the updates [start, start + length).

    A run with a fixed budget learns most from its last steps when the rate ends at zero: the weights
    settle instead of jittering at the size of the last step (the "cooldown" of warmup-stable-decay
    schedules, Hägele et al., 2024). `start` and `length` are variables, not constants, because a run
    with a time budget can only fix them once it has measured its speed; they are checkpointed with the
    run, so a resumed run keeps the plan it made. Before `begin` is called the factor is exactly 1.

    `shape` is how it falls, with p the share of the cooldown done: `linear` (1 − p) or `1-sqrt`
    (1 − √p), which drops the rate faster at first and spends longer at small rates; Hägele et al. found
    it the better of the two at equal length. The shape is configuration, not state: it is
    not checkpointed.
    """

    def __init__(self, start: int = NEVER, length: int = 1, shape: str = "linear", name: str = "cooldown"):
        super().__init__(name=name)
        if shape not in COOLDOWN_SHAPES:
            raise ValueError(f"cooldown shape must be one of {', '.join(COOLDOWN_SHAPES)}, got {shape!r}")
        self.shape = shape
        self.start = tf.Variable(start, dtype=tf.int64, trainable=False, name="start")
        self.length = tf.Variable(max(length, 1), dtype=tf.int64, trainable=False, name="length")

    @property
    def started(self) -> bool:
        return int(self.start.numpy()) < NEVER

    @property
    def end(self) -> int:
        """The update at which the rate reaches zero (training has nothing left to do)."""
        return int(self.start.numpy()) + int(self.length.numpy())

    def begin(self, start: int, length: int) -> None:
        self.start.assign(start)
        self.length.assign(max(length, 1))

    def factor(self, step: tf.Tensor) -> tf.Tensor:
        """1 before `start`, then 1 − p (linear) or 1 − √p (1-sqrt) with p = (step − start) / length, then 0
        (float32)."""
        left = tf.cast(self.start + self.length - tf.cast(step, tf.int64), tf.float32)
        remaining = tf.clip_by_value(left / tf.cast(self.length, tf.float32), 0.0, 1.0)  # 1 − p
        return remaining if self.shape == "linear" else 1.0 - tf.sqrt(1.0 - remaining)


@keras.saving.register_keras_serializable(package="translator")
class InverseSqrtSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = scale · d_model^-0.5 · min(step^-0.5, step · warmup^-1.5): linear warm-up, then 1/√step,
    times a `Cooldown`'s factor when one is given.

    It is a function of the optimizer's step counter (and the cooldown's variables) only, so restoring
    the optimizer (and the cooldown) restores it.
    """

    def __init__(self, d_model: int, warmup_steps: int = 4000, scale: float = 2.0, cooldown: Cooldown | None = None):
        self.d_model = d_model
        self.warmup_steps = warmup_steps
        self.scale = scale
        self.cooldown = cooldown

    def __call__(self, step):
        counted = tf.cast(step, tf.float32) + 1.0
        warmup = float(max(self.warmup_steps, 1))
        rate = self.scale * self.d_model**-0.5 * tf.minimum(tf.math.rsqrt(counted), counted * warmup**-1.5)
        return rate if self.cooldown is None else rate * self.cooldown.factor(step)

    def get_config(self):
        config = {"d_model": self.d_model, "warmup_steps": self.warmup_steps, "scale": self.scale}
        if self.cooldown is not None:
            cooldown = self.cooldown
            config["cooldown"] = {"start": int(cooldown.start.numpy()), "length": int(cooldown.length.numpy())}
            if cooldown.shape != "linear":  # configs saved before the shape existed stay as they were
                config["cooldown"]["shape"] = cooldown.shape
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        cooldown = config.pop("cooldown", None)
        return cls(**config, cooldown=None if cooldown is None else Cooldown(**cooldown))
