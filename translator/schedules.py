"""The inverse-square-root learning-rate schedule of "Attention Is All You Need"."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="translator")
class InverseSqrtSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = scale · d_model^-0.5 · min(step^-0.5, step · warmup^-1.5): linear warm-up, then 1/√step.

    It is a function of the optimizer's step counter only, so restoring the optimizer restores it.
    """

    def __init__(self, d_model: int, warmup_steps: int = 4000, scale: float = 2.0):
        self.d_model = d_model
        self.warmup_steps = warmup_steps
        self.scale = scale

    def __call__(self, step):
        step = tf.cast(step, tf.float32) + 1.0
        warmup = float(max(self.warmup_steps, 1))
        return self.scale * self.d_model**-0.5 * tf.minimum(tf.math.rsqrt(step), step * warmup**-1.5)

    def get_config(self):
        return {"d_model": self.d_model, "warmup_steps": self.warmup_steps, "scale": self.scale}
