"""A picture of one sentence's alignment (`translator plot-alignment`, and the attention notebook).

Two panels side by side: the last decoder layer's cross-attention over pieces (mean of heads, the
matrix the alignment is read from), and the word alignment it gives (one dot per Pharaoh link), with
the Pharaoh string in the title. Drawing takes matplotlib axes; `plot_alignment` writes a PNG.
"""

from __future__ import annotations

from translator import storage
from translator.alignment import Alignment
from translator.errors import TranslatorError


def draw_alignment(heat_ax, words_ax, alignment: Alignment) -> None:
    """Draw the piece-level attention on `heat_ax` and the word links on `words_ax`."""
    image = heat_ax.imshow(alignment.matrix, cmap="viridis", aspect="auto", vmin=0.0)
    heat_ax.figure.colorbar(image, ax=heat_ax, fraction=0.04, pad=0.02)
    heat_ax.set_xticks(range(len(alignment.source_pieces)), alignment.source_pieces, rotation=90, fontsize=7)
    heat_ax.set_yticks(range(len(alignment.target_pieces)), alignment.target_pieces, fontsize=7)
    heat_ax.set(xlabel="source pieces", ylabel="target pieces", title="cross-attention, last layer, mean of heads")
    sources, targets = alignment.source_words, alignment.target_words
    if alignment.pairs:
        columns, rows = zip(*alignment.pairs)
        words_ax.scatter(columns, rows, s=60, color="black")
    words_ax.set_xlim(-0.5, len(sources) - 0.5)
    words_ax.set_ylim(len(targets) - 0.5, -0.5)
    words_ax.set_xticks(range(len(sources)), sources, rotation=90, fontsize=8)
    words_ax.set_yticks(range(len(targets)), targets, fontsize=8)
    words_ax.grid(alpha=0.3)
    words_ax.set(xlabel="source words", ylabel="target words", title=_wrap(f"Pharaoh: {alignment.pharaoh}", 44))


def plot_alignment(alignment: Alignment, output: str, title: str = "") -> str:
    """Write a PNG of `alignment` (both panels) to `output`, any file system; returns its path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise TranslatorError("plotting needs matplotlib: pip install matplotlib (or translator[dev])") from error
    width = 4 + 0.3 * (len(alignment.source_pieces) + len(alignment.source_words))
    height = 3 + 0.25 * len(alignment.target_pieces)
    figure, (heat_ax, words_ax) = plt.subplots(1, 2, figsize=(max(width, 10), height))
    draw_alignment(heat_ax, words_ax, alignment)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    storage.write_png(output, figure)
    return output


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
