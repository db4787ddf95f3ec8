"""Sublayers built from their parent layer's initializers and seed (the keras-hub layer contract).

A layer given a `seed` passes every sublayer its own seed derived from (seed, sublayer name), so the
whole model's initial weights and dropout masks follow from one number, and no two sublayers share
a stream: seeded initializers are stateless in Keras 3, so a shared seed would give equal weights.
"""

from __future__ import annotations

import zlib

import keras

from translator.layers.dropout import FusibleDropout


def derive_seed(seed: int | None, name: str) -> int | None:
    """A seed for the sublayer `name` of a layer seeded with `seed` (None stays None)."""
    if seed is None:
        return None
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**31 - 1)


def _seeded(initializer, seed: int | None) -> dict:
    config = keras.initializers.serialize(initializer)
    if seed is not None and isinstance(config, dict) and "seed" in config.get("config", {}):
        config["config"]["seed"] = seed
    return config


def initializer_arguments(layer: keras.layers.Layer, name: str) -> dict:
    """`kernel_initializer` and `bias_initializer` of `layer` for its sublayer `name`, serialized (each
    sublayer gets its own copy) and, when `layer.seed` is set, seeded for that sublayer."""
    seed = derive_seed(layer.seed, name)
    return {
        "kernel_initializer": _seeded(layer.kernel_initializer, derive_seed(seed, "kernel")),
        "bias_initializer": _seeded(layer.bias_initializer, derive_seed(seed, "bias")),
    }


def dense(layer: keras.layers.Layer, units: int, name: str, activation: str | None = None) -> keras.layers.Dense:
    """A Dense sublayer of `layer` with its initializers and dtype policy."""
    return keras.layers.Dense(
        units, activation=activation, **initializer_arguments(layer, name), name=name, dtype=layer.dtype_policy
    )


def dropout(layer: keras.layers.Layer, rate: float, name: str) -> keras.layers.Dropout:
    """A dropout sublayer of `layer`, seeded from `layer.seed` when it has one: `FusibleDropout`, which is
    Keras' `Dropout` except inside an XLA-compiled step."""
    return FusibleDropout(rate, seed=derive_seed(layer.seed, name), name=name, dtype=layer.dtype_policy)
