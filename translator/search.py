"""Greedy search, beam search and sampling over any step function. This module knows nothing of the model.

The contract:
    step_fn(token_ids [batch], index: int32 scalar, cache) -> (logits [batch, vocab] float32, cache)
With `normalize=False` the step returns log-probabilities instead, used as they are: an ensemble's
mean of its models' log-probabilities, which is deliberately not renormalized.
`cache` is a dict of tensors (any nesting) with batch on axis 0. Its entry `"memory"` (cross-attention
keys/values, source mask) is constant across steps and the same for every beam of a sentence, so it
keeps one row per sentence: beam search never tiles or reorders it (with `drop_finished` it loses the
rows of sentences that are done). The step's token rows are the sentences' hypotheses, each sentence's
consecutively (row = sentence · beams + beam), so the step finds a row's memory at row // beams, with
beams = rows / memory rows. Everything else in the cache has a row per hypothesis, follows the beams
and is gathered at each step; it may grow from step to step along any axis but its last (the model's
self-attention cache does, outside XLA).

All searches are pure TensorFlow functions, so they run eagerly, inside `tf.function` and with
`jit_compile=True` (beam search with `drop_finished` excepted; under XLA the step must keep its
cache's shapes). Scores use a finite "infinity" so that masked candidates never produce NaN. Each
takes two optional per-sentence constraints: `limits` [batch] (tokens allowed, EOS included) and
`prefix_ids` [batch, prefix] (target tokens forced at the first positions, 0-padded; their
log-probabilities count in the score).
Sampling draws from stateless random ops keyed by a seed and the step index, so a run repeats exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from translator.layers.dropout import compiling_with_xla

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
    at_limit = index >= limits - 1  # [batch]

    def constrained():
        rows = tf.reshape(at_limit, [-1] + [1] * (log_probs.shape.rank - 1))
        not_eos = tf.not_equal(tf.range(tf.shape(log_probs)[-1]), eos_id)
        return tf.where(tf.logical_and(rows, not_eos), tf.constant(-INF, log_probs.dtype), log_probs)

    # Most steps have no sentence at its limit: they skip a select over the whole vocabulary.
    return tf.cond(tf.reduce_any(at_limit), constrained, lambda: log_probs)


def force_prefix(log_probs: tf.Tensor, index: tf.Tensor, prefix_ids: tf.Tensor | None) -> tf.Tensor:
    """Where a sentence's prefix has a token at position `index`, leave only that token possible,
    keeping its true log-probability (so a forced prefix counts in the score).

    log_probs [batch, ..., vocab]; prefix_ids [batch, prefix] (0 after each sentence's prefix) or None.
    The caller keeps `limits` above each prefix's length: at a forced position EOS is not possible.
    """
    if prefix_ids is None:
        return log_probs
    padded = tf.pad(prefix_ids, [[0, 0], [0, 1]])  # a 0 column: nothing forced past the prefix
    forced = tf.gather(padded, tf.minimum(index, tf.shape(prefix_ids)[1]), axis=1)  # [batch]
    forced = tf.reshape(forced, [-1] + [1] * (log_probs.shape.rank - 1))
    keep = tf.logical_or(tf.equal(forced, 0), tf.equal(tf.range(tf.shape(log_probs)[-1]), forced))
    return tf.where(keep, log_probs, tf.constant(-INF, log_probs.dtype))


def _constrained_log_probs(
    output: tf.Tensor,
    index: tf.Tensor,
    limits: tf.Tensor | None,
    prefix_ids: tf.Tensor | None,
    eos_id: int,
    normalize: bool,
) -> tf.Tensor:
    """The step's output [batch, ..., vocab] → log-probabilities with the length limit and the prefix applied."""
    log_probs = tf.nn.log_softmax(output) if normalize else output
    return force_prefix(end_at_limit(log_probs, index, limits, eos_id), index, prefix_ids)


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
    prefix_ids: tf.Tensor | None = None,
    normalize: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Pick the most likely token at each step.

    start_ids [batch] (BOS) → (ids [batch, max_length] ending in EOS then 0s, scores [batch]: the sum
    of the chosen tokens' log-probabilities). `limits` [batch] caps each sentence's length (EOS included)
    below `max_length`, the size of the buffers; `prefix_ids` [batch, prefix] forces the first tokens.
    """
    return _token_by_token(step_fn, start_ids, cache, max_length, eos_id, limits, prefix_ids, normalize, _most_likely)


def _most_likely(log_probs: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    return tf.argmax(log_probs, axis=-1, output_type=tf.int32)


def sampling_logits(log_probs: tf.Tensor, topk: int = 0, topp: float = 1.0, temperature: float = 1.0) -> tf.Tensor:
    """The logits to sample the next token from: log_probs [batch, vocab] divided by `temperature`,
    then cut (-INF) to the `topk` most likely tokens (0: no cut), then to the nucleus, the smallest
    set of the most likely tokens whose probability (after the previous steps) reaches `topp`
    (Holtzman et al., 2020), in that order, as Hugging Face's samplers do. → [batch, vocab]."""
    logits = log_probs / temperature
    vocab = logits.shape[-1]
    if topk and (vocab is None or topk < vocab):
        kth = tf.math.top_k(logits, k=topk).values[:, -1:]  # [batch, 1]
        logits = tf.where(logits < kth, tf.constant(-INF, logits.dtype), logits)
    if topp < 1.0:
        ranked = tf.sort(logits, axis=-1, direction="DESCENDING")  # [batch, vocab]
        probs = tf.nn.softmax(ranked)
        before = tf.cumsum(probs, axis=-1, exclusive=True)  # probability of the tokens ranked above
        cutoff = tf.reduce_min(tf.where(before < topp, ranked, INF), axis=-1, keepdims=True)  # [batch, 1]
        logits = tf.where(logits < cutoff, tf.constant(-INF, logits.dtype), logits)
    return logits


def sampling_search(
    step_fn: StepFn,
    start_ids: tf.Tensor,
    cache: dict,
    max_length: int,
    eos_id: int,
    seed: tf.Tensor,
    topk: int = 0,
    topp: float = 1.0,
    temperature: float = 1.0,
    limits: tf.Tensor | None = None,
    prefix_ids: tf.Tensor | None = None,
    normalize: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Draw each token from the model's distribution, shaped by `sampling_logits` (for back-translation).

    The same contract as `greedy_search`: start_ids [batch] → (ids [batch, max_length], scores [batch]),
    scores being the model's log-probabilities of the drawn tokens (untempered, uncut: what `score`
    gives for them). `seed` [2] int32 keys the random stream: step `index` draws Gumbel noise
    [batch, vocab] from stateless Philox keyed by (seed, index), so the same seed and batch give the
    same ids, every time. Eager and `tf.function` runs draw the same numbers; XLA's Philox draws other
    ones (equally repeatable). With `topk=1` it is greedy search, exactly.
    """
    seed = tf.cast(seed, tf.int32)

    def draw(log_probs: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        logits = sampling_logits(log_probs, topk, topp, temperature)
        step_seed = tf.random.experimental.stateless_fold_in(seed, index)
        uniform = tf.random.stateless_uniform(tf.shape(logits), step_seed, minval=1e-7, maxval=1.0, alg="philox")
        return tf.argmax(logits - tf.math.log(-tf.math.log(uniform)), axis=-1, output_type=tf.int32)  # Gumbel-max

    return _token_by_token(step_fn, start_ids, cache, max_length, eos_id, limits, prefix_ids, normalize, draw)


def _token_by_token(
    step_fn: StepFn,
    start_ids: tf.Tensor,
    cache: dict,
    max_length: int,
    eos_id: int,
    limits: tf.Tensor | None,
    prefix_ids: tf.Tensor | None,
    normalize: bool,
    choose: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
) -> tuple[tf.Tensor, tf.Tensor]:
    """One hypothesis per sentence, extended by `choose(log_probs [batch, vocab], index) → [batch]`."""
    batch = tf.shape(start_ids)[0]

    def not_done(index, tokens, ids, scores, finished, cache):
        return tf.logical_and(index < max_length, tf.logical_not(tf.reduce_all(finished)))

    def step(index, tokens, ids, scores, finished, cache):
        output, cache = step_fn(tokens, index, cache)
        log_probs = _constrained_log_probs(output, index, limits, prefix_ids, eos_id, normalize)  # [batch, vocab]
        next_tokens = choose(log_probs, index)
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
    invariants = (*(x.shape for x in initial[:-1]), _cache_shapes(cache))
    _, _, ids, scores, _, _ = tf.while_loop(
        not_done, step, initial, shape_invariants=invariants, maximum_iterations=max_length
    )
    return ids, scores


def _tile_beams(x: tf.Tensor, beam_size: int) -> tf.Tensor:
    # [batch, ...] → [batch * beam, ...], each row repeated beam_size times
    return tf.repeat(x, beam_size, axis=0)


def _flat_gather(x: tf.Tensor, flat_indices: tf.Tensor) -> tf.Tensor:
    return tf.gather(x, flat_indices, axis=0)


TOP_K_BLOCK = 64  # vocabulary entries per block in `top_k_by_blocks`


def top_k_by_blocks(x: tf.Tensor, k: int, block: int = TOP_K_BLOCK) -> tuple[tf.Tensor, tf.Tensor]:
    """`tf.math.top_k(x, k)` over a long last axis (a vocabulary), the same values and indices, ties
    included, faster on CPU.

    TensorFlow's TopKV2 walks each row element by element, a visible share of a decoding step over a
    vocabulary of thousands (taking it by blocks made the search 1.18× faster at the tutorial size:
    docs/benchmarks.md, "a blocked top-k"). Here each row is cut into blocks of `block` entries; a
    vectorized max per block, the top k blocks (the k best entries lie in them: each block holding one
    has a max at least as good, and ties go to the lower block as to the lower index), then one top-k
    over those k blocks put back in index order, so that ties still go to the lower index. Rows shorter
    than 2·k blocks use TopKV2 itself.
    """
    vocab = x.shape[-1]
    if vocab is None or vocab < 2 * k * block:
        return tf.math.top_k(x, k=k)
    blocks = -(-vocab // block)
    flat = tf.reshape(x, [-1, vocab])
    if blocks * block != vocab:  # -inf padding: never above a real entry, and its ties lose on index
        flat = tf.pad(flat, [[0, 0], [0, blocks * block - vocab]], constant_values=float("-inf"))
    flat = tf.reshape(flat, [-1, blocks, block])
    _, top_blocks = tf.math.top_k(tf.reduce_max(flat, axis=-1), k=k)  # [rows, k]
    top_blocks = tf.sort(top_blocks, axis=-1)
    candidates = tf.reshape(tf.gather(flat, top_blocks, batch_dims=1), [-1, k * block])
    values, positions = tf.math.top_k(candidates, k=k)
    indices = tf.gather(top_blocks, positions // block, batch_dims=1) * block + positions % block
    shape = tf.concat([tf.shape(x)[:-1], [k]], axis=0)
    return tf.reshape(values, shape), tf.reshape(indices, shape)


def _top_candidates(scores: tf.Tensor, k: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The k best of scores [batch, beam, vocab] over all beams → (scores, beam, token), each [batch, k].

    Two small top-k's instead of one over beam·vocab: the k best overall are among the k best of each
    beam, and ties keep the one-pass order (lower beam, then lower token), so the result is the same.
    """
    beam_scores, beam_tokens = top_k_by_blocks(scores, k)  # [batch, beam, k]
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
    prefix_ids: tf.Tensor | None = None,
    normalize: bool = True,
    drop_finished: bool = False,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Beam search keeping finished hypotheses, with the GNMT length penalty and early stopping.

    Each step expands the live beams and keeps the top 2·beam candidates, so that at least `beam`
    of them do not end in EOS: the best non-EOS ones stay alive, and EOS candidates ranked in the top
    `beam` compete (score divided by the length penalty) for the `beam` finished slots. A sentence is
    done when none of its live beams can still beat its worst finished hypothesis; the loop stops when
    every sentence is done, or at `max_length`.

    start_ids [batch] → (ids [batch, beam, max_length], scores [batch, beam]) sorted best first: an
    n-best list per sentence. Sentences with fewer than `beam` finished hypotheses are completed with
    live ones (scored as if they ended at their limit, else at `max_length`). `limits` [batch] caps each
    sentence's length (EOS included) below `max_length`, the size of the buffers; `prefix_ids` [batch,
    prefix] forces every beam's first tokens.

    `drop_finished` takes each sentence out of the batch at the step it is done, so that the steps
    after it compute only the sentences still being searched (CTranslate2 does the same), and the
    memory is compacted then. A done sentence's result can no longer change, so the results are the
    same either way. The batch then changes size from step to step: not for XLA, whose shapes are fixed.
    """
    if alpha < 0:
        raise ValueError("length_penalty must be >= 0: early stopping relies on it")
    batch = tf.shape(start_ids)[0]
    beams = beam_size
    max_penalty = length_penalty(max_length, alpha)
    constraints = {name: x for name, x in (("limits", limits), ("prefix_ids", prefix_ids)) if x is not None}

    def final_penalty(state: dict) -> tf.Tensor:
        """[sentences, 1]: the largest length penalty a sentence's live beams can still get, at its limit."""
        limits = state["constraints"].get("limits")
        if limits is None:
            return tf.fill([tf.shape(state["alive_scores"])[0], 1], max_penalty)
        return length_penalty(tf.minimum(limits, max_length), alpha)[:, tf.newaxis]

    def done(state: dict) -> tf.Tensor:
        """[sentences] bool: no live beam can still beat the worst finished hypothesis (log-probabilities
        only fall, and no length penalty exceeds the one at the sentence's limit, so the bound holds for
        every later step). Bounding by the sentence's own limit, not the batch's longest, lets a short
        sentence leave a batch of long ones as early as it would leave a batch of its own."""
        best_alive = state["alive_scores"][:, 0] / final_penalty(state)[:, 0]  # the most a live beam can reach
        worst_finished = tf.reduce_min(tf.where(state["finished_flags"], state["finished_scores"], -INF), axis=1)
        return best_alive < worst_finished

    def n_best(state: dict) -> tuple[tf.Tensor, tf.Tensor]:
        """The sentences' results: finished hypotheses, with live ones filling empty slots (which
        happens only when `max_length` was reached), scored with the penalty of `done`'s bound."""
        scores = tf.concat(
            [
                tf.where(state["finished_flags"], state["finished_scores"], -INF),
                state["alive_scores"] / final_penalty(state),
            ],
            axis=1,
        )
        scores, best = tf.math.top_k(scores, k=beams)
        ids = tf.gather(tf.concat([state["finished_ids"], state["alive_ids"]], axis=1), best, batch_dims=1)
        return ids, scores

    def expand(index: tf.Tensor, state: dict) -> tuple[dict, tf.Tensor]:
        """One step for every sentence in `state` → (the new state with its cache not yet reordered,
        parent [sentences, beam]: the beam of the previous step each new live beam extends)."""
        sentences = tf.shape(state["alive_scores"])[0]
        output, cache = step_fn(tf.reshape(state["last_tokens"], [-1]), index, state["cache"])
        output = tf.reshape(output, [sentences, beams, tf.shape(output)[-1]])
        log_probs = _constrained_log_probs(
            output, index, state["constraints"].get("limits"), state["constraints"].get("prefix_ids"), eos_id, normalize
        )  # [sentences, beam, vocab]
        top_scores, origin, tokens = _top_candidates(state["alive_scores"][:, :, tf.newaxis] + log_probs, 2 * beams)
        ids = _write(tf.gather(state["alive_ids"], origin, batch_dims=1), index, tokens)  # [sentences, 2·beam, length]
        ended = tf.equal(tokens, eos_id)
        # EOS candidates finish only from the top `beam` ranks (as in fairseq): with beam 1 this is greedy.
        finishing = tf.logical_and(ended, tf.range(2 * beams)[tf.newaxis, :] < beams)

        # Live beams: the best candidates that did not end.
        alive_scores, keep = tf.math.top_k(tf.where(ended, -INF, top_scores), k=beams)  # [sentences, beam]

        # Finished hypotheses: merge the ones that just ended with those kept so far.
        new_scores = tf.where(finishing, top_scores / length_penalty(index + 1, alpha), -INF)
        merged_scores = tf.concat([state["finished_scores"], new_scores], axis=1)  # [sentences, 3·beam]
        finished_scores, best = tf.math.top_k(merged_scores, k=beams)
        new_state = {
            **state,
            "last_tokens": tf.gather(tokens, keep, batch_dims=1),
            "alive_ids": tf.gather(ids, keep, batch_dims=1),
            "alive_scores": alive_scores,
            "finished_ids": tf.gather(tf.concat([state["finished_ids"], ids], axis=1), best, batch_dims=1),
            "finished_scores": finished_scores,
            "finished_flags": tf.gather(tf.concat([state["finished_flags"], finishing], axis=1), best, batch_dims=1),
            "cache": cache,
        }
        return new_state, tf.gather(origin, keep, batch_dims=1)

    def reorder(cache: dict, rows: tf.Tensor) -> dict:
        """The cache's rows [sentences·beam] in the order `rows` gives; the memory stays as it is."""
        gather = lambda x: _flat_gather(x, rows)  # noqa: E731
        return {key: value if key == "memory" else tf.nest.map_structure(gather, value) for key, value in cache.items()}

    def step(index, state, results):
        state, parent = expand(index, state)
        every_sentence = tf.range(tf.shape(parent)[0])
        if not drop_finished:
            return index + 1, {**state, "cache": reorder(state["cache"], _rows(every_sentence, parent))}, results

        def drop(state, parent, finished, results):
            ids, scores = n_best(tf.nest.map_structure(lambda x: tf.boolean_mask(x, finished), _per_sentence(state)))
            at = tf.boolean_mask(state["sentence"], finished)[:, tf.newaxis]
            results = {
                "ids": tf.tensor_scatter_nd_update(results["ids"], at, ids),
                "scores": tf.tensor_scatter_nd_update(results["scores"], at, scores),
            }
            kept = tf.cast(tf.where(tf.logical_not(finished))[:, 0], tf.int32)
            cache = {  # the memory loses the rows of the sentences that left; the rest is reordered below
                key: tf.nest.map_structure(lambda x: _flat_gather(x, kept), value) if key == "memory" else value
                for key, value in state["cache"].items()
            }
            state = {**tf.nest.map_structure(lambda x: tf.gather(x, kept), _per_sentence(state)), "cache": cache}
            return state, tf.gather(parent, kept), kept, results

        def keep_all(state, parent, results):
            return state, parent, every_sentence, results

        finished = done(state)
        state, parent, kept, results = tf.cond(
            tf.reduce_any(finished),
            lambda: drop(state, parent, finished, results),
            lambda: keep_all(state, parent, results),
        )
        return index + 1, {**state, "cache": reorder(state["cache"], _rows(kept, parent))}, results

    def not_done(index, state, results):
        return tf.logical_and(index < max_length, tf.logical_not(tf.reduce_all(done(state))))

    state = {
        "last_tokens": tf.tile(start_ids[:, tf.newaxis], [1, beams]),
        "alive_ids": tf.zeros([batch, beams, max_length], tf.int32),
        "alive_scores": tf.concat([tf.zeros([batch, 1]), tf.fill([batch, beams - 1], -INF)], axis=1),
        "finished_ids": tf.zeros([batch, beams, max_length], tf.int32),
        "finished_scores": tf.fill([batch, beams], -INF),
        "finished_flags": tf.zeros([batch, beams], tf.bool),
        "constraints": constraints,
        "cache": {
            key: value if key == "memory" else tf.nest.map_structure(lambda x: _tile_beams(x, beams), value)
            for key, value in cache.items()
        },
    }
    if not drop_finished:
        invariants = (
            tf.TensorShape([]),
            {**tf.nest.map_structure(lambda x: x.shape, _per_sentence(state)), "cache": _cache_shapes(state["cache"])},
            {},
        )
        _, state, _ = tf.while_loop(
            not_done, step, (tf.constant(0), state, {}), shape_invariants=invariants, maximum_iterations=max_length
        )
        return n_best(state)
    state["sentence"] = tf.range(batch)  # each row's place in the input batch
    results = {"ids": tf.zeros([batch, beams, max_length], tf.int32), "scores": tf.zeros([batch, beams])}
    invariants = (
        tf.TensorShape([]),
        {**tf.nest.map_structure(_any_rows, _per_sentence(state)), "cache": _cache_shapes(state["cache"], True)},
        {key: x.shape for key, x in results.items()},
    )
    _, state, results = tf.while_loop(
        not_done, step, (tf.constant(0), state, results), shape_invariants=invariants, maximum_iterations=max_length
    )
    ids, scores = n_best(state)  # the sentences still live when max_length was reached
    at = state["sentence"][:, tf.newaxis]
    ids = tf.tensor_scatter_nd_update(results["ids"], at, ids)
    return ids, tf.tensor_scatter_nd_update(results["scores"], at, scores)


def _any_rows(x: tf.Tensor) -> tf.TensorShape:
    return tf.TensorShape([None]).concatenate(x.shape[1:])


def _cache_shapes(cache: dict, memory_loses_rows: bool = False) -> dict:
    """The search loop's shape invariants for `cache`: what follows the beams may change along any axis
    but its last (under XLA it keeps its shape); the memory keeps its shape, or all of it but its rows
    if `memory_loses_rows`."""
    if compiling_with_xla():
        return tf.nest.map_structure(lambda x: x.shape, cache)
    growing = lambda x: tf.TensorShape([None] * (x.shape.rank - 1)).concatenate(x.shape[-1:])  # noqa: E731
    memory = _any_rows if memory_loses_rows else lambda x: x.shape
    return {key: tf.nest.map_structure(memory if key == "memory" else growing, value) for key, value in cache.items()}


def _per_sentence(state: dict) -> dict:
    """Everything in a beam search state with sentences on axis 0 (all but the cache, whose rows are beams)."""
    return {key: value for key, value in state.items() if key != "cache"}


def _rows(sentences: tf.Tensor, beam: tf.Tensor) -> tf.Tensor:
    """The rows of a [sentences·beam, ...] tensor (the cache) that hold beam `beam` [n, beam] (or
    [1, beam]) of sentence `sentences` [n], flattened to [n·beam]."""
    beams = tf.shape(beam)[1]
    return tf.reshape(sentences[:, tf.newaxis] * beams + beam, [-1])
