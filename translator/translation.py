"""What every translator returns, and the face they share.

Three kinds of translator answer the same calls: `translator.inference.Translator` (a run directory's
model in this process), `translator.export.SavedModelTranslator` (an exported SavedModel), and the
CTranslate2 one. `translator.load(path)` picks the right one. Each implements `hypotheses`,
`_translate_nbest` and `configured`; this base class turns them into `translate_nbest` (the same
answer for a blank sentence on every path) and the friendly `translate`.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Callable, Iterable
from typing import TypeVar

from translator.errors import TranslatorError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Translation:
    text: str
    score: float  # log-probability divided by the length penalty (higher is better)
    truncated: bool = False  # the source was longer than the model's maximum and was cut


@dataclasses.dataclass(frozen=True)
class Score:
    """A target's log-probability under the model, given its source (EOS included)."""

    log_prob: float
    tokens: int

    @property
    def per_token(self) -> float:
        return self.log_prob / max(self.tokens, 1)


def decode_changes(config, decode: dict) -> dict:
    """The decode settings (`translator.config.DecodeConfig` fields) that differ from `config`; None
    means "keep". An unknown name is a `TranslatorError` naming the known ones."""
    known = {field.name for field in dataclasses.fields(config)}
    unknown = sorted(set(decode) - known)
    if unknown:
        raise TranslatorError(f"unknown decode setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return {key: value for key, value in decode.items() if value is not None and value != getattr(config, key)}


def is_blank(text: str) -> bool:
    """Empty or ASCII whitespace only, as the SavedModel's graph tests it (`tf.strings.strip`)."""
    return not text.strip(string.whitespace)


def around_blanks(sentences: list[str], blank: Callable[[], T], decode: Callable[[list[int]], list[T]]) -> list[T]:
    """One answer per sentence, in input order: `blank()` for a blank one, and for the others what
    `decode(indices of the non-blank sentences)` returns, one answer per index (not called without any)."""
    kept = [index for index, sentence in enumerate(sentences) if not is_blank(sentence)]
    results = [blank() for _ in sentences]
    for index, answer in zip(kept, decode(kept) if kept else []):
        results[index] = answer
    return results


def dealt(order: list[int], ways: int) -> list[list[int]]:
    """`order` (sentences sorted by length) dealt in turn into `ways` batches: positions s, s + ways, ... go
    to batch s. An input too small for one batch a worker is split so that every worker decodes a share with
    short and long sentences alike, and they finish together (the SavedModel deals its requests the same way
    inside its graph, `translator.export.search_sorted`)."""
    ways = min(ways, len(order))
    return [order[start::ways] for start in range(ways)]


class BaseTranslator:
    """The face: `translate`, `score`, `export`. Subclasses implement `hypotheses`, `_translate_nbest`
    and `configured`."""

    @property
    def hypotheses(self) -> int:
        """Translations the search keeps for each sentence: the most `n_best` can give."""
        raise NotImplementedError

    def translate_nbest(
        self, sentences: list[str], n_best: int = 1, prefixes: list[str] | None = None
    ) -> list[list[Translation]]:
        """The `n_best` best translations of each sentence (at most `hypotheses`), best first, in input
        order; with `prefixes` (one per sentence, "" for none) each translation starts with its prefix.

        A blank sentence (empty or whitespace) is not decoded: its translations are empty, with score 0,
        on every path, as the SavedModel's graph answers it (a model would otherwise translate nothing
        into its most likely sentence, and a blank line between paragraphs would not stay blank).
        """
        sentences = list(sentences)
        if prefixes is not None:
            prefixes = list(prefixes)
            if len(prefixes) != len(sentences):
                raise TranslatorError(f"{len(sentences)} sentences but {len(prefixes)} prefixes")
        n = max(1, min(n_best, self.hypotheses))

        def decode(kept: list[int]) -> list[list[Translation]]:
            chosen = None if prefixes is None else [prefixes[index] for index in kept]
            return self._translate_nbest([sentences[index] for index in kept], n, chosen)

        return around_blanks(sentences, lambda: [Translation("", 0.0)] * n, decode)

    def _translate_nbest(self, sentences: list[str], n: int, prefixes: list[str] | None) -> list[list[Translation]]:
        """Exactly `n` (≤ `hypotheses`) translations of each sentence (none blank, at least one)."""
        raise NotImplementedError

    def configured(self, **decode) -> BaseTranslator:
        """This translator with other decode settings (beam_size=, length_penalty=, sampling_topk=, ...;
        None keeps the current one); itself when nothing changes."""
        raise NotImplementedError

    def translate(
        self,
        texts: str | Iterable[str],
        beam_size: int | None = None,
        n_best: int = 1,
        length_penalty: float | None = None,
        prefixes: str | Iterable[str] | None = None,
        **decode,
    ):
        """Translate one string or a list of strings; `prefixes` (a string, or one per input, "" for
        none) forces the start of each translation. `decode` takes the other decode settings:
        sampling_topk=, sampling_topp=, sampling_temperature=, seed=, max_length=.

        Returns strings when `n_best` is 1 (one string for one input string), else a list of
        `Translation` (text, score, truncated) per input, best first.
        """
        if n_best < 1:
            raise TranslatorError(f"n_best must be at least 1, got {n_best}")
        single = isinstance(texts, str)
        if not single and not isinstance(texts, Iterable):
            raise TranslatorError(f"translate takes a string or a list of strings, not {type(texts).__name__}")
        sentences = [texts] if single else list(texts)
        if not all(isinstance(text, str) for text in sentences):
            raise TranslatorError("translate takes a string or a list of strings")
        if prefixes is not None:
            prefixes = [prefixes] if isinstance(prefixes, str) else list(prefixes)
        translator = self.configured(beam_size=beam_size, length_penalty=length_penalty, **decode)
        results = translator.translate_nbest(sentences, n_best, prefixes)
        answers = [candidates[0].text for candidates in results] if n_best == 1 else results
        return answers[0] if single else answers

    def score(self, sources: str | Iterable[str], targets: str | Iterable[str]):
        """Log-probability of each target given its source: a `Score` per pair, or one `Score` for two
        strings (as `translate` takes one string or a list)."""
        single, sources, targets = _pairs("score", sources, targets)
        results = self._score(sources, targets) if sources else []
        return results[0] if single else results

    def align(self, sources: str | Iterable[str], targets: str | Iterable[str]):
        """Word alignments from the cross-attention: a `translator.alignment.Alignment` per pair, or one
        for two strings."""
        single, sources, targets = _pairs("align", sources, targets)
        results = self._align(sources, targets) if sources else []
        return results[0] if single else results

    def _score(self, sources: list[str], targets: list[str]) -> list[Score]:
        raise TranslatorError(f"{type(self).__name__} cannot score: load a run directory or a CTranslate2 export")

    def _align(self, sources: list[str], targets: list[str]) -> list:
        raise TranslatorError(f"{type(self).__name__} cannot align: alignments need a run directory (--run-dir)")

    def export(self, directory, **options):
        raise TranslatorError(f"{type(self).__name__} cannot export: load a run directory")


def _pairs(method: str, sources, targets) -> tuple[bool, list[str], list[str]]:
    """(one pair given as two strings?, sources, targets) for `score` and `align`, checked: a string is
    one sentence, never a sequence of characters."""
    usage = f"{method} takes two strings or two lists of strings of the same length"
    single = isinstance(sources, str)
    if single != isinstance(targets, str):
        raise TranslatorError(usage)
    if single:
        return True, [sources], [targets]
    try:
        sources, targets = list(sources), list(targets)
    except TypeError:
        raise TranslatorError(f"{usage}, not {type(sources).__name__} and {type(targets).__name__}") from None
    if not all(isinstance(text, str) for text in (*sources, *targets)):
        raise TranslatorError(usage)
    if len(sources) != len(targets):
        raise TranslatorError(f"{method}: {len(sources)} sources but {len(targets)} targets")
    return False, sources, targets
