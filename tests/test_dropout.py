"""FusibleDropout: half-word Philox masks outside XLA, the hashed mask inside, each with what dropout needs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from translator.layers import FusibleDropout
from translator.layers.dropout import compiling_with_xla, halfword_dropout, hashed_dropout, hashed_uniform_bits

ONES = tf.ones([64, 50, 320])  # 1,024,000 elements: the kept fraction's standard deviation is 3e-4 at rate 0.1


def kept(outputs) -> np.ndarray:
    return np.asarray(outputs) != 0


MASKS = pytest.mark.parametrize("dropout", [hashed_dropout, halfword_dropout], ids=["hashed", "halfword"])


@MASKS
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_keeps_one_minus_rate_and_scales_what_it_keeps(rate, dropout):
    outputs = dropout(ONES, rate, tf.constant([7, 0])).numpy()
    mask = kept(outputs)
    assert abs(mask.mean() - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / mask.size)
    np.testing.assert_allclose(outputs[mask], 1 / (1 - rate), rtol=1e-6)
    assert abs(outputs.mean() - 1.0) < 0.01  # the expectation of each element is unchanged


@MASKS
def test_neighbouring_decisions_are_uncorrelated(dropout):
    mask = kept(dropout(ONES, 0.5, tf.constant([1, 2]))).astype(np.float64)
    flat = mask.reshape(-1)
    for lag in (1, 2, 320, 50 * 320):  # the next element, feature, position and sentence
        correlation = np.corrcoef(flat[:-lag], flat[lag:])[0, 1]
        assert abs(correlation) < 0.005, (lag, correlation)
    bits = hashed_uniform_bits(tf.constant([1 << 16]), tf.constant([3, 4])).numpy()
    for bit in range(32):  # every bit of the hash is a fair coin
        assert abs(((bits >> bit) & 1).mean() - 0.5) < 0.01, bit


@MASKS
def test_consecutive_seeds_give_unrelated_masks(dropout):
    first = kept(dropout(ONES, 0.5, tf.constant([5, 10])))
    for seed in ([5, 11], [6, 10]):
        other = kept(dropout(ONES, 0.5, tf.constant(seed)))
        assert abs((first == other).mean() - 0.5) < 0.005  # as two independent masks would agree
        for shift in (1, 2, 3):  # and not a shifted copy of the first
            assert abs((first.reshape(-1)[shift:] == other.reshape(-1)[:-shift]).mean() - 0.5) < 0.005


def test_hashed_mask_is_the_same_eager_in_a_graph_and_under_xla():
    seed = tf.constant([11, 3])
    eager = hashed_dropout(ONES[:4], 0.2, seed)
    compiled = tf.function(lambda x: hashed_dropout(x, 0.2, seed), jit_compile=True)(ONES[:4])
    graph = tf.function(lambda x: hashed_dropout(x, 0.2, seed))(ONES[:4])
    np.testing.assert_array_equal(eager.numpy(), compiled.numpy())
    np.testing.assert_array_equal(eager.numpy(), graph.numpy())


def test_xla_tracing_is_detected():
    assert not compiling_with_xla()
    assert not tf.function(compiling_with_xla)()
    assert tf.function(compiling_with_xla, jit_compile=True)()


def test_layer_is_the_halfword_mask_without_xla_and_the_hash_under_xla():
    inputs = tf.random.normal([4, 8, 15])  # an odd element count: the last word's second half goes unused
    # A Keras SeedGenerator(42) starts at [42, 0] and advances the second number on every draw.
    for call in (lambda layer, x: layer(x, training=True), tf.function(lambda layer, x: layer(x, training=True))):
        layer = FusibleDropout(0.25, seed=42)
        for draw in (0, 1):
            expected = halfword_dropout(inputs, 0.25, tf.constant([42, draw]))
            np.testing.assert_array_equal(call(layer, inputs).numpy(), expected.numpy())
    layer = FusibleDropout(0.25, seed=42)
    compiled = tf.function(lambda x: layer(x, training=True), jit_compile=True)
    np.testing.assert_array_equal(compiled(inputs).numpy(), hashed_dropout(inputs, 0.25, tf.constant([42, 0])))
    np.testing.assert_array_equal(compiled(inputs).numpy(), hashed_dropout(inputs, 0.25, tf.constant([42, 1])))


def test_layer_draws_a_new_mask_per_call_reproducibly_and_only_in_training():
    layer, twin = FusibleDropout(0.25, seed=42), FusibleDropout(0.25, seed=42)
    inputs = ONES[:2]
    np.testing.assert_array_equal(layer(inputs).numpy(), inputs.numpy())  # inference: identity
    first, second = layer(inputs, training=True).numpy(), layer(inputs, training=True).numpy()
    assert (kept(first) != kept(second)).any()
    np.testing.assert_array_equal(twin(inputs, training=True).numpy(), first)  # same seed, same sequence
    np.testing.assert_array_equal(FusibleDropout(0.0)(inputs, training=True).numpy(), inputs.numpy())
    np.testing.assert_array_equal(hashed_dropout(inputs, 1.0, tf.constant([0, 0])).numpy(), 0.0)
    np.testing.assert_array_equal(halfword_dropout(inputs, 1.0, tf.constant([0, 0])).numpy(), 0.0)


@pytest.mark.parametrize("xla", [False, True])
def test_gradient_is_the_mask_times_the_scale(xla):
    layer = FusibleDropout(0.3, seed=1)
    inputs = tf.random.normal([8, 16])

    def outputs_and_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = layer(x, training=True)
            total = tf.reduce_sum(outputs)
        return outputs, tape.gradient(total, x)

    outputs, gradient = tf.function(outputs_and_gradient, jit_compile=xla)(inputs)
    np.testing.assert_allclose(gradient.numpy(), kept(outputs) / 0.7, rtol=1e-6)


@pytest.mark.parametrize("xla", [False, True])
def test_bfloat16_inputs_keep_their_dtype(xla):
    layer = FusibleDropout(0.1, seed=0, dtype="mixed_bfloat16")
    outputs = tf.function(lambda x: layer(x, training=True), jit_compile=xla)(tf.ones([4, 8], tf.bfloat16))
    assert outputs.dtype == tf.bfloat16 and 0 < kept(tf.cast(outputs, tf.float32)).mean() < 1


def test_config_round_trip_and_unsupported_noise_shape():
    layer = FusibleDropout(0.2, seed=5, name="drop")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, FusibleDropout) and clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="noise_shape"):
        FusibleDropout(0.1, noise_shape=(1, None))
