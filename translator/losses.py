"""Label-smoothed cross-entropy over real (non-padding) tokens, for our loop and for Keras `fit`.

Our training loop takes the loss as a sum together with the token count (`smoothed_cross_entropy_sum`),
so it can divide by the token count of the whole global batch — across replicas and accumulation
steps — and every real token weighs the same however the batch was split. `model.fit` takes the
same loss as a Keras `Loss` (`smoothed_cross_entropy`), which averages over the real tokens of the
batch it is given, as keras-hub's Seq2SeqLM does: on one device, one `fit` step is our loop's step.
"""

import keras
import tensorflow as tf

from translator.constants import PAD_ID


def _token_losses(labels: tf.Tensor, logits: tf.Tensor, smoothing: float) -> tuple[tf.Tensor, tf.Tensor]:
    """(loss [batch, T] float32, real-token mask [batch, T] float32). The smoothed target puts
    1 - smoothing on the label and spreads `smoothing` uniformly over the vocabulary (as fairseq and
    OpenNMT do).

    The dense smoothed targets go through TensorFlow's fused softmax cross-entropy, whose kernel also
    yields the gradient: written as log-softmax, a gather and a mean, the same loss took twice the op
    time, and the gather's gradient scattered into a zeroed [batch, T, vocab] tensor.
    """
    logits = tf.cast(logits, tf.float32)
    vocab = tf.shape(logits)[-1]
    off_label = smoothing / tf.cast(vocab, tf.float32)
    targets = tf.one_hot(tf.cast(labels, tf.int32), vocab, on_value=1.0 - smoothing + off_label, off_value=off_label)
    loss = tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    return loss, tf.cast(tf.not_equal(labels, PAD_ID), tf.float32)


def smoothed_cross_entropy_sum(labels: tf.Tensor, logits: tf.Tensor, smoothing: float) -> tuple[tf.Tensor, tf.Tensor]:
    """labels [batch, T] int, logits [batch, T, vocab] → (summed loss, number of real tokens), float32."""
    loss, real = _token_losses(labels, logits, smoothing)
    return tf.reduce_sum(loss * real), tf.reduce_sum(real)


@keras.saving.register_keras_serializable(package="translator")
class SmoothedCrossEntropy(keras.losses.Loss):
    """The mean label-smoothed cross-entropy over the real target tokens of a batch.

    Per-token losses are weighted by (all tokens / real tokens) on real tokens and 0 on padding, so
    Keras' "sum over batch size" reduction yields the mean over real tokens and still applies its
    per-replica scaling under a `tf.distribute` strategy.
    """

    def __init__(self, label_smoothing: float = 0.1, name: str = "smoothed_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        loss, real = _token_losses(y_true, y_pred, self.label_smoothing)
        weight = tf.cast(tf.size(real), tf.float32) / tf.maximum(tf.reduce_sum(real), 1.0)
        return loss * real * weight

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def smoothed_cross_entropy(label_smoothing: float = 0.1) -> SmoothedCrossEntropy:
    """The loss for `model.compile(loss=...)`: label-smoothed cross-entropy, padding excluded."""
    return SmoothedCrossEntropy(label_smoothing)
