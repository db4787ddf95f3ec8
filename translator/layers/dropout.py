"""Dropout whose mask is cheap: a keyed integer hash XLA can fuse when compiled, half a Philox draw when not.

Why: a training step of the tutorial-size model takes ~40 million dropout decisions. TensorFlow's
stateless Philox kernel is opaque to XLA, so in a compiled step it is neither fused nor cheap on CPU:
it was a fifth of the step time. Under XLA this layer draws its mask from a counter-based hash — two
rounds of MurmurHash3's 32-bit finalizer over (position, seed) — a dozen integer ops per element that
XLA fuses with the multiply that applies the mask (`translator bench train`, docs/benchmarks.md).
Without XLA those ops would be a dozen separate kernels, slower than Philox, so there the layer draws
Philox's 32-bit words as Keras' `Dropout` does, but makes two 16-bit decisions of each word instead of
one float: half the draw, which was an eighth of the bfloat16 step without XLA (1/65,536 is the keep
probability's resolution). Either way: at training, each element is kept with probability 1 - rate and
scaled by 1 / (1 - rate); seeds come from the layer's `SeedGenerator` (checkpointed with the model,
advanced on every call), so runs are reproducible and each call draws a new mask.
"""

import keras
import tensorflow as tf
from tensorflow.python.framework import ops
from tensorflow.python.ops import control_flow_util

_GOLDEN = 0x9E3779B9  # 2^32 / golden ratio: spreads consecutive positions over the 32-bit range


def _shift(x: tf.Tensor, bits: int) -> tf.Tensor:
    return tf.bitwise.right_shift(x, tf.constant(bits, tf.uint32))


def _fmix32(x: tf.Tensor) -> tf.Tensor:
    """MurmurHash3's finalizer: a bijection on uint32 in which every input bit flips each output bit
    with probability ~1/2."""
    x = tf.bitwise.bitwise_xor(x, _shift(x, 16)) * tf.constant(0x85EBCA6B, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, _shift(x, 13)) * tf.constant(0xC2B2AE35, tf.uint32)
    return tf.bitwise.bitwise_xor(x, _shift(x, 16))


def hashed_uniform_bits(shape: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """uint32 tensor of `shape` whose elements are independent-looking functions of (position, seed).

    seed: two integers (a Keras seed state). Both are mixed into per-call keys first, so seeds that
    differ by one (consecutive calls) give unrelated masks, not shifted copies of each other.
    """
    seed = tf.cast(tf.math.floormod(tf.cast(seed, tf.int64), 2**32), tf.uint32)
    key_0 = _fmix32(seed[0] + tf.constant(_GOLDEN, tf.uint32))
    key_1 = _fmix32(tf.bitwise.bitwise_xor(seed[1], key_0) * tf.constant(_GOLDEN, tf.uint32))
    positions = tf.bitcast(tf.range(tf.reduce_prod(shape), dtype=tf.int32), tf.uint32)
    bits = _fmix32(tf.bitwise.bitwise_xor(positions * tf.constant(_GOLDEN, tf.uint32), key_0))
    bits = _fmix32(tf.bitwise.bitwise_xor(bits, key_1))
    return tf.reshape(bits, shape)


def _apply_mask(inputs: tf.Tensor, keep: tf.Tensor, rate: float) -> tf.Tensor:
    """Kept elements scaled by 1 / (1 - rate), the others zeroed."""
    return tf.where(keep, inputs * tf.cast(1.0 / (1.0 - rate), inputs.dtype), tf.zeros_like(inputs))


def hashed_dropout(inputs: tf.Tensor, rate: float, seed: tf.Tensor) -> tf.Tensor:
    """Zero each element with probability `rate` (to 2^-32), scale the rest by 1 / (1 - rate)."""
    if rate >= 1.0:
        return tf.zeros_like(inputs)
    threshold = min(round(rate * 2**32), 2**32 - 1)
    keep = hashed_uniform_bits(tf.shape(inputs), seed) >= tf.constant(threshold, tf.uint32)
    return _apply_mask(inputs, keep, rate)


def halfword_dropout(inputs: tf.Tensor, rate: float, seed: tf.Tensor) -> tf.Tensor:
    """Zero each element with probability `rate` (to 2^-16), scale the rest by 1 / (1 - rate); each
    32-bit word of stateless Philox (keyed by `seed`, two integers) makes two decisions."""
    if rate >= 1.0:
        return tf.zeros_like(inputs)
    threshold = min(round(rate * 2**16), 2**16 - 1)
    count = tf.size(inputs)
    words = tf.random.stateless_uniform([(count + 1) // 2], seed, minval=None, maxval=None, dtype=tf.uint32)
    halves = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:count]  # the slice copies only for an odd count
    keep = tf.reshape(halves >= tf.constant(threshold, tf.uint16), tf.shape(inputs))
    return _apply_mask(inputs, keep, rate)


def compiling_with_xla() -> bool:
    """True while tracing inside `tf.function(jit_compile=True)` (or a TPU computation).

    TensorFlow has no public API for this; its own gradient and control-flow code asks the same
    question this way (tests/test_dropout.py checks both answers).
    """
    return control_flow_util.GraphOrParentsInXlaContext(ops.get_default_graph())


@keras.saving.register_keras_serializable(package="translator")
class FusibleDropout(keras.layers.Dropout):
    """`keras.layers.Dropout` whose mask comes from `hashed_dropout` when compiled by XLA and from
    `halfword_dropout` otherwise (no `noise_shape`)."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        if kwargs.pop("noise_shape", None) is not None:
            raise ValueError("FusibleDropout draws one decision per element: noise_shape is not supported")
        super().__init__(rate, seed=seed, **kwargs)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if compiling_with_xla():
            return hashed_dropout(inputs, self.rate, self.seed_generator.next())
        return halfword_dropout(inputs, self.rate, self.seed_generator.next())
