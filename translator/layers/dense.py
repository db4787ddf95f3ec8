"""Dense sublayers built with their parent layer's initializers (the keras-hub layer contract)."""

import keras


def initializer_arguments(layer: keras.layers.Layer) -> dict:
    """`kernel_initializer` and `bias_initializer` of `layer`, serialized: each sublayer gets its own
    copy (an initializer object with a seed must not be shared)."""
    return {
        "kernel_initializer": keras.initializers.serialize(layer.kernel_initializer),
        "bias_initializer": keras.initializers.serialize(layer.bias_initializer),
    }


def dense(layer: keras.layers.Layer, units: int, name: str, activation: str | None = None) -> keras.layers.Dense:
    """A Dense sublayer of `layer` with its initializers and dtype policy."""
    return keras.layers.Dense(
        units, activation=activation, **initializer_arguments(layer), name=name, dtype=layer.dtype_policy
    )
