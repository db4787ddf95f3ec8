"""SavedModel export: raw text in, translation and score out, for TensorFlow Serving.

Tokenization (tensorflow-text SentencePiece), beam search and detokenization all run inside the
graph, and the graph holds no Python: a process with only `tensorflow` and `tensorflow_text` loads
and serves it. Signatures:

    serving_default:  text [batch] string → translation [batch] string, score [batch] float32,
                      truncated [batch] bool (input longer than the model's maximum source length)
    translate_nbest:  text [batch] string → translations [batch, n] string, scores [batch, n] float32,
                      truncated [batch] bool
    translate_with_prefix: text [batch], prefix [batch] string → translation, score, truncated as
                      serving_default, each translation starting with its prefix ("" for none)

Beam size and length penalty are fixed at export time. Empty inputs and invalid UTF-8 give an empty
translation with score 0, never an error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath

import numpy as np
import tensorflow as tf

from translator import storage
from translator.config import DecodeConfig
from translator.errors import TranslatorError
from translator.inference import Translator, prefixed_length
from translator.onednn import EXPORT_INFO
from translator.quiet import native_stderr_silenced
from translator.translation import BaseTranslator, Translation

_TEXT = tf.TensorSpec([None], tf.string, name="text")
_PREFIX = tf.TensorSpec([None], tf.string, name="prefix")


# Sentences decoded together by one loop inside the graph: with two loops, 16 gave 17.4-20.7 sentences/s,
# 8 gave 13.8-15.8 and 32 14.2 on requests of 32 (docs/benchmarks.md, 2026-12-03); now that a request's
# sentences are dealt to the loops in turn, a request of 32 is one sub-batch of 16 per loop.
SUB_BATCH = 16


def search_sorted(
    translator: Translator,
    ragged: tf.RaggedTensor,
    sub_batch: int,
    prefixes: tf.RaggedTensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Beam search over a request as the in-process translator does it: sentences sorted by length
    and decoded `sub_batch` at a time, so that a short sentence is neither padded to the request's
    longest nor kept in the loop until the longest finishes. Outputs do not depend on the grouping
    (each sentence stops at its own limit).

    The sorted sentences are dealt to `decode.workers` loops that share no data, so the graph's
    executor runs them side by side (as the in-process translator runs its batches): loop s takes
    sorted positions s, s + workers, s + 2·workers, ..., so that every loop gets its share of short
    and long sentences and the loops finish together.

    ragged [batch, (tokens)] (EOS-terminated), prefixes [batch, (tokens)] or None → (ids [batch, n,
    max_length], scores [batch, n]) in input order.
    """
    lengths = tf.cast(ragged.row_lengths(), tf.int32)
    if prefixes is None:
        prefixes = tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros_like(lengths, tf.int64))
    order = tf.argsort(lengths, stable=True)
    longest_prefix = tf.reduce_max(tf.concat([tf.cast(prefixes.row_lengths(), tf.int32), [0]], 0))
    max_length = prefixed_length(tf.reduce_max(tf.concat([lengths, [0]], 0)), longest_prefix, translator.config)
    no_seed = tf.zeros([2], tf.int32)  # exports never sample
    streams, n = translator.config.workers, translator.hypotheses

    all_ids, all_scores, all_rows = [], [], []
    for stream in range(streams):
        rows = order[stream::streams]  # this loop's sentences, shortest first
        sentences, sentence_prefixes = tf.gather(ragged, rows), tf.gather(prefixes, rows)
        count = tf.shape(rows)[0]
        chunks = (count + sub_batch - 1) // sub_batch

        def decode_chunk(index, ids_array, scores_array, sentences=sentences, sentence_prefixes=sentence_prefixes):
            chunk = sentences[index * sub_batch : (index + 1) * sub_batch].to_tensor()
            prefix = sentence_prefixes[index * sub_batch : (index + 1) * sub_batch].to_tensor()
            ids, scores = translator.search_ids(chunk, prefix, no_seed)  # [chunk, n, its own length ≤ max_length]
            ids = tf.pad(ids, [[0, 0], [0, 0], [0, max_length - tf.shape(ids)[2]]])
            return index + 1, ids_array.write(index, ids), scores_array.write(index, scores)

        arrays = (
            tf.TensorArray(tf.int32, size=chunks, infer_shape=False, element_shape=[None, None, None]),
            tf.TensorArray(tf.float32, size=chunks, infer_shape=False, element_shape=[None, None]),
        )
        _, ids_array, scores_array = tf.while_loop(
            lambda index, *_, chunks=chunks: index < chunks, decode_chunk, (tf.constant(0), *arrays)
        )
        # A loop without sentences (a request of fewer) contributes no rows; concat of an empty array cannot.
        all_ids.append(tf.cond(chunks > 0, ids_array.concat, lambda: tf.zeros([0, n, max_length], tf.int32)))
        all_scores.append(tf.cond(chunks > 0, scores_array.concat, lambda: tf.zeros([0, n], tf.float32)))
        all_rows.append(rows)
    # Row r of the concatenation is the request's sentence `rows[r]`.
    inverse = tf.math.invert_permutation(tf.concat(all_rows, 0))
    # TensorArray.concat forgets the ranks; the signatures promise them (score [batch], scores [batch, n]).
    ids = tf.ensure_shape(tf.gather(tf.concat(all_ids, 0), inverse), [None, None, None])
    return ids, tf.ensure_shape(tf.gather(tf.concat(all_scores, 0), inverse), [None, None])


def _serving_functions(translator: Translator, sub_batch: int = SUB_BATCH):
    """The three signature functions, closed over a non-compiled copy of the translator (stock
    TensorFlow Serving may lack XLA, and serving shapes vary anyway)."""
    translator = Translator(
        translator.model, translator.tokenizer, translator.config, translator.max_source_length, jit_compile=False
    )

    def utf8(text):
        return tf.equal(tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace"), text)

    def search(text, prefix=None):
        usable = tf.logical_and(utf8(text), tf.not_equal(tf.strings.strip(text), ""))
        ragged, truncated = translator.encode_text(tf.where(usable, text, ""))
        if prefix is not None:  # an invalid prefix is no prefix; an unusable text gets none either
            prefix = translator.encode_prefix(tf.where(tf.logical_and(usable, utf8(prefix)), prefix, ""))
        ids, scores = search_sorted(translator, ragged, sub_batch, prefix)  # [batch, n, length], [batch, n]
        batch, n = tf.shape(ids)[0], tf.shape(ids)[1]
        # decode_target drops EOS, the padding after it and the other specials.
        texts = tf.reshape(translator.tokenizer.decode_target(tf.reshape(ids, [batch * n, -1])), [batch, n])
        texts = tf.where(usable[:, tf.newaxis], texts, "")
        scores = tf.where(usable[:, tf.newaxis], scores, 0.0)
        return texts, scores, tf.logical_and(truncated, usable)

    # serving_default and translate_nbest call one traced search: the beam search's graph is built and
    # stored once for the two, not once each.
    search_text = tf.function(search, input_signature=[_TEXT], autograph=False)  # its ifs test Python values

    def serve(text):
        texts, scores, truncated = search_text(text)
        return {"translation": texts[:, 0], "score": scores[:, 0], "truncated": truncated}

    def nbest(text):
        texts, scores, truncated = search_text(text)
        return {"translations": texts, "scores": scores, "truncated": truncated}

    def with_prefix(text, prefix):
        tf.debugging.assert_equal(tf.shape(text), tf.shape(prefix), message="one prefix per text")
        texts, scores, truncated = search(text, prefix)
        return {"translation": texts[:, 0], "score": scores[:, 0], "truncated": truncated}

    return serve, nbest, with_prefix


def export_saved_model(translator: Translator, directory: str | os.PathLike, sub_batch: int = SUB_BATCH) -> str:
    """Write the SavedModel to `directory` (replaced if it exists).

    Each signature is traced once, here, and saved as that trace. (Keras' `ExportArchive` traced each
    twice: once to list the variables it uses, again inside `tf.saved_model.save`, whose save context
    is part of TensorFlow's trace cache key; a `tf.function` attribute is always traced again there.)
    """
    serve, nbest, with_prefix = _serving_functions(translator, sub_batch)
    endpoints = {
        name: tf.function(function, autograph=False).get_concrete_function(*signature)
        for name, function, signature in (
            ("serving_default", serve, [_TEXT]),
            ("translate_nbest", nbest, [_TEXT]),
            ("translate_with_prefix", with_prefix, [_TEXT, _PREFIX]),
        )
    }
    root = tf.Module()
    # The variables the graphs capture are the TensorFlow variables inside the Keras 3 variables. Tracked
    # themselves, they are what TF1-style loaders (TensorFlow Serving, `saved_model_cli run`) restore;
    # tracking only the Keras model would leave them unrestored there.
    captured = {id(v): v for function in endpoints.values() for v in function.variables}
    root.captured_variables = list(captured.values())
    # The SentencePiece models are resources the graphs use: tracked, they are saved and re-created at load.
    root.tokenizers = list({id(t): t for t in (translator.tokenizer.source, translator.tokenizer.target)}.values())
    for name, function in endpoints.items():
        setattr(root, name, function)
    directory = os.fspath(directory)
    tf.saved_model.save(root, directory, signatures=endpoints)
    # What the graphs compute in and decode with, readable without TensorFlow: a process that serves
    # the export chooses its CPU kernels from it before TensorFlow loads (`translator.onednn`).
    # Where it came from (checkpoint, the run's config) too: `evaluate --export-dir --split` reads the splits there.
    info = {key: getattr(translator.config, key) for key in ("precision", "beam_size", "length_penalty")}
    info.update(decode=dataclasses.asdict(translator.config), **translator.provenance())
    tf.io.gfile.makedirs(posixpath.join(directory, posixpath.dirname(EXPORT_INFO)))
    with tf.io.gfile.GFile(posixpath.join(directory, EXPORT_INFO), "w") as file:
        json.dump(info, file)
    return directory


class SavedModelTranslator(BaseTranslator):
    """An exported SavedModel behind the common face. Its beam size and length penalty were fixed at
    export time: asking for others is an error, not a silent no-op."""

    def __init__(self, directory: str | os.PathLike):
        import tensorflow_text  # noqa: F401  (registers the SentencePiece ops the graph uses)

        self.directory = os.fspath(directory)
        # The SentencePiece resources are re-created here, and their library logs "precompiled_charsmap is
        # empty ..." on the native stderr as they are (see `translator.tokenizer`).
        with native_stderr_silenced():
            loaded = tf.saved_model.load(str(directory))
        self._loaded = loaded  # keeps the signatures' variables alive
        self._nbest = loaded.signatures["translate_nbest"]
        self._with_prefix = loaded.signatures.get("translate_with_prefix")  # exports since target prefixes
        info = storage.join(self.directory, EXPORT_INFO)
        self.info = json.loads(storage.read_text(info)) if storage.exists(info) else {}
        # The decode settings fixed at export (older exports recorded only the search's three).
        recorded = self.info.get("decode") or {
            key: self.info[key] for key in ("precision", "beam_size", "length_penalty") if key in self.info
        }
        if "beam_size" not in recorded:  # an export older than its info file: ask the graph
            recorded["beam_size"] = int(self._nbest(text=tf.constant(["."]))["translations"].shape[1])
        self.config = DecodeConfig(**recorded)

    @property
    def experiment_config(self):
        """The run's config recorded at export (for `evaluate --split`), or None (an older export)."""
        from translator.config import config_from_dict

        recorded = self.info.get("config")
        return config_from_dict(recorded, origin=storage.join(self.directory, EXPORT_INFO)) if recorded else None

    @property
    def checkpoint_path(self) -> str | None:
        return self.info.get("checkpoint", {}).get("path")

    @property
    def hypotheses(self) -> int:
        return max(self.config.beam_size, 1)

    def configured(self, **decode) -> SavedModelTranslator:
        given = sorted(key for key, value in decode.items() if value is not None)
        if given:
            raise TranslatorError(
                f"{self.directory}: a SavedModel's decode settings ({', '.join(given)}) are fixed at export; "
                "export again with --beam-size / --length-penalty, or translate from the run directory"
            )
        return self

    def _translate_nbest(self, sentences: list[str], n: int, prefixes: list[str] | None) -> list[list[Translation]]:
        if prefixes is not None:
            return self._translate_with_prefix(sentences, prefixes, n)
        result = self._nbest(text=tf.constant(sentences, tf.string))
        texts, scores = result["translations"].numpy(), result["scores"].numpy()
        truncated = result["truncated"].numpy() if "truncated" in result else np.zeros(len(sentences), bool)
        return [
            [Translation(texts[i, k].decode("utf-8"), float(scores[i, k]), bool(truncated[i])) for k in range(n)]
            for i in range(len(sentences))
        ]

    def _translate_with_prefix(self, sentences: list[str], prefixes: list[str], n: int) -> list[list[Translation]]:
        if self._with_prefix is None:
            raise TranslatorError(f"{self.directory}: exported before target prefixes; export it again")
        if n > 1:
            raise TranslatorError("the SavedModel translates with a prefix to the best translation only (n-best 1)")
        result = self._with_prefix(text=tf.constant(sentences, tf.string), prefix=tf.constant(prefixes, tf.string))
        texts, scores, truncated = (result[key].numpy() for key in ("translation", "score", "truncated"))
        return [
            [Translation(texts[i].decode("utf-8"), float(scores[i]), bool(truncated[i]))] for i in range(len(texts))
        ]
