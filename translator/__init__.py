"""translator: neural machine translation with Transformers on TensorFlow 2 and Keras 3.

    import translator
    translator.train("tiny", "runs/tiny", train_steps=200)      # or a config, with keyword overrides
    model = translator.load("runs/tiny")                          # a run, a SavedModel or a CTranslate2 export
    model.translate(["Y dijo Dios: Sea la luz."], beam_size=4)
    translator.evaluate(model, split="test")["bleu"]["score"]

The public API, re-exported lazily from the modules that define it, so that `translator --help`
answers without importing TensorFlow. No submodule shares a name with a function here: `translator.train`
is the function, whatever has been imported.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load": "translator.api",
    "train": "translator.api",
    "evaluate": "translator.api",
    "ExperimentConfig": "translator.config",
    "load_config": "translator.config",
    "TranslatorError": "translator.errors",
    "Translation": "translator.translation",
    "Score": "translator.translation",
    "Translator": "translator.inference",
    "EnsembleTranslator": "translator.ensemble",
    "TransformerDecoder": "translator.layers",
    "TransformerEncoder": "translator.layers",
    "Seq2SeqTransformer": "translator.model",
    "RunDirectory": "translator.rundir",
    "Tokenizer": "translator.tokenizer",
    "TrainResult": "translator.training",
    "read_pairs": "translator.corpus",
    "build_strategy": "translator.strategy",
    "describe_strategy": "translator.strategy",
}
_SUBMODULES = ("data", "layers", "losses", "optimizers")

__all__ = sorted(_EXPORTS) + list(_SUBMODULES)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"translator.{name}")
    raise AttributeError(f"module 'translator' has no attribute {name!r}")
