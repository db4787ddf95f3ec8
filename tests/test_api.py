"""The Python face: `translator.load/train/evaluate`, the Keras `fit` path, the layer contract."""

import re
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import translator
from tests.conftest import read_corpus, tiny_model
from translator.errors import TranslatorError
from translator.layers import TransformerDecoder, TransformerEncoder


def test_train_stays_the_function_after_every_module_is_imported():
    import translator.training  # noqa: F401  (a submodule named `train` would replace the function)

    assert callable(translator.train) and translator.train.__module__ == "translator.api"
    assert callable(translator.evaluate) and callable(translator.load)
    assert translator.optimizers.transformer_adam and translator.losses.smoothed_cross_entropy


def test_keyword_and_dict_overrides_reach_the_config():
    config = translator.api.config_with("tiny", {"decode.beam_size": 3}, train_steps=7, model_d_model=48)
    assert (config.train.steps, config.model.d_model, config.decode.beam_size) == (7, 48, 3)
    again = translator.api.config_with(config, data_dev="")
    assert again.data.dev == "" and again.train.steps == 7
    with pytest.raises(TranslatorError, match="train.stepz"):
        translator.api.config_with("tiny", train_stepz=1)


def test_one_fit_step_equals_one_step_of_our_loop(tokenizer):
    from translator.training import build_train_step

    sources, targets = read_corpus("train", 64)
    every = list(translator.data.batches((sources, targets), tokenizer, batch_tokens=600, max_length=48))
    batch = max(every, key=lambda pair: pair[1].shape[0])
    features, labels = batch
    assert (labels.numpy() == 0).any()  # padding is present, and must be left out of the loss

    def make(clip_norm):
        model = tiny_model(vocab_size=tokenizer.source_vocab_size, seed=3)
        return model, translator.optimizers.transformer_adam(32, warmup_steps=5, clip_norm=clip_norm)

    keras_model, keras_optimizer = make(clip_norm=0.5)  # Keras clips the global norm
    keras_model.compile(
        optimizer=keras_optimizer, loss=translator.losses.smoothed_cross_entropy(0.1), jit_compile=False
    )
    keras_model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0, shuffle=False)

    loop_model, loop_optimizer = make(clip_norm=0.0)  # our step clips
    scaled = keras.optimizers.LossScaleOptimizer(loop_optimizer, initial_scale=1.0)
    scaled.build(loop_model.trainable_variables)  # as the Trainer does: its step is then traced once, not twice
    update = build_train_step(loop_model, scaled, tf.distribute.get_strategy(), 0.1, jit_compile=False, clip_norm=0.5)
    update([batch])
    moved = max(
        np.abs(a - b).max()
        for a, b in zip(loop_model.get_weights(), tiny_model(tokenizer.source_vocab_size, 3).get_weights())
    )
    assert moved > 1e-4  # the step did something
    for fitted, looped in zip(keras_model.get_weights(), loop_model.get_weights()):
        np.testing.assert_allclose(fitted, looped, atol=1e-5)


def test_fit_traces_its_step_once_for_an_unbuilt_model(tokenizer):
    class Counted(translator.Seq2SeqTransformer):
        traces = 0

        def train_step(self, data):
            Counted.traces += 1  # Python runs only while the step is traced
            return super().train_step(data)

    sources, targets = read_corpus("train", 16)
    data = translator.data.batches((sources, targets), tokenizer, batch_tokens=400).take(2)
    size = tokenizer.source_vocab_size
    model = Counted(size, size, num_layers=1, d_model=16, num_heads=2, ffn_dim=32)
    model.compile(
        optimizer=translator.optimizers.transformer_adam(16, warmup_steps=5),
        loss=translator.losses.smoothed_cross_entropy(0.1),
    )
    assert not model.built
    model.fit(data, epochs=1, verbose=0)
    assert Counted.traces == 1  # Keras alone: 2 (the first trace creates the weights and Adam's slots)
    assert len(model.optimizer.variables) > 2 * len(model.trainable_variables)


def test_batches_drop_long_pairs_and_pad_labels_with_zeros(tokenizer):
    sources = ["Y dijo Dios.", "palabra " * 80, "En el principio."]
    targets = ["And God said.", "word", "In the beginning."]
    seen = 0
    for features, labels in translator.data.batches((sources, targets), tokenizer, batch_tokens=64, max_length=32):
        ends = labels.numpy()
        seen += len(ends)
        assert features["source_ids"].shape[1] <= 32 and (ends[:, 0] != 0).all()
        assert features["target_input_ids"].numpy()[:, 0].tolist() == [2] * len(ends)  # BOS first
    assert seen == 2  # the 80-word source was dropped


def test_layers_build_inside_a_functional_model():
    tokens = keras.Input(shape=(None, 16))
    mask = keras.Input(shape=(None,), dtype="bool")
    memory = keras.Input(shape=(None, 16))
    encoder = TransformerEncoder(num_heads=2, ffn_dim=32, dropout=0.0)
    decoder = TransformerDecoder(num_heads=2, ffn_dim=32, dropout=0.0)
    encoded = encoder(tokens, padding_mask=mask)
    decoded = decoder(tokens, memory, memory_padding_mask=mask)
    model = keras.Model([tokens, mask, memory], [encoded, decoded])
    x = np.random.default_rng(0).normal(size=(2, 5, 16)).astype("float32")
    m = np.array([[True] * 5, [True] * 3 + [False] * 2])
    functional_encoded, functional_decoded = model([x, m, x])
    assert encoder.compute_output_shape((2, 5, 16)) == (2, 5, 16)
    np.testing.assert_allclose(functional_encoded.numpy(), encoder(x, padding_mask=m).numpy(), atol=1e-6)
    np.testing.assert_allclose(functional_decoded.numpy(), decoder(x, x, memory_padding_mask=m).numpy(), atol=1e-6)


def test_initializers_reach_every_sublayer_and_round_trip():
    layer = TransformerEncoder(num_heads=2, ffn_dim=32, kernel_initializer="zeros", bias_initializer="ones")
    layer.build((None, None, 16))
    kernels = [w for w in layer.weights if "kernel" in w.path]
    biases = [w for w in layer.weights if w.path.endswith("bias") and "norm" not in w.path]
    assert len(kernels) == 4 and all(np.all(w.numpy() == 0) for w in kernels)
    assert biases and all(np.all(w.numpy() == 1) for w in biases)
    clone = TransformerEncoder.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@pytest.mark.slow
def test_load_translate_score_and_export(run_translator, exported_run, tmp_path):
    model = run_translator
    sentence = "En el principio crió Dios los cielos y la tierra."
    best = model.translate(sentence)
    assert isinstance(best, str) and model.translate([sentence]) == [best]
    candidates = model.translate([sentence], n_best=2)[0]
    assert [c.text for c in candidates][0] == best and candidates[0].score >= candidates[1].score
    # The score of the model's own beam output equals the score beam search reported for it.
    from translator.search import length_penalty

    scored = model.score([sentence] * 2, [c.text for c in candidates])
    for candidate, score in zip(candidates, scored):
        penalty = float(length_penalty(score.tokens, model.config.length_penalty))
        assert abs(score.log_prob / penalty - candidate.score) < 1e-4
    # One pair as two strings, as translate takes one string: not two sequences of characters.
    assert model.score(sentence, best) == model.score([sentence], [best])[0]
    assert model.align(sentence, best).pharaoh == model.align([sentence], [best])[0].pharaoh
    for sources, targets in ((sentence, [best]), (None, None), ([sentence, None], [best, best])):
        with pytest.raises(TranslatorError, match="takes two strings or two lists of strings"):
            model.score(sources, targets)
    greedy = model.translate([sentence], beam_size=1)
    assert model.configured(beam_size=1) is model.configured(beam_size=1)  # one compiled search per setting
    assert isinstance(greedy[0], str)
    assert model.translate(["", " \t"]) == ["", ""] and model.translate([]) == []
    for wrong, message in ((None, "not NoneType"), ([sentence, 3], "a string or a list of strings")):
        with pytest.raises(TranslatorError, match=message):
            model.translate(wrong)

    exported = translator.load(exported_run)  # `translator.load(trained_run).export(...)`, once a session
    assert exported.translate([sentence]) == [best]
    with pytest.raises(TranslatorError, match="fixed at export"):
        exported.translate(sentence, beam_size=5)
    with pytest.raises(TranslatorError, match="not a run directory"):
        translator.load(tmp_path)


def test_a_split_the_run_lacks_is_named_with_the_ones_it_has():
    from types import SimpleNamespace

    from translator.config import load_config
    from translator.evaluation import split_pairs

    for overrides, choice in ((["data.dev="], "(choose test)"), (["data.dev=", "data.test="], "(it names no dev")):
        holder = SimpleNamespace(experiment_config=load_config("tiny", overrides))  # as a CTranslate2 export
        with pytest.raises(
            TranslatorError, match=re.escape(f"--split 'dev': the run's config has no data.dev {choice}")
        ):
            split_pairs(holder, "dev")


@pytest.mark.slow
def test_evaluate_scores_given_sources_like_sacrebleu(trained_run):
    import sacrebleu

    model = translator.load(trained_run, beam_size=1)
    sources, references = read_corpus("test", 8)
    result = translator.evaluate(model, sources=sources, references=references)
    expected = sacrebleu.BLEU().corpus_score(result["hypotheses"], [references]).score
    assert result["bleu"]["score"] == round(expected, 2) and result["bleu"]["signature"].startswith("BLEU|nrefs:1")


@pytest.mark.slow
def test_auto_checkpoint_never_picks_an_older_averaged_one(trained_run, tmp_path):
    from translator.checkpoints import average_checkpoints, choose_checkpoint
    from translator.rundir import RunDirectory

    run_dir = shutil.copytree(trained_run, tmp_path / "run")
    average_checkpoints(str(run_dir), 2)
    run = RunDirectory(run_dir)
    assert choose_checkpoint(run).kind == "averaged" and choose_checkpoint(run).step == 40
    translator.train("tiny", run_dir, train_steps=50, train_checkpoint_every=10, log=lambda line: None)
    choice = choose_checkpoint(run)
    assert choice.kind in ("best", "latest") and choice.step == 50 and "older averaged (step 40)" in choice.note
    assert choose_checkpoint(run, "averaged").step == 40


@pytest.mark.slow
def test_score_of_every_beam_output_equals_its_search_score_at_another_length_penalty(trained_run):
    """The n-best lists of several sentences, at the `small` preset's length penalty (1.0): `score`'s
    log-probability divided by the GNMT penalty of its token count (EOS included) is the beam's score."""
    from translator.search import length_penalty

    model = translator.load(trained_run, length_penalty=1.0)
    sources, _ = read_corpus("test", 8)
    nbest = model.translate(sources, n_best=2)
    hypotheses = [(source, candidate) for source, candidates in zip(sources, nbest) for candidate in candidates]
    scored = model.score([source for source, _ in hypotheses], [candidate.text for _, candidate in hypotheses])
    for (_, candidate), score in zip(hypotheses, scored):
        assert abs(score.log_prob / float(length_penalty(score.tokens, 1.0)) - candidate.score) <= 1e-4
