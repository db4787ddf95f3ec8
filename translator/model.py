"""`Seq2SeqTransformer`: the encoder–decoder Transformer built from the blocks in `translator.layers`.

Four entry points with one job each:
- `call(features)` → logits, teacher-forced (training and scoring); it never searches;
- `encode(source_ids)` → (memory, padding mask);
- `init_cache(memory, mask, max_length)` → the decoding cache;
- `decode_step(token_ids, index, cache, output_matrix)` → (logits, cache), one position at a time
  (`output_matrix()`: the output projection, transposed once per search).

The cache follows the rule search relies on: every tensor has batch on axis 0.
`cache["decoder"]` (self-attention keys/values: fixed slots written at `index` under XLA, grown by one
position per step elsewhere) has a row per hypothesis, follows the beams and must be reordered;
`cache["memory"]` (cross-attention keys/values and the source mask) is computed once and is the same
for every beam of a sentence, so it keeps one row per sentence: search never tiles or reorders it,
and `decode_step` lets each sentence's consecutive token rows (its beams) attend to that one row.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from translator.config import ExperimentConfig, ModelConfig
from translator.constants import PAD_ID
from translator.layers import (
    FusibleDropout,
    TokenAndPositionEmbedding,
    TransformerDecoder,
    TransformerEncoder,
    segment_mask,
)
from translator.layers.dropout import compiling_with_xla
from translator.layers.feed_forward import layer_norm
from translator.layers.masks import padding_bias, step_bias
from translator.layers.sublayers import derive_seed


@keras.saving.register_keras_serializable(package="translator")
class Seq2SeqTransformer(keras.Model):
    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        num_layers: int = 6,
        d_model: int = 512,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        pre_norm: bool = True,
        share_embeddings: bool = True,
        seed: int | None = None,
        decoder_layers: int | None = None,
        **kwargs,
    ):
        """`num_layers` encoder blocks and `decoder_layers` decoder blocks (None or 0: `num_layers` too).
        `seed` (optional) fixes every initial weight and dropout mask: two models built with the same seed
        start equal and, fed the same batches, stay equal."""
        super().__init__(**kwargs)
        if share_embeddings and source_vocab_size != target_vocab_size:
            raise ValueError("share_embeddings needs one vocabulary: source and target vocab sizes differ")
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.source_vocab_size = source_vocab_size
        self.target_vocab_size = target_vocab_size
        self.num_layers = num_layers
        self.decoder_layers = decoder_layers or num_layers
        self.d_model = d_model
        self.num_heads = num_heads
        self.ffn_dim = ffn_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.pre_norm = pre_norm
        self.share_embeddings = share_embeddings
        self.seed = seed
        policy = self.dtype_policy
        self.target_embedding = TokenAndPositionEmbedding(
            target_vocab_size, d_model, derive_seed(seed, "target_embedding"), name="target_embedding", dtype=policy
        )
        self.source_embedding = (
            self.target_embedding
            if share_embeddings
            else TokenAndPositionEmbedding(
                source_vocab_size, d_model, derive_seed(seed, "source_embedding"), name="source_embedding", dtype=policy
            )
        )
        block = dict(
            num_heads=num_heads,
            ffn_dim=ffn_dim,
            dropout=dropout,
            attention_dropout=attention_dropout,
            pre_norm=pre_norm,
            dtype=policy,
        )
        # Blocks are attributes, not list items: tf.train.Checkpoint does not see layers held in a
        # Python list of a Keras 3 model, and would silently leave them out of checkpoints.
        # Created in the order encoder_0, decoder_0, encoder_1, …: the order of the weights, which the
        # optimizer's slots follow by position in a checkpoint, stays what runs saved before decoder_layers.
        for i in range(max(self.num_layers, self.decoder_layers)):
            for kind, layer, count in (
                ("encoder", TransformerEncoder, self.num_layers),
                ("decoder", TransformerDecoder, self.decoder_layers),
            ):
                if i < count:
                    name = f"{kind}_{i}"
                    setattr(self, name, layer(**block, seed=derive_seed(seed, name), name=name))
        self.embedding_dropout = FusibleDropout(dropout, seed=derive_seed(seed, "embedding_dropout"), dtype=policy)
        self.encoder_norm = layer_norm("encoder_norm", 1e-6, policy) if pre_norm else None
        self.decoder_norm = layer_norm("decoder_norm", 1e-6, policy) if pre_norm else None

    @property
    def encoder_blocks(self) -> list[TransformerEncoder]:
        return [getattr(self, f"encoder_{i}") for i in range(self.num_layers)]

    @property
    def decoder_blocks(self) -> list[TransformerDecoder]:
        return [getattr(self, f"decoder_{i}") for i in range(self.decoder_layers)]

    @classmethod
    def from_model_config(
        cls, config: ModelConfig, source_vocab_size: int, target_vocab_size: int, dtype=None, seed: int | None = None
    ):
        return cls(
            source_vocab_size=source_vocab_size,
            target_vocab_size=target_vocab_size,
            num_layers=config.depths[0],
            decoder_layers=config.depths[1],
            d_model=config.d_model,
            num_heads=config.num_heads,
            ffn_dim=config.ffn_dim,
            dropout=config.dropout,
            attention_dropout=config.attention_dropout,
            pre_norm=config.pre_norm,
            share_embeddings=config.share_embeddings,
            seed=seed,
            dtype=dtype,
        )

    def build(self, features_shape=None):
        """Create every weight from the constructor's sizes; the input shapes are not needed."""
        hidden = (None, None, self.d_model)
        for embedding in {id(e): e for e in (self.source_embedding, self.target_embedding)}.values():
            embedding.build()
        for block in self.encoder_blocks:
            block.build(hidden)
        for block in self.decoder_blocks:
            block.build(hidden, hidden)
        for norm in (self.encoder_norm, self.decoder_norm):
            if norm is not None:
                norm.build(hidden)
        self.built = True

    def _final(self, norm, x):
        return x if norm is None else tf.cast(norm(x), x.dtype)

    def encode(self, source_ids, training=False, segment_ids=None, positions=None):
        """[batch, source] ids → (memory [batch, source, d_model], mask [batch, source] bool). A packed
        row (several pairs, `translator.packing`) gives each token's `segment_ids` and `positions`."""
        mask = tf.not_equal(source_ids, PAD_ID)
        attention_mask = None if segment_ids is None else segment_mask(segment_ids, segment_ids)
        x = self.embedding_dropout(self.source_embedding(source_ids, positions=positions), training=training)
        for block in self.encoder_blocks:
            x = block(x, padding_mask=mask, attention_mask=attention_mask, training=training)
        return self._final(self.encoder_norm, x), mask

    def call(self, features, training=None, return_attention=False):
        """features: `source_ids` [batch, source], `target_input_ids` [batch, target] (BOS + target
        without its last token) → float32 logits [batch, target, vocab]. With `return_attention`, also
        each decoder block's cross-attention weights [batch, heads, target, source].

        Packed batches (`translator.packing`) add `source_segment_ids`, `target_segment_ids` (1, 2, … per
        pair of a row, 0 on padding), `source_positions` and `target_positions` (restarting at 0 for
        every pair): attention then stays within each pair, so every pair is computed as if alone."""
        source_segments = features.get("source_segment_ids")
        target_segments = features.get("target_segment_ids")
        memory, mask = self.encode(features["source_ids"], training, source_segments, features.get("source_positions"))
        target = self.target_embedding(features["target_input_ids"], positions=features.get("target_positions"))
        x = self.embedding_dropout(target, training=training)
        masks = {}
        if target_segments is not None:
            masks["self_attention_mask"] = segment_mask(target_segments, target_segments)
            masks["memory_attention_mask"] = segment_mask(target_segments, source_segments)
        attention = []
        for block in self.decoder_blocks:
            x, weights = block(x, memory, memory_padding_mask=mask, training=training, return_attention=True, **masks)
            attention.append(weights)
        logits = tf.cast(self.target_embedding.project(self._final(self.decoder_norm, x)), tf.float32)
        return (logits, attention) if return_attention else logits

    def make_train_function(self, force=False):
        """`fit`'s step, with every weight and optimizer slot created before it is traced.

        Without a distribution strategy, Keras defers both to the first trace, and a `tf.function` that
        creates variables is traced twice: a second full trace of forward, backward and update
        (`tests/test_api.py` counts the traces).
        """
        if self.train_function is None or force:
            with self.distribute_strategy.scope():
                if not self.built:
                    self.build()
                if self.optimizer is not None and not self.optimizer.built:
                    self.optimizer.build(self.trainable_variables)
        return super().make_train_function(force)

    def init_cache(self, memory, mask, max_length: int):
        """The decoding cache for up to `max_length` target positions (slots allocated under XLA only:
        elsewhere the self-attention cache grows step by step; `TransformerDecoder.init_cache`)."""
        caches = [block.init_cache(memory, max_length) for block in self.decoder_blocks]
        return {
            "decoder": [cache["self"] for cache in caches],
            "memory": {"cross": [cache["cross"] for cache in caches], "mask": mask},
        }

    def output_matrix(self) -> tf.Tensor:
        """[d_model, target vocab]: the output projection's matrix (the target embeddings, transposed),
        for `decode_step`. A search makes it once, before its loop: see `TokenAndPositionEmbedding.project`."""
        return self.target_embedding.transposed()

    def decode_step(self, token_ids, index, cache, output_matrix=None):
        """token_ids [batch] at position `index` → (float32 logits [batch, vocab], cache). The memory
        has the token rows' sentences as rows: batch / memory rows consecutive token rows per sentence.
        `output_matrix` is `output_matrix()`, made once per search (without it, each step transposes
        the embeddings again).

        The step carries no length axis ([batch, dim] throughout) and makes its attention biases once
        for every block: outside XLA each operation is dispatched on its own, and a step is many small ones.
        """
        x = self.target_embedding.embed_step(token_ids, index)
        # Under XLA the self-attention cache has slots not yet written, hidden by this bias; elsewhere
        # it holds exactly the positions decoded so far.
        self_bias = step_bias(index, tf.shape(cache["decoder"][0]["key"])[2]) if compiling_with_xla() else None
        memory_bias = padding_bias(cache["memory"]["mask"])
        new_decoder = []
        for block, self_cache, cross_cache in zip(self.decoder_blocks, cache["decoder"], cache["memory"]["cross"]):
            layer_cache = {"self": self_cache, "cross": cross_cache}
            x, layer_cache = block.decode_step(x, index, layer_cache, self_bias, memory_bias)
            new_decoder.append(layer_cache["self"])
        logits = self.target_embedding.project(self._final(self.decoder_norm, x), output_matrix)
        return tf.cast(logits, tf.float32), {"decoder": new_decoder, "memory": cache["memory"]}

    def get_config(self):
        return {
            **super().get_config(),
            "source_vocab_size": self.source_vocab_size,
            "target_vocab_size": self.target_vocab_size,
            "num_layers": self.num_layers,
            "decoder_layers": self.decoder_layers,
            "d_model": self.d_model,
            "num_heads": self.num_heads,
            "ffn_dim": self.ffn_dim,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "pre_norm": self.pre_norm,
            "share_embeddings": self.share_embeddings,
            "seed": self.seed,
        }


def build_model(config: ExperimentConfig, tokenizer, dtype=None, seed: int | None = None) -> Seq2SeqTransformer:
    """The run's model with every weight created, for `tokenizer`'s vocabularies (a
    `translator.tokenizer.Tokenizer`; not imported here, so the model needs no tensorflow-text)."""
    model = Seq2SeqTransformer.from_model_config(
        config.model, tokenizer.source_vocab_size, tokenizer.target_vocab_size, dtype=dtype, seed=seed
    )
    model.build()
    return model
