"""Documents: paragraphs longer than the model's input, translated sentence by sentence.

A model reads at most `data.max_source_length` tokens; a longer input is cut (and flagged, never
silently: see `Translation.truncated`). `translate_paragraphs` splits each paragraph into sentences
with `sentencex` (Wikimedia's rule-based segmenter: abbreviation lists for Spanish and ~300 other
languages, maintained, works offline), translates every sentence of every paragraph in one call (so
they are batched together by length), and joins each paragraph's translations with one space.
"""

from __future__ import annotations

import dataclasses

from translator.errors import TranslatorError
from translator.translation import BaseTranslator, Translation


@dataclasses.dataclass(frozen=True)
class DocumentTranslation:
    """One paragraph's translation: the sentences' translations joined by a space."""

    text: str
    sentences: list[Translation]

    @property
    def truncated(self) -> int:
        """How many of its sentences were still longer than the model's maximum and were cut."""
        return sum(sentence.truncated for sentence in self.sentences)


def split_sentences(paragraph: str, language: str) -> list[str]:
    """The sentences of `paragraph` (an ISO 639 code picks the abbreviation rules, e.g. `es`), each
    stripped of the spaces around it; a paragraph with no sentence (empty or blank) is itself."""
    try:
        import sentencex
    except ImportError as error:  # pragma: no cover - a dependency of the package
        raise TranslatorError(f"--split-sentences needs sentencex: pip install sentencex ({error})") from error
    sentences = [sentence.strip() for sentence in sentencex.segment(language, paragraph)]
    return [sentence for sentence in sentences if sentence] or [paragraph]


def translate_paragraphs(translator: BaseTranslator, paragraphs: list[str], language: str) -> list[DocumentTranslation]:
    """Translate each paragraph sentence by sentence, all sentences in one batch; input order kept."""
    split = [split_sentences(paragraph, language) for paragraph in paragraphs]
    flat = [sentence for sentences in split for sentence in sentences]
    best = [candidates[0] for candidates in translator.translate_nbest(flat, 1)] if flat else []
    results, start = [], 0
    for sentences in split:
        mine = best[start : start + len(sentences)]
        start += len(sentences)
        results.append(DocumentTranslation(" ".join(t.text for t in mine), mine))
    return results
