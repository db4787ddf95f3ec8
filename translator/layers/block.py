"""What the encoder and decoder blocks share: their constructor arguments and configuration."""

import keras

from translator.layers.sublayers import derive_seed, initializer_arguments


class TransformerBlock(keras.layers.Layer):
    """Base of `TransformerEncoder` and `TransformerDecoder`: one attribute per constructor argument,
    `get_config` chaining to Keras', and an output shaped like the input. `seed` (optional) fixes
    every initial weight and dropout mask of the block."""

    def __init__(
        self,
        num_heads: int,
        ffn_dim: int,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        pre_norm: bool = True,
        layer_norm_epsilon: float = 1e-6,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.seed = seed
        self.num_heads = num_heads
        self.ffn_dim = ffn_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.pre_norm = pre_norm
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def sublayer_arguments(self, name: str) -> dict:
        """Initializers and seed for the sublayer `name` (attention, feed-forward)."""
        return {**initializer_arguments(self, name), "seed": derive_seed(self.seed, name), "dtype": self.dtype_policy}

    def compute_output_shape(self, inputs_shape, *args, **kwargs):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "ffn_dim": self.ffn_dim,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "pre_norm": self.pre_norm,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "seed": self.seed,
        }
