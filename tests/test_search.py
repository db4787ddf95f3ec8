"""Greedy and beam search: agreement between code paths, optimality checks, compilation."""

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import tiny_model
from translator.bench.reference import uncached_greedy_search
from translator.config import DecodeConfig
from translator.constants import BOS_ID, PAD_ID
from translator.inference import Translator, decode_length, never_generate
from translator.search import INF, beam_search, greedy_search, length_penalty, sampling_logits, sampling_search

SOURCE = tf.constant([[5, 6, 7, 8, 3, 0], [9, 10, 11, 12, 13, 3], [20, 21, 3, 0, 0, 0]])
EOS = 3


def biased_model(seed):
    """A random model whose EOS logit is raised, so hypotheses end at varied lengths."""
    model = tiny_model(seed=seed)
    embeddings = model.target_embedding.embeddings
    values = embeddings.numpy()
    values[EOS] *= 4.0
    embeddings.assign(values)
    return model


def start_and_cache(model, max_length):
    memory, mask = model.encode(SOURCE)
    return tf.fill([SOURCE.shape[0]], 2), model.init_cache(memory, mask, max_length)


def sequence_log_prob(model, ids):
    """Teacher-forced log-probability of each hypothesis [batch, length] (up to and including EOS)."""
    ids = ids.numpy()
    target_in = np.concatenate([np.full([len(ids), 1], 2), ids[:, :-1]], axis=1)
    target_in[target_in == EOS] = 0
    log_probs = tf.nn.log_softmax(model({"source_ids": SOURCE, "target_input_ids": tf.constant(target_in)})).numpy()
    picked = np.take_along_axis(log_probs, ids[..., None], axis=-1)[..., 0]
    return (picked * (ids != 0)).sum(axis=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_size_one_is_greedy(seed):
    model = biased_model(seed)
    start, cache = start_and_cache(model, 12)
    greedy_ids, greedy_scores = greedy_search(model.decode_step, start, cache, 12, EOS)
    beam_ids, beam_scores = beam_search(model.decode_step, start, cache, 1, 12, EOS, alpha=0.0)
    np.testing.assert_array_equal(beam_ids[:, 0].numpy(), greedy_ids.numpy())
    np.testing.assert_allclose(beam_scores[:, 0].numpy(), greedy_scores.numpy(), atol=1e-4)


def test_never_generate_rules_out_padding_and_bos_and_leaves_the_rest_exactly():
    logits = tf.random.stateless_normal([3, 10], seed=[1, 2])
    ruled = never_generate(logits).numpy()
    banned = [PAD_ID, BOS_ID]
    np.testing.assert_array_equal(np.delete(ruled, banned, axis=1), np.delete(logits.numpy(), banned, axis=1))
    assert (ruled[:, banned] < -INF / 2).all()


@pytest.mark.parametrize("transposed_once", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cached_greedy_equals_uncached_greedy(seed, transposed_once):
    """The cached step, with the output matrix transposed at each step or once (as `Translator.search_step`
    makes it), chooses exactly the tokens of the full teacher-forced pass."""
    model = biased_model(seed)
    start, cache = start_and_cache(model, 12)
    output_matrix = model.output_matrix() if transposed_once else None

    def step(tokens, index, state):  # the Translator's step: padding and BOS are never generated
        logits, state = model.decode_step(tokens, index, state, output_matrix)
        return never_generate(logits), state

    cached, _ = greedy_search(step, start, cache, 12, EOS)
    uncached = uncached_greedy_search(model, SOURCE, 12)
    assert not np.isin(cached.numpy(), [2]).any()
    np.testing.assert_array_equal(cached.numpy(), uncached.numpy())


@pytest.mark.parametrize("seed", range(5))
def test_beam_scores_at_least_greedy_and_are_true_scores(seed):
    model = biased_model(seed)
    start, cache = start_and_cache(model, 10)
    greedy_ids, greedy_scores = greedy_search(model.decode_step, start, cache, 10, EOS)
    beam_ids, beam_scores = beam_search(model.decode_step, start, cache, 4, 10, EOS, alpha=0.0)
    assert (beam_scores[:, 0].numpy() >= greedy_scores.numpy() - 1e-4).all()
    scores = beam_scores.numpy()
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # n-best sorted best first
    # The reported score of the best hypothesis is its teacher-forced log-probability.
    best = beam_ids[:, 0]
    np.testing.assert_allclose(scores[:, 0], sequence_log_prob(model, best), atol=1e-3)


def test_length_penalty_normalizes_scores():
    model = biased_model(0)
    start, cache = start_and_cache(model, 10)
    ids, scores = beam_search(model.decode_step, start, cache, 3, 10, EOS, alpha=1.0)
    lengths = (ids[:, 0].numpy() != 0).sum(axis=1)
    raw = sequence_log_prob(model, ids[:, 0])
    np.testing.assert_allclose(scores[:, 0].numpy(), raw / length_penalty(lengths, 1.0).numpy(), atol=1e-3)
    assert (scores.numpy() > -INF).all()  # finite "infinity" never leaks into results


def test_search_same_results_eager_function_and_xla():
    model = biased_model(1)
    # The cache is made where the search runs: under XLA it has fixed slots, elsewhere it grows.
    search = lambda: beam_search(model.decode_step, *start_and_cache(model, 10), 3, 10, EOS, alpha=0.6)  # noqa: E731
    eager_ids, eager_scores = search()
    for compiled in (tf.function(search, autograph=False), tf.function(search, jit_compile=True, autograph=False)):
        ids, scores = compiled()
        np.testing.assert_array_equal(ids.numpy(), eager_ids.numpy())
        np.testing.assert_allclose(scores.numpy(), eager_scores.numpy(), atol=1e-4)


def test_translator_does_not_retrace_for_a_new_batch_of_the_same_bucket(tokenizer):
    model = tiny_model(vocab_size=tokenizer.source_vocab_size)
    translator = Translator(model, tokenizer, DecodeConfig(beam_size=2, max_length=12), jit_compile=False)
    translator.translate(["Y dijo Dios: Sea la luz.", "Y fué la luz."])
    traces = translator.search_ids.experimental_get_tracing_count()
    translator.translate(["Y vió Dios que la luz era buena.", "En el principio."])
    assert translator.search_ids.experimental_get_tracing_count() == traces == 1


def test_translator_keeps_input_order_and_batches_by_length(tokenizer):
    model = tiny_model(vocab_size=tokenizer.source_vocab_size)
    config = DecodeConfig(beam_size=1, max_length=10, batch_tokens=32)
    translator = Translator(model, tokenizer, config, jit_compile=False)
    sentences = ["uno", "dos tres cuatro cinco seis siete ocho nueve diez once doce", "tres", "cuatro cinco"]
    together = translator.translate(sentences)
    alone = [translator.translate(s) for s in sentences]
    assert together == alone
    lengths = [8, 24, 8, 16]
    batches = list(translator._batches(lengths))
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]
    assert all(sum(1 for _ in b) * max(lengths[i] for i in b) <= 32 for b in batches)


@pytest.mark.parametrize("workers", [2, 3])
def test_the_exports_chunks_give_each_sentence_its_own_result(tokenizer, workers):
    """`export.search_sorted` sorts a request by length and decodes it in chunks on `workers` loops:
    whatever the request's size (empty, fewer sentences than loops, chunks and a part), every sentence
    gets its result alone, in input order."""
    from translator.export import search_sorted

    model = tiny_model(vocab_size=tokenizer.source_vocab_size)
    config = DecodeConfig(beam_size=2, max_length=12, workers=workers)
    translator = Translator(model, tokenizer, config, jit_compile=False)
    sources = [[*range(5, 5 + (7 * n) % 11), EOS] for n in range(9)]
    spec = tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1)
    search = tf.function(
        lambda ragged: search_sorted(translator, ragged, sub_batch=2), input_signature=[spec], autograph=False
    )
    alone = [
        translator.search_ids(tf.constant([s]), tf.zeros([1, 0], tf.int32), tf.zeros([2], tf.int32)) for s in sources
    ]
    for size in (0, 2, 5, 9):  # chunks of 2 on 2 or 3 loops
        ids, scores = search(tf.ragged.constant(sources[:size], dtype=tf.int32, ragged_rank=1, inner_shape=()))
        assert ids.shape[0] == scores.shape[0] == size
        for row, (own_ids, own_scores) in enumerate(alone[:size]):
            length = own_ids.shape[2]
            np.testing.assert_array_equal(ids[row, :, :length].numpy(), own_ids[0].numpy())
            assert not ids[row, :, length:].numpy().any()
            np.testing.assert_allclose(scores[row].numpy(), own_scores[0].numpy(), atol=1e-5)


def test_batches_decoded_side_by_side_give_exactly_the_results_in_sequence(tokenizer):
    model = tiny_model(vocab_size=tokenizer.source_vocab_size)
    config = DecodeConfig(beam_size=3, max_length=12, batch_tokens=64, workers=1)
    in_sequence = Translator(model, tokenizer, config, jit_compile=False)
    side_by_side = in_sequence.with_config(workers=3)
    sources = [np.array([*range(5, 5 + n % 11), EOS], np.int32) for n in range(40)]
    assert len(list(in_sequence._batches([len(s) for s in sources]))) > 3  # the workers share several batches
    expected, got = in_sequence.translate_ids_batched(sources), side_by_side.translate_ids_batched(sources)
    for (ids, scores), (other_ids, other_scores) in zip(expected, got):
        np.testing.assert_array_equal(ids, other_ids)
        np.testing.assert_array_equal(scores, other_scores)


def test_an_input_smaller_than_one_batch_is_dealt_to_every_worker_with_the_same_translations(tokenizer):
    """A server's batch of 32 fits one batch of the token budget: decoded as one, it would keep one
    worker (and its share of the cores) busy and the other idle."""
    model = tiny_model(vocab_size=tokenizer.source_vocab_size)
    config = DecodeConfig(beam_size=3, max_length=12, batch_tokens=4096, workers=2)
    dealt = Translator(model, tokenizer, config, jit_compile=False)
    lengths = [9, 3, 7, 5, 1]  # sorted: positions 4, 1, 3, 2, 0
    assert dealt._search_batches(lengths) == [[4, 3, 0], [1, 2]]
    assert dealt._search_batches([6]) == [[0]]
    one_batch = [[4, 1, 3, 2, 0]]
    assert dealt.with_config(workers=1)._search_batches(lengths) == one_batch
    assert dealt.with_config(sampling_topk=5)._search_batches(lengths) == one_batch  # draws follow the batches
    assert dealt.with_config(xla=True)._search_batches(lengths) == one_batch  # one compiled call uses every core
    many = [3 + n % 9 for n in range(40)]
    budgeted = dealt.with_config(batch_tokens=96)  # several batches of the budget: left as they are
    assert len(budgeted._search_batches(many)) > 2 and budgeted._search_batches(many) == list(budgeted._batches(many))

    sources = [np.array([*range(5, 5 + (7 * n) % 11), EOS], np.int32) for n in range(9)]
    alone = dealt.with_config(workers=1).translate_ids_batched(sources)
    searched, search = [], dealt.search_ids
    dealt.search_ids = lambda source_ids, *rest: searched.append(len(source_ids)) or search(source_ids, *rest)
    together = dealt.translate_ids_batched(sources)
    assert sorted(searched) == [4, 5]  # two searches, side by side; not one of 9
    for (ids, scores), (other_ids, other_scores) in zip(alone, together):
        width = min(ids.shape[1], other_ids.shape[1])  # each batch pads to its own longest
        np.testing.assert_array_equal(ids[:, :width], other_ids[:, :width])
        assert not ids[:, width:].any() and not other_ids[:, width:].any()
        np.testing.assert_allclose(scores, other_scores, atol=1e-5)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_length_limit_depends_on_the_sentence_not_on_its_batch(tokenizer, beam_size):
    # A model that never ends: every hypothesis runs into the limit, which must come from the sentence's
    # own length, so decoding it alone or beside a long sentence gives the same tokens.
    model = tiny_model(vocab_size=tokenizer.source_vocab_size)
    embeddings = model.target_embedding.embeddings
    values = embeddings.numpy()
    values *= 4.0
    values[EOS] = 0.0  # EOS logit 0, far below the best of the other (scaled-up) logits
    embeddings.assign(values)
    config = DecodeConfig(beam_size=beam_size, max_length=64, max_length_ratio=1.5, batch_tokens=4096)
    translator = Translator(model, tokenizer, config, jit_compile=False)
    short = np.array([7, 8, 9, EOS], np.int32)
    long = np.arange(10, 40, dtype=np.int32)
    long[-1] = EOS
    ((alone_ids, alone_scores),) = translator.translate_ids_batched([short])
    (together_ids, together_scores), _ = translator.translate_ids_batched([short, long])
    limit = int(decode_length(len(short), config))
    for ids in (alone_ids[0], together_ids[0]):
        assert ids[limit - 1] == EOS and EOS not in ids[: limit - 1] and not ids[limit:].any()
    np.testing.assert_array_equal(alone_ids[0][:limit], together_ids[0][:limit])
    np.testing.assert_allclose(alone_scores, together_scores, atol=1e-4)


def test_beam_search_never_reorders_the_memory():
    model = biased_model(2)
    start, cache = start_and_cache(model, 8)
    seen = []

    def step(tokens, index, state):
        seen.append(state["memory"])
        return model.decode_step(tokens, index, state)

    beam_search(step, start, cache, 3, 8, EOS, alpha=0.6)
    assert len(seen) > 1
    for memory in seen:  # eager: the cache's very own tensors at every step, one row per sentence
        assert all(a is b for a, b in zip(tf.nest.flatten(memory), tf.nest.flatten(cache["memory"])))


@pytest.mark.parametrize("seed, constrained", [(1, False), (0, True), (2, True), (3, True)])  # each drops some
def test_dropping_finished_sentences_changes_no_result(seed, constrained):
    """Sentences leave the batch at the step they are done; the n-best lists and scores stay those of
    the search that keeps every sentence to the end, eagerly and in a graph."""
    model = biased_model(seed)
    start, cache = start_and_cache(model, 12)
    limits = tf.constant([6, 12, 9]) if constrained else None
    prefixes = tf.constant([[7, 0], [0, 0], [9, 11]]) if constrained else None
    batch_sizes = []

    def step(tokens, index, state):
        batch_sizes.append(tokens.shape[0])
        return model.decode_step(tokens, index, state)

    def search(cache, drop):
        return beam_search(step, start, cache, 3, 12, EOS, 0.6, limits, prefixes, drop_finished=drop)

    expected_ids, expected_scores = search(cache, False)
    kept_batch = batch_sizes[:]
    batch_sizes.clear()
    eager_result = search(cache, True)
    eager = batch_sizes[:]  # the step's batch, eagerly, at every step of the search that drops
    for ids, scores in (eager_result, tf.function(lambda c: search(c, True), autograph=False)(cache)):
        np.testing.assert_array_equal(ids.numpy(), expected_ids.numpy())
        np.testing.assert_allclose(scores.numpy(), expected_scores.numpy(), atol=1e-5)
    assert set(kept_batch) == {9} and eager[0] == 9 and eager[-1] < 9  # 3 sentences · 3 beams, then fewer
    assert eager == sorted(eager, reverse=True) and all(size % 3 == 0 for size in eager)


@pytest.mark.parametrize("seed", [0, 1])  # seed 1: the short sentence stayed a step longer with the batch's bound
def test_a_sentence_leaves_a_batch_at_the_step_it_leaves_a_search_of_its_own(seed):
    """Early stopping bounds a sentence's live beams by the length penalty at its own limit, not at the
    batch's longest: a short sentence among long ones leaves the search at the step it leaves a search
    whose buffers end at its limit (with the batch's bound it stayed longer, at no gain)."""
    model = biased_model(seed)
    limits = [5, 12, 8]

    def counting(sizes):
        def step(tokens, index, state):
            sizes.append(tokens.shape[0])
            return model.decode_step(tokens, index, state)

        return step

    alone = []
    for row, limit in enumerate(limits):
        sizes = []
        memory, mask = model.encode(SOURCE[row : row + 1])
        cache = model.init_cache(memory, mask, limit)
        limit_tensor = tf.constant([limit])
        beam_search(counting(sizes), tf.fill([1], 2), cache, 3, limit, EOS, 0.6, limit_tensor, drop_finished=True)
        alone.append(len(sizes))
    sizes = []
    start, cache = start_and_cache(model, 12)
    beam_search(counting(sizes), start, cache, 3, 12, EOS, 0.6, tf.constant(limits), drop_finished=True)
    assert sizes == [3 * sum(steps > step for steps in alone) for step in range(max(alone))], alone


@pytest.mark.parametrize("vocab", [50, 2100])  # 2,100: the blocked top-k, with a padded last block
def test_two_stage_top_k_equals_one_top_k_over_every_beam(vocab):
    """Beam search's candidates: the k best of each beam, then the k best of those, must be the k
    best over beam·vocab in the same order, ties included (lower beam, then lower token first)."""
    from translator.search import _top_candidates

    rng = np.random.default_rng(0)
    batch, beams, k = 3, 4, 8
    scores = rng.integers(-6, 0, size=[batch, beams, vocab]).astype("float32")  # many ties
    scores[1, 1:] = -INF  # the first step: only the first beam is alive
    top_scores, origin, tokens = _top_candidates(tf.constant(scores), k)
    expected_scores, expected = tf.math.top_k(tf.reshape(scores, [batch, beams * vocab]), k=k)
    np.testing.assert_array_equal(top_scores, expected_scores)
    np.testing.assert_array_equal(origin, expected // vocab)
    np.testing.assert_array_equal(tokens, expected % vocab)


@pytest.mark.parametrize("vocab", [1024, 8000, 8001, 32000])
@pytest.mark.parametrize("k", [1, 8])
def test_top_k_by_blocks_equals_top_k_ties_included(vocab, k):
    """The blocked top-k gives TopKV2's values and indices exactly, whatever the ties: few distinct
    values (ties across blocks), the best entries in the last blocks with ties in earlier ones, rows
    all equal, -INF rows, -inf entries, and a vocabulary that is not a multiple of the block; in a
    graph and compiled by XLA too."""
    from translator.search import top_k_by_blocks

    rng = np.random.default_rng(vocab + k)
    x = rng.integers(-5, 0, size=[2, 3, vocab]).astype("float32")
    x[0, 1] = -INF
    x[1, 0] = 0.0
    x[1, 2, rng.integers(0, vocab, size=vocab // 2)] = -np.inf
    x[0, 2] = rng.normal(size=vocab).astype("float32")
    x[1, 1, -3:] = 0.0  # the best blocks are the last ones, and ties with lower blocks follow
    expected_values, expected_indices = tf.math.top_k(x, k=k)
    for run in (top_k_by_blocks, tf.function(top_k_by_blocks, jit_compile=True)):
        values, indices = run(tf.constant(x), k)
        np.testing.assert_array_equal(values, expected_values)
        np.testing.assert_array_equal(indices, expected_indices)


# Sampling


def test_sampling_with_top_k_one_is_greedy_exactly():
    model = biased_model(0)
    start, cache = start_and_cache(model, 12)
    seed = tf.constant([7, 0])
    greedy_ids, greedy_scores = greedy_search(model.decode_step, start, cache, 12, EOS)
    for temperature in (1.0, 0.5, 3.0):  # the temperature cannot change the single candidate
        ids, scores = sampling_search(model.decode_step, start, cache, 12, EOS, seed, topk=1, temperature=temperature)
        np.testing.assert_array_equal(ids.numpy(), greedy_ids.numpy())
        np.testing.assert_array_equal(scores.numpy(), greedy_scores.numpy())


def test_seeded_sampling_repeats_and_seeds_differ():
    model = tiny_model(seed=4)  # a flat random model: samples vary from draw to draw
    sample = lambda seed: sampling_search(  # noqa: E731
        model.decode_step, *start_and_cache(model, 12), 12, EOS, tf.constant(seed), topk=0
    )
    first_ids, first_scores = sample([5, 0])
    again_ids, again_scores = sample([5, 0])
    np.testing.assert_array_equal(first_ids.numpy(), again_ids.numpy())
    np.testing.assert_array_equal(first_scores.numpy(), again_scores.numpy())
    assert not np.array_equal(sample([6, 0])[0].numpy(), first_ids.numpy())
    assert not np.array_equal(sample([5, 1])[0].numpy(), first_ids.numpy())
    # The score is the model's own log-probability of the sample, as for greedy and beam search.
    np.testing.assert_allclose(first_scores.numpy(), sequence_log_prob(model, first_ids), atol=1e-3)
    # tf.function draws the same numbers as eager; XLA draws its own, repeatably.
    function_ids, _ = tf.function(sample, autograph=False)([5, 0])
    np.testing.assert_array_equal(function_ids.numpy(), first_ids.numpy())
    compiled = tf.function(sample, jit_compile=True, autograph=False)
    np.testing.assert_array_equal(compiled([5, 0])[0].numpy(), compiled([5, 0])[0].numpy())


FIXED = np.log(np.array([[0.5, 0.3, 0.15, 0.05]], np.float32))


def kept(logits):
    return (logits.numpy()[0] > -INF / 2).tolist()


def test_top_p_keeps_only_the_nucleus():
    assert kept(sampling_logits(tf.constant(FIXED), topp=0.45)) == [True, False, False, False]
    assert kept(sampling_logits(tf.constant(FIXED), topp=0.75)) == [True, True, False, False]
    assert kept(sampling_logits(tf.constant(FIXED), topp=0.9)) == [True, True, True, False]
    assert kept(sampling_logits(tf.constant(FIXED), topp=1.0)) == [True] * 4
    assert kept(sampling_logits(tf.constant(FIXED), topk=2)) == [True, True, False, False]
    # Within the nucleus, the model's proportions stay: 0.5 : 0.3 renormalized.
    probs = tf.nn.softmax(sampling_logits(tf.constant(FIXED), topp=0.75)).numpy()[0]
    np.testing.assert_allclose(probs, [0.625, 0.375, 0, 0], atol=1e-6)


def test_temperature_sharpens_or_flattens_a_fixed_distribution():
    for temperature in (0.5, 2.0):
        probs = tf.nn.softmax(sampling_logits(tf.constant(FIXED), temperature=temperature)).numpy()[0]
        expected = np.exp(FIXED[0] / temperature) / np.exp(FIXED[0] / temperature).sum()
        np.testing.assert_allclose(probs, expected, atol=1e-6)
    # Draws follow the tempered distribution: one step from a constant model, 20,000 sentences.
    batch = 20_000
    step = lambda tokens, index, cache: (tf.tile(tf.constant(FIXED), [tf.shape(tokens)[0], 1]), cache)  # noqa: E731
    start = tf.fill([batch], 2)
    for temperature in (0.5, 2.0):
        ids, _ = sampling_search(step, start, {}, 1, EOS, tf.constant([1, 2]), topk=0, temperature=temperature)
        frequencies = np.bincount(ids.numpy()[:, 0], minlength=4) / batch
        expected = np.exp(FIXED[0] / temperature) / np.exp(FIXED[0] / temperature).sum()
        np.testing.assert_allclose(frequencies, expected, atol=0.015)


def test_sampling_options_are_checked():
    from translator.errors import TranslatorError

    with pytest.raises(TranslatorError, match="decode.sampling_topp=0.9 needs sampling"):
        DecodeConfig(sampling_topp=0.9)
    with pytest.raises(TranslatorError, match="decode.sampling_temperature must be positive"):
        DecodeConfig(sampling_topk=0, sampling_temperature=0.0)
    with pytest.raises(TranslatorError, match=r"decode.sampling_topp must be in \(0, 1\]"):
        DecodeConfig(sampling_topk=10, sampling_topp=1.5)
    with pytest.raises(TranslatorError, match="decode.sampling_topk must be at least 0"):
        DecodeConfig(sampling_topk=-1)
    assert DecodeConfig(sampling_topk=0, sampling_topp=0.9).sampling and not DecodeConfig().sampling


def test_translator_samples_repeatably_and_by_seed(tokenizer):
    model = tiny_model(vocab_size=tokenizer.source_vocab_size, seed=5)
    config = DecodeConfig(beam_size=4, max_length=16, sampling_topk=0, seed=3)
    translator = Translator(model, tokenizer, config, jit_compile=False)
    sentences = ["Y dijo Dios: Sea la luz.", "Y fué la luz.", "En el principio."]
    first = translator.translate(sentences, n_best=4)
    assert all(len(candidates) == 1 for candidates in first)  # one sample per sentence, whatever the beam
    assert translator.translate(sentences, n_best=4) == first
    assert translator.translate(sentences, seed=4) != [candidates[0].text for candidates in first]


# Target prefixes


def test_prefixes_are_forced_and_counted_in_every_search():
    model = biased_model(3)
    start, cache = start_and_cache(model, 12)
    prefix = tf.constant([[40, 41, 0], [0, 0, 0], [42, 0, 0]])
    searches = {
        "greedy": lambda p: greedy_search(model.decode_step, start, cache, 12, EOS, prefix_ids=p),
        "beam": lambda p: (lambda r: (r[0][:, 0], r[1][:, 0]))(
            beam_search(model.decode_step, start, cache, 3, 12, EOS, alpha=0.0, prefix_ids=p)
        ),
        "sampling": lambda p: sampling_search(
            model.decode_step, start, cache, 12, EOS, tf.constant([1, 1]), 0, prefix_ids=p
        ),
    }
    for name, search in searches.items():
        ids, scores = search(prefix)
        ids = ids.numpy()
        assert ids[0, :2].tolist() == [40, 41] and ids[2, 0] == 42, name
        np.testing.assert_allclose(scores.numpy(), sequence_log_prob(model, tf.constant(ids)), atol=1e-3)
        # An empty prefix changes nothing.
        free_ids, free_scores = search(None)
        empty_ids, empty_scores = search(tf.zeros([3, 0], tf.int32))
        np.testing.assert_array_equal(empty_ids.numpy(), free_ids.numpy())
        np.testing.assert_array_equal(empty_scores.numpy(), free_scores.numpy())
        np.testing.assert_array_equal(ids[1], free_ids.numpy()[1])  # the row without a prefix is untouched
