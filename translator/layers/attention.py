"""Multi-head attention with a key/value cache for incremental decoding.

Self-attention projects queries, keys and values with one fused matrix; cross-attention projects the
memory once (`project_memory`) and reuses it at every step. The self-attention cache takes one of two
forms, chosen by where the step runs:
- under XLA (or on a TPU), shapes must not change: the cache is pre-allocated to the maximum length,
  written in place at `index`, and a bias hides the slots not yet written;
- elsewhere (eager, `tf.function`, a SavedModel) it starts empty and each step appends its position,
  so attention and the beams' reordering touch only the positions decoded so far, not the maximum
  length (TensorFlow's executor does not write a loop's buffer in place: each write was a full copy).
  With the beams' shared memory below, beam search got 1.22× faster at the `small` size
  (docs/benchmarks.md, "the cache grows, and the beams share their memory").
"""

import keras
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla as tf2xla

from translator.layers.dropout import compiling_with_xla
from translator.layers.masks import step_bias
from translator.layers.sublayers import dense
from translator.layers.sublayers import dropout as sublayer_dropout


@keras.saving.register_keras_serializable(package="translator")
class CachedMultiHeadAttention(keras.layers.Layer):
    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        dropout: float = 0.0,
        self_attention: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.seed = seed
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.dropout = dropout
        self.self_attention = self_attention
        inner = num_heads * key_dim
        if self_attention:
            self.query_key_value = dense(self, 3 * inner, "query_key_value")
        else:
            self.query_projection = dense(self, inner, "query")
            self.key_value = dense(self, 2 * inner, "key_value")
        self.attention_dropout = sublayer_dropout(self, dropout, "attention_dropout")

    def build(self, query_shape, memory_shape=None):
        model_dim = query_shape[-1]
        if self.self_attention:
            self.query_key_value.build(query_shape)
        else:
            self.query_projection.build(query_shape)
            self.key_value.build(memory_shape if memory_shape is not None else query_shape)
        self.output_projection = dense(self, model_dim, "output")
        self.output_projection.build((*query_shape[:-1], self.num_heads * self.key_dim))
        self.built = True

    def _split_heads(self, x: tf.Tensor) -> tf.Tensor:
        # [batch, length, heads * key_dim] → [batch, length, heads, key_dim]
        return tf.reshape(x, [tf.shape(x)[0], tf.shape(x)[1], self.num_heads, self.key_dim])

    def _project_self(self, x: tf.Tensor):
        query, key, value = tf.split(self.query_key_value(x), 3, axis=-1)
        return self._split_heads(query), self._split_heads(key), self._split_heads(value)

    def project_memory(self, memory: tf.Tensor) -> dict[str, tf.Tensor]:
        """Cross-attention keys and values, [batch, source, heads, key_dim] each."""
        key, value = tf.split(self.key_value(memory), 2, axis=-1)
        return {"key": self._split_heads(key), "value": self._split_heads(value)}

    def memory_cache(self, memory: tf.Tensor) -> dict[str, tf.Tensor]:
        """Cross-attention keys and values for decoding, computed once and stored heads first,
        [batch, heads, source, key_dim], so that no step transposes them again."""
        return {name: _heads_first(x) for name, x in self.project_memory(memory).items()}

    def call(self, query, memory=None, bias=None, training=None, return_weights=False):
        """Full-sequence attention. query [batch, T, dim]; memory [batch, S, dim] (cross only);
        bias broadcastable to [batch, heads, T, S]. Returns [batch, T, dim] (and the weights)."""
        if self.self_attention:
            q, k, v = self._project_self(query)
        else:
            q = self._split_heads(self.query_projection(query))
            kv = self.project_memory(memory)
            k, v = kv["key"], kv["value"]
        return self._attend(q, k, v, bias, training, return_weights)

    def cached_call(self, query, cache, index=None, bias=None):
        """One decoding step. query [batch, dim] (one position per row, no length axis: every product
        of the step is a plain matrix product, with no reshaping around it).

        Every cache tensor is stored heads first, [batch, heads, length, key_dim], the layout the step's
        two products read, so no step transposes the cache. Self-attention under XLA: writes this step's
        key/value into `cache` (length max_length) at `index` and attends to slots ≤ index (`bias`, if
        given, is that `step_bias`, made once per step by the caller); elsewhere: appends them to `cache`
        (length `index`) and attends to all of it. Cross-attention: attends to the projected memory in
        `cache` (`memory_cache`) with `bias`, leaving it untouched; the memory may have one row per
        sentence for `beams` consecutive query rows (the search's layout). Returns (output [batch, dim], cache).
        """
        one_position = [-1, self.num_heads, 1, self.key_dim]  # [batch, heads, 1, key_dim]: heads first already
        if self.self_attention:
            q, k, v = (tf.reshape(x, one_position) for x in tf.split(self.query_key_value(query), 3, axis=-1))
            new = {"key": k, "value": v}
            if compiling_with_xla():
                cache = {name: write_position(cache[name], new[name], index) for name in new}
                if bias is None:
                    bias = step_bias(index, tf.shape(cache["key"])[2])
            else:
                cache = {name: tf.concat([cache[name], new[name]], axis=2) for name in new}
        else:
            # The memory has a row per sentence, the queries `beams` consecutive rows per sentence: each
            # sentence's beams attend together, [sentences, heads, beams, key_dim], so the memory is read
            # once per sentence rather than once per beam (and the products have beams rows, not one).
            sentences = tf.shape(cache["key"])[0]
            q = tf.reshape(self.query_projection(query), [sentences, -1, self.num_heads, self.key_dim])
            q = tf.transpose(q, [0, 2, 1, 3])
        q = q * tf.cast(self.key_dim**-0.5, q.dtype)
        scores = tf.cast(tf.matmul(q, cache["key"], transpose_b=True), tf.float32)  # [batch, heads, 1 or beams, S]
        if bias is not None:
            scores += tf.cast(bias, tf.float32)
        weights = tf.cast(tf.nn.softmax(scores, axis=-1), self.compute_dtype)  # float32 softmax, as in `call`
        context = tf.matmul(weights, cache["value"])  # [batch, heads, 1 or beams, key_dim]
        if not self.self_attention:
            context = tf.transpose(context, [0, 2, 1, 3])  # [sentences, beams, heads, key_dim]
        return self.output_projection(tf.reshape(context, [-1, self.num_heads * self.key_dim])), cache

    def _attend(self, query, key, value, bias, training, return_weights):
        """query [batch, T, heads, key_dim]; key and value [batch, S, heads, key_dim]."""
        query = query * tf.cast(self.key_dim**-0.5, query.dtype)
        scores = tf.einsum("bthd,bshd->bhts", query, key)  # [batch, heads, T, S]
        scores = tf.cast(scores, tf.float32)
        if bias is not None:
            scores += tf.cast(bias, tf.float32)  # Keras autocasts float inputs to the compute dtype
        weights = tf.nn.softmax(scores, axis=-1)  # float32 softmax, also under mixed precision
        dropped = self.attention_dropout(tf.cast(weights, self.compute_dtype), training=training)
        context = tf.einsum("bhts,bshd->bthd", dropped, value)
        batch, length = tf.shape(context)[0], tf.shape(context)[1]
        output = self.output_projection(tf.reshape(context, [batch, length, self.num_heads * self.key_dim]))
        return (output, weights) if return_weights else output

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "dropout": self.dropout,
            "self_attention": self.self_attention,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "seed": self.seed,
        }


def write_position(cache: tf.Tensor, update: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """cache [batch, heads, length, key_dim] with update [batch, heads, 1, key_dim] at position `index`:
    XLA's dynamic-update-slice, done in place in the loop's buffer (XLA only).

    A one-hot blend (cache·(1 − slot) + update·slot) would read and write the whole cache at every
    step of every layer, which at decoding batch sizes costs more than the step's products.
    """
    if cache.shape[2] == 0:
        raise ValueError("an empty self-attention cache under XLA: call init_cache inside the XLA function")
    index = tf.cast(index, tf.int32)
    zero = tf.zeros_like(index)
    return tf2xla.dynamic_update_slice(cache, update, tf.stack([zero, zero, index, zero]))


def _heads_first(x: tf.Tensor) -> tf.Tensor:
    # [batch, length, heads, key_dim] → [batch, heads, length, key_dim]
    return tf.transpose(x, [0, 2, 1, 3])
