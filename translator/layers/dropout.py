"""Dropout whose mask costs half the random numbers of Keras' own.

On CPU, Keras draws one float32 uniform per element through Philox, and those draws were about a tenth
of a training step's op time at the tutorial size, where the multiply that applies the mask costs a
fraction of that. A keep/drop decision needs far fewer than 32 random bits: this layer compares the
16-bit halves of each 32-bit draw with the rate, so a mask costs half the draws. The rate becomes
round(rate × 65536) / 65536 (0.1 → 0.100006), and kept values are scaled by the inverse of that exact
keep probability, so expectations are unchanged.

Everything else is Keras' `Dropout`: the same seed generator (so the same checkpointed state, exact
resume and seeding) and the same config; a `noise_shape` goes through Keras' own code.
"""

from __future__ import annotations

import keras
import tensorflow as tf

_LEVELS = 1 << 16  # values of a 16-bit draw


@keras.saving.register_keras_serializable(package="translator")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` with a mask from 16 random bits per element (see the module docstring)."""

    def call(self, inputs, training=False):
        drop_levels = round(self.rate * _LEVELS)
        if not training or self.noise_shape is not None or drop_levels in (0, _LEVELS):
            return super().call(inputs, training=training)  # also a rate within 2⁻¹⁷ of 0 or 1
        keep_probability = 1.0 - drop_levels / _LEVELS
        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), 2**31 - 1), tf.int32)  # stateless ops take int32
        size = tf.size(inputs)
        draws = tf.random.stateless_uniform([(size + 1) // 2], seed=seed, minval=None, maxval=None, dtype=tf.uint32)
        halves = tf.reshape(tf.bitcast(draws, tf.uint16), [-1])[:size]
        keep = tf.reshape(halves >= tf.constant(drop_levels, tf.uint16), tf.shape(inputs))
        return tf.where(keep, inputs * tf.constant(1.0 / keep_probability, inputs.dtype), tf.zeros_like(inputs))
