"""translator: neural machine translation with Transformers on TensorFlow 2 and Keras 3.

The public API, re-exported lazily from the modules that define it, so that `translator --help`
answers without importing TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ExperimentConfig": "translator.config",
    "load_config": "translator.config",
    "TranslatorError": "translator.errors",
    "Translation": "translator.inference",
    "Translator": "translator.inference",
    "TransformerDecoder": "translator.layers",
    "TransformerEncoder": "translator.layers",
    "Seq2SeqTransformer": "translator.model",
    "RunDirectory": "translator.rundir",
    "Tokenizer": "translator.tokenizer",
    "train": "translator.train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'translator' has no attribute {name!r}")
