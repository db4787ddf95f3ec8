"""The Python face: `load`, `train` and `evaluate`, the three calls a notebook needs.

    import translator
    result = translator.train("tiny", "runs/tiny", train_steps=200)
    model = translator.load("runs/tiny")
    model.translate("Y dijo Dios: Sea la luz.")
    translator.evaluate(model, split="test")["bleu"]["score"]

They are thin: each builds the config or picks the translator, then hands over to the module that
does the work (`translator.training`, `translator.inference`, `translator.evaluation`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from translator import storage
from translator.config import ExperimentConfig, load_config
from translator.constants import EXPORT_MARKERS
from translator.errors import TranslatorError
from translator.translation import BaseTranslator


def load(path: str | Path | Sequence[str | Path], checkpoint: str = "auto", **decode: Any) -> BaseTranslator:
    """A ready translator from a run directory (its averaged, best or latest checkpoint), an exported
    SavedModel, or a CTranslate2 export; from a list of run directories, their ensemble (one search
    over the mean of the models' log-probabilities). `decode` sets a run's beam_size, length_penalty,
    sampling_topk, ... (`translator.config.DecodeConfig`)."""
    if not isinstance(path, (str, os.PathLike)):
        paths = [os.fspath(one) for one in path]
        if len(paths) == 1:
            return load(paths[0], checkpoint, **decode)
        from translator.ensemble import EnsembleTranslator

        for one in paths:
            if not storage.exists(storage.join(one, "config.yaml")):
                raise TranslatorError(f"{one} is not a run directory (config.yaml): an ensemble is made of runs")
        return EnsembleTranslator.from_run_dirs(paths, checkpoint, **decode)
    path = os.fspath(path)
    if storage.exists(storage.join(path, "config.yaml")):
        from translator.inference import Translator

        return Translator.from_run_dir(path, checkpoint, **decode)
    if storage.exists(storage.join(path, EXPORT_MARKERS["savedmodel"])):
        from translator.export import SavedModelTranslator

        if decode:
            raise TranslatorError(f"{path}: decode settings are fixed in a SavedModel ({', '.join(decode)} given)")
        return SavedModelTranslator(path)
    from translator.ct2 import CTranslate2Translator, is_ctranslate2_export

    if is_ctranslate2_export(path):
        return CTranslate2Translator(path, **decode)
    raise TranslatorError(
        f"{path} is not a run directory (config.yaml), an exported SavedModel (saved_model.pb) "
        "or a CTranslate2 export (model.bin, export.json)"
    )


def config_with(
    config: str | Path | ExperimentConfig, overrides: Mapping[str, Any] | None = None, **keywords: Any
) -> ExperimentConfig:
    """A preset name, YAML file or config, with overrides as `{"train.steps": 200}` or as keywords
    `train_steps=200` (section, underscore, key)."""
    settings = dict(overrides or {})
    for keyword, value in keywords.items():
        section, _, key = keyword.partition("_")
        if not key:
            raise TranslatorError(f"{keyword}=: name a section and a key, e.g. train_steps=200")
        settings[f"{section}.{key}"] = value
    if isinstance(config, ExperimentConfig):
        from translator.config import config_from_dict

        values = config.to_dict()
        for key, value in settings.items():
            section, _, field = key.partition(".")
            values.setdefault(section, {})[field] = value
        return config_from_dict(values, origin="overrides")
    return load_config(config, [f"{key}={_yaml(value)}" for key, value in settings.items()])


def _yaml(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").removesuffix("...").strip()


def train(
    config: str | Path | ExperimentConfig,
    run_dir: str | Path,
    overrides: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
    init_from: str | Path | None = None,
    **keywords: Any,
):
    """Train (or resume) the run in `run_dir`; returns a `TrainResult` (final step, loss, dev BLEU
    by step, run directory). `init_from="PARENT_RUN[:checkpoint]"` fine-tunes: the new run starts from
    the parent's weights and tokenizer (`translator.finetune`)."""
    import dataclasses

    from translator.training import train as run_training

    experiment = config_with(config, overrides, **keywords)
    if init_from is not None:
        experiment = experiment.replace(train=dataclasses.replace(experiment.train, init_from=os.fspath(init_from)))
    return run_training(experiment, run_dir, log=log)


def evaluate(
    translator_or_run: BaseTranslator | str | Path,
    split: str = "test",
    sources: list[str] | None = None,
    references: list[list[str]] | list[str] | None = None,
    **decode: Any,
) -> dict:
    """BLEU, chrF and TER (sacrebleu, with signatures) on a split of the run's config, or on
    `sources` against one or more reference lists. Returns the scores and the hypotheses."""
    from translator.evaluation import evaluate_translator

    if isinstance(translator_or_run, BaseTranslator):
        translator = translator_or_run.configured(**decode) if decode else translator_or_run
    else:
        translator = load(translator_or_run, **decode)
    if references and isinstance(references[0], str):
        references = [references]
    return evaluate_translator(translator, split, sources, references)
