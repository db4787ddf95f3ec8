"""Long inputs: sentence splitting (sentencex), paragraphs translated whole, truncation never silent."""

import json

import pytest

from translator.documents import split_sentences


def test_spanish_abbreviations_do_not_end_sentences():
    text = "El Sr. García y la Sra. López llegaron. ¿Vino el Dr. Pérez? Los EE. UU. firmaron. Véase el cap. 3."
    assert split_sentences(text, "es") == [
        "El Sr. García y la Sra. López llegaron.",
        "¿Vino el Dr. Pérez?",
        "Los EE. UU. firmaron.",
        "Véase el cap. 3.",
    ]
    assert split_sentences("", "es") == [""] and split_sentences("Sin punto final", "es") == ["Sin punto final"]


def _ten_verses(tokenizer, limit: int) -> list[str]:
    """Ten test verses that are one sentence each and fit in `limit` tokens (EOS included)."""
    import tensorflow as tf

    from tests.conftest import read_corpus

    sources, _ = read_corpus("test")
    lengths = tokenizer.encode_source(tf.constant(sources)).row_lengths().numpy()
    verses = [s for s, n in zip(sources, lengths) if n < limit and split_sentences(s, "es") == [s]]
    return verses[:10]


@pytest.mark.slow
def test_a_paragraph_longer_than_the_model_is_translated_whole_sentence_by_sentence(run_translator):
    from translator.documents import translate_paragraphs
    from translator.inference import Translator

    run = run_translator
    limit = 40  # tokens, EOS included: each verse fits, the paragraph of ten does not
    model = Translator(run.model, run.tokenizer, run.config, max_source_length=limit, jit_compile=False)
    verses = _ten_verses(run.tokenizer, limit)
    paragraph = " ".join(verses)
    assert len(verses) == 10 and model.translate_nbest([paragraph])[0][0].truncated  # unsplit, it is cut

    document, blank = translate_paragraphs(model, [paragraph, ""], "es")
    assert [s.truncated for s in document.sentences] == [False] * 10 and document.truncated == 0
    assert document.text == " ".join(model.translate(verses))
    assert blank.text == "" and blank.truncated == 0  # the line between two paragraphs stays blank


@pytest.mark.slow
def test_translate_and_evaluate_report_truncated_sources(trained_run, run_translator, tmp_path, capsys):
    from translator.cli import main

    run = run_translator
    verses = _ten_verses(run.tokenizer, run.max_source_length)
    paragraph = tmp_path / "paragraph.es"
    paragraph.write_text(" ".join(verses) + "\nY dijo Dios.\n", encoding="utf-8")
    args = ["translate", "--run-dir", str(trained_run), "--input", str(paragraph)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2
    assert "note: 1 of 2 source(s) were longer than the model's maximum (64 tokens, EOS included)" in captured.err

    assert main([*args, "--split-sentences"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [" ".join(run.translate(verses)), run.translate("Y dijo Dios.")]
    assert "truncated" not in captured.err

    reference = tmp_path / "paragraph.en"
    reference.write_text("And God said, let there be light.\nAnd God said.\n", encoding="utf-8")
    assert main(["evaluate", "--run-dir", str(trained_run), "--src", str(paragraph), "--ref", str(reference)]) == 0
    assert "note: 1 of 2 source(s)" in capsys.readouterr().err
    report = json.loads((trained_run / "eval" / "paragraph.json").read_text(encoding="utf-8"))
    assert report["truncated"] == 1 and report["sentences"] == 2
