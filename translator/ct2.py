"""`CTranslate2Translator`: a CTranslate2 export behind the common translator face.

It imports neither TensorFlow nor the model: only `ctranslate2`, `sentencepiece` and `export.json`
(written by `translator.ct2_export`), so `translate --ct2-dir` starts in a fraction of a second.

Decoding follows our own search where CTranslate2 lets it:
- the source is tokenized, cut to `max_source_length - 1` pieces and given EOS (`add_source_eos`);
- each sentence may generate `min(int(ratio × source length) + 10, max_length)` tokens, EOS included
  (`translator.inference.decode_length`), and at its last position only EOS. CTranslate2 takes one
  length limit per batch and ends a hypothesis there without EOS: batches decode to their longest
  limit less one, sentences that went past their own limit are decoded again with it (grouped by
  limit), and a hypothesis stopped at the limit gets EOS appended and is rescored by `score_batch`.
  Greedy search is thus exactly ours;
- CTranslate2 4 divides a hypothesis' log-probability by len^α, ours by the GNMT ((5 + len) / 6)^α
  (len counting EOS in both): no setting of its `length_penalty` is ours. The penalty only ranks
  finished hypotheses there, so it decodes with none, returns all `beam` finished hypotheses (it then
  searches until `beam` have finished, as ours does) and they are ranked here with ours, exactly.
  The search itself differs in details (it extends the top `beam` candidates, ours 2·beam, and stops
  on a different rule), so beam outputs agree with ours on most sentences, not all (docs/benchmarks.md).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from translator.config import DecodeConfig
from translator.constants import EOS_ID, EXPORT_MARKERS
from translator.errors import TranslatorError
from translator.threads import threads_per_worker
from translator.translation import BaseTranslator, Score, Translation, dealt, decode_changes

EXPORT_INFO = "export.json"


def _searched(config: DecodeConfig, directory: Path) -> DecodeConfig:
    """`config`, refused if it asks for sampling (CTranslate2's own sampler does not follow decode.seed)
    or for bfloat16 (CTranslate2 computes as the export's quantization says); `auto` is float32 here."""
    if config.sampling:
        raise TranslatorError(f"{directory}: sampling (--sampling-topk) needs --run-dir")
    if config.precision not in ("auto", "float32"):
        raise TranslatorError(f"{directory}: --precision needs --run-dir; a CTranslate2 export has --quantization")
    return dataclasses.replace(config, precision="float32")


# Sentences per `translate_batch` call, after sorting by length. 16 was the fastest of 4, 8, 16, 32 and 64
# for float32 at both the `small` and the tutorial size (int8: 8 and 16 within a few percent), and it
# needs less memory than 32 (2-core Intel Xeon with AMX, 2026-12-05; docs/benchmarks.md, "CTranslate2's
# batch size").
DEFAULT_BATCH_SIZE = 16
# With a lexical shortlist the output layer spans the union of a batch's candidates, which grows with the
# batch: 8 decoded the tutorial-size test split in int8 at 293-326 sentences/s in five runs against 251
# and 294 for 16 (AMD EPYC with AVX-512, 2026-12-07; docs/benchmarks.md, "A lexical shortlist for CTranslate2").
SHORTLIST_BATCH_SIZE = 8


def is_ctranslate2_export(path: str | Path) -> bool:
    return (Path(path) / EXPORT_MARKERS["ctranslate2"]).exists() and (Path(path) / EXPORT_INFO).exists()


def decode_limit(source_length: int, config: DecodeConfig) -> int:
    """Tokens (EOS included) a source of `source_length` tokens (EOS included) may produce; the same
    float32 arithmetic as `translator.inference.decode_length`."""
    return int(min(int(np.float32(source_length) * np.float32(config.max_length_ratio)) + 10, config.max_length))


class CTranslate2Translator(BaseTranslator):
    """Translate with a CTranslate2 export.

    threads: CPU threads for one batch (CTranslate2's `intra_threads`; 0: the machine's cores shared
        among the `decode.workers` batches decoded at once, CTranslate2's `inter_threads`).
    compute_type: `default` keeps the export's quantization; `int8`, `float32`, ... convert on load.
    batch_size: sentences per `translate_batch` call, after sorting by length (None: `DEFAULT_BATCH_SIZE`,
        or `SHORTLIST_BATCH_SIZE` for an export with a shortlist).
    decode: beam_size, length_penalty, max_length, ... over the export's decode settings.
    """

    def __init__(
        self,
        directory: str | Path,
        threads: int = 0,
        compute_type: str = "default",
        batch_size: int | None = None,
        **decode,
    ):
        try:
            import ctranslate2
            import sentencepiece as spm
        except ImportError:
            raise TranslatorError(
                "a CTranslate2 export needs the ctranslate2 package: pip install 'translator[ctranslate2]'"
            ) from None
        self.directory = Path(directory)
        if not is_ctranslate2_export(self.directory):
            raise TranslatorError(f"{self.directory}: not a CTranslate2 export (model.bin and {EXPORT_INFO})")
        self.info = json.loads((self.directory / EXPORT_INFO).read_text(encoding="utf-8"))
        self.config = _searched(dataclasses.replace(DecodeConfig(**self.info["decode"]), **decode), self.directory)
        self.max_source_length = int(self.info["max_source_length"])
        # An export with a lexical shortlist (vmap.txt, `translator.shortlist`) decodes with it: each batch's
        # output layer spans only its sources' candidates. Scoring (`score_batch`) always spans the vocabulary.
        self.shortlisted = (self.directory / "vmap.txt").is_file()
        self.batch_size = batch_size or (SHORTLIST_BATCH_SIZE if self.shortlisted else DEFAULT_BATCH_SIZE)
        self.threads = threads
        self.compute_type = compute_type
        workers = self.config.workers
        self.model = ctranslate2.Translator(
            str(self.directory),
            device="cpu",
            compute_type=compute_type,
            inter_threads=workers,
            intra_threads=threads or threads_per_worker(workers),
        )
        files = self.info["tokenizer"]
        self.source = spm.SentencePieceProcessor(model_file=str(self.directory / files["source"]))
        self.target = (
            self.source
            if files["target"] == files["source"]
            else spm.SentencePieceProcessor(model_file=str(self.directory / files["target"]))
        )

    @property
    def experiment_config(self):
        """The run's config recorded at export (for `evaluate --split`), or None."""
        from translator.config import config_from_dict

        recorded = self.info.get("config")
        return config_from_dict(recorded, origin=str(self.directory / EXPORT_INFO)) if recorded else None

    @property
    def checkpoint_path(self) -> str | None:
        return self.info["checkpoint"]["path"]

    def configured(self, **decode) -> CTranslate2Translator:
        changes = decode_changes(self.config, decode)
        return self.with_config(**changes) if changes else self

    def with_config(self, **changes) -> CTranslate2Translator:
        """The same loaded model with other decode settings (reloaded only for other `workers`: CTranslate2
        fixes its worker threads when it loads a model)."""
        if changes.get("workers", self.config.workers) != self.config.workers:
            decode = {**dataclasses.asdict(self.config), **changes}
            return CTranslate2Translator(
                self.directory,
                threads=self.threads,
                compute_type=self.compute_type,
                batch_size=self.batch_size,
                **decode,
            )
        other = object.__new__(CTranslate2Translator)
        other.__dict__.update(self.__dict__)
        other.config = _searched(dataclasses.replace(self.config, **changes), self.directory)
        return other

    def _source_pieces(self, sentences: list[str]) -> tuple[list[list[str]], list[bool]]:
        """Pieces without EOS (the model adds it), cut to max_source_length - 1; and which were cut."""
        limit = self.max_source_length - 1
        encoded = self.source.encode(sentences, out_type=str)
        return [pieces[:limit] for pieces in encoded], [len(pieces) > limit for pieces in encoded]

    @property
    def hypotheses(self) -> int:
        return max(self.config.beam_size, 1)

    def _translate_nbest(self, sentences: list[str], n: int, prefixes: list[str] | None) -> list[list[Translation]]:
        if prefixes is not None:
            raise TranslatorError(f"{self.directory}: target prefixes need --run-dir or --export-dir")
        sources, truncated = self._source_pieces(sentences)
        limits = [decode_limit(len(pieces) + 1, self.config) for pieces in sources]
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
        results: list = [None] * len(sources)
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        if len(batches) < self.config.workers:  # fewer batches than workers: each worker gets a share
            batches = dealt(order, self.config.workers)
        self._decode(batches, sources, limits, results)
        # A sentence decoded past its own limit (its batch allowed more) is decoded again with its limit.
        again: dict[int, list[int]] = {}
        for i, candidates in enumerate(results):
            if any(len(pieces) > limits[i] - 1 for pieces, _, _ in candidates):
                again.setdefault(limits[i], []).append(i)
        self._decode(list(again.values()), sources, limits, results)
        self._end_at_limits(sources, results)
        best = [self._ranked(candidates)[:n] for candidates in results]
        return [
            [Translation(self.detokenize(pieces), score, truncated[i]) for pieces, score in candidates]
            for i, candidates in enumerate(best)
        ]

    def _ranked(self, candidates: list) -> list[tuple[list[str], float]]:
        """(pieces, log-probability / GNMT length penalty), best first: our search's score and order."""
        alpha = self.config.length_penalty if self.config.beam_size > 1 else 0.0
        scored = []
        for pieces, log_prob, _ in candidates:
            tokens = len(pieces) + 1  # EOS included
            scored.append((pieces, float(log_prob) / ((5.0 + tokens) / 6.0) ** alpha))
        return sorted(scored, key=lambda candidate: -candidate[1])

    def _decode(self, batches: list[list[int]], sources, limits, results: list) -> None:
        """Decode each batch of sentence indices up to its longest limit less one token: the place
        where our search allows only EOS. results[i] = [(pieces, log-probability, ended with EOS)]: every
        finished beam, unranked (`_ranked` ranks them with our length penalty)."""
        beam = max(self.config.beam_size, 1)
        # Submitted all at once, the batches run `decode.workers` at a time (CTranslate2's inter_threads).
        pending = [
            (
                indices,
                self.model.translate_batch(
                    [sources[i] for i in indices],
                    beam_size=beam,
                    # All `beam` hypotheses: like ours, the search goes on until `beam` have finished.
                    num_hypotheses=beam,
                    # Raw log-probabilities: CTranslate2 4's penalty is length ** alpha, not GNMT's.
                    length_penalty=0.0,
                    max_decoding_length=max(1, max(limits[i] for i in indices) - 1),
                    min_decoding_length=0,
                    max_input_length=0,
                    return_scores=True,
                    return_end_token=True,
                    use_vmap=self.shortlisted,
                    asynchronous=True,
                ),
            )
            for indices in batches
        ]
        for indices, outputs in pending:
            for index, output in zip(indices, (output.result() for output in outputs)):
                results[index] = [
                    (pieces[:-1], score, True) if pieces and pieces[-1] == "</s>" else (pieces, score, False)
                    for pieces, score in zip(output.hypotheses, output.scores)
                ]

    def _end_at_limits(self, sources: list[list[str]], results: list) -> None:
        """Hypotheses stopped at the length limit end there with EOS in our search: their
        log-probability with EOS, by `score_batch`."""
        open_ended = [
            (i, k) for i, candidates in enumerate(results) for k, (_, _, ended) in enumerate(candidates) if not ended
        ]
        if not open_ended:
            return
        scored = self.model.score_batch(
            [sources[i] for i, _ in open_ended], [results[i][k][0] for i, k in open_ended], max_input_length=0
        )
        for (i, k), scoring in zip(open_ended, scored):
            results[i][k] = (results[i][k][0], sum(scoring.log_probs), True)

    def detokenize(self, pieces: list[str]) -> str:
        """Target pieces → text, dropping specials (UNK too), as our detokenizer does."""
        ids = [self.target.piece_to_id(piece) for piece in pieces]
        return self.target.decode([i for i in ids if i > EOS_ID])

    def _score(self, sources: list[str], targets: list[str]) -> list[Score]:
        """Log-probability of each target (its tokens and EOS) given its source, by `score_batch`."""
        source_pieces, _ = self._source_pieces(sources)
        target_pieces = self.target.encode(targets, out_type=str)
        scored = self.model.score_batch(
            source_pieces, target_pieces, max_batch_size=self.batch_size, max_input_length=0
        )
        return [Score(float(sum(result.log_probs)), len(result.log_probs)) for result in scored]
