"""Sequence packing: several training pairs per row of a fixed width, so a run meets one or two batch shapes.

Why: XLA compiles the training step once per batch shape (seconds each on a CPU), and length buckets
meet dozens of shapes. Packing puts pairs side by side in rows of `width` tokens on each side, as
Flax's WMT example and T5 do: every batch of packed rows has the shape [rows, width], where rows =
batch_tokens // width. Pairs longer than `width` on either side go into rows as wide as the corpus'
longest pair (rounded up to a multiple of 8), packed the same way: at most two shapes.

Each token carries its pair's segment id (1, 2, … within its row, 0 on padding) and its position
within the pair (restarting at 0). `Seq2SeqTransformer.call` turns the segment ids into attention masks,
so no token attends across pairs and each pair is computed as if it were alone in its batch
(`tests/test_packing.py` checks per-pair losses against unpacked batches).

Rows are filled first-fit from a window of `OPEN_ROWS` open rows, in a fresh seeded order of the pairs
every epoch. A row leaves the window when no pair fits it any more, or, when a new row overflows the
window, the fullest of the others leaves (closing the oldest instead wastes more of narrow rows). The
stream is infinite and deterministic in (seed, shard): a resumed run skips the batches it already took
and goes on with the ones an uninterrupted run would have seen. The packing is plain Python over pair
lengths; batches come through `tf.data.Dataset.from_generator`, which works on one machine and per
worker under multi-worker strategies, though not with the tf.data service.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from translator.constants import BOS_ID, EOS_ID

if TYPE_CHECKING:
    from translator.data import TokenizedCorpus

OPEN_ROWS = 16  # rows still accepting pairs: more fill rows better, at a Python loop's cost per pair
WIDTH_MULTIPLE = 8
MIN_PAIR_LENGTH = 2  # a token and EOS: TokenizedCorpus drops empty sides
FEATURES = (
    "source_ids",
    "source_segment_ids",
    "source_positions",
    "target_input_ids",
    "target_segment_ids",
    "target_positions",
)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def pack_widths(corpus: TokenizedCorpus, width: int) -> list[int]:
    """The row widths a packed run uses: `width`, and the longest pair's length (rounded up to a multiple
    of 8) if some pair does not fit `width`."""
    if len(corpus) == 0:
        raise ValueError("no training pairs: cannot pack them")
    longest = int(max(corpus.source_lengths.max(), corpus.target_lengths.max()))
    return [width] if longest <= width else [width, _round_up(longest, WIDTH_MULTIPLE)]


def rows_per_batch(batch_tokens: int, width: int) -> int:
    """Rows of `width` tokens under a budget of `batch_tokens` padded tokens per side (at least one)."""
    return max(batch_tokens // width, 1)


def packed_shapes(corpus: TokenizedCorpus, batch_tokens: int, width: int) -> list[tuple[int, int, int]]:
    """Every (batch, source, target) shape a packed stream of `corpus` yields."""
    return [(rows_per_batch(batch_tokens, w), w, w) for w in pack_widths(corpus, width)]


class _Packer:
    """First-fit packing of pairs into rows of one width; full rows come out in the order they close."""

    def __init__(self, width: int):
        self.width = width
        self.open: list[list] = []  # [pair indices, source tokens used, target tokens used]

    def add(self, pair: int, source_length: int, target_length: int) -> list[int] | None:
        """Place `pair`; returns a row that had to leave the window (its pair indices), if any."""
        for i, row in enumerate(self.open):
            if row[1] + source_length <= self.width and row[2] + target_length <= self.width:
                row[0].append(pair)
                row[1] += source_length
                row[2] += target_length
                # Full: no pair (at least 2 tokens a side) fits any more, so it leaves now.
                full = min(self.width - row[1], self.width - row[2]) < MIN_PAIR_LENGTH
                return self.open.pop(i)[0] if full else None
        self.open.append([[pair], source_length, target_length])
        if len(self.open) <= OPEN_ROWS:
            return None
        fullest = max(range(OPEN_ROWS), key=lambda i: self.open[i][1] + self.open[i][2])
        return self.open.pop(fullest)[0]


def packed_row_batches(
    source_lengths: np.ndarray,
    target_lengths: np.ndarray,
    widths: list[int],
    batch_tokens: int,
    seed: int,
    shard: tuple[int, int] = (0, 1),
) -> Iterator[tuple[int, list[list[int]]]]:
    """Infinite stream of (width, rows): each row a list of pair indices whose lengths fit `width` on
    both sides. Epoch e visits this shard's pairs (index ≡ shard[0] mod shard[1]) in the order of a
    permutation seeded by (seed, e); a pair goes to the narrowest width that holds it."""
    index, count = shard
    mine = np.arange(index, len(source_lengths), count)
    if len(mine) == 0:
        raise ValueError(f"input shard {index} of {count} holds no training pairs")
    longest = np.maximum(source_lengths, target_lengths)
    packers = [_Packer(width) for width in widths]
    ready: list[list[list[int]]] = [[] for _ in widths]
    sizes = [rows_per_batch(batch_tokens, width) for width in widths]
    epoch = 0
    while True:
        order = mine[np.random.default_rng([seed, epoch]).permutation(len(mine))]
        for pair in order.tolist():
            which = next(i for i, width in enumerate(widths) if longest[pair] <= width)
            row = packers[which].add(pair, int(source_lengths[pair]), int(target_lengths[pair]))
            if row is not None:
                ready[which].append(row)
                if len(ready[which]) == sizes[which]:
                    yield widths[which], ready[which]
                    ready[which] = []
        epoch += 1


def assemble(corpus: TokenizedCorpus, rows: list[list[int]], width: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Packed rows of pair indices → (features, target output ids) arrays of shape [len(rows), width].

    Per pair: the source ids + EOS, the target input BOS + ids and the target output ids + EOS, each with
    its segment id (its place in the row, from 1) and positions from 0. Padding is 0 everywhere."""
    source_offsets, target_offsets = corpus.value_offsets
    arrays = {name: np.zeros([len(rows), width], np.int32) for name in (*FEATURES, "target_output_ids")}
    for r, row in enumerate(rows):
        source_at = target_at = 0
        for segment, pair in enumerate(row, start=1):
            s, t = int(corpus.source_lengths[pair]), int(corpus.target_lengths[pair])
            tokens = corpus.target_values[target_offsets[pair] : target_offsets[pair + 1]]
            arrays["source_ids"][r, source_at : source_at + s - 1] = corpus.source_values[
                source_offsets[pair] : source_offsets[pair + 1]
            ]
            arrays["source_ids"][r, source_at + s - 1] = EOS_ID
            arrays["source_segment_ids"][r, source_at : source_at + s] = segment
            arrays["source_positions"][r, source_at : source_at + s] = np.arange(s)
            arrays["target_input_ids"][r, target_at] = BOS_ID
            arrays["target_input_ids"][r, target_at + 1 : target_at + t] = tokens
            arrays["target_output_ids"][r, target_at : target_at + t - 1] = tokens
            arrays["target_output_ids"][r, target_at + t - 1] = EOS_ID
            arrays["target_segment_ids"][r, target_at : target_at + t] = segment
            arrays["target_positions"][r, target_at : target_at + t] = np.arange(t)
            source_at, target_at = source_at + s, target_at + t
    labels = arrays.pop("target_output_ids")
    return arrays, labels


def packed_dataset(
    corpus: TokenizedCorpus,
    batch_tokens: int,
    width: int,
    seed: int,
    skip_batches: int = 0,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Infinite, deterministic stream of packed `(features, target_output_ids)` batches (see the module
    docstring); `skip_batches` resumes it where a run stopped, without assembling the skipped batches."""
    widths = pack_widths(corpus, width)
    shard = (0, 1)
    if input_context is not None and input_context.num_input_pipelines > 1:
        shard = (input_context.input_pipeline_id, input_context.num_input_pipelines)

    def generate():
        stream = packed_row_batches(corpus.source_lengths, corpus.target_lengths, widths, batch_tokens, seed, shard)
        for number, (row_width, rows) in enumerate(stream):
            if number >= skip_batches:
                yield assemble(corpus, rows, row_width)

    spec = tf.TensorSpec([None, None], tf.int32)
    signature = ({name: spec for name in FEATURES}, spec)
    return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(tf.data.AUTOTUNE)
