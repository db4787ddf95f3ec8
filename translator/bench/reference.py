"""The uncached reference decoder: what the cached search is tested and benchmarked against."""

from __future__ import annotations

import tensorflow as tf

from translator.constants import BOS_ID, EOS_ID
from translator.inference import never_generate
from translator.model import Seq2SeqTransformer
from translator.search import end_at_limit


def uncached_greedy_search(
    model: Seq2SeqTransformer,
    source_ids: tf.Tensor,
    max_length: int,
    forward=None,
    limits: tf.Tensor | None = None,
) -> tf.Tensor:
    """Greedy decoding that re-runs the decoder over the whole prefix at every step (the TF tutorial's
    way). The reference the cached search is tested and benchmarked against.

    source_ids [batch, source] → ids [batch, max_length] (EOS then 0s after it). `forward` may be a
    compiled `model.call`; by default the model runs eagerly. `limits` [batch] applies the
    Translator's per-sentence length limit (see `translator.search.end_at_limit`).
    """
    forward = forward or model
    batch = tf.shape(source_ids)[0]
    prefix = tf.fill([batch, 1], BOS_ID)
    finished = tf.zeros([batch], tf.bool)
    for index in range(max_length):
        logits = never_generate(forward({"source_ids": source_ids, "target_input_ids": prefix})[:, -1])
        logits = end_at_limit(logits, tf.constant(index), limits, EOS_ID)
        tokens = tf.where(finished, 0, tf.argmax(logits, axis=-1, output_type=tf.int32))
        prefix = tf.concat([prefix, tokens[:, tf.newaxis]], axis=1)
        finished |= tf.equal(tokens, EOS_ID)
        if bool(tf.reduce_all(finished)):
            break
    ids = prefix[:, 1:]
    return tf.pad(ids, [[0, 0], [0, max_length - tf.shape(ids)[1]]])
