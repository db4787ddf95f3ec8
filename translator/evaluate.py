"""Corpus-level BLEU, chrF and TER with sacrebleu, with their signatures, and split evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import sacrebleu

from translator.inference import Translator


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


def translate_all(translator: Translator, sources: list[str], progress: bool = False) -> list[str]:
    """Best translation of each source, in order; long inputs go in chunks (bounded memory)."""
    hypotheses: list[str] = []
    chunk = 2000
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(sources), unit="sent", desc="translating", leave=False)
    for start in range(0, len(sources), chunk):
        batch = sources[start : start + chunk]
        hypotheses.extend(best[0].text for best in translator.translate(batch))
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return hypotheses


def write_report(eval_dir: Path, name: str, hypotheses: list[str], scores: dict, extra: dict) -> Path:
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / f"{name}.hyp").write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
    path = eval_dir / f"{name}.json"
    path.write_text(json.dumps({**extra, **scores}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
