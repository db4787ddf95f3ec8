"""`EnsembleTranslator`: several trained runs decoding together, as one translator.

At every step each model gives its log-probabilities (with the search's output restrictions), and the
search extends hypotheses by their mean (Marian's convention; fairseq averages probabilities instead).
The mean is used as it is, not renormalized, so the score of a hypothesis is the mean of the models'
scores of it, and `score` of an ensemble is the mean of its models' `score`. The models may differ in
size, but they must share one tokenizer: the same SentencePiece model(s), byte for byte, so that every
id means the same piece to all of them.

It is a `Translator` whose three model hooks (`start_cache`, `search_step`, `forward_log_probs`)
visit every model; batching, prefixes, sampling and text handling are the single model's. Exports (a
SavedModel, CTranslate2) hold one model: an ensemble refuses to export.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from translator.config import DecodeConfig
from translator.errors import TranslatorError
from translator.inference import Translator
from translator.rundir import RunDirectory
from translator.search import StepFn
from translator.tokenizer import Tokenizer


class EnsembleTranslator(Translator):
    def __init__(self, members: list[Translator], config: DecodeConfig | None = None, jit_compile: bool = True):
        """`members`: translators of runs with one tokenizer (see `check_one_tokenizer`); decoding
        follows `config` (default: the first member's)."""
        if len(members) < 2:
            raise TranslatorError(f"an ensemble needs at least two models, got {len(members)}")
        check_one_tokenizer([(member.run_dir, member.tokenizer) for member in members])
        first = members[0]
        max_source_length = min(member.max_source_length for member in members)
        super().__init__(
            first.model, first.tokenizer, config or first.config, max_source_length, jit_compile, first.run_dir
        )
        self.members = list(members)
        self.checkpoint = first.checkpoint

    @classmethod
    def from_run_dirs(
        cls, run_dirs: list[str | os.PathLike], checkpoint: str = "auto", jit_compile: bool | None = None, **decode
    ) -> EnsembleTranslator:
        """The runs' models, each restored from its `checkpoint` choice, decoding with the first run's
        decode settings updated by `decode`. Tokenizers are compared before any model is built."""
        check_one_tokenizer([(run_dir, Tokenizer.load(RunDirectory(run_dir).tokenizer_dir)) for run_dir in run_dirs])
        members = [Translator.from_run_dir(run_dir, checkpoint, jit_compile, **decode) for run_dir in run_dirs]
        return cls(members, members[0].config, members[0].jit_compile)

    @property
    def run_dirs(self) -> list[str]:
        return [member.run_dir for member in self.members]

    def with_config(self, **changes) -> EnsembleTranslator:
        jit_compile = changes.get("xla", self.jit_compile)
        return EnsembleTranslator(self.members, dataclasses.replace(self.config, **changes), jit_compile)

    def start_cache(self, source_ids: tf.Tensor, max_length: tf.Tensor) -> dict:
        """One cache per model, split by the cache rule: every model's memory under `memory` (never
        reordered), every model's self-attention cache under `decoder` (follows the beams)."""
        caches = [member.start_cache(source_ids, max_length) for member in self.members]
        return {"memory": [cache["memory"] for cache in caches], "decoder": [cache["decoder"] for cache in caches]}

    def search_step(self) -> StepFn:
        """The step of one search: token_ids [batch] → (mean of the models' log-probabilities [batch,
        vocab], cache); each model's output matrix made once (`Translator.search_step`)."""
        steps = [member.search_step() for member in self.members]

        def step(token_ids: tf.Tensor, index: tf.Tensor, cache: dict) -> tuple[tf.Tensor, dict]:
            log_probs, decoders = [], []
            for member_step, memory, decoder in zip(steps, cache["memory"], cache["decoder"]):
                member_log_probs, state = member_step(token_ids, index, {"memory": memory, "decoder": decoder})
                log_probs.append(member_log_probs)
                decoders.append(state["decoder"])
            return tf.add_n(log_probs) / len(log_probs), {"memory": cache["memory"], "decoder": decoders}

        return step

    def forward_log_probs(self, features: dict) -> tf.Tensor:
        """The mean of the models' teacher-forced log-probabilities [batch, target, vocab]."""
        log_probs = [member.forward_log_probs(features) for member in self.members]
        return tf.add_n(log_probs) / len(log_probs)

    def export(self, directory, format: str = "savedmodel", quantization: str | None = None) -> str:
        raise TranslatorError(
            f"an ensemble of {len(self.members)} runs cannot be exported: a SavedModel or CTranslate2 export "
            "holds one model; export each run, or translate with several --run-dir"
        )


def check_one_tokenizer(runs: list[tuple[str | None, Tokenizer]]) -> None:
    """Fail unless every (run directory, tokenizer) has the first one's SentencePiece model(s), byte for byte."""
    (first_dir, first), *others = runs
    for run_dir, tokenizer in others:
        if (tokenizer.source_model_proto, tokenizer.target_model_proto) != (
            first.source_model_proto,
            first.target_model_proto,
        ):
            raise TranslatorError(
                f"{_tokenizer_dir(run_dir)} differs from {_tokenizer_dir(first_dir)}: an ensemble's runs must share "
                "one SentencePiece model (copy a run's tokenizer/ into the new run directory before training it)"
            )


def _tokenizer_dir(run_dir: str | None) -> str:
    return RunDirectory(run_dir).tokenizer_dir if run_dir else "a model's tokenizer"
