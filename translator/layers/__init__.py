"""Keras layers of the Transformer: embeddings, cached attention, dropout, encoder and decoder blocks."""

from translator.layers.attention import CachedMultiHeadAttention
from translator.layers.decoder import TransformerDecoder
from translator.layers.dropout import FusibleDropout
from translator.layers.embedding import TokenAndPositionEmbedding, sinusoidal_positions
from translator.layers.encoder import TransformerEncoder
from translator.layers.masks import attention_bias, causal_bias, padding_bias, segment_mask

__all__ = [
    "CachedMultiHeadAttention",
    "FusibleDropout",
    "TokenAndPositionEmbedding",
    "TransformerDecoder",
    "TransformerEncoder",
    "attention_bias",
    "causal_bias",
    "padding_bias",
    "segment_mask",
    "sinusoidal_positions",
]
