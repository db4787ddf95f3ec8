"""One Transformer decoder block: causal self-attention, cross-attention, feed-forward.

`call` is the teacher-forced pass over a whole target prefix; `init_cache` + `decode_step` compute
the same outputs one position at a time from a cache (tested to agree within 1e-4, with and without XLA).
"""

import keras
import tensorflow as tf

from translator.layers.attention import CachedMultiHeadAttention
from translator.layers.block import TransformerBlock
from translator.layers.dropout import compiling_with_xla
from translator.layers.feed_forward import FeedForward, Residual, layer_norm
from translator.layers.masks import attention_bias, causal_bias, padding_bias
from translator.layers.sublayers import dropout


@keras.saving.register_keras_serializable(package="translator")
class TransformerDecoder(TransformerBlock):
    """Decoder block. Position i attends to target positions ≤ i (the causal mask is built here)
    and to real source positions (`memory_padding_mask`, [batch, source] bool)."""

    def build(self, inputs_shape, memory_shape):
        model_dim = inputs_shape[-1]
        policy = self.dtype_policy
        key_dim = model_dim // self.num_heads
        self.self_attention = CachedMultiHeadAttention(
            self.num_heads,
            key_dim,
            self.attention_dropout,
            **self.sublayer_arguments("self_attention"),
            name="self_attention",
        )
        self.self_attention.build(inputs_shape)
        self.cross_attention = CachedMultiHeadAttention(
            self.num_heads,
            key_dim,
            self.attention_dropout,
            self_attention=False,
            **self.sublayer_arguments("cross_attention"),
            name="cross_attention",
        )
        self.cross_attention.build(inputs_shape, memory_shape)
        self.feed_forward = FeedForward(
            self.ffn_dim, self.dropout, **self.sublayer_arguments("feed_forward"), name="feed_forward"
        )
        self.feed_forward.build(inputs_shape)
        # Attributes, not a list: tf.train.Checkpoint does not track layers in a Python list.
        self.self_attention_norm = layer_norm("self_attention_norm", self.layer_norm_epsilon, policy)
        self.cross_attention_norm = layer_norm("cross_attention_norm", self.layer_norm_epsilon, policy)
        self.feed_forward_norm = layer_norm("feed_forward_norm", self.layer_norm_epsilon, policy)
        for norm in (self.self_attention_norm, self.cross_attention_norm, self.feed_forward_norm):
            norm.build(inputs_shape)
        self.residual_dropout = dropout(self, self.dropout, "residual_dropout")
        self.built = True

    def _residuals(self):
        norms = (self.self_attention_norm, self.cross_attention_norm, self.feed_forward_norm)
        return [Residual(norm, self.residual_dropout, self.pre_norm) for norm in norms]

    def call(
        self,
        inputs,
        memory,
        memory_padding_mask=None,
        self_attention_mask=None,
        memory_attention_mask=None,
        training=None,
        return_attention=False,
    ):
        """inputs [batch, target, dim], memory [batch, source, dim] → [batch, target, dim]
        (and the cross-attention weights [batch, heads, target, source] if asked). Self-attention is
        causal, and also limited by `self_attention_mask` [batch, target, target] bool if given;
        cross-attention by `memory_padding_mask` [batch, source] and `memory_attention_mask` [batch,
        target, source] (True = may attend; packed rows pass `segment_mask`s)."""
        self_residual, cross_residual, feed_forward_residual = self._residuals()
        length = tf.shape(inputs)[1]
        self_bias = causal_bias(length)
        if self_attention_mask is not None:
            self_bias += attention_bias(self_attention_mask)
        x = self_residual(inputs, lambda y: self.self_attention(y, bias=self_bias, training=training), training)
        memory_bias = None if memory_padding_mask is None else padding_bias(memory_padding_mask)
        if memory_attention_mask is not None:
            extra = attention_bias(memory_attention_mask)
            memory_bias = extra if memory_bias is None else memory_bias + extra
        weights = []

        def cross(y):
            output, attention = self.cross_attention(
                y, memory, bias=memory_bias, training=training, return_weights=True
            )
            weights.append(attention)
            return output

        x = cross_residual(x, cross, training)
        x = feed_forward_residual(x, lambda y: self.feed_forward(y, training=training), training)
        return (x, weights[0]) if return_attention else x

    def init_cache(self, memory, max_length: int):
        """The step cache, heads first: the self-attention keys/values, [batch, heads, max_length, key_dim]
        slots of zeros under XLA and empty ([batch, heads, 0, key_dim], grown by each step) elsewhere
        (`CachedMultiHeadAttention`), and the cross-attention keys/values projected from `memory` once,
        [batch, heads, source, key_dim]. Call it where the steps will run: inside the XLA function too."""
        batch = tf.shape(memory)[0]
        key_dim = memory.shape[-1] // self.num_heads
        slots = max_length if compiling_with_xla() else 0
        zeros = tf.zeros([batch, self.num_heads, slots, key_dim], self.compute_dtype)
        return {"self": {"key": zeros, "value": zeros}, "cross": self.cross_attention.memory_cache(memory)}

    def decode_step(self, inputs, index, cache, self_bias=None, memory_bias=None):
        """inputs [batch, dim] at position `index` → ([batch, dim], updated cache). The model makes the
        step's biases once for all blocks: `self_bias` (`step_bias`) and `memory_bias` (`padding_bias` of
        the source mask)."""
        self_residual, cross_residual, feed_forward_residual = self._residuals()
        new_self = {}

        def self_attend(y):
            output, new_self["cache"] = self.self_attention.cached_call(y, cache["self"], index, self_bias)
            return output

        x = self_residual(inputs, self_attend, False)
        x = cross_residual(x, lambda y: self.cross_attention.cached_call(y, cache["cross"], bias=memory_bias)[0], False)
        x = feed_forward_residual(x, lambda y: self.feed_forward(y, training=False), False)
        return x, {"self": new_self["cache"], "cross": cache["cross"]}
