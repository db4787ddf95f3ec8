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
from translator.layers.dropout import compiling_with_xla


def _token_losses(labels: tf.Tensor, logits: tf.Tensor, smoothing: float) -> tuple[tf.Tensor, tf.Tensor]:
    """(loss [batch, T] float32, real-token mask [batch, T] float32). The smoothed target puts
    1 - smoothing on the label and spreads `smoothing` uniformly over the vocabulary (as fairseq and
    OpenNMT do)."""
    loss = smoothed_cross_entropy_with_logits(tf.cast(logits, tf.float32), labels, smoothing)
    return loss, tf.cast(tf.not_equal(labels, PAD_ID), tf.float32)


def smoothed_cross_entropy_with_logits(logits: tf.Tensor, labels: tf.Tensor, smoothing: float) -> tf.Tensor:
    """logits [..., vocab] float32, labels [...] int → the label-smoothed cross-entropy [...], with its
    gradient written out: softmax(logits) − targets.

    With targets t = (1 − smoothing)·onehot(label) + smoothing / vocab, the loss −Σ t·log softmax is
    logsumexp − (1 − smoothing)·logit[label] − (smoothing / vocab)·Σ logits: one exponential pass, one
    gather and two sums, and the backward pass scales the kept exponentials and subtracts the targets
    (a constant, then one element per row). No dense [..., vocab] target is built. Outside XLA it beats
    TensorFlow's fused softmax cross-entropy fed with one-hot targets (itself twice as fast as log-softmax
    and a gather): the tutorial-size bfloat16 step without XLA got 1.09× faster, `make train`'s on an AMX
    CPU 1.05×. XLA fuses the fused kernel at least as well: there it stays (docs/benchmarks.md, "The
    loss's gradient by hand").
    """
    vocab = tf.shape(logits)[-1]
    off_label = smoothing / tf.cast(vocab, tf.float32)
    if compiling_with_xla():
        on_label = 1.0 - smoothing + off_label
        targets = tf.one_hot(tf.cast(labels, tf.int32), vocab, on_value=on_label, off_value=off_label)
        return tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    flat_logits = tf.reshape(logits, [-1, vocab])
    flat_labels = tf.reshape(tf.cast(labels, tf.int32), [-1])

    @tf.custom_gradient
    def loss_of(x):
        shifted = x - tf.reduce_max(x, axis=-1, keepdims=True)
        exps = tf.exp(shifted)
        sums = tf.reduce_sum(exps, axis=-1)
        # logsumexp − Σ_i t_i·x_i, each logit taken relative to its row's max (Σ_i t_i = 1, so the max cancels)
        at_label = tf.gather(shifted, flat_labels, batch_dims=1)
        loss = tf.math.log(sums) - (1.0 - smoothing) * at_label - off_label * tf.reduce_sum(shifted, axis=-1)

        def gradient(upstream):
            # softmax·upstream − targets·upstream: the off-label share everywhere, the rest at the label.
            grad = exps * (upstream / sums)[:, tf.newaxis] - (upstream * off_label)[:, tf.newaxis]
            rows = tf.range(tf.shape(flat_labels)[0])
            at = tf.stack([rows, flat_labels], axis=1)
            return tf.tensor_scatter_nd_sub(grad, at, upstream * (1.0 - smoothing))

        return loss, gradient

    return tf.reshape(loss_of(flat_logits), tf.shape(labels))


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
