"""Token embedding × √d plus sinusoidal positions; the same matrix can project back to logits."""

import math

import keras
import tensorflow as tf


def sinusoidal_positions(positions: tf.Tensor, dim: int) -> tf.Tensor:
    """[...] int positions → [..., dim] float32 (sin on the first half, cos on the second)."""
    half = dim // 2
    inverse_frequencies = tf.exp(tf.range(half, dtype=tf.float32) * -(math.log(10000.0) / max(half - 1, 1)))
    angles = tf.cast(positions, tf.float32)[..., tf.newaxis] * inverse_frequencies
    return tf.concat([tf.sin(angles), tf.cos(angles)], axis=-1)


@keras.saving.register_keras_serializable(package="translator")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """ids → embeddings × √d + positions; `project` maps hidden states back to vocabulary logits.

    Positions are computed, not learned, so `call` accepts an explicit start position: one decoding
    step embeds its single token at position `index` without building the whole prefix.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.seed = seed

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.vocab_size, self.embedding_dim),
            initializer=keras.initializers.RandomNormal(stddev=self.embedding_dim**-0.5, seed=self.seed),
        )
        self.built = True

    def call(self, ids: tf.Tensor, start: tf.Tensor | int = 0, positions: tf.Tensor | None = None) -> tf.Tensor:
        """[batch, length] ids → [batch, length, dim]. Positions count from `start`, unless `positions`
        [batch, length] gives each token's own (packed rows restart them at every pair)."""
        tokens = self._scaled_tokens(ids)
        if positions is None:
            positions = start + tf.range(tf.shape(ids)[1])
        return tokens + tf.cast(sinusoidal_positions(positions, self.embedding_dim), self.compute_dtype)

    def embed_step(self, ids: tf.Tensor, index: tf.Tensor | int) -> tf.Tensor:
        """One decoding step: [batch] ids, all at position `index` → [batch, dim] (what `call` gives for
        [batch, 1] ids from `start=index`, without the length axis)."""
        return self._scaled_tokens(ids) + tf.cast(sinusoidal_positions(index, self.embedding_dim), self.compute_dtype)

    def _scaled_tokens(self, ids: tf.Tensor) -> tf.Tensor:
        return tf.gather(tf.cast(self.embeddings, self.compute_dtype), ids) * math.sqrt(self.embedding_dim)

    def transposed(self) -> tf.Tensor:
        """The embedding matrix transposed, [dim, vocab] in the compute dtype: `project`'s operand for a
        search's many one-row-per-hypothesis products, made once before its loop (see `project`)."""
        return tf.transpose(tf.cast(self.embeddings, self.compute_dtype))

    def project(self, hidden: tf.Tensor, transposed: tf.Tensor | None = None) -> tf.Tensor:
        """[..., dim] → [..., vocab] logits with the transposed embedding matrix.

        The product is taken on the flattened [positions, dim] states: a [batch, T, dim] × [dim, vocab]
        product broadcasts as a batched matmul whose gradient builds a [batch, dim, vocab] tensor (half a
        gigabyte for one tutorial-size batch) and sums it over the batch.

        A decoding step's [batch, dim] product with the [vocab, dim] matrix as stored makes TensorFlow's
        Eigen CPU kernel (used where oneDNN is off: CPUs without AVX-512 VNNI, bfloat16 or AMX) transpose
        the whole matrix at every call, most of the product's time for a few rows (docs/benchmarks.md,
        "the output projection transposed once"). A search passes `transposed` (from `transposed()`,
        made once before its loop) instead.
        """
        if transposed is not None:  # a decoding step's [batch, dim]
            return tf.matmul(hidden, tf.cast(transposed, hidden.dtype))
        embeddings = tf.cast(self.embeddings, hidden.dtype)
        if hidden.shape.rank == 2:
            return tf.matmul(hidden, embeddings, transpose_b=True)
        logits = tf.matmul(tf.reshape(hidden, [-1, self.embedding_dim]), embeddings, transpose_b=True)
        return tf.reshape(logits, tf.concat([tf.shape(hidden)[:-1], [self.vocab_size]], axis=0))

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "seed": self.seed,
        }
