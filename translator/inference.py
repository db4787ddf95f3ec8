"""`Translator`: text or ids in, translations and scores out, with the search compiled once.

It owns the three things decoding needs — the model, the tokenizer and the decode settings — and
exposes them at two levels: `search_ids` (a `tf.function` over padded id batches, the unit that is
compiled and exported) and `translate` (Python lists of sentences: sorted by length, batched under a
token budget, padded to a bounded set of bucket lengths so compiled functions are reused, returned in
input order).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator

import numpy as np
import tensorflow as tf

from translator.config import DecodeConfig
from translator.model import Seq2SeqTransformer
from translator.search import INF, beam_search, end_at_limit, greedy_search
from translator.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer

BUCKET_MULTIPLE = 8  # source batches are padded to a multiple of this many tokens


@dataclasses.dataclass(frozen=True)
class Translation:
    text: str
    score: float


def never_generate(logits: tf.Tensor) -> tf.Tensor:
    """Rule out padding and BOS as outputs: a weak model would otherwise emit them, and they
    detokenize to nothing. logits [batch, vocab] → [batch, vocab]."""
    banned = tf.one_hot([PAD_ID, BOS_ID], tf.shape(logits)[-1], dtype=logits.dtype)
    return logits - tf.reduce_sum(banned, axis=0) * INF


def decode_length(source_length: tf.Tensor, config: DecodeConfig) -> tf.Tensor:
    """How many target tokens (EOS included) to allow for a source of `source_length` tokens."""
    ratio = tf.cast(source_length, tf.float32) * config.max_length_ratio
    return tf.minimum(tf.cast(ratio, tf.int32) + 10, config.max_length)


class Translator(tf.Module):
    def __init__(
        self,
        model: Seq2SeqTransformer,
        tokenizer: Tokenizer,
        config: DecodeConfig,
        max_source_length: int = 256,
        jit_compile: bool = True,
    ):
        super().__init__(name="translator")
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.max_source_length = max_source_length
        self.jit_compile = jit_compile
        self.search_ids = tf.function(
            self._search_ids,
            input_signature=[tf.TensorSpec([None, None], tf.int32)],
            jit_compile=jit_compile,
            reduce_retracing=True,
        )

    def with_config(self, **changes) -> Translator:
        """The same model and tokenizer with other decode settings (a new compiled search)."""
        return Translator(
            self.model,
            self.tokenizer,
            dataclasses.replace(self.config, **changes),
            self.max_source_length,
            self.jit_compile,
        )

    def _search_ids(self, source_ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """source_ids [batch, source] (EOS-terminated, 0-padded) → (ids [batch, n, max_len], scores [batch, n]);
        n is the beam size (1 for greedy)."""
        memory, mask = self.model.encode(source_ids)
        # Buffers are sized by the padded width (one shape per bucket); each sentence stops at its own
        # limit, so its translation does not depend on the batch it is decoded in.
        max_length = decode_length(tf.shape(source_ids)[1], self.config)
        limits = decode_length(tf.reduce_sum(tf.cast(source_ids != PAD_ID, tf.int32), axis=1), self.config)
        cache = self.model.init_cache(memory, mask, max_length)
        start = tf.fill([tf.shape(source_ids)[0]], BOS_ID)

        def step(token_ids, index, cache):
            logits, cache = self.model.decode_step(token_ids, index, cache)
            return never_generate(logits), cache

        if self.config.beam_size <= 1:
            ids, scores = greedy_search(step, start, cache, max_length, EOS_ID, limits)
            return ids[:, tf.newaxis], scores[:, tf.newaxis]
        return beam_search(
            step, start, cache, self.config.beam_size, max_length, EOS_ID, self.config.length_penalty, limits
        )

    def encode_text(self, text: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """[batch] strings → (ragged ids with EOS, at most max_source_length; truncated [batch] bool)."""
        ids = self.tokenizer.encode_source(text)
        limit = self.max_source_length - 1
        truncated = ids.row_lengths() > limit
        ids = ids[:, :limit]
        eos = tf.fill([ids.nrows(), 1], EOS_ID)
        return tf.concat([ids, tf.RaggedTensor.from_tensor(eos)], axis=1), truncated

    def translate_ids_batched(self, sources: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Decode id sequences (EOS-terminated) in length-sorted, bucket-padded batches.

        Returns, in input order, (ids [n, max_len], scores [n]) per sentence.
        """
        results: list = [None] * len(sources)
        for indices in self._batches([len(s) for s in sources]):
            length = _bucket_length(max(len(sources[i]) for i in indices))
            batch = np.zeros([len(indices), length], np.int32)
            for row, index in enumerate(indices):
                batch[row, : len(sources[index])] = sources[index]
            ids, scores = self.search_ids(tf.constant(batch))
            for row, index in enumerate(indices):
                results[index] = (ids[row].numpy(), scores[row].numpy())
        return results

    def _batches(self, lengths: list[int]) -> Iterator[list[int]]:
        """Indices grouped into batches of similar length under the source token budget (with beams)."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        budget = max(self.config.batch_tokens // max(self.config.beam_size, 1), 1)
        batch: list[int] = []
        for index in order:
            padded = _bucket_length(lengths[index])
            if batch and padded * (len(batch) + 1) > budget:
                yield batch
                batch = []
            batch.append(index)
        if batch:
            yield batch

    def translate(self, sentences: Iterable[str], n_best: int = 1) -> list[list[Translation]]:
        """Translate sentences; returns, in input order, the `n_best` best translations of each."""
        sentences = list(sentences)
        if not sentences:
            return []
        ragged, _ = self.encode_text(tf.constant(sentences, tf.string))
        sources = [row for row in ragged.numpy()]
        decoded = self.translate_ids_batched(sources)
        n = max(1, min(n_best, decoded[0][0].shape[0]))
        flat_ids = [ids[k] for ids, _ in decoded for k in range(n)]
        texts = self.detokenize(flat_ids)
        return [
            [Translation(texts[i * n + k], float(scores[k])) for k in range(n)] for i, (_, scores) in enumerate(decoded)
        ]

    def detokenize(self, sequences: list[np.ndarray]) -> list[str]:
        """Target id sequences (EOS and padding allowed) → strings."""
        if not sequences:
            return []
        width = max(len(s) for s in sequences)
        padded = np.zeros([len(sequences), width], np.int32)
        for row, ids in enumerate(sequences):
            cut = np.flatnonzero(ids == EOS_ID)
            ids = ids[: cut[0]] if cut.size else ids
            padded[row, : len(ids)] = ids
        return [text.decode("utf-8") for text in self.tokenizer.decode_target(tf.constant(padded)).numpy()]


def _bucket_length(length: int) -> int:
    return max(BUCKET_MULTIPLE, int(math.ceil(length / BUCKET_MULTIPLE)) * BUCKET_MULTIPLE)


def uncached_greedy_search(
    model: Seq2SeqTransformer,
    source_ids: tf.Tensor,
    max_length: int,
    forward=None,
    limits: tf.Tensor | None = None,
) -> tf.Tensor:
    """Greedy decoding that re-runs the decoder over the whole prefix at every step (the TF tutorial's
    way). The reference the cached search is tested and benchmarked against.

    source_ids [batch, source] → ids [batch, max_length] (EOS then 0s after it). `forward` may be a
    compiled `model.call`; by default the model runs eagerly. `limits` [batch] applies the
    Translator's per-sentence length limit (see `translator.search.end_at_limit`).
    """
    forward = forward or model
    batch = tf.shape(source_ids)[0]
    prefix = tf.fill([batch, 1], BOS_ID)
    finished = tf.zeros([batch], tf.bool)
    for index in range(max_length):
        logits = never_generate(forward({"source_ids": source_ids, "target_input_ids": prefix})[:, -1])
        logits = end_at_limit(logits, tf.constant(index), limits, EOS_ID)
        tokens = tf.where(finished, 0, tf.argmax(logits, axis=-1, output_type=tf.int32))
        prefix = tf.concat([prefix, tokens[:, tf.newaxis]], axis=1)
        finished |= tf.equal(tokens, EOS_ID)
        if bool(tf.reduce_all(finished)):
            break
    ids = prefix[:, 1:]
    return tf.pad(ids, [[0, 0], [0, max_length - tf.shape(ids)[1]]])
