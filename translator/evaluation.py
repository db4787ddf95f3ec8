"""Corpus-level BLEU, chrF and TER with sacrebleu, with their signatures, and split evaluation."""

from __future__ import annotations

import json

import sacrebleu

from translator import storage
from translator.errors import TranslatorError
from translator.translation import BaseTranslator, Translation


def score(hypotheses: list[str], references: list[list[str]]) -> dict:
    """hypotheses [n]; references: one or more lists of n reference translations.

    Returns BLEU, chrF and TER scores with sacrebleu signatures (so numbers can be compared with
    papers and other toolkits).
    """
    for stream in references:
        if len(stream) != len(hypotheses):
            raise ValueError(f"{len(hypotheses)} hypotheses but a reference stream has {len(stream)} lines")
    results = {}
    for name, metric in (("bleu", sacrebleu.BLEU()), ("chrf", sacrebleu.CHRF()), ("ter", sacrebleu.TER())):
        result = metric.corpus_score(hypotheses, references)
        results[name] = {
            "score": round(result.score, 2),
            "signature": f"{result.name}|{metric.get_signature()}",  # as in papers: BLEU|nrefs:1|case:mixed|…
            "text": str(result),
        }
    return results


def translate_all(translator: BaseTranslator, sources: list[str], progress: bool = False) -> list[Translation]:
    """Best translation of each source (text, score, truncated), in order; long inputs go in chunks
    (bounded memory)."""
    hypotheses: list[Translation] = []
    chunk = 2000
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(sources), unit="sent", desc="translating", leave=False)
    for start in range(0, len(sources), chunk):
        batch = sources[start : start + chunk]
        hypotheses.extend(best[0] for best in translator.translate_nbest(batch))
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return hypotheses


def write_report(eval_dir: str, name: str, hypotheses: list[str], scores: dict, extra: dict) -> str:
    """Write EVAL_DIR/NAME.hyp (one hypothesis a line) and EVAL_DIR/NAME.json (scores and settings);
    returns the JSON's path."""
    storage.write_text(storage.join(eval_dir, f"{name}.hyp"), "".join(h + "\n" for h in hypotheses))
    path = storage.join(eval_dir, f"{name}.json")
    storage.write_text(path, json.dumps({**extra, **scores}, indent=2, ensure_ascii=False) + "\n")
    return path


def split_pairs(translator: BaseTranslator, split: str) -> tuple[str, list[str], list[str]]:
    """(corpus spec, sources, references) of a split named in the translator's run config."""
    from translator.corpus import read_pairs
    from translator.rundir import RunDirectory

    config = getattr(translator, "experiment_config", None)  # recorded in a CTranslate2 export
    run_dir = getattr(translator, "run_dir", None)
    if config is None and run_dir is None:
        raise TranslatorError(f"split {split!r} needs a run directory: give sources and references instead")
    data = (config or RunDirectory(run_dir).load_config()).data
    corpus = getattr(data, split, None) if split in ("train", "dev", "test") else None
    if not corpus:
        named = [name for name in ("dev", "test") if getattr(data, name)]
        choice = f"choose {' or '.join(named)}" if named else "it names no dev or test set"
        raise TranslatorError(f"--split {split!r}: the run's config has no data.{split} ({choice})")
    sources, references = read_pairs(corpus, data.source_lang, data.target_lang, data.tfds_data_dir)
    return corpus, sources, references


def evaluate_translator(
    translator: BaseTranslator,
    split: str = "test",
    sources: list[str] | None = None,
    references: list[list[str]] | None = None,
    progress: bool = False,
) -> dict:
    """Translate a split (or `sources`) and score it: {"bleu", "chrf", "ter": {score, signature,
    text}, "hypotheses", "corpus", "sentences", "truncated"}; `truncated` counts the sources longer
    than the model's maximum, which were cut before translation."""
    if sources is None:
        corpus, sources, reference = split_pairs(translator, split)
        references = [reference]
    else:
        corpus = "given sources"
        if not references:
            raise TranslatorError("sources need at least one reference list")
        for stream in references:
            if len(stream) != len(sources):
                raise TranslatorError(f"{len(sources)} sources but a reference list has {len(stream)} lines")
    best = translate_all(translator, sources, progress=progress)
    hypotheses = [translation.text for translation in best]
    return {
        **score(hypotheses, references),
        "hypotheses": hypotheses,
        "corpus": corpus,
        "sentences": len(sources),
        "truncated": sum(translation.truncated for translation in best),
    }


def truncation_note(truncated: int, total: int, max_source_length: int | None) -> str:
    """The one line that says how many sources were cut (for stderr), or "" when none was."""
    if not truncated:
        return ""
    limit = f" ({max_source_length} tokens, EOS included)" if max_source_length else ""
    return (
        f"note: {truncated} of {total} source(s) were longer than the model's maximum{limit} and were truncated "
        "(translate --split-sentences translates long paragraphs sentence by sentence)"
    )
