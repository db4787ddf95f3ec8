"""Export a run's model to CTranslate2: the fastest way to translate on a CPU.

The model is described with CTranslate2's own specification API (`ctranslate2.specs.TransformerSpec`)
and written by a `ctranslate2.converters.Converter` subclass, the documented way to add a model source.
Every weight maps one to one, so the export computes the same log-probabilities as our model:

- embeddings are scaled by √d (`scale_embeddings`) and get the sinusoidal table our layer computes
  (sin then cos, frequencies over `half - 1`), given explicitly rather than left to CTranslate2's default;
- the fused `query_key_value` kernel is CTranslate2's fused self-attention projection (transposed:
  Keras stores [in, out], CTranslate2 [out, in]); cross-attention keeps query and fused key/value apart;
- pre-norm models get a final layer norm on both sides, post-norm models none, as ours;
- the output projection is the transposed target embedding with a bias of -1e4 on PAD and BOS: our
  search and scorer never produce them (`never_generate`), and baked into the model the rule also holds
  for `score_batch` and for a user of the bare export.

Beside `model.bin` go the SentencePiece model(s) and `export.json` (what the export holds), so the
directory translates raw text in a process with only `ctranslate2` and `sentencepiece` installed.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from translator.constants import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from translator.ct2 import EXPORT_INFO
from translator.errors import TranslatorError
from translator.layers.embedding import sinusoidal_positions
from translator.model import Seq2SeqTransformer
from translator.shortlist import DEFAULT_FREQUENT, build_shortlist

QUANTIZATIONS = ("none", "int8", "int8_float32", "int16", "float16")
# float32 ("none") is the default: on our 2-core AMD EPYC, idle, it decodes the tutorial-size model 3.4x
# faster than int8 (int8 wins only when other jobs crowd the cores); docs/benchmarks.md has the figures.
DEFAULT_QUANTIZATION = "none"
BANNED_LOGIT_BIAS = -1.0e4  # far below any logit, and still finite in float16
SPECIAL_PIECES = {PAD_ID: "<pad>", UNK_ID: "<unk>", BOS_ID: "<s>", EOS_ID: "</s>"}
# Seq2SeqTransformer.get_config keys this converter maps; any other key is an architecture it does not know.
_MAPPED_KEYS = {
    "source_vocab_size",
    "target_vocab_size",
    "num_layers",
    "decoder_layers",
    "d_model",
    "num_heads",
    "ffn_dim",
    "dropout",
    "attention_dropout",
    "seed",  # initialisation and dropout only: no effect on a trained model's computation
    "pre_norm",
    "share_embeddings",
}
_KERAS_KEYS = {"name", "trainable", "dtype"}  # in every Keras model's config; not architecture


def _import_ctranslate2():
    try:
        import ctranslate2
    except ImportError:
        raise TranslatorError(
            "the ctranslate2 format needs the ctranslate2 package: pip install 'translator[ctranslate2]'"
        ) from None
    return ctranslate2


def check_mappable(model: Seq2SeqTransformer) -> None:
    """Refuse, in one line, a model this converter cannot map exactly."""
    unknown = sorted(set(model.get_config()) - _MAPPED_KEYS - _KERAS_KEYS)
    if unknown:
        raise TranslatorError(f"cannot export to CTranslate2: model setting(s) {', '.join(unknown)} have no mapping")
    if model.d_model % 2:
        raise TranslatorError(f"cannot export to CTranslate2: d_model={model.d_model} is odd (sinusoidal positions)")
    epsilons = {norm.epsilon for norm in _layer_norms(model)}
    if len(epsilons) != 1:
        raise TranslatorError(f"cannot export to CTranslate2: layer norms use several epsilons {sorted(epsilons)}")


def _layer_norms(model: Seq2SeqTransformer) -> list:
    norms = [norm for norm in (model.encoder_norm, model.decoder_norm) if norm is not None]
    for block in model.encoder_blocks:
        norms += [block.attention_norm, block.feed_forward_norm]
    for block in model.decoder_blocks:
        norms += [block.self_attention_norm, block.cross_attention_norm, block.feed_forward_norm]
    return norms


def _array(variable) -> np.ndarray:
    return np.asarray(variable.numpy(), dtype=np.float32)


def _set_linear(spec, dense, transpose: bool = True) -> None:
    """A Keras Dense ([in, out] kernel) → a CTranslate2 LinearSpec ([out, in] weight)."""
    kernel = _array(dense.kernel)
    spec.weight = np.ascontiguousarray(kernel.T if transpose else kernel)
    if dense.bias is not None:
        spec.bias = _array(dense.bias)


def _set_norm(spec, norm) -> None:
    spec.gamma = _array(norm.gamma)
    spec.beta = _array(norm.beta)


def build_spec(model: Seq2SeqTransformer, source_pieces: list[str], target_pieces: list[str], max_positions: int):
    """A fresh `TransformerSpec` holding `model`'s weights (conversion quantizes a spec in place)."""
    ctranslate2 = _import_ctranslate2()
    specs = ctranslate2.specs
    check_mappable(model)
    spec = specs.TransformerSpec.from_config(
        (model.num_layers, model.decoder_layers), model.num_heads, pre_norm=model.pre_norm
    )
    positions = sinusoidal_positions(tf.range(max_positions), model.d_model).numpy().astype(np.float32)

    encoder, decoder = spec.encoder, spec.decoder
    encoder.embeddings[0].weight = _array(model.source_embedding.embeddings)
    decoder.embeddings.weight = _array(model.target_embedding.embeddings)
    for side in (encoder, decoder):
        side.scale_embeddings = True
        side.position_encodings.encodings = positions
    if model.pre_norm:
        _set_norm(encoder.layer_norm, model.encoder_norm)
        _set_norm(decoder.layer_norm, model.decoder_norm)

    for layer, block in zip(encoder.layer, model.encoder_blocks):
        _set_linear(layer.self_attention.linear[0], block.self_attention.query_key_value)
        _set_linear(layer.self_attention.linear[1], block.self_attention.output_projection)
        _set_norm(layer.self_attention.layer_norm, block.attention_norm)
        _set_feed_forward(layer.ffn, block.feed_forward, block.feed_forward_norm)
    for layer, block in zip(decoder.layer, model.decoder_blocks):
        _set_linear(layer.self_attention.linear[0], block.self_attention.query_key_value)
        _set_linear(layer.self_attention.linear[1], block.self_attention.output_projection)
        _set_norm(layer.self_attention.layer_norm, block.self_attention_norm)
        _set_linear(layer.attention.linear[0], block.cross_attention.query_projection)
        _set_linear(layer.attention.linear[1], block.cross_attention.key_value)
        _set_linear(layer.attention.linear[2], block.cross_attention.output_projection)
        _set_norm(layer.attention.layer_norm, block.cross_attention_norm)
        _set_feed_forward(layer.ffn, block.feed_forward, block.feed_forward_norm)

    decoder.projection.weight = _array(model.target_embedding.embeddings)  # [vocab, d]: already [out, in]
    bias = np.zeros([model.target_vocab_size], np.float32)
    bias[[PAD_ID, BOS_ID]] = BANNED_LOGIT_BIAS
    decoder.projection.bias = bias

    spec.config.add_source_eos = True
    spec.config.unk_token, spec.config.bos_token, spec.config.eos_token = "<unk>", "<s>", "</s>"
    spec.config.decoder_start_token = "<s>"
    spec.config.layer_norm_epsilon = float(next(iter({norm.epsilon for norm in _layer_norms(model)})))
    spec.register_source_vocabulary(source_pieces)
    spec.register_target_vocabulary(target_pieces)
    return spec


def _set_feed_forward(spec, feed_forward, norm) -> None:
    _set_linear(spec.linear_0, feed_forward.inner)
    _set_linear(spec.linear_1, feed_forward.outer)
    _set_norm(spec.layer_norm, norm)


def pieces(model_proto: bytes) -> list[str]:
    """The vocabulary of a serialized SentencePiece model, in id order; specials must be ours."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_proto=model_proto)
    vocabulary = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    for index, piece in SPECIAL_PIECES.items():
        if vocabulary[index] != piece:
            raise TranslatorError(
                f"cannot export to CTranslate2: SentencePiece id {index} is {vocabulary[index]!r}, expected {piece!r}"
            )
    return vocabulary


def export_ctranslate2(
    translator, directory: str | Path, quantization: str = DEFAULT_QUANTIZATION, shortlist: int = 0
) -> Path:
    """Write `translator`'s model (a `translator.inference.Translator`) to `directory` (replaced if it
    exists) as a CTranslate2 model with its tokenizer and `export.json`; with `shortlist` > 0, also a
    lexical shortlist of that many target pieces per source piece (`vmap.txt`, `translator.shortlist`)
    from the run's training pairs, which CTranslate2 then decodes with."""
    if quantization not in QUANTIZATIONS:
        raise TranslatorError(f"unknown quantization {quantization!r}: choose {', '.join(QUANTIZATIONS)}")
    ctranslate2 = _import_ctranslate2()
    model, tokenizer, decode = translator.model, translator.tokenizer, translator.config
    source_pieces = pieces(tokenizer.source_model_proto)
    target_pieces = source_pieces if tokenizer.shared else pieces(tokenizer.target_model_proto)
    # Source positions stop at max_source_length, target ones at decode.max_length; room for users who raise them.
    max_positions = max(translator.max_source_length, decode.max_length, 1024)

    class RunConverter(ctranslate2.converters.Converter):
        def _load(self):
            return build_spec(model, source_pieces, target_pieces, max_positions)

    directory = Path(directory)
    with tempfile.TemporaryDirectory(prefix="shortlist-") as scratch:
        vmap = None
        if shortlist:
            vmap = Path(scratch) / "vmap.txt"
            lines = build_shortlist(_training_corpus(translator), source_pieces, target_pieces, shortlist)
            vmap.write_text("\n".join(lines) + "\n", encoding="utf-8")
        quantized = None if quantization == "none" else quantization
        RunConverter().convert(str(directory), vmap=vmap and str(vmap), quantization=quantized, force=True)
    if tokenizer.shared:
        (directory / "joint.model").write_bytes(tokenizer.source_model_proto)
        files = {"source": "joint.model", "target": "joint.model"}
    else:
        (directory / "source.model").write_bytes(tokenizer.source_model_proto)
        (directory / "target.model").write_bytes(tokenizer.target_model_proto)
        files = {"source": "source.model", "target": "target.model"}
    info = {
        "format": "ctranslate2",
        "ctranslate2_version": ctranslate2.__version__,
        "quantization": quantization,
        "tokenizer": files,
        # Candidates per source piece in vmap.txt (0: none, the whole vocabulary at every step).
        "shortlist": {"per_source": shortlist, "frequent": DEFAULT_FREQUENT if shortlist else 0},
        "max_source_length": translator.max_source_length,
        # CTranslate2 computes as its quantization says, never in our decode.precision (`ct2._searched`).
        "decode": {**dataclasses.asdict(decode), "precision": "float32"},
        **translator.provenance(),
    }
    (directory / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return directory


def _training_corpus(translator):
    """The run's tokenized training pairs (its cache, or read and tokenized as training does)."""
    if translator.run_dir is None:
        raise TranslatorError("--shortlist needs the run directory whose training pairs it counts")
    from translator.data import load_training_data
    from translator.rundir import RunDirectory

    run = RunDirectory(translator.run_dir)
    _, corpus = load_training_data(run.tokenizer_dir, run.cache_dir, run.load_config(), write=False, log=lambda _: None)
    return corpus
