"""Word alignments from cross-attention: the piece-to-word rule, the Pharaoh string, the API and the CLI."""

import re

import numpy as np
import pytest

from translator.alignment import piece_words, to_pharaoh, word_alignment

PHARAOH = re.compile(r"^(\d+-\d+( \d+-\d+)*)?$")


def test_pieces_starting_with_the_word_mark_begin_words():
    pieces = ["▁Y", "▁dijo", "▁Dio", "s", ":", "▁", "▁luz", "▁", None]  # None: EOS
    assert piece_words(pieces) == [0, 1, 2, 2, 2, -1, 3, -1, -1]  # blank "▁" words and specials: no word
    assert piece_words(["Sea", "▁la"]) == [0, 1]  # the first piece begins word 0 even without ▁


def test_a_hand_made_attention_matrix_gives_the_expected_pharaoh_string():
    # Source "El perro ladra </s>" as pieces ▁El ▁per ro ▁ladra </s>; target "The dog barks </s>" as
    # ▁The ▁dog ▁bar ks </s>. Rows: target pieces; columns: source pieces; each row sums to 1.
    matrix = np.array(
        [
            [0.7, 0.1, 0.1, 0.0, 0.1],  # ▁The → El
            [0.1, 0.3, 0.3, 0.2, 0.1],  # ▁dog → perro (0.6 over its two pieces beats ladra's 0.2)
            [0.0, 0.3, 0.0, 0.4, 0.3],  # ▁bar ┐ barks → ladra (0.4 + 0.5 against perro's 0.3 + 0.4)
            [0.0, 0.0, 0.4, 0.5, 0.1],  # ks   ┘
            [0.1, 0.1, 0.1, 0.1, 0.6],  # </s>: no word
        ]
    )
    source = piece_words(["▁El", "▁per", "ro", "▁ladra", None])
    target = piece_words(["▁The", "▁dog", "▁bar", "ks", None])
    pairs = word_alignment(matrix, source, target)
    assert pairs == [(0, 0), (1, 1), (2, 2)] and to_pharaoh(pairs) == "0-0 1-1 2-2"
    # Attention on the source EOS counts for no word; a tie goes to the first source word.
    assert word_alignment(np.array([[0.2, 0.2, 0.6]]), [0, 1, -1], [0]) == [(0, 0)]
    assert word_alignment(np.zeros([1, 1]), [-1], [0]) == [] and to_pharaoh([]) == ""


@pytest.mark.slow
def test_align_gives_row_stochastic_matrices_and_word_indices_in_range(run_translator):
    import translator
    from tests.conftest import read_corpus

    model = run_translator
    sources, references = read_corpus("test", 6)
    alignments = model.align(sources, references)
    assert len(alignments) == 6
    for source, target, alignment in zip(sources, references, alignments):
        assert alignment.matrix.shape == (len(alignment.target_pieces), len(alignment.source_pieces))
        np.testing.assert_allclose(alignment.matrix.sum(axis=1), 1.0, atol=1e-5)  # over source pieces (EOS too)
        assert alignment.source_pieces[-1] == "</s>" and alignment.target_pieces[-1] == "</s>"
        assert [t for _, t in alignment.pairs] == list(range(len(target.split())))  # each target word once
        assert all(0 <= s < len(source.split()) for s, _ in alignment.pairs)
        assert PHARAOH.match(alignment.pharaoh)

    aligned = model.translate_aligned(sources[:3])  # the search's own pieces, teacher-forced
    assert [translation.text for translation, _ in aligned] == model.translate(sources[:3])
    for (translation, alignment), source in zip(aligned, sources):
        assert [t for _, t in alignment.pairs] == list(range(len(translation.text.split())))
        assert all(0 <= s < len(source.split()) for s, _ in alignment.pairs)
    with pytest.raises(translator.TranslatorError, match="2 sources but 1 targets"):
        model.align(sources[:2], references[:1])


@pytest.mark.slow
def test_translate_alignments_prints_translation_tab_pharaoh(trained_run, run_translator, tmp_path, capsys):
    from translator.cli import main

    sentences = ["Y dijo Dios: Sea la luz: y fué la luz.", "En el principio crió Dios los cielos y la tierra."]
    (tmp_path / "in.es").write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    args = ["translate", "--run-dir", str(trained_run), "--input", str(tmp_path / "in.es")]
    assert main([*args, "--alignments"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = run_translator.translate_aligned(sentences)
    assert lines == [f"{translation.text}\t{alignment.pharaoh}" for translation, alignment in expected]
    blank, first = run_translator.translate_aligned(["", sentences[0]])
    assert blank[0].text == "" and blank[1].pairs == [] and blank[1].matrix.size == 0
    assert first[0] == expected[0][0] and first[1].pharaoh == expected[0][1].pharaoh
    assert all(PHARAOH.match(line.split("\t")[1]) for line in lines)
    picture = tmp_path / "alignment.png"
    assert (
        main(["plot-alignment", "--run-dir", str(trained_run), "--sentence", sentences[0], "--output", str(picture)])
        == 0
    )
    assert capsys.readouterr().out.splitlines()[0] == lines[0] and picture.read_bytes()[:4] == b"\x89PNG"
    assert main([*args, "--alignments", "--n-best", "2"]) == 2
    assert "--n-best: not with --split-sentences or --alignments" in capsys.readouterr().err
