"""Word alignments read from the model's cross-attention, in Pharaoh format (`0-0 1-2 ...`).

As OpenNMT-tf and Marian do, the alignment of a target token is the cross-attention of the last
decoder layer, averaged over its heads, when the model predicts that token. It is read from one
teacher-forced pass over the chosen hypothesis (`Seq2SeqTransformer.call(..., return_attention=True)`):
the same computation as the cached search, in one call (see `Translator.align`).

From pieces to words: a SentencePiece piece that starts with ▁ begins a word, any other piece
continues the current one (the first piece always begins word 0); a word made only of ▁ (a run of
spaces) is no word; EOS, BOS and padding belong to no word. So words are the whitespace-separated
tokens of the text. The rule: each target word is aligned to the one source word that receives the
most attention, summed over the target word's pieces and over the source word's pieces (ties go to
the first source word). Attention on the source's EOS counts for no word. Every target word gets
exactly one link; pairs are listed in target order as `source-target` word indices (from 0).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from translator.constants import BOS_ID, EOS_ID, PAD_ID

WORD_START = "\u2581"  # ▁, SentencePiece's mark of a preceding space
_SPECIALS = (PAD_ID, BOS_ID, EOS_ID)


@dataclasses.dataclass(frozen=True)
class Alignment:
    """One sentence pair's alignment.

    `matrix` [target pieces, source pieces]: the last decoder layer's cross-attention, mean of heads;
    row t is the distribution over the source pieces (EOS included) when target piece t is
    predicted, so every row sums to 1. `pairs`: (source word, target word), one per target word."""

    source_pieces: list[str]  # as the model read the source: pieces, then </s>
    target_pieces: list[str]  # the target's pieces, then </s> (unless it was cut at the length limit)
    matrix: np.ndarray
    pairs: list[tuple[int, int]]
    source_words: list[str]  # the words the indices of `pairs` count (▁ removed)
    target_words: list[str]

    @property
    def pharaoh(self) -> str:
        return to_pharaoh(self.pairs)


def piece_words(pieces: Sequence[str | None]) -> list[int]:
    """The word index of each piece (-1 for a special piece, given as None, and for blank words)."""
    starts, current = [], -1
    for piece in pieces:
        if piece is None:
            starts.append(-1)
            continue
        if current < 0 or piece.startswith(WORD_START):
            current += 1
        starts.append(current)
    blank = {
        word
        for word in set(starts) - {-1}
        if not "".join(p for p, w in zip(pieces, starts) if w == word).replace(WORD_START, "").strip()
    }
    renumber = {word: index for index, word in enumerate(sorted(set(starts) - {-1} - blank))}
    return [renumber.get(word, -1) for word in starts]


def word_alignment(
    matrix: np.ndarray, source_words: Sequence[int], target_words: Sequence[int]
) -> list[tuple[int, int]]:
    """matrix [target pieces, source pieces] → (source word, target word) pairs, one per target word,
    in target order, by the rule in the module docstring. Pieces of word -1 are ignored."""
    source_words, target_words = np.asarray(source_words), np.asarray(target_words)
    sources, targets = source_words.max(initial=-1) + 1, target_words.max(initial=-1) + 1
    if not sources or not targets:
        return []
    by_word = np.zeros([targets, sources])  # [target words, source words]
    for t, target_word in enumerate(target_words):
        if target_word >= 0:
            np.add.at(by_word[target_word], source_words[source_words >= 0], matrix[t][source_words >= 0])
    return [(int(np.argmax(by_word[word])), word) for word in range(targets)]


def to_pharaoh(pairs: Sequence[tuple[int, int]]) -> str:
    """[(0, 0), (2, 1)] → "0-0 2-1"."""
    return " ".join(f"{source}-{target}" for source, target in pairs)


def last_layer_attention(attention: Sequence[tf.Tensor]) -> np.ndarray:
    """Per-layer cross-attention [batch, heads, target, source] → the last layer's mean over heads,
    float32 [batch, target, source]."""
    return tf.reduce_mean(tf.cast(attention[-1], tf.float32), axis=1).numpy()


def make_alignment(matrix: np.ndarray, source_ids: np.ndarray, target_ids: np.ndarray, tokenizer) -> Alignment:
    """The alignment of one pair from its attention matrix [≥ target, ≥ source] (padding cut off here),
    its source ids (EOS included) and target ids (EOS included when the hypothesis ended);
    `tokenizer` is a `translator.tokenizer.Tokenizer`."""
    source_ids, target_ids = np.asarray(source_ids), np.asarray(target_ids)
    matrix = np.asarray(matrix)[: len(target_ids), : len(source_ids)]
    source = _pieces(tokenizer.source, source_ids)
    target = _pieces(tokenizer.target, target_ids)
    source_words = piece_words([None if i in _SPECIALS else p for i, p in zip(source_ids, source)])
    target_words = piece_words([None if i in _SPECIALS else p for i, p in zip(target_ids, target)])
    pairs = word_alignment(matrix, source_words, target_words)
    return Alignment(source, target, matrix, pairs, _words(source, source_words), _words(target, target_words))


def _words(pieces: list[str], words: list[int]) -> list[str]:
    """The text of each word: its pieces joined, without the ▁ marks."""
    texts = [""] * (max(words, default=-1) + 1)
    for piece, word in zip(pieces, words):
        if word >= 0:
            texts[word] += piece
    return [text.replace(WORD_START, " ").strip() for text in texts]


def _pieces(model, ids: np.ndarray) -> list[str]:
    if not len(ids):
        return []
    return [piece.decode("utf-8", "replace") for piece in model.id_to_string(tf.constant(ids, tf.int32)).numpy()]
