"""Target prefixes: forced first tokens, counted in the score, in every search."""

import numpy as np
import pytest
import tensorflow as tf

from translator.errors import TranslatorError
from translator.search import length_penalty

pytestmark = pytest.mark.slow

SENTENCES = [
    "En el principio crió Dios los cielos y la tierra.",
    "Y dijo Dios: Sea la luz: y fué la luz.",
    "Y llamó Dios á la luz Día, y á las tinieblas llamó Noche.",
]
PREFIXES = ["And the earth", "", "And he called"]


@pytest.fixture(scope="module")
def in_process(run_translator):
    return run_translator  # without XLA: the tiny preset's decode.xla


def trimmed(ids):
    return np.trim_zeros(ids, "b").tolist()


@pytest.mark.parametrize("decode", [dict(beam_size=1), dict(beam_size=3), dict(sampling_topk=5, seed=2)])
def test_outputs_start_with_their_prefix_and_an_empty_one_changes_nothing(in_process, decode):
    model = in_process.configured(**decode)
    sources = list(model.encode_text(tf.constant(SENTENCES))[0].numpy())
    prefixes = list(model.encode_prefix(tf.constant(PREFIXES)).numpy())
    forced = model.translate_ids_batched(sources, prefixes)
    free = model.translate_ids_batched(sources)
    for (ids, _), prefix in zip(forced, prefixes):
        assert all(hypothesis[: len(prefix)].tolist() == prefix.tolist() for hypothesis in ids)  # token-level
    # The sentence without a prefix, and a batch of empty prefixes, decode as without prefixes.
    assert trimmed(forced[1][0][0]) == trimmed(free[1][0][0]) and forced[1][1][0] == free[1][1][0]
    empty = model.translate_ids_batched(sources, [np.zeros([0], np.int32)] * len(sources))
    for (ids, scores), (free_ids, free_scores) in zip(empty, free):
        np.testing.assert_array_equal(ids, free_ids)
        np.testing.assert_array_equal(scores, free_scores)
    texts = model.translate(SENTENCES, prefixes=PREFIXES)
    assert all(text.startswith(prefix) for text, prefix in zip(texts, PREFIXES))
    if not model.config.sampling:  # a sample depends on its batch too
        assert texts[1] == model.translate(SENTENCES[1])


@pytest.mark.parametrize("beam_size", [1, 3])
def test_the_score_of_a_prefixed_translation_is_its_score(in_process, beam_size):
    model = in_process.configured(beam_size=beam_size)
    results = model.translate(SENTENCES, prefixes=PREFIXES, n_best=2)
    alpha = model.config.length_penalty if beam_size > 1 else 0.0  # greedy scores are raw log-probabilities
    for candidates in zip(*results):
        scored = model.score(SENTENCES, [candidate.text for candidate in candidates])
        for candidate, score in zip(candidates, scored):
            assert abs(candidate.score - score.log_prob / float(length_penalty(score.tokens, alpha))) < 1e-4


def test_a_prefix_per_sentence(in_process):
    with pytest.raises(TranslatorError, match="3 sentences but 2 prefixes"):
        in_process.translate(SENTENCES, prefixes=PREFIXES[:2])
    assert in_process.translate(SENTENCES[0], prefixes="And").startswith("And")
