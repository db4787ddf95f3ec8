"""SentencePiece in the graph: lossless, the same ids as the sentencepiece library, saved and loaded."""

import numpy as np
import sentencepiece as spm
import tensorflow as tf

from translator.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer

TEXTS = ["¿Ha acontecido esto en vuestros días?", "Yahweh’s word  came\tto Joel ", "", "日本語 😀 ǅ"]


def test_detokenize_inverts_tokenize(tokenizer):
    ids = tokenizer.encode_target(tf.constant(TEXTS))
    assert [t.decode("utf-8") for t in tokenizer.decode_target(ids).numpy()] == TEXTS


def test_graph_ids_equal_sentencepiece_library(tokenizer):
    processor = spm.SentencePieceProcessor(model_proto=tokenizer.source_model_proto)
    ids = tokenizer.encode_source(tf.constant(TEXTS)).to_list()
    assert ids == [processor.encode(text) for text in TEXTS]


def test_special_ids(tokenizer):
    processor = spm.SentencePieceProcessor(model_proto=tokenizer.source_model_proto)
    assert (processor.pad_id(), processor.unk_id(), processor.bos_id(), processor.eos_id()) == (
        PAD_ID,
        1,
        BOS_ID,
        EOS_ID,
    )
    assert tokenizer.shared and tokenizer.source_vocab_size == 400


def test_decode_drops_specials_and_padding(tokenizer):
    ids = tokenizer.encode_target(tf.constant(["Hello there"])).to_tensor()
    padded = tf.concat([[[BOS_ID]], ids, [[EOS_ID, PAD_ID, PAD_ID]]], axis=1)
    assert tokenizer.decode_target(padded).numpy()[0].decode() == "Hello there"


def test_save_and_load(tokenizer, tmp_path):
    tokenizer.save(tmp_path)
    loaded = Tokenizer.load(tmp_path)
    assert (tmp_path / "joint.model").exists()
    np.testing.assert_array_equal(
        loaded.encode_source(tf.constant(TEXTS)).flat_values.numpy(),
        tokenizer.encode_source(tf.constant(TEXTS)).flat_values.numpy(),
    )
