"""One Transformer encoder block: self-attention and feed-forward, each in a residual connection."""

import keras

from translator.layers.attention import CachedMultiHeadAttention
from translator.layers.block import TransformerBlock
from translator.layers.feed_forward import FeedForward, Residual, layer_norm
from translator.layers.masks import attention_bias, padding_bias
from translator.layers.sublayers import dropout


@keras.saving.register_keras_serializable(package="translator")
class TransformerEncoder(TransformerBlock):
    """Encoder block. `padding_mask` ([batch, source] bool, True = real token) keeps padded positions
    out of every real position's attention, so padding never changes a real position's output."""

    def build(self, inputs_shape):
        model_dim = inputs_shape[-1]
        policy = self.dtype_policy
        self.self_attention = CachedMultiHeadAttention(
            self.num_heads,
            model_dim // self.num_heads,
            self.attention_dropout,
            **self.sublayer_arguments("self_attention"),
            name="self_attention",
        )
        self.self_attention.build(inputs_shape)
        self.feed_forward = FeedForward(
            self.ffn_dim, self.dropout, **self.sublayer_arguments("feed_forward"), name="feed_forward"
        )
        self.feed_forward.build(inputs_shape)
        self.attention_norm = layer_norm("attention_norm", self.layer_norm_epsilon, policy)
        self.attention_norm.build(inputs_shape)
        self.feed_forward_norm = layer_norm("feed_forward_norm", self.layer_norm_epsilon, policy)
        self.feed_forward_norm.build(inputs_shape)
        self.residual_dropout = dropout(self, self.dropout, "residual_dropout")
        self.built = True

    def call(self, inputs, padding_mask=None, attention_mask=None, training=None):
        """inputs [batch, source, dim] → [batch, source, dim]. `padding_mask` [batch, source] bool (True =
        token); `attention_mask` [batch, source, source] bool (True = may attend), e.g. `segment_mask`."""
        bias = None if padding_mask is None else padding_bias(padding_mask)
        if attention_mask is not None:
            bias = attention_bias(attention_mask) if bias is None else bias + attention_bias(attention_mask)
        attention = Residual(self.attention_norm, self.residual_dropout, self.pre_norm)
        x = attention(inputs, lambda y: self.self_attention(y, bias=bias, training=training), training)
        feed_forward = Residual(self.feed_forward_norm, self.residual_dropout, self.pre_norm)
        return feed_forward(x, lambda y: self.feed_forward(y, training=training), training)
