"""`Translator`: a trained model in this process, text or ids in, translations and scores out.

It owns the three things decoding needs — the model, the tokenizer and the decode settings — and
exposes them at two levels: `search_ids` (a `tf.function` over padded id batches, the unit that is
compiled and exported) and `translate_nbest` / `translate` (Python lists of sentences: sorted by
length, batched under a token budget, padded to a bounded set of bucket lengths so compiled functions
are reused, returned in input order). `Translator.from_run_dir` is the one place that builds it from
a run directory. The model enters the search through three methods only (`start_cache`,
`search_step`, `forward_log_probs`), which `translator.ensemble` overrides to average several models.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from translator import storage
from translator.alignment import Alignment, last_layer_attention, make_alignment
from translator.checkpoints import CheckpointChoice, choose_checkpoint, restore
from translator.config import DECODE_POLICIES, DecodeConfig
from translator.constants import BOS_ID, EOS_ID, EXPORT_MARKERS, PAD_ID
from translator.errors import TranslatorError
from translator.model import Seq2SeqTransformer, build_model
from translator.precision import resolve_decode_precision
from translator.rundir import RunDirectory
from translator.search import INF, StepFn, beam_search, greedy_search, sampling_search
from translator.tokenizer import Tokenizer
from translator.translation import (
    BaseTranslator,
    Score,
    Translation,
    around_blanks,
    dealt,
    decode_changes,
    is_blank,
)

BUCKET_MULTIPLE = 8  # source batches are padded to a multiple of this many tokens


def banned_outputs(vocab_size: int | tf.Tensor, dtype: tf.DType = tf.float32) -> tf.Tensor:
    """[vocab]: −INF at padding and BOS, 0 elsewhere. Added to logits it rules them out as outputs: a
    weak model would otherwise emit them, and they detokenize to nothing."""
    return -tf.reduce_sum(tf.one_hot([PAD_ID, BOS_ID], vocab_size, dtype=dtype), axis=0) * INF


def never_generate(logits: tf.Tensor) -> tf.Tensor:
    """logits [..., vocab] with padding and BOS ruled out (`banned_outputs`)."""
    return logits + banned_outputs(tf.shape(logits)[-1], logits.dtype)


def decode_length(source_length: tf.Tensor, config: DecodeConfig) -> tf.Tensor:
    """How many target tokens (EOS included) to allow for a source of `source_length` tokens."""
    ratio = tf.cast(source_length, tf.float32) * config.max_length_ratio
    return tf.minimum(tf.cast(ratio, tf.int32) + 10, config.max_length)


def greedy_config(config: DecodeConfig) -> DecodeConfig:
    """`config` with greedy search and no sampling (training's quick dev BLEU)."""
    return dataclasses.replace(config, beam_size=1, sampling_topk=1, sampling_topp=1.0, sampling_temperature=1.0)


def prefixed_length(source_length: tf.Tensor, prefix_length: tf.Tensor, config: DecodeConfig) -> tf.Tensor:
    """`decode_length`, raised where needed to leave room for a forced prefix and one more token
    (prefixes are cut to `max_length - 1` tokens, so the cap still holds)."""
    return tf.minimum(tf.maximum(decode_length(source_length, config), prefix_length + 1), config.max_length)


def _refuse_a_foreign_directory(directory: str, format: str) -> None:
    """An export replaces its directory (CTranslate2's converter deletes it first) or writes over it
    (SavedModel): a directory holding anything else, a project folder given by mistake, is refused."""
    if not tf.io.gfile.isdir(directory) or not tf.io.gfile.listdir(directory):
        return
    if not storage.exists(storage.join(directory, EXPORT_MARKERS[format])):
        raise TranslatorError(
            f"{directory} is not empty and holds no {format} export: export into a new or empty directory"
        )


class Translator(tf.Module, BaseTranslator):
    def __init__(
        self,
        model: Seq2SeqTransformer,
        tokenizer: Tokenizer,
        config: DecodeConfig,
        max_source_length: int = 256,
        jit_compile: bool = True,
        run_dir: str | None = None,
        checkpoint: CheckpointChoice | None = None,
    ):
        super().__init__(name="translator")
        self.model = model
        self.tokenizer = tokenizer
        if config.precision == "auto":  # a model built elsewhere computes as its dtype policy says
            named = {policy: name for name, policy in DECODE_POLICIES.items()}.get(model.dtype_policy.name)
            config = dataclasses.replace(config, precision=named or config.precision)
        self.config = config
        self.max_source_length = max_source_length
        self.jit_compile = jit_compile
        self.run_dir = run_dir
        self.checkpoint = checkpoint
        self._variants: dict[tuple, Translator] = {}
        self.search_ids = tf.function(
            self._search_ids,
            input_signature=[
                tf.TensorSpec([None, None], tf.int32, name="source_ids"),
                tf.TensorSpec([None, None], tf.int32, name="prefix_ids"),
                tf.TensorSpec([2], tf.int32, name="seed"),
            ],
            jit_compile=jit_compile,
            reduce_retracing=True,
            autograph=False,
        )
        self._forward = tf.function(
            lambda features: model(features, training=False), reduce_retracing=True, autograph=False
        )

    @classmethod
    def from_run_dir(
        cls, run_dir: str | os.PathLike, checkpoint: str = "auto", jit_compile: bool | None = None, **decode
    ) -> Translator:
        """The run's model restored from `checkpoint` (auto, averaged, best, latest), with the run's
        decode settings updated by `decode` (beam_size=..., length_penalty=...). The searches compile
        with XLA as `decode.xla` says, unless `jit_compile` is given. `precision="auto"` (the default)
        is resolved here, against how the run trained and this machine (translator.precision), and
        `config.precision` holds the result."""
        run = RunDirectory(run_dir)
        config = run.load_config()
        if not Tokenizer.saved_in(run.tokenizer_dir):
            raise TranslatorError(f"{run.tokenizer_dir}: missing; the run directory is incomplete")
        tokenizer = Tokenizer.load(run.tokenizer_dir)
        pieces = max(tokenizer.source_vocab_size, tokenizer.target_vocab_size)
        if pieces > config.tokenizer.vocab_size:
            raise TranslatorError(
                f"{run.tokenizer_dir}: a vocabulary of {pieces} pieces, but {run.config_path} says "
                f"tokenizer.vocab_size={config.tokenizer.vocab_size}: the tokenizer belongs to another run"
            )
        decode_config = dataclasses.replace(config.decode, **decode)  # validated before the model is built
        precision, _ = resolve_decode_precision(decode_config.precision, config.train.mixed_precision)
        decode_config = dataclasses.replace(decode_config, precision=precision)
        choice = choose_checkpoint(run, checkpoint)
        model = build_model(config, tokenizer, dtype=DECODE_POLICIES[decode_config.precision])
        restore(tf.train.Checkpoint(model=model), choice.path, partial=True)
        xla = decode_config.xla if jit_compile is None else jit_compile
        return cls(model, tokenizer, decode_config, config.data.max_source_length, xla, run.path, choice)

    def with_config(self, **changes) -> Translator:
        """The same model and tokenizer with other decode settings (a new compiled search; `xla=`
        switches XLA)."""
        if changes.get("precision", self.config.precision) != self.config.precision:
            raise TranslatorError(
                "decode.precision is chosen when the model is loaded: "
                "Translator.from_run_dir(..., precision=...), or --precision"
            )
        return Translator(
            self.model,
            self.tokenizer,
            dataclasses.replace(self.config, **changes),
            self.max_source_length,
            changes.get("xla", self.jit_compile),
            self.run_dir,
            self.checkpoint,
        )

    def configured(self, **decode) -> Translator:
        """This translator with other decode settings (beam_size=, length_penalty=, sampling_topk=, ...;
        None keeps the current one)."""
        changes = decode_changes(self.config, decode)
        if not changes:
            return self
        key = tuple(sorted(changes.items()))
        if key not in self._variants:  # kept, so that repeated calls reuse one compiled search
            self._variants[key] = self.with_config(**changes)
        return self._variants[key]

    @property
    def checkpoint_path(self) -> str | None:
        return self.checkpoint.path if self.checkpoint else None

    def provenance(self) -> dict:
        """What an export records of where it came from: the checkpoint (path, step, kind) and the run's
        resolved config (data splits, model sizes), so that `evaluate --split` works from the export."""
        choice = self.checkpoint
        checkpoint = {"path": choice.path, "step": choice.step, "kind": choice.kind} if choice else None
        config = RunDirectory(self.run_dir).load_config().to_dict() if self.run_dir else None
        return {"checkpoint": checkpoint or {"path": None, "step": None, "kind": None}, "config": config}

    @property
    def hypotheses(self) -> int:
        """Hypotheses decoded per sentence: the beam size, or 1 (greedy search, sampling)."""
        return 1 if self.config.sampling else max(self.config.beam_size, 1)

    def start_cache(self, source_ids: tf.Tensor, max_length: tf.Tensor) -> dict:
        """Encode source_ids [batch, source] → the decoding cache for `max_length` positions."""
        memory, mask = self.model.encode(source_ids)
        return self.model.init_cache(memory, mask, max_length)

    def search_step(self) -> StepFn:
        """The step of one search: token_ids [batch], index, cache → (log-probabilities [batch, vocab],
        cache); padding and BOS are ruled out. Made once per search, before its loop, with what every
        step shares (the output projection's matrix, transposed once: `Seq2SeqTransformer.output_matrix`,
        and `banned_outputs`)."""
        model, output_matrix = self.model, self.model.output_matrix()
        banned = banned_outputs(model.target_vocab_size)

        def step(token_ids: tf.Tensor, index: tf.Tensor, cache: dict) -> tuple[tf.Tensor, dict]:
            logits, cache = model.decode_step(token_ids, index, cache, output_matrix)  # float32
            return tf.nn.log_softmax(logits + banned), cache

        return step

    def forward_log_probs(self, features: dict) -> tf.Tensor:
        """Teacher-forced log-probabilities [batch, target, vocab], with the search's output restrictions."""
        return tf.nn.log_softmax(never_generate(self._forward(features)))

    def _search_ids(self, source_ids: tf.Tensor, prefix_ids: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """source_ids [batch, source] (EOS-terminated, 0-padded), prefix_ids [batch, prefix] (target
        tokens to force first, 0-padded; [batch, 0] for none), seed [2] (sampling only) →
        (ids [batch, n, max_len], scores [batch, n]); n is the beam size (1 for greedy and sampling)."""
        # Buffers are sized by the padded widths (one shape per bucket); each sentence stops at its own
        # limit, so its translation does not depend on the batch it is decoded in.
        max_length = prefixed_length(tf.shape(source_ids)[1], tf.shape(prefix_ids)[1], self.config)
        source_lengths = tf.reduce_sum(tf.cast(source_ids != PAD_ID, tf.int32), axis=1)
        limits = prefixed_length(
            source_lengths, tf.reduce_sum(tf.cast(prefix_ids != PAD_ID, tf.int32), axis=1), self.config
        )
        cache = self.start_cache(source_ids, max_length)
        start = tf.fill([tf.shape(source_ids)[0]], BOS_ID)
        step, config = self.search_step(), self.config
        if config.sampling:
            ids, scores = sampling_search(
                step,
                start,
                cache,
                max_length,
                EOS_ID,
                seed,
                config.sampling_topk,
                config.sampling_topp,
                config.sampling_temperature,
                limits,
                prefix_ids,
                normalize=False,
            )
            return ids[:, tf.newaxis], scores[:, tf.newaxis]
        if config.beam_size <= 1:
            ids, scores = greedy_search(step, start, cache, max_length, EOS_ID, limits, prefix_ids, normalize=False)
            return ids[:, tf.newaxis], scores[:, tf.newaxis]
        return beam_search(
            step,
            start,
            cache,
            config.beam_size,
            max_length,
            EOS_ID,
            config.length_penalty,
            limits,
            prefix_ids,
            normalize=False,
            drop_finished=not self.jit_compile,  # XLA keeps fixed shapes
        )

    def encode_prefix(self, text: tf.Tensor) -> tf.RaggedTensor:
        """[batch] target prefixes → ragged ids (no EOS), cut to `max_length - 1` tokens so that a
        prefixed translation still fits, and ends."""
        return self.tokenizer.encode_target(text)[:, : self.config.max_length - 1]

    def encode_text(self, text: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """[batch] strings → (ragged ids with EOS, at most max_source_length; truncated [batch] bool)."""
        ids = self.tokenizer.encode_source(text)
        limit = self.max_source_length - 1
        truncated = ids.row_lengths() > limit
        ids = ids[:, :limit]
        # EOS written after each row's last token in a padded copy. A ragged concat would do it in one call,
        # but it transposes integer row numbers, and an eager integer transpose makes TensorFlow log an
        # error line ("oneDNN supports DT_INT64 only on platforms with AVX-512") wherever oneDNN is on.
        lengths = ids.row_lengths()
        padded = tf.pad(ids.to_tensor(), [[0, 0], [0, 1]])
        at_end = tf.range(tf.shape(padded, out_type=lengths.dtype)[1])[tf.newaxis, :] == lengths[:, tf.newaxis]
        return tf.RaggedTensor.from_tensor(tf.where(at_end, EOS_ID, padded), lengths=lengths + 1), truncated

    def translate_ids_batched(
        self, sources: list[np.ndarray], prefixes: list[np.ndarray] | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Decode id sequences (EOS-terminated) in length-sorted, bucket-padded batches, each starting
        with its prefix (target ids without EOS; empty for none) when `prefixes` is given.

        Returns, in input order, (ids [n, max_len], scores [n]) per sentence. Sampling draws batch k
        from the stream (decode.seed, k): the same input and settings give the same samples.
        `decode.workers` batches are decoded at a time; the results do not depend on it.
        """
        results: list = [None] * len(sources)

        def decode(number: int, indices: list[int]) -> None:
            batch = _pad([sources[i] for i in indices])
            prefix = (
                _pad([prefixes[i] for i in indices], allow_empty=True)
                if prefixes
                else np.zeros([len(indices), 0], np.int32)
            )
            seed = tf.constant([self.config.seed, number], tf.int32)
            ids, scores = self.search_ids(tf.constant(batch), tf.constant(prefix), seed)
            ids, scores = ids.numpy(), scores.numpy()
            for row, index in enumerate(indices):
                results[index] = (ids[row], scores[row])

        batches = list(enumerate(self._search_batches([len(s) for s in sources])))
        if self.config.workers == 1 or len(batches) == 1:
            for number, indices in batches:
                decode(number, indices)
        else:
            # TensorFlow releases the GIL while it runs a function: the batches really run side by side.
            with ThreadPoolExecutor(self.config.workers, thread_name_prefix="decode") as pool:
                list(pool.map(decode, *zip(*batches)))  # list(): the first error is raised here
        return results

    def _search_batches(self, lengths: list[int]) -> list[list[int]]:
        """The batches `translate_ids_batched` decodes: `_batches`, except that an input the budget puts in
        fewer batches than `decode.workers` (a server's batch of 32, a paragraph) is dealt to `workers`
        batches in turn (sorted positions s, s + workers, ...), as the SavedModel deals a request to its
        loops: each worker's share of the cores is then used, and both finish together. Translations are
        the same (scores differ by rounding, ≤ 1e-5, as padding does). Not under XLA, whose calls use
        every core and would compile each new batch size, nor when sampling, whose draws follow the batches
        and must not depend on `workers`."""
        batches = list(self._batches(lengths))
        if len(batches) >= self.config.workers or self.jit_compile or self.config.sampling:
            return batches
        return dealt(sorted(range(len(lengths)), key=lambda i: lengths[i]), self.config.workers)

    def _batches(self, lengths: list[int]) -> Iterator[list[int]]:
        """Indices grouped into batches of similar length under the source token budget (with beams)."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        budget = max(self.config.batch_tokens // self.hypotheses, 1)
        batch: list[int] = []
        for index in order:
            padded = _bucket_length(lengths[index])
            if batch and padded * (len(batch) + 1) > budget:
                yield batch
                batch = []
            batch.append(index)
        if batch:
            yield batch

    def _translate_nbest(self, sentences: list[str], n: int, prefixes: list[str] | None) -> list[list[Translation]]:
        ragged, truncated = self.encode_text(tf.constant(sentences, tf.string))
        truncated = truncated.numpy()
        prefix_ids = list(self.encode_prefix(tf.constant(prefixes, tf.string)).numpy()) if prefixes else None
        decoded = self.translate_ids_batched(list(ragged.numpy()), prefix_ids)
        texts = self.detokenize([ids[k] for ids, _ in decoded for k in range(n)])
        return [
            [Translation(texts[i * n + k], float(scores[k]), bool(truncated[i])) for k in range(n)]
            for i, (_, scores) in enumerate(decoded)
        ]

    def _score(self, sources: list[str], targets: list[str]) -> list[Score]:
        """Log-probability of each target (its tokens and EOS) given its source, teacher-forced, with
        the same output restrictions as search (no padding, no BOS): the score beam search reports
        for a hypothesis is `log_prob / length_penalty(tokens)`."""
        source_rows, target_rows = self._pair_rows(sources, targets)
        results: list = [None] * len(sources)
        for indices in self._batches([max(len(s), len(t)) for s, t in zip(source_rows, target_rows)]):
            features, labels = _teacher_forcing([source_rows[i] for i in indices], [target_rows[i] for i in indices])
            log_probs = self.forward_log_probs(features)  # [batch, T, vocab]
            picked = tf.gather(log_probs, labels, batch_dims=2).numpy() * (labels != PAD_ID)
            for row, index in enumerate(indices):
                results[index] = Score(float(picked[row].sum()), int((labels[row] != PAD_ID).sum()))
        return results

    def _pair_rows(self, sources: list[str], targets: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Id rows of sources (cut as for translation, EOS added) and of targets (EOS added)."""
        source_ids, _ = self.encode_text(tf.constant(sources, tf.string))
        target_ids = self.tokenizer.encode_target(tf.constant(targets, tf.string)).numpy()
        # EOS appended in numpy: a ragged concat in TensorFlow goes through int64 kernels that oneDNN
        # logs an error about ("oneDNN supports DT_INT64 only ...") on the CPUs where it is on.
        return list(source_ids.numpy()), [np.append(row, EOS_ID).astype(row.dtype) for row in target_ids]

    def _align(self, sources: list[str], targets: list[str]) -> list[Alignment]:
        """Word alignment of each (source, target) pair from the model's cross-attention
        (`translator.alignment`): the attention matrix [target pieces, source pieces] and the
        Pharaoh string. Targets are tokenized as `score` does."""
        return self._align_rows(*self._pair_rows(sources, targets))

    def translate_aligned(self, sentences: list[str]) -> list[tuple[Translation, Alignment]]:
        """The best translation of each sentence with its word alignment, read from a teacher-forced
        pass over the very pieces the search chose (not a re-tokenization of the text). A blank
        sentence gets an empty translation and no links, as in `translate_nbest`."""
        sentences = list(sentences)
        if any(is_blank(sentence) for sentence in sentences):
            return around_blanks(
                sentences,
                lambda: (Translation("", 0.0), Alignment([], [], np.zeros((0, 0), np.float32), [], [], [])),
                lambda kept: self.translate_aligned([sentences[index] for index in kept]),
            )
        if not sentences:
            return []
        ragged, truncated = self.encode_text(tf.constant(sentences, tf.string))
        source_rows = list(ragged.numpy())
        hypotheses, scores = [], []
        for ids, beam_scores in self.translate_ids_batched(source_rows):
            end = np.flatnonzero(ids[0] == EOS_ID)  # the best of the beam: pieces, EOS, padding
            hypotheses.append(ids[0][: end[0] + 1] if end.size else ids[0])  # no EOS: cut at the length limit
            scores.append(float(beam_scores[0]))
        texts = self.detokenize(hypotheses)
        alignments = self._align_rows(source_rows, hypotheses)
        return [
            (Translation(text, score, bool(cut)), alignment)
            for text, score, cut, alignment in zip(texts, scores, truncated.numpy(), alignments)
        ]

    def _align_rows(self, source_rows: list[np.ndarray], target_rows: list[np.ndarray]) -> list[Alignment]:
        results: list = [None] * len(source_rows)
        for indices in self._batches([max(len(s), len(t)) for s, t in zip(source_rows, target_rows)]):
            sources, targets = [source_rows[i] for i in indices], [target_rows[i] for i in indices]
            features, _ = _teacher_forcing(sources, targets)
            _, attention = self.model(features, training=False, return_attention=True)
            matrices = last_layer_attention(attention)  # [batch, target, source]
            for row, index in enumerate(indices):
                results[index] = make_alignment(matrices[row], sources[row], targets[row], self.tokenizer)
        return results

    def export(
        self,
        directory: str | os.PathLike,
        format: str = "savedmodel",
        quantization: str | None = None,
        shortlist: int = 0,
    ) -> str:
        """Write this model, with this translator's decode settings, for serving: `savedmodel` (text
        in, translation out, for TensorFlow Serving) or `ctranslate2` (the fastest on CPU; weights
        stored as `quantization`: none (float32, the default), int8, int8_float32, int16 or float16;
        `shortlist` > 0 adds a lexical shortlist of that many target pieces per source piece,
        `translator.shortlist`).
        `directory` is new, empty, or an earlier export of the same format, which it replaces once the
        new export is complete (`storage.write_directory`)."""
        if format in EXPORT_MARKERS:
            _refuse_a_foreign_directory(os.fspath(directory), format)
        if format == "savedmodel":
            from translator.export import export_saved_model

            if self.config.sampling:
                raise TranslatorError(
                    f"decode.sampling_topk={self.config.sampling_topk}: sampling is not exported (the SavedModel "
                    "decodes with greedy or beam search); translate with --run-dir to sample"
                )
            if quantization not in (None, "none") or shortlist:
                raise TranslatorError("--quantization and --shortlist apply to the ctranslate2 format only")
            return storage.write_directory(directory, lambda staging: export_saved_model(self, staging))
        if format == "ctranslate2":
            from translator.ct2_export import DEFAULT_QUANTIZATION, export_ctranslate2

            if self.config.sampling:
                raise TranslatorError(
                    f"decode.sampling_topk={self.config.sampling_topk}: sampling is not exported; "
                    "translate with --run-dir to sample"
                )

            quantization = quantization or DEFAULT_QUANTIZATION
            return storage.write_directory(
                directory, lambda staging: export_ctranslate2(self, staging, quantization, shortlist)
            )
        raise TranslatorError(f"unknown export format {format!r}: choose savedmodel or ctranslate2")

    def detokenize(self, sequences: list[np.ndarray]) -> list[str]:
        """Target id sequences (EOS and padding allowed) → strings."""
        if not sequences:
            return []
        width = max(len(s) for s in sequences)
        padded = np.zeros([len(sequences), width], np.int32)
        for row, ids in enumerate(sequences):
            cut = np.flatnonzero(ids == EOS_ID)
            ids = ids[: cut[0]] if cut.size else ids
            padded[row, : len(ids)] = ids
        return [text.decode("utf-8") for text in self.tokenizer.decode_target(tf.constant(padded)).numpy()]


def _teacher_forcing(source_rows: list[np.ndarray], target_rows: list[np.ndarray]) -> tuple[dict, np.ndarray]:
    """Model features for a teacher-forced pass (source_ids [batch, S], target_input_ids [batch, T]:
    BOS then the target shifted right) and the labels [batch, T] (the target, EOS-terminated, 0-padded)."""
    labels = _pad(target_rows)
    inputs = np.concatenate([np.full([len(target_rows), 1], BOS_ID, np.int32), labels[:, :-1]], axis=1)
    inputs[inputs == EOS_ID] = PAD_ID
    return {"source_ids": tf.constant(_pad(source_rows)), "target_input_ids": inputs}, labels


def _pad(rows: list[np.ndarray], allow_empty: bool = False) -> np.ndarray:
    """Id rows → [len(rows), bucket length] int32, zero-padded; [len(rows), 0] for empty rows if `allow_empty`."""
    longest = max(len(r) for r in rows)
    batch = np.zeros([len(rows), 0 if allow_empty and not longest else _bucket_length(longest)], np.int32)
    for row, ids in enumerate(rows):
        batch[row, : len(ids)] = ids
    return batch


def _bucket_length(length: int) -> int:
    return max(BUCKET_MULTIPLE, int(math.ceil(length / BUCKET_MULTIPLE)) * BUCKET_MULTIPLE)
