"""Training input: tokenize once, cache, bucket by length under a token budget.

`TokenizedCorpus.load_or_build` turns a corpus spec into id arrays (EOS appended to both sides),
drops pairs longer than the configured maxima — counted and reported, never silently truncated — and
caches the result in the run directory under a key that changes with the data, the languages, the
length limits or the tokenizer. `training_dataset` makes the infinite, deterministic stream of
`(features, labels)` batches the training loop consumes: shuffled pairs, grouped by (target, source)
length bucket, padded to the bucket boundary, each batch as large as the token budget allows. A
bounded set of shapes keeps compiled train steps few; fine target buckets keep padding low.

`train.batching: fixed` trades a little padding for far fewer shapes: `fixed_shapes` chooses, before
training and from the corpus' own lengths, at most `train.batch_shapes` (source, target) shapes that
cover every pair, and every batch is padded to one of them with a fixed batch size per shape. XLA (and a
TPU) then compiles each shape once, all of them known in advance, instead of meeting new bucket shapes
for the whole run.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from translator import storage
from translator.config import DataConfig, ExperimentConfig
from translator.constants import BOS_ID, EOS_ID
from translator.corpus import parse_spec, read_pairs
from translator.packing import packed_dataset, packed_shapes
from translator.tokenizer import Tokenizer, load_or_train_tokenizer

SOURCE_MULTIPLE = 8  # source side padded to a multiple of this
FIXED_SHAPE_MULTIPLE = 4  # fixed shapes are multiples of this on both sides


def target_boundaries(max_length: int) -> list[int]:
    """Target bucket boundaries: every 4 tokens up to 64, every 8 to 128, then every 16."""
    boundaries, length = [], 4
    while length < max_length:
        boundaries.append(length)
        length += 4 if length < 64 else 8 if length < 128 else 16
    return boundaries + [max_length]


@dataclasses.dataclass
class TokenizedCorpus:
    """Ragged id arrays of one corpus split: flat values and per-sentence lengths."""

    source_values: np.ndarray
    source_lengths: np.ndarray
    target_values: np.ndarray
    target_lengths: np.ndarray
    dropped: int = 0  # pairs over the length limits
    empty: int = 0  # pairs with an empty source or target (a stray tab, a missing line), dropped too

    def __len__(self) -> int:
        return len(self.source_lengths)

    @functools.cached_property
    def value_offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """Where each pair's source and target ids start in the flat value arrays, one more entry than
        pairs (the end). Lengths count the EOS that the values leave out. Computed once per corpus."""
        return (
            np.concatenate([[0], np.cumsum(self.source_lengths - 1)]),
            np.concatenate([[0], np.cumsum(self.target_lengths - 1)]),
        )

    @classmethod
    def load_or_build(
        cls,
        spec: str,
        data: DataConfig,
        tokenizer: Tokenizer,
        cache_dir: str,
        read: Callable[[], tuple[list[str], list[str]]] | None = None,
    ) -> TokenizedCorpus:
        """The cached corpus, or built from `read()`'s pairs (by default `spec`'s) and cached."""
        key = _cache_key(spec, data, tokenizer)
        path = storage.join(cache_dir, f"{key}.npz")
        if storage.exists(path):
            with np.load(io.BytesIO(storage.read_bytes(path)), allow_pickle=False) as arrays:
                counts = {name: int(arrays[name]) for name in ("dropped", "empty") if name in arrays.files}
                return cls(**{name: arrays[name] for name in arrays.files if name not in counts}, **counts)
        if read is None:
            sources, targets = read_pairs(spec, data.source_lang, data.target_lang, data.tfds_data_dir)
        else:
            sources, targets = read()
        corpus = cls.build(sources, targets, data, tokenizer)
        buffer = io.BytesIO()
        np.savez(
            buffer,
            dropped=corpus.dropped,
            empty=corpus.empty,
            **{
                name: getattr(corpus, name)
                for name in ("source_values", "source_lengths", "target_values", "target_lengths")
            },
        )
        storage.write_bytes(path, buffer.getvalue())  # atomic: a kill never leaves a half-written cache
        return corpus

    @classmethod
    def build(cls, sources: list[str], targets: list[str], data: DataConfig, tokenizer: Tokenizer) -> TokenizedCorpus:
        source_ids = _tokenize(tokenizer.encode_source, sources)
        target_ids = _tokenize(tokenizer.encode_target, targets)
        source_lengths = np.array([len(s) + 1 for s in source_ids], np.int32)  # + EOS
        target_lengths = np.array([len(t) + 1 for t in target_ids], np.int32)  # + BOS / EOS
        empty = (source_lengths == 1) | (target_lengths == 1)  # EOS alone: an empty side teaches nothing
        too_long = (source_lengths > data.max_source_length) | (target_lengths > data.max_target_length)
        kept = np.flatnonzero(~empty & ~too_long)
        return cls(
            source_values=_flatten([source_ids[i] for i in kept]),
            source_lengths=source_lengths[kept],
            target_values=_flatten([target_ids[i] for i in kept]),
            target_lengths=target_lengths[kept],
            dropped=int(np.count_nonzero(too_long & ~empty)),
            empty=int(np.count_nonzero(empty)),
        )

    def pairs(self) -> tf.data.Dataset:
        """(source ids + EOS, target ids + EOS) pairs as variable-length int32 tensors, in corpus order."""
        return tf.data.Dataset.range(len(self)).map(self._pair_at(), num_parallel_calls=tf.data.AUTOTUNE)

    def _pair_at(self):
        """pair number → (source ids + EOS, target ids + EOS), sliced from the flat value arrays."""
        values = (tf.constant(self.source_values), tf.constant(self.target_values))
        offsets = tuple(tf.constant(starts, tf.int64) for starts in self.value_offsets)
        eos = tf.constant([EOS_ID], values[0].dtype)

        def pair(number):
            return tuple(tf.concat([ids[at[number] : at[number + 1]], eos], 0) for ids, at in zip(values, offsets))

        return pair

    def shuffled_pairs(self, seed: int, shard: tuple[int, int] | None = None) -> tf.data.Dataset:
        """The pairs of `pairs` (only every `shard[0]`-th from `shard[1]` on, if given), in a new random
        order each epoch, forever.

        The pair numbers are shuffled, not the pairs: a tf.data shuffle draws its order from its seed and
        buffer alone, so the order is the one `pairs().shuffle(len(self), seed)` gives (tested), but the
        first batch waits for a buffer of integers instead of every pair of the corpus made into tensors
        (seconds at the start of every run).
        """
        numbers = tf.data.Dataset.range(len(self))
        if shard is not None:
            numbers = numbers.shard(*shard)
        numbers = numbers.shuffle(len(self), seed=seed, reshuffle_each_iteration=True).repeat()
        return numbers.map(self._pair_at(), num_parallel_calls=tf.data.AUTOTUNE)


def _tokenize(encode, texts: list[str], chunk: int = 8192) -> list[np.ndarray]:
    ids: list[np.ndarray] = []
    for start in range(0, len(texts), chunk):
        ragged = encode(tf.constant(texts[start : start + chunk], tf.string))
        ids.extend(np.split(ragged.flat_values.numpy(), np.cumsum(ragged.row_lengths().numpy())[:-1]))
    return ids


def _flatten(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays).astype(np.int32) if arrays else np.zeros([0], np.int32)


def _cache_key(spec: str, data: DataConfig, tokenizer: Tokenizer) -> str:
    parsed = parse_spec(spec)
    files = []
    if parsed.kind in ("tsv", "text"):
        files = [
            (_absolute(p), tf.io.gfile.stat(p).length, tf.io.gfile.stat(p).mtime_nsec)
            for p in parsed.paths
            if tf.io.gfile.exists(p)
        ]
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            [
                spec,
                data.source_lang,
                data.target_lang,
                data.max_source_length,
                data.max_target_length,
                data.tfds_data_dir,
                files,
            ]
        ).encode()
    )
    digest.update(tokenizer.source_model_proto)
    digest.update(tokenizer.target_model_proto)
    return f"{parsed.split}-{digest.hexdigest()[:16]}"


def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def bucket_shapes(source_length: tf.Tensor, target_length: tf.Tensor, boundaries: list[int]):
    """Padded (source, target) lengths for a pair: target to its bucket boundary, source to a multiple of 8."""
    target_bucket = tf.searchsorted(tf.constant(boundaries, tf.int32), target_length[tf.newaxis], side="left")[0]
    padded_target = tf.gather(boundaries, target_bucket)
    padded_source = (source_length + SOURCE_MULTIPLE - 1) // SOURCE_MULTIPLE * SOURCE_MULTIPLE
    return padded_source, padded_target


def fixed_shapes(corpus: TokenizedCorpus, count: int) -> list[tuple[int, int]]:
    """At most `count` (source, target) padded lengths that cover every pair of `corpus`, chosen to pad little.

    Each pair's lengths are rounded up to a multiple of 4; then, greedily, the two shapes whose merge
    into their common cover (the larger length on each side) adds the fewest padded tokens (source plus
    target, over the pairs they hold) are merged, until `count` remain. Deterministic: every worker and
    every resumption of a run computes the same shapes from the same corpus. Sorted by target, then
    source length.
    """
    if len(corpus) == 0:
        raise ValueError("no training pairs: cannot choose batch shapes")
    grid = FIXED_SHAPE_MULTIPLE
    lengths = np.stack([corpus.source_lengths, corpus.target_lengths], axis=1).astype(np.int64)
    keys, counts = np.unique((lengths + grid - 1) // grid * grid, axis=0, return_counts=True)
    source, target, pairs = keys[:, 0], keys[:, 1], counts.astype(np.int64)
    while len(source) > count:
        merged_source = np.maximum(source[:, None], source[None, :])  # [shapes, shapes]
        merged_target = np.maximum(target[:, None], target[None, :])
        padded = pairs * (source + target)  # padded tokens of each shape's pairs, now
        growth = (pairs[:, None] + pairs[None, :]) * (merged_source + merged_target) - padded[:, None] - padded[None, :]
        np.fill_diagonal(growth, np.iinfo(np.int64).max)
        i, j = np.unravel_index(np.argmin(growth), growth.shape)
        source[i], target[i], pairs[i] = merged_source[i, j], merged_target[i, j], pairs[i] + pairs[j]
        source, target, pairs = np.delete(source, j), np.delete(target, j), np.delete(pairs, j)
    return sorted(zip(source.tolist(), target.tolist()), key=lambda shape: (shape[1], shape[0]))


def batch_size_for(batch_tokens: int, source_length: int, target_length: int) -> int:
    """Pairs per batch of one shape: as many as `batch_tokens` padded tokens of the longer side allow."""
    return max(batch_tokens // max(source_length, target_length), 1)


def batch_shapes(
    corpus: TokenizedCorpus,
    batch_tokens: int,
    max_target_length: int,
    shapes: list[tuple[int, int]] | None = None,
    pack_width: int = 0,
) -> list[tuple[int, int, int]]:
    """Every (batch, source, target) shape `training_dataset` can yield for `corpus`: one per length bucket
    that holds a pair (bucketed), one per fixed shape that holds a pair (`shapes` given), or one per row
    width (`pack_width` given). Known before training, so a run can log it and compile each one up front."""
    if pack_width:
        return packed_shapes(corpus, batch_tokens, pack_width)
    if shapes is None:
        source, target = bucket_shapes(
            tf.constant(corpus.source_lengths), tf.constant(corpus.target_lengths), target_boundaries(max_target_length)
        )
        used = set(zip(source.numpy().tolist(), target.numpy().tolist()))
    else:
        indices = _fixed_shape_index(corpus.source_lengths, corpus.target_lengths, shapes)
        used = {shapes[index] for index in np.unique(indices)}
    return sorted((batch_size_for(batch_tokens, s, t), s, t) for s, t in used)


def _fixed_shape_index(source_length, target_length, shapes: list[tuple[int, int]]):
    """Index of the smallest shape (fewest source + target positions) that holds each pair; numpy or tensors.
    A pair that fits no shape gets `len(shapes)`."""
    source_sizes = np.array([s for s, _ in shapes], np.int32)
    target_sizes = np.array([t for _, t in shapes], np.int32)
    if isinstance(source_length, np.ndarray):
        fits = (source_sizes[None, :] >= source_length[:, None]) & (target_sizes[None, :] >= target_length[:, None])
        cost = np.where(fits, source_sizes + target_sizes, np.iinfo(np.int32).max)
        return np.where(fits.any(axis=1), np.argmin(cost, axis=1), len(shapes))
    source_sizes, target_sizes = tf.constant(source_sizes), tf.constant(target_sizes)
    fits = tf.logical_and(source_sizes >= source_length, target_sizes >= target_length)  # [shapes]
    cost = tf.where(fits, source_sizes + target_sizes, np.iinfo(np.int32).max)
    return tf.where(tf.reduce_any(fits), tf.argmin(cost, output_type=tf.int32), len(shapes))


def training_dataset(
    corpus: TokenizedCorpus,
    batch_tokens: int,
    max_target_length: int,
    seed: int,
    skip_batches: int = 0,
    input_context: tf.distribute.InputContext | None = None,
    shapes: list[tuple[int, int]] | None = None,
    pack_width: int = 0,
) -> tf.data.Dataset:
    """Infinite, deterministic stream of `({"source_ids", "target_input_ids"}, target_output_ids)`.

    `batch_tokens` is this pipeline's budget of padded tokens (of the longer side) per batch; under a
    strategy, pass the per-replica share. `skip_batches` resumes the stream where a run stopped.
    `shapes` (from `fixed_shapes`) pads every batch to one of these (source, target) shapes instead of
    the length buckets; each shape's batches all have the same size. `pack_width` packs several pairs
    per row of that width instead (`translator.packing`; the features then hold segment ids and
    positions too).
    """
    if pack_width:
        return packed_dataset(corpus, batch_tokens, pack_width, seed, skip_batches, input_context)
    shard = None
    if input_context is not None and input_context.num_input_pipelines > 1:
        shard = (input_context.num_input_pipelines, input_context.input_pipeline_id)
    dataset = corpus.shuffled_pairs(seed, shard)
    if shapes is None:
        dataset = bucket_batches(dataset, batch_tokens, max_target_length)
    else:
        dataset = fixed_shape_batches(dataset, batch_tokens, shapes)
    return dataset.shuffle(64, seed=seed + 1).skip(skip_batches).prefetch(tf.data.AUTOTUNE)


def load_training_data(
    tokenizer_dir: str, cache_dir: str, config: ExperimentConfig, write: bool = True, log: Callable[[str], None] = print
) -> tuple[Tokenizer, TokenizedCorpus]:
    """A run's tokenizer and tokenized training split, each loaded or made and saved. A new run needs
    the training pairs for both: they are read once (minutes for a WMT-size corpus)."""
    data = config.data
    read_train = functools.cache(lambda: read_pairs(data.train, data.source_lang, data.target_lang, data.tfds_data_dir))
    tokenizer = load_or_train_tokenizer(tokenizer_dir, config, read_train, write=write, log=log)
    return tokenizer, TokenizedCorpus.load_or_build(data.train, data, tokenizer, cache_dir, read_train)


def fixed_shape_batches(pairs: tf.data.Dataset, batch_tokens: int, shapes: list[tuple[int, int]]) -> tf.data.Dataset:
    """(source ids + EOS, target ids + EOS) pairs → teacher-forced batches, each padded to the smallest of
    `shapes` that holds its pairs, `batch_size_for` that shape pairs each (the remainder is kept for the
    next epoch's windows: the stream is infinite). Pairs that fit no shape are an error."""
    sizes = tf.constant([batch_size_for(batch_tokens, s, t) for s, t in shapes], tf.int64)
    padded = tf.constant(shapes, tf.int64)  # [shapes, 2]

    def key(source, target):
        index = _fixed_shape_index(tf.size(source), tf.size(target), shapes)
        tf.debugging.assert_less(index, len(shapes), message="a training pair fits none of the fixed batch shapes")
        return tf.cast(index, tf.int64)

    def batch(index, window):
        shape = ([padded[index, 0]], [padded[index, 1]])
        return window.padded_batch(sizes[index], padded_shapes=shape, drop_remainder=True)

    dataset = pairs.group_by_window(key, batch, window_size_func=lambda index: sizes[index])
    return dataset.map(teacher_forcing, num_parallel_calls=tf.data.AUTOTUNE)


def bucket_batches(
    pairs: tf.data.Dataset, batch_tokens: int, max_target_length: int, drop_remainder: bool = True
) -> tf.data.Dataset:
    """(source ids + EOS, target ids + EOS) pairs → teacher-forced batches grouped by (target, source)
    length bucket, padded to the bucket's boundaries, each as large as `batch_tokens` allows. A finite
    stream keeps its last, smaller batch of each bucket unless `drop_remainder`."""
    boundaries = target_boundaries(max_target_length)

    def key(source, target):
        padded_source, padded_target = bucket_shapes(tf.size(source), tf.size(target), boundaries)
        return tf.cast(padded_target * 10_000 + padded_source, tf.int64)

    def batch_size(bucket_key):
        longest = tf.maximum(bucket_key // 10_000, bucket_key % 10_000)
        return tf.maximum(tf.cast(batch_tokens, tf.int64) // longest, 1)

    def batch(bucket_key, window):
        shapes = ([bucket_key % 10_000], [bucket_key // 10_000])
        return window.padded_batch(batch_size(bucket_key), padded_shapes=shapes, drop_remainder=drop_remainder)

    dataset = pairs.group_by_window(key, batch, window_size_func=batch_size)
    return dataset.map(teacher_forcing, num_parallel_calls=tf.data.AUTOTUNE)


def batches(
    pairs: tf.data.Dataset | tuple[list[str], list[str]],
    tokenizer: Tokenizer,
    batch_tokens: int = 4096,
    max_length: int = 128,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Teacher-forced `(features, labels)` batches for `model.fit` from your own sentence pairs.

    `pairs` is a `tf.data.Dataset` of (source, target) strings, or two lists of strings. Sentences are
    tokenized in the pipeline; pairs with a side longer than `max_length` tokens (EOS included) are
    dropped; batches group similar lengths under a budget of `batch_tokens` padded tokens. Labels are
    0 on padding, which `translator.losses.smoothed_cross_entropy` leaves out. One pass over the data:
    add `.repeat()` for several epochs.
    """
    if not isinstance(pairs, tf.data.Dataset):
        sources, targets = pairs
        if len(sources) != len(targets):
            raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
        pairs = tf.data.Dataset.from_tensor_slices((list(sources), list(targets)))
    if shuffle_seed is not None:
        pairs = pairs.shuffle(10_000, seed=shuffle_seed)
    eos = tf.constant([EOS_ID], tf.int32)

    def tokenize(source, target):
        return (
            tf.concat([tokenizer.encode_source(source), eos], axis=0),
            tf.concat([tokenizer.encode_target(target), eos], axis=0),
        )

    def fits(source, target):
        return tf.logical_and(tf.size(source) <= max_length, tf.size(target) <= max_length)

    ids = pairs.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE).filter(fits)
    return bucket_batches(ids, batch_tokens, max_length, drop_remainder=False).prefetch(tf.data.AUTOTUNE)


def teacher_forcing(source, target):
    # target [batch, T] = tokens + EOS + padding → input BOS + tokens (+ padding), output tokens + EOS
    bos = tf.fill([tf.shape(target)[0], 1], BOS_ID)
    target_input = tf.concat([bos, target[:, :-1]], axis=1)
    target_input = tf.where(tf.equal(target_input, EOS_ID), 0, target_input)
    return {"source_ids": source, "target_input_ids": target_input}, target
