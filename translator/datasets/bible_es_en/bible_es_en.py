"""TFDS builder for the verse-aligned Spanish–English Bible shipped with the package.

The files travel inside the installed package (`translator.corpora`, mapped from the repository's
`data/` folder), so a pip-installed toolkit on Colab has the same default corpus as a clone. The
builder reads them locally: preparing the dataset never touches the network.
"""

from __future__ import annotations

import csv
import gzip
import importlib.resources
from pathlib import Path

import tensorflow_datasets as tfds

_DESCRIPTION = """Public-domain Bible translations aligned verse by verse: Spanish (Reina-Valera 1909)
with English (King James Version, config `kjv`, or World English Bible, config `web`). Splits are by
whole books."""

_COLUMNS = {"kjv": "en_kjv", "web": "en_web"}


def corpus_dir() -> Path:
    """The folder holding `train.tsv.gz`, `dev.tsv.gz` and `test.tsv.gz`."""
    packaged = importlib.resources.files("translator.corpora") / "bible-es-en"
    return Path(str(packaged))


class BibleEsEn(tfds.core.GeneratorBasedBuilder):
    """Spanish → English Bible verses; `kjv` and `web` configs choose the English text."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: train/dev/test split by books."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="kjv", description="English target: King James Version (1769)."),
        tfds.core.BuilderConfig(name="web", description="English target: World English Bible."),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=_DESCRIPTION,
            features=tfds.features.Translation(languages=("es", "en")),
            supervised_keys=("es", "en"),
            disable_shuffling=True,  # keep the files' verse order: hypotheses line up with the references
            homepage="https://crosswire.org/sword/",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # the corpus ships with the package
        return {split: self._generate_examples(corpus_dir() / f"{split}.tsv.gz") for split in ("train", "dev", "test")}

    def _generate_examples(self, path: Path):
        english = _COLUMNS[self.builder_config.name]
        with gzip.open(path, "rt", encoding="utf-8", newline="") as lines:
            for index, row in enumerate(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)):
                yield index, {"es": row["es"], "en": row[english]}
