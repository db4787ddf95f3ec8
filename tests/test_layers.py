"""Layer and model invariants: masks, incremental decoding, serialization."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import tiny_model
from translator.layers import TransformerDecoder, TransformerEncoder
from translator.model import Seq2SeqTransformer

SOURCE = tf.constant([[5, 6, 7, 8, 3, 0, 0], [9, 10, 11, 12, 13, 14, 3]])
TARGET_IN = tf.constant([[2, 15, 16, 17, 0], [2, 18, 19, 20, 21]])


def logits(model, source=SOURCE, target=TARGET_IN):
    return model({"source_ids": source, "target_input_ids": target}).numpy()


@pytest.mark.parametrize("pre_norm", [True, False])
def test_future_target_tokens_never_change_earlier_logits(pre_norm):
    model = tiny_model(pre_norm=pre_norm)
    changed = TARGET_IN.numpy().copy()
    changed[:, 3:] = 40  # alter positions 3 and 4 only
    before, after = logits(model), logits(model, target=tf.constant(changed))
    np.testing.assert_allclose(before[:, :3], after[:, :3], atol=1e-5)
    assert np.abs(before[:, 3:] - after[:, 3:]).max() > 1e-3  # and the change does reach later positions


@pytest.mark.parametrize("pre_norm", [True, False])
def test_padding_never_changes_real_positions(pre_norm):
    model = tiny_model(pre_norm=pre_norm)
    padded_source = tf.pad(SOURCE, [[0, 0], [0, 5]])
    padded_target = tf.pad(TARGET_IN, [[0, 0], [0, 4]])
    np.testing.assert_allclose(logits(model), logits(model, padded_source, padded_target)[:, :5], atol=1e-5)
    memory, _ = model.encode(SOURCE)
    padded_memory, _ = model.encode(padded_source)
    np.testing.assert_allclose(memory.numpy()[1], padded_memory.numpy()[1, :7], atol=1e-5)
    np.testing.assert_allclose(memory.numpy()[0, :5], padded_memory.numpy()[0, :5], atol=1e-5)


@pytest.mark.parametrize("pre_norm", [True, False])
def test_decode_step_equals_teacher_forcing(pre_norm):
    """Step by step equals teacher forcing, with the output matrix transposed on the fly or once (as a
    search passes it: `output_matrix()`)."""
    model = tiny_model(pre_norm=pre_norm)
    memory, mask = model.encode(SOURCE)
    forced = logits(model)
    real = TARGET_IN.numpy() != 0
    stepped = []
    for output_matrix in (None, model.output_matrix()):
        cache = model.init_cache(memory, mask, max_length=8)
        steps = []
        for index in range(TARGET_IN.shape[1]):
            step_logits, cache = model.decode_step(TARGET_IN[:, index], tf.constant(index), cache, output_matrix)
            steps.append(step_logits.numpy())
        stepped.append(np.stack(steps, 1))
        assert np.abs(stepped[-1] - forced)[real].max() <= 1e-4
    assert model.output_matrix().shape == (32, 60)  # [d_model, target vocab]
    np.testing.assert_allclose(stepped[0], stepped[1], atol=1e-5)


def test_decoder_layers_sets_the_decoder_depth_alone():
    """A deep encoder and a shallow decoder (and the reverse): each side has its own number of blocks,
    decoding step by step still equals teacher forcing, and the config round trip keeps both."""
    for num_layers, decoder_layers in ((3, 1), (1, 2)):
        model = tiny_model(num_layers=num_layers, decoder_layers=decoder_layers, share_embeddings=False)
        assert (len(model.encoder_blocks), len(model.decoder_blocks)) == (num_layers, decoder_layers)
        memory, mask = model.encode(SOURCE)
        cache = model.init_cache(memory, mask, max_length=8)
        assert len(cache["decoder"]) == len(cache["memory"]["cross"]) == decoder_layers
        steps = []
        for index in range(TARGET_IN.shape[1]):
            step_logits, cache = model.decode_step(TARGET_IN[:, index], tf.constant(index), cache)
            steps.append(step_logits.numpy())
        forced = logits(model)
        assert np.abs(np.stack(steps, 1) - forced)[TARGET_IN.numpy() != 0].max() <= 1e-4
        attention = model({"source_ids": SOURCE, "target_input_ids": TARGET_IN}, return_attention=True)[1]
        assert len(attention) == decoder_layers
        clone = Seq2SeqTransformer.from_config(model.get_config())
        clone.build()
        clone.set_weights(model.get_weights())
        np.testing.assert_array_equal(forced, logits(clone))


def test_blocks_keep_the_order_checkpoints_saved_before_decoder_layers():
    """The optimizer's slots follow the model's weights by position in a checkpoint: equal depths must
    keep the interleaved order (encoder_0, decoder_0, encoder_1, …) of runs saved before decoder_layers
    existed, or resuming one would pair moments with the wrong weights."""
    names = [layer.name for layer in tiny_model().layers if layer.name.startswith(("encoder_", "decoder_"))]
    assert names[:4] == ["encoder_0", "decoder_0", "encoder_1", "decoder_1"]
    explicit, default = (
        {key: value for key, value in model.get_config().items() if key != "name"}
        for model in (tiny_model(decoder_layers=2), tiny_model())
    )
    assert explicit == default


def test_decode_step_equals_teacher_forcing_in_xla():
    model = tiny_model()
    memory, mask = model.encode(SOURCE)

    @tf.function(jit_compile=True)
    def run(memory, mask):
        cache = model.init_cache(memory, mask, max_length=8)  # under XLA: 8 slots, written in place
        assert cache["decoder"][0]["key"].shape[2] == 8
        outputs = []
        output_matrix = model.output_matrix()
        for index in range(TARGET_IN.shape[1]):
            step_logits, cache = model.decode_step(TARGET_IN[:, index], tf.constant(index), cache, output_matrix)
            assert cache["decoder"][0]["key"].shape[2] == 8
            outputs.append(step_logits)
        return tf.stack(outputs, 1)

    stepped = run(memory, mask).numpy()
    assert np.abs(stepped - logits(model))[TARGET_IN.numpy() != 0].max() <= 1e-4


def test_cache_grows_by_one_position_per_step_and_memory_is_untouched():
    model = tiny_model()
    memory, mask = model.encode(SOURCE)
    cache = model.init_cache(memory, mask, max_length=6)  # outside XLA: no slots, whatever max_length says
    for index in range(3):
        updated = model.decode_step(tf.constant([2, 2]), tf.constant(index), cache)[1]
        for before, after in zip(cache["decoder"], updated["decoder"]):
            for name in ("key", "value"):
                assert before[name].shape[2] == index and after[name].shape[2] == index + 1
                np.testing.assert_array_equal(after[name][:, :, :index], before[name])
        for before, after in zip(tf.nest.flatten(cache["memory"]), tf.nest.flatten(updated["memory"])):
            assert before is after
        cache = updated
    assert cache["decoder"][0]["key"].shape == (2, 4, 3, 8)  # [batch, heads, steps so far, key_dim]


def test_layer_configs_round_trip():
    for layer in (
        TransformerEncoder(4, 64, dropout=0.2, pre_norm=False),
        TransformerDecoder(2, 16, attention_dropout=0.1),
    ):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


def test_model_from_config_gives_identical_outputs():
    model = tiny_model(share_embeddings=False)
    clone = Seq2SeqTransformer.from_config(model.get_config())
    clone.build()
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(logits(model), logits(clone))


def test_keras_save_and_load_round_trip(tmp_path):
    model = tiny_model()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, Seq2SeqTransformer)
    np.testing.assert_array_equal(logits(model), logits(loaded))


def test_shared_embeddings_need_one_vocabulary():
    with pytest.raises(ValueError, match="share_embeddings"):
        Seq2SeqTransformer(10, 12, share_embeddings=True)


def test_attention_weights_are_returned_on_request():
    model = tiny_model()
    output, attention = model({"source_ids": SOURCE, "target_input_ids": TARGET_IN}, return_attention=True)
    assert len(attention) == 2 and attention[0].shape == (2, 4, 5, 7)  # [batch, heads, target, source]
    np.testing.assert_allclose(attention[0].numpy().sum(-1), 1.0, atol=1e-5)
    assert attention[0].numpy()[0, :, :, 5:].max() < 1e-6  # padded source positions get no weight


def test_tf_checkpoint_holds_every_weight(tmp_path):
    """tf.train.Checkpoint (training, resuming, evaluation) must see every layer of the model."""
    model = tiny_model(seed=1)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    fresh = tiny_model(seed=2)
    tf.train.Checkpoint(model=fresh).read(path).assert_consumed()
    for saved, restored in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(saved, restored)
    np.testing.assert_array_equal(logits(model), logits(fresh))


def test_output_projection_is_the_transposed_embedding_on_any_leading_shape():
    model = tiny_model()
    embedding = model.target_embedding
    table = embedding.embeddings.numpy()
    hidden = tf.random.stateless_normal([2, 3, table.shape[1]], seed=[1, 2])
    np.testing.assert_allclose(embedding.project(hidden).numpy(), hidden.numpy() @ table.T, rtol=1e-5, atol=1e-5)
    single = hidden[:, 0]
    assert embedding.project(single).shape == (2, table.shape[0])
    # the embedding's gradient through the projection is the plain [dim, vocab] product's
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(embedding.project(hidden) ** 2)
    gradient = tf.convert_to_tensor(tape.gradient(total, embedding.embeddings)).numpy()
    flat = hidden.numpy().reshape(-1, table.shape[1])
    np.testing.assert_allclose(gradient, 2 * (flat @ table.T).T @ flat, rtol=1e-4, atol=1e-4)
