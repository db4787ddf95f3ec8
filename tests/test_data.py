"""The training input pipeline: bucketing, padding, teacher forcing, determinism, caching."""

import numpy as np
import pytest

from translator.config import DataConfig
from translator.data import TokenizedCorpus, batch_shapes, fixed_shapes, target_boundaries, training_dataset
from translator.tokenizer import BOS_ID, EOS_ID


@pytest.fixture(scope="module")
def corpus(tokenizer, tmp_path_factory):
    data = DataConfig(
        train="bible_es_en/kjv:dev",
        max_source_length=64,
        max_target_length=64,
    )  # the shipped corpus from the session's TFDS directory (tests/conftest.py)
    return TokenizedCorpus.load_or_build(data.train, data, tokenizer, tmp_path_factory.mktemp("cache"))


def take(dataset, n):
    return [(f["source_ids"].numpy(), f["target_input_ids"].numpy(), labels.numpy()) for f, labels in dataset.take(n)]


def test_long_pairs_are_dropped_and_counted(corpus):
    assert len(corpus) + corpus.dropped == 379
    assert corpus.dropped > 0
    assert corpus.source_lengths.max() <= 64 and corpus.target_lengths.max() <= 64


def test_pairs_with_an_empty_side_are_dropped_and_counted_apart(tokenizer, tmp_path):
    """A stray tab or a missing line gives a pair with nothing on one side: dropped, and not counted as
    too long (the log said "2 longer than 64/64 tokens dropped" for two empty pairs)."""
    data = DataConfig(train="tsv:pairs.tsv", max_source_length=16, max_target_length=16)
    sources = ["Y dijo Dios.", "", "Y dijo.", "Y dijo Dios: Sea la luz: y fué la luz, y vió Dios que era buena.", ""]
    targets = ["And God said.", "And God.", "", "And God said.", "And God said, Let there be light: and there was."]
    corpus = TokenizedCorpus.build(sources, targets, data, tokenizer)
    assert (len(corpus), corpus.dropped, corpus.empty) == (1, 1, 3)
    read = lambda: (sources, targets)  # noqa: E731
    cached = [TokenizedCorpus.load_or_build("tsv:pairs.tsv", data, tokenizer, str(tmp_path), read) for _ in range(2)]
    assert [(len(c), c.dropped, c.empty) for c in cached] == [(1, 1, 3)] * 2  # the second from the cache file


def test_batches_respect_bucket_shapes_and_token_budget(corpus):
    boundaries = target_boundaries(64)
    for source, target_in, labels in take(training_dataset(corpus, 600, 64, seed=1), 40):
        assert labels.shape[1] in boundaries
        assert source.shape[1] % 8 == 0
        assert labels.size <= 600 or labels.shape[0] == 1
        assert source.shape[0] * source.shape[1] <= 600 or source.shape[0] == 1
        assert target_in.shape == labels.shape


def test_teacher_forcing_shifts_targets(corpus):
    source, target_in, labels = take(training_dataset(corpus, 600, 64, seed=1), 1)[0]
    assert (target_in[:, 0] == BOS_ID).all()
    words = (labels != 0) & (labels != EOS_ID)  # the input is the labels shifted right, EOS not fed back
    np.testing.assert_array_equal(target_in[:, 1:][words[:, :-1]], labels[:, :-1][words[:, :-1]])
    assert ((labels == EOS_ID).sum(axis=1) == 1).all()  # one EOS per target
    assert ((source == EOS_ID).sum(axis=1) == 1).all()
    assert not (target_in == EOS_ID).any()


def test_padding_is_low(corpus):
    real = padded = 0
    for _, _, labels in take(training_dataset(corpus, 2048, 64, seed=3), 60):
        real += (labels != 0).sum()
        padded += labels.size
    assert 1 - real / padded < 0.10


def test_stream_is_deterministic_and_resumable(corpus):
    first = take(training_dataset(corpus, 600, 64, seed=5), 12)
    again = take(training_dataset(corpus, 600, 64, seed=5), 12)
    resumed = take(training_dataset(corpus, 600, 64, seed=5, skip_batches=7), 5)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[2], b[2])
    for a, b in zip(first[7:], resumed):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[2], b[2])


@pytest.mark.parametrize("shard", [None, (3, 1)])
def test_shuffled_pair_numbers_give_the_order_of_shuffled_pairs(corpus, shard):
    """Three epochs (each reshuffled) of `shuffled_pairs` equal those of a shuffle of the pairs themselves
    with the same seed: shuffling numbers changes when the first pair is ready, not the data order."""
    pairs = corpus.pairs() if shard is None else corpus.pairs().shard(*shard)
    expected = pairs.shuffle(len(corpus), seed=5, reshuffle_each_iteration=True).repeat()
    size = len(corpus) if shard is None else len(range(shard[1], len(corpus), shard[0]))
    got = list(corpus.shuffled_pairs(5, shard).take(3 * size))
    want = list(expected.take(3 * size))
    assert len(got) == len(want) == 3 * size
    for (source, target), (source_wanted, target_wanted) in zip(got, want):
        np.testing.assert_array_equal(source.numpy(), source_wanted.numpy())
        np.testing.assert_array_equal(target.numpy(), target_wanted.numpy())
    first_epoch = {tuple(source.numpy()) for source, _ in got[:size]}
    assert len(first_epoch) > 0.9 * size  # every pair once per epoch (a few sources repeat in the corpus)


def test_cache_is_reused_and_keyed_by_tokenizer(corpus, tokenizer, tmp_path):
    data = DataConfig(train="bible_es_en/kjv:dev", max_source_length=64, max_target_length=64)
    first = TokenizedCorpus.load_or_build(data.train, data, tokenizer, tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    second = TokenizedCorpus.load_or_build(data.train, data, tokenizer, tmp_path)
    np.testing.assert_array_equal(first.target_values, second.target_values)
    TokenizedCorpus.load_or_build(data.train, DataConfig(train=data.train, max_source_length=32), tokenizer, tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2  # another length limit, another cache entry


def test_fixed_batching_yields_only_its_shapes_known_before_training(corpus):
    shapes = fixed_shapes(corpus, 8)
    assert len(shapes) == 8 and shapes == fixed_shapes(corpus, 8)  # deterministic: every worker agrees
    longest = max(zip(corpus.source_lengths, corpus.target_lengths), key=sum)
    assert any(s >= longest[0] and t >= longest[1] for s, t in shapes)  # every pair fits a shape
    expected = set(batch_shapes(corpus, 600, 64, shapes))  # (batch, source, target), one batch size per shape
    assert len(expected) <= 8 and len({(s, t) for _, s, t in expected}) == len(expected)
    stream = take(training_dataset(corpus, 600, 64, seed=1, shapes=shapes), 60)
    seen = {(labels.shape[0], source.shape[1], labels.shape[1]) for source, _, labels in stream}
    assert seen <= expected and len(seen) > 2
    real = sum((labels != 0).sum() for _, _, labels in stream)
    assert 1 - real / sum(labels.size for _, _, labels in stream) < 0.10
    for _, target_in, labels in stream:
        assert ((labels == EOS_ID).sum(axis=1) == 1).all() and (target_in[:, 0] == BOS_ID).all()
    resumed = take(training_dataset(corpus, 600, 64, seed=1, skip_batches=7, shapes=shapes), 5)
    for a, b in zip(stream[7:], resumed):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[2], b[2])


def test_bucketed_batching_can_meet_many_more_shapes(corpus):
    bucketed = batch_shapes(corpus, 600, 64)
    assert len(bucketed) > 16 and len(batch_shapes(corpus, 600, 64, fixed_shapes(corpus, 16))) <= 16


def test_a_new_run_reads_its_training_pairs_once(tmp_path, monkeypatch):
    """SentencePiece and the tokenized corpus both need the training pairs: one read feeds both, and a
    run that has both saved reads none."""
    import translator.corpus
    import translator.data
    from translator.config import load_config
    from translator.data import load_training_data

    reads = []
    read_pairs = translator.corpus.read_pairs
    counted = lambda *args: reads.append(args) or read_pairs(*args)  # noqa: E731
    for module in (translator.corpus, translator.data):  # wherever a reader looks it up
        monkeypatch.setattr(module, "read_pairs", counted)
    config = load_config("tiny", ["data.train=bible_es_en/kjv:dev", "tokenizer.vocab_size=400"])
    tokenizer, corpus = load_training_data(str(tmp_path / "tokenizer"), str(tmp_path / "cache"), config, log=print)
    assert len(reads) == 1 and reads[0][0] == "bible_es_en/kjv:dev"
    assert len(corpus) + corpus.dropped == 379 and tokenizer.source_vocab_size == 400
    again, cached = load_training_data(str(tmp_path / "tokenizer"), str(tmp_path / "cache"), config, log=print)
    assert len(reads) == 1 and again.source_vocab_size == 400
    np.testing.assert_array_equal(cached.source_values, corpus.source_values)
