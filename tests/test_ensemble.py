"""Ensembles: one search over the mean of several models' log-probabilities."""

import shutil

import numpy as np
import pytest

import translator
from translator.ensemble import EnsembleTranslator
from translator.errors import TranslatorError
from translator.search import length_penalty

pytestmark = pytest.mark.slow

SENTENCES = [
    "En el principio crió Dios los cielos y la tierra.",
    "Y dijo Dios: Sea la luz: y fué la luz.",
    "Y llamó Dios á la luz Día.",
]


def test_an_ensemble_of_a_model_with_itself_is_the_model(run_translator):
    single = run_translator  # the tiny preset decodes without XLA, as the ensemble here
    ensemble = EnsembleTranslator([single, single], jit_compile=False)
    for beam_size in (1, 3):
        expected = single.configured(beam_size=beam_size).translate_nbest(SENTENCES, beam_size)
        got = ensemble.configured(beam_size=beam_size).translate_nbest(SENTENCES, beam_size)
        for ours, theirs in zip(expected, got):
            assert [c.text for c in ours] == [c.text for c in theirs]
            np.testing.assert_allclose([c.score for c in ours], [c.score for c in theirs], atol=1e-5)
    targets = [candidates[0].text for candidates in expected]
    for ours, theirs in zip(single.score(SENTENCES, targets), ensemble.score(SENTENCES, targets)):
        assert ours.tokens == theirs.tokens and abs(ours.log_prob - theirs.log_prob) <= 1e-5


def test_the_ensemble_score_is_the_mean_of_the_models_scores(trained_run, second_trained_run):
    ensemble = translator.load([trained_run, second_trained_run], beam_size=3, jit_compile=False)
    assert isinstance(ensemble, EnsembleTranslator) and ensemble.run_dirs == [str(trained_run), str(second_trained_run)]
    first, second = ensemble.members
    nbest = ensemble.translate(SENTENCES, n_best=2)
    texts = [candidates[0].text for candidates in nbest]
    assert texts != first.translate(SENTENCES) or texts != second.translate(SENTENCES)  # two different models
    alpha = ensemble.config.length_penalty
    for candidates, a, b, mean in zip(
        nbest, first.score(SENTENCES, texts), second.score(SENTENCES, texts), ensemble.score(SENTENCES, texts)
    ):
        assert a.tokens == b.tokens == mean.tokens
        assert abs(mean.log_prob - (a.log_prob + b.log_prob) / 2) <= 1e-4
        # The search's score of its best hypothesis: the mean log-probability over the length penalty.
        expected = (a.log_prob + b.log_prob) / 2 / float(length_penalty(a.tokens, alpha))
        assert abs(candidates[0].score - expected) <= 1e-4


def test_an_ensemble_needs_one_tokenizer_and_does_not_export(trained_run, second_trained_run, tokenizer, tmp_path):
    other = shutil.copytree(second_trained_run, tmp_path / "other")
    shutil.rmtree(other / "tokenizer")
    tokenizer.save(str(other / "tokenizer"))  # another SentencePiece model
    with pytest.raises(TranslatorError, match="an ensemble's runs must share one SentencePiece model"):
        translator.load([trained_run, other])
    with pytest.raises(TranslatorError, match="is not a run directory"):
        translator.load([trained_run, tmp_path])
    ensemble = translator.load([trained_run, second_trained_run])
    with pytest.raises(TranslatorError, match="cannot be exported"):
        ensemble.export(tmp_path / "export")
