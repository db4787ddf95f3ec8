"""Lexical shortlists: for each source piece, the target pieces its translation is likely to contain.

A decoder step ends in a product with the whole target vocabulary. At the tutorial size that product
(d_model 128 × 8,000 pieces) costs more than the four decoder layers before it, yet a sentence's
translation draws on a few hundred of those pieces. Marian's lexical shortlists and CTranslate2's
vocabulary map (`vmap.txt`, enabled by `use_vmap`) restrict the product, per batch, to the union of
candidates of the batch's source pieces plus a fixed set of frequent pieces.

The candidates come from the run's own training pairs: sentence-level co-occurrence of a source piece
and a target piece, ranked by Dice's coefficient (2·c(s, t) / (c(s) + c(t))), which favours pieces
that translate each other over pieces that are merely frequent; the frequent ones are in every list
anyway. A shortlist changes the search (a piece outside it cannot be produced), so `bench decode`
reports its BLEU and agreement with the full search beside its speed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from translator.constants import EOS_ID
from translator.errors import TranslatorError

if TYPE_CHECKING:  # the CLI reads the defaults below without importing TensorFlow
    from translator.data import TokenizedCorpus

# Defaults: 10 candidates per source piece and the 100 most frequent target pieces. On the tutorial-size
# model (8,000 pieces; AMD EPYC with AVX-512, 2026-12-07), in batches of 8 sentences, CTranslate2 int8
# decoded the test split at 320-326 sentences/s against 208-249 without a shortlist, for 0.29 BLEU; 50 per
# piece gave 288-309 sentences/s for 0.13 BLEU (docs/benchmarks.md, "A lexical shortlist for CTranslate2").
DEFAULT_PER_SOURCE = 10
DEFAULT_FREQUENT = 100
# Co-occurrence counts from at most this many pairs (a few seconds; the ranking settles well before).
MAX_PAIRS = 500_000
_CHUNK_PAIRS = 4_096  # pairs whose (source, target) keys are counted at once


def cooccurrence(corpus: TokenizedCorpus, source_vocab_size: int, target_vocab_size: int) -> dict[str, np.ndarray]:
    """Sentence-level counts over the first `MAX_PAIRS` pairs, specials and EOS excluded:
    `keys` (source id × target_vocab_size + target id, sorted) with `counts` (pairs holding both),
    `source_pairs` and `target_pairs` (pairs holding each id), `target_tokens` (occurrences)."""
    source_starts, target_starts = corpus.value_offsets
    pairs = min(len(corpus), MAX_PAIRS)
    target_values = corpus.target_values[: target_starts[pairs]]
    source_pairs = np.zeros(source_vocab_size, np.int64)
    target_pairs = np.zeros(target_vocab_size, np.int64)
    chunks_keys, chunks_counts, pending = [], [], []
    for i in range(pairs):
        source = np.unique(corpus.source_values[source_starts[i] : source_starts[i + 1]])
        target = np.unique(target_values[target_starts[i] : target_starts[i + 1]])
        source, target = source[source > EOS_ID], target[target > EOS_ID]
        source_pairs[source] += 1
        target_pairs[target] += 1
        pending.append((source[:, None].astype(np.int64) * target_vocab_size + target[None, :]).ravel())
        if len(pending) == _CHUNK_PAIRS or i == pairs - 1:
            keys, counts = np.unique(np.concatenate(pending), return_counts=True)
            chunks_keys.append(keys)
            chunks_counts.append(counts)
            pending = []
    keys = np.concatenate(chunks_keys) if chunks_keys else np.zeros(0, np.int64)
    counts = np.concatenate(chunks_counts) if chunks_counts else np.zeros(0, np.int64)
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else np.zeros(0, np.int64)
    target_tokens = np.bincount(target_values[target_values > EOS_ID], minlength=target_vocab_size)
    return {
        "keys": keys[starts],
        "counts": np.add.reduceat(counts, starts) if keys.size else counts,
        "source_pairs": source_pairs,
        "target_pairs": target_pairs,
        "target_tokens": target_tokens,
    }


def build_shortlist(
    corpus: TokenizedCorpus,
    source_pieces: list[str],
    target_pieces: list[str],
    per_source: int = DEFAULT_PER_SOURCE,
    frequent: int = DEFAULT_FREQUENT,
) -> list[str]:
    """CTranslate2 vocabulary-map lines: first `\\t` and the `frequent` most frequent target pieces
    (always candidates), then `source piece\\tcandidates` for every source piece seen in training,
    its `per_source` best target pieces by Dice's coefficient, best first."""
    if per_source < 1 or frequent < 0:
        raise TranslatorError(f"shortlist: per_source must be ≥ 1 and frequent ≥ 0, got {per_source} and {frequent}")
    vocab = len(target_pieces)
    stats = cooccurrence(corpus, len(source_pieces), vocab)
    tokens = stats["target_tokens"]
    common = [int(i) for i in np.argsort(-tokens, kind="stable")[:frequent] if tokens[i] > 0]
    lines = ["\t" + " ".join(target_pieces[i] for i in common)]
    keys, counts = stats["keys"], stats["counts"]
    sources, targets = keys // vocab, keys % vocab
    dice = 2.0 * counts / (stats["source_pairs"][sources] + stats["target_pairs"][targets])
    bounds = np.flatnonzero(np.r_[True, sources[1:] != sources[:-1], True]) if keys.size else [0]
    for start, end in zip(bounds[:-1], bounds[1:]):
        ranked = start + np.argsort(-dice[start:end], kind="stable")[:per_source]
        candidates = " ".join(target_pieces[int(t)] for t in targets[ranked])
        lines.append(f"{source_pieces[int(sources[start])]}\t{candidates}")
    return lines
