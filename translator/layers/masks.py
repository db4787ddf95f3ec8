"""Attention biases: 0 where a query may look, a large negative number where it may not.

Biases are float32 and added to float32 attention scores, so they work unchanged under mixed
precision. Masks are always passed explicitly (Keras 3's implicit `_keras_mask` is not used: its
`MultiHeadAttention` drops it, which silently breaks padding masks).
"""

import tensorflow as tf

NEG_INF = -1e9  # finite, so that a fully masked row gives a uniform softmax rather than NaN


def padding_bias(padding_mask: tf.Tensor) -> tf.Tensor:
    """[batch, keys] bool (True = real token) → [batch, 1, 1, keys] bias."""
    return tf.where(padding_mask, 0.0, NEG_INF)[:, tf.newaxis, tf.newaxis, :]


def attention_bias(attention_mask: tf.Tensor) -> tf.Tensor:
    """[batch, queries, keys] bool (True = may look) → [batch, 1, queries, keys] bias."""
    return tf.where(attention_mask, 0.0, NEG_INF)[:, tf.newaxis]


def segment_mask(query_segment_ids: tf.Tensor, key_segment_ids: tf.Tensor) -> tf.Tensor:
    """Packed rows: [batch, queries] and [batch, keys] segment ids (1, 2, … per pair in the row, 0 on
    padding) → [batch, queries, keys] bool, True where query and key belong to the same pair."""
    same = tf.equal(query_segment_ids[:, :, tf.newaxis], key_segment_ids[:, tf.newaxis, :])
    return tf.logical_and(same, key_segment_ids[:, tf.newaxis, :] > 0)


def causal_bias(length: tf.Tensor | int) -> tf.Tensor:
    """[1, 1, length, length] bias letting position i see positions ≤ i."""
    allowed = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
    return tf.where(allowed, 0.0, NEG_INF)[tf.newaxis, tf.newaxis]


def step_bias(index: tf.Tensor, max_length: int) -> tf.Tensor:
    """[1, 1, 1, max_length] bias for decoding step `index`: cache slots ≤ index are visible."""
    return tf.where(tf.range(max_length) <= index, 0.0, NEG_INF)[tf.newaxis, tf.newaxis, tf.newaxis]
