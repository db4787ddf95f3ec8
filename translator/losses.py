"""Label-smoothed cross-entropy summed over real (non-padding) tokens.

The loss is returned as a sum together with the token count, so the caller can divide by the token
count of the whole global batch — across replicas and accumulation steps — and every real token
weighs the same however the batch was split.
"""

import tensorflow as tf

from translator.constants import PAD_ID


def smoothed_cross_entropy(labels: tf.Tensor, logits: tf.Tensor, smoothing: float) -> tuple[tf.Tensor, tf.Tensor]:
    """labels [batch, T] int, logits [batch, T, vocab] → (summed loss, number of real tokens), float32.

    The smoothed target puts 1 - smoothing on the label and spreads `smoothing` uniformly over the
    vocabulary (as fairseq and OpenNMT do).
    """
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
    nll = -tf.gather(log_probs, labels, batch_dims=2)  # [batch, T]
    uniform = -tf.reduce_mean(log_probs, axis=-1)
    loss = (1.0 - smoothing) * nll + smoothing * uniform
    real = tf.cast(tf.not_equal(labels, PAD_ID), tf.float32)
    return tf.reduce_sum(loss * real), tf.reduce_sum(real)


def token_accuracy(labels: tf.Tensor, logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(number of real tokens predicted right, number of real tokens)."""
    real = tf.not_equal(labels, PAD_ID)
    correct = tf.logical_and(real, tf.equal(tf.argmax(logits, axis=-1, output_type=labels.dtype), labels))
    return tf.reduce_sum(tf.cast(correct, tf.float32)), tf.reduce_sum(tf.cast(real, tf.float32))
