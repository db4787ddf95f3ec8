"""Lexical shortlists: candidates counted and ranked as the module says, in CTranslate2's vmap format."""

import numpy as np
import pytest

from translator.data import TokenizedCorpus
from translator.errors import TranslatorError
from translator.shortlist import build_shortlist, cooccurrence

PIECES = ["<pad>", "<unk>", "<s>", "</s>", "a", "b", "c", "x", "y", "z"]


def _corpus(pairs: list[tuple[list[int], list[int]]]) -> TokenizedCorpus:
    """Pairs of id lists (without EOS) as the training cache holds them."""
    return TokenizedCorpus(
        source_values=np.array([i for source, _ in pairs for i in source], np.int32),
        source_lengths=np.array([len(source) + 1 for source, _ in pairs], np.int32),
        target_values=np.array([i for _, target in pairs for i in target], np.int32),
        target_lengths=np.array([len(target) + 1 for _, target in pairs], np.int32),
    )


# a(4) is translated by x(7), b(5) by y(8), c(6) by z(9); x appears twice in one target.
CORPUS = _corpus([([4, 5], [7, 8, 7]), ([4], [7]), ([5, 6], [8, 9]), ([4, 6], [7, 9])])


def test_counts_are_sentence_level_and_leave_out_specials():
    stats = cooccurrence(_corpus([([4, 4, 3], [7, 7, 1]), ([4], [8])]), 10, 10)
    # (a, x) in one pair however often each occurs there; UNK (1) and EOS (3) are never counted.
    assert dict(zip(stats["keys"].tolist(), stats["counts"].tolist())) == {4 * 10 + 7: 1, 4 * 10 + 8: 1}
    assert stats["source_pairs"][4] == 2 and stats["target_pairs"].tolist() == [0] * 7 + [1, 1, 0]
    assert stats["target_tokens"][7] == 2  # occurrences, for the frequent pieces


def test_candidates_are_ranked_by_dice_and_frequent_pieces_come_first():
    lines = build_shortlist(CORPUS, PIECES, PIECES, per_source=2, frequent=1)
    # x occurs 4 times in targets, more than any other piece: the one always-on candidate.
    assert lines[0] == "\tx"
    # Dice for a: x 2·3/(3+3) = 1, y 2·1/(3+2) = 0.4, z 2·1/(3+2) = 0.4 (a tie, kept in id order).
    # For b: y 2·2/(2+2) = 1, z 2·1/(2+2) = 0.5, x 2·1/(2+3) = 0.4. For c: z 1, y 0.5, x 0.4.
    assert lines[1:] == ["a\tx y", "b\ty z", "c\tz y"]


def test_refuses_an_empty_list():
    with pytest.raises(TranslatorError, match="per_source must be ≥ 1"):
        build_shortlist(CORPUS, PIECES, PIECES, per_source=0)
