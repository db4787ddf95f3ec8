"""The position-wise feed-forward sublayer and the residual/normalization wrapper both blocks share."""

import keras
import tensorflow as tf

from translator.layers.sublayers import dense
from translator.layers.sublayers import dropout as sublayer_dropout


def layer_norm(name: str, epsilon: float, policy) -> keras.layers.LayerNormalization:
    """Layer normalization that computes in float32 even under a mixed-precision policy."""
    dtype = "float32" if policy.compute_dtype != "float32" else policy
    return keras.layers.LayerNormalization(epsilon=epsilon, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="translator")
class FeedForward(keras.layers.Layer):
    """dim → ffn_dim (ReLU) → dim."""

    def __init__(
        self,
        ffn_dim: int,
        dropout: float = 0.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.seed = seed
        self.ffn_dim = ffn_dim
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.inner = dense(self, ffn_dim, "inner", "relu")
        self.inner_dropout = sublayer_dropout(self, dropout, "inner_dropout")

    def build(self, input_shape):
        self.inner.build(input_shape)
        self.outer = dense(self, input_shape[-1], "outer")
        self.outer.build((*input_shape[:-1], self.ffn_dim))
        self.built = True

    def call(self, x, training=None):
        return self.outer(self.inner_dropout(self.inner(x), training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "ffn_dim": self.ffn_dim,
            "dropout": self.dropout,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "seed": self.seed,
        }


class Residual:
    """x + dropout(sublayer(norm(x))) in pre-norm, norm(x + dropout(sublayer(x))) in post-norm."""

    def __init__(self, norm: keras.layers.LayerNormalization, dropout: keras.layers.Dropout, pre_norm: bool):
        self.norm, self.dropout, self.pre_norm = norm, dropout, pre_norm

    def __call__(self, x, sublayer, training):
        dtype = x.dtype
        if self.pre_norm:
            return x + self.dropout(sublayer(tf.cast(self.norm(x), dtype)), training=training)
        return tf.cast(self.norm(x + self.dropout(sublayer(x), training=training)), dtype)
