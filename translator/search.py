"""Greedy and beam search over any step function. This module knows nothing of the model.

The contract:
    step_fn(token_ids [batch], index: int32 scalar, cache) -> (logits [batch, vocab] float32, cache)
`cache` is a dict of tensors (any nesting) with batch on axis 0 and shapes that never change. Its
entry `"memory"` (cross-attention keys/values, source mask) is constant across steps and the same for
every beam of a sentence: beam search tiles it once and never reorders it. Everything else in the
cache follows the beams and is gathered at each step.

Both searches are pure TensorFlow functions with fixed shapes, so they run eagerly, inside
`tf.function` and with `jit_compile=True`. Scores use a finite "infinity" so that masked candidates
never produce NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

INF = 1.0e7
StepFn = Callable[[tf.Tensor, tf.Tensor, dict], tuple[tf.Tensor, dict]]


def length_penalty(length: tf.Tensor, alpha: float) -> tf.Tensor:
    """GNMT length penalty ((5 + length) / 6) ** alpha (Wu et al., 2016); 1 when alpha is 0."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, alpha)


def end_at_limit(log_probs: tf.Tensor, index: tf.Tensor, limits: tf.Tensor | None, eos_id: int) -> tf.Tensor:
    """Leave only EOS possible at position `limits - 1` of each sentence, keeping its true score.

    log_probs [batch, ..., vocab]; limits [batch] (tokens allowed, EOS included) or None (no limit).
    A per-sentence limit makes a translation independent of the batch it was decoded in.
    """
    if limits is None:
        return log_probs
    at_limit = tf.reshape(index >= limits - 1, [-1] + [1] * (log_probs.shape.rank - 1))
    not_eos = tf.not_equal(tf.range(tf.shape(log_probs)[-1]), eos_id)
    return tf.where(tf.logical_and(at_limit, not_eos), tf.constant(-INF, log_probs.dtype), log_probs)


def _write(sequences: tf.Tensor, index: tf.Tensor, tokens: tf.Tensor) -> tf.Tensor:
    """Put tokens [...] at position `index` of sequences [..., max_length] (fixed shapes)."""
    slot = tf.one_hot(index, tf.shape(sequences)[-1], dtype=sequences.dtype)
    return sequences * (1 - slot) + tokens[..., tf.newaxis] * slot


def greedy_search(
    step_fn: StepFn,
    start_ids: tf.Tensor,
    cache: dict,
    max_length: int,
    eos_id: int,
    limits: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Pick the most likely token at each step.

    start_ids [batch] (BOS) → (ids [batch, max_length] ending in EOS then 0s, scores [batch]: the sum
    of the chosen tokens' log-probabilities). `limits` [batch] caps each sentence's length (EOS included)
    below `max_length`, the size of the buffers.
    """
    batch = tf.shape(start_ids)[0]

    def not_done(index, tokens, ids, scores, finished, cache):
        return tf.logical_and(index < max_length, tf.logical_not(tf.reduce_all(finished)))

    def step(index, tokens, ids, scores, finished, cache):
        logits, cache = step_fn(tokens, index, cache)
        log_probs = end_at_limit(tf.nn.log_softmax(logits), index, limits, eos_id)  # [batch, vocab]
        next_tokens = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
        next_scores = tf.gather(log_probs, next_tokens, batch_dims=1)
        next_tokens = tf.where(finished, 0, next_tokens)
        scores += tf.where(finished, 0.0, next_scores)
        ids = _write(ids, index, next_tokens)
        return index + 1, next_tokens, ids, scores, finished | tf.equal(next_tokens, eos_id), cache

    initial = (
        tf.constant(0),
        start_ids,
        tf.zeros([batch, max_length], tf.int32),
        tf.zeros([batch], tf.float32),
        tf.zeros([batch], tf.bool),
        cache,
    )
    _, _, ids, scores, _, _ = tf.while_loop(not_done, step, initial, maximum_iterations=max_length)
    return ids, scores


def _tile_beams(x: tf.Tensor, beam_size: int) -> tf.Tensor:
    # [batch, ...] → [batch * beam, ...], each row repeated beam_size times
    return tf.repeat(x, beam_size, axis=0)


def _flat_gather(x: tf.Tensor, flat_indices: tf.Tensor) -> tf.Tensor:
    return tf.gather(x, flat_indices, axis=0)


def _top_candidates(scores: tf.Tensor, k: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The k best of scores [batch, beam, vocab] over all beams → (scores, beam, token), each [batch, k].

    Two small top-k's instead of one over beam·vocab: the k best overall are among the k best of each
    beam, and ties keep the one-pass order (lower beam, then lower token), so the result is the same.
    """
    beam_scores, beam_tokens = tf.math.top_k(scores, k=k)  # [batch, beam, k]
    batch, beams = tf.shape(scores)[0], tf.shape(scores)[1]
    top_scores, top_positions = tf.math.top_k(tf.reshape(beam_scores, [batch, beams * k]), k=k)  # [batch, k]
    tokens = tf.gather(tf.reshape(beam_tokens, [batch, beams * k]), top_positions, batch_dims=1)
    return top_scores, top_positions // k, tokens


def beam_search(
    step_fn: StepFn,
    start_ids: tf.Tensor,
    cache: dict,
    beam_size: int,
    max_length: int,
    eos_id: int,
    alpha: float = 0.6,
    limits: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Beam search keeping finished hypotheses, with the GNMT length penalty and early stopping.

    Each step expands the live beams and keeps the top 2·beam candidates, so that at least `beam`
    of them do not end in EOS: the best non-EOS ones stay alive, and EOS candidates ranked in the top
    `beam` compete (score divided by the length penalty) for the `beam` finished slots. The loop
    stops when no live beam can still beat the worst finished hypothesis of its sentence, or at `max_length`.

    start_ids [batch] → (ids [batch, beam, max_length], scores [batch, beam]) sorted best first: an
    n-best list per sentence. Sentences with fewer than `beam` finished hypotheses are completed with
    live ones (scored as if they ended at `max_length`). `limits` [batch] caps each sentence's length
    (EOS included) below `max_length`, the size of the buffers.
    """
    if alpha < 0:
        raise ValueError("length_penalty must be >= 0: early stopping relies on it")
    batch = tf.shape(start_ids)[0]
    beams = beam_size
    flat = lambda x: tf.reshape(x, tf.concat([[batch * beams], tf.shape(x)[2:]], 0))  # noqa: E731
    cache = tf.nest.map_structure(lambda x: _tile_beams(x, beams), cache)
    max_penalty = length_penalty(max_length, alpha)

    def not_done(index, last_tokens, alive_ids, alive_scores, finished_ids, finished_scores, finished_flags, cache):
        best_alive = alive_scores[:, 0] / max_penalty  # [batch]: the most any live beam can still reach
        worst_finished = tf.reduce_min(tf.where(finished_flags, finished_scores, -INF), axis=1)  # [batch]
        return tf.logical_and(index < max_length, tf.logical_not(tf.reduce_all(best_alive < worst_finished)))

    def step(index, last_tokens, alive_ids, alive_scores, finished_ids, finished_scores, finished_flags, cache):
        logits, cache = step_fn(flat(last_tokens), index, cache)
        vocab = tf.shape(logits)[-1]
        log_probs = end_at_limit(tf.reshape(tf.nn.log_softmax(logits), [batch, beams, vocab]), index, limits, eos_id)
        top_scores, origin, tokens = _top_candidates(alive_scores[:, :, tf.newaxis] + log_probs, 2 * beams)
        ids = _write(tf.gather(alive_ids, origin, batch_dims=1), index, tokens)  # [batch, 2·beam, max_length]
        ended = tf.equal(tokens, eos_id)
        # EOS candidates finish only from the top `beam` ranks (as in fairseq): with beam 1 this is greedy.
        finishing = tf.logical_and(ended, tf.range(2 * beams)[tf.newaxis, :] < beams)

        # Live beams: the best candidates that did not end.
        alive_scores, keep = tf.math.top_k(tf.where(ended, -INF, top_scores), k=beams)  # [batch, beam]
        alive_ids = tf.gather(ids, keep, batch_dims=1)
        last_tokens = tf.gather(tokens, keep, batch_dims=1)
        parent = tf.gather(origin, keep, batch_dims=1)  # [batch, beam]
        flat_parent = tf.reshape(parent + beams * tf.range(batch)[:, tf.newaxis], [-1])
        cache = {
            key: value if key == "memory" else tf.nest.map_structure(lambda x: _flat_gather(x, flat_parent), value)
            for key, value in cache.items()
        }

        # Finished hypotheses: merge the ones that just ended with those kept so far.
        new_scores = tf.where(finishing, top_scores / length_penalty(index + 1, alpha), -INF)
        merged_scores = tf.concat([finished_scores, new_scores], axis=1)  # [batch, 3·beam]
        merged_ids = tf.concat([finished_ids, ids], axis=1)
        merged_flags = tf.concat([finished_flags, finishing], axis=1)
        finished_scores, best = tf.math.top_k(merged_scores, k=beams)
        finished_ids = tf.gather(merged_ids, best, batch_dims=1)
        finished_flags = tf.gather(merged_flags, best, batch_dims=1)
        return index + 1, last_tokens, alive_ids, alive_scores, finished_ids, finished_scores, finished_flags, cache

    first_beam_only = tf.concat([tf.zeros([batch, 1]), tf.fill([batch, beams - 1], -INF)], axis=1)
    initial = (
        tf.constant(0),
        tf.tile(start_ids[:, tf.newaxis], [1, beams]),
        tf.zeros([batch, beams, max_length], tf.int32),
        first_beam_only,
        tf.zeros([batch, beams, max_length], tf.int32),
        tf.fill([batch, beams], -INF),
        tf.zeros([batch, beams], tf.bool),
        cache,
    )
    result = tf.while_loop(not_done, step, initial, maximum_iterations=max_length)
    _, _, alive_ids, alive_scores, finished_ids, finished_scores, finished_flags, _ = result
    # Fill empty finished slots with live beams (only happens when max_length was reached).
    scores = tf.concat([tf.where(finished_flags, finished_scores, -INF), alive_scores / max_penalty], axis=1)
    scores, best = tf.math.top_k(scores, k=beams)
    ids = tf.gather(tf.concat([finished_ids, alive_ids], axis=1), best, batch_dims=1)
    return ids, scores
