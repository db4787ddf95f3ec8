"""`bible_es_en`: the shipped Spanish–English Bible corpus as a TFDS dataset."""

from translator.datasets.bible_es_en.bible_es_en import BibleEsEn, corpus_dir

__all__ = ["BibleEsEn", "corpus_dir"]
