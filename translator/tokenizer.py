"""SentencePiece subword models: trained with `sentencepiece`, applied in the graph by tensorflow-text.

Training and serving use the very same serialized model through `tensorflow_text.SentencepieceTokenizer`,
so the ids seen in training are the ids the exported SavedModel produces. Models are trained with
identity normalization, no whitespace folding and byte fallback, so `detokenize(tokenize(text)) == text`
for any UTF-8 input.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable

import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text

from translator import storage
from translator.config import ExperimentConfig, TokenizerConfig
from translator.constants import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from translator.errors import TranslatorError
from translator.quiet import native_stderr_silenced

_FILES = {True: ("joint.model", "joint.model"), False: ("source.model", "target.model")}


def train_sentencepiece(sentences: Iterable[str], vocab_size: int, model_type: str = "unigram") -> bytes:
    """Train one SentencePiece model in memory and return its serialized proto."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        hard_vocab_limit=False,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        num_threads=2,
        minloglevel=2,
    )
    return model.getvalue()


class Tokenizer(tf.Module):
    """Source and target SentencePiece models (one shared model when `shared`), usable in tf.function."""

    def __init__(self, source_model: bytes, target_model: bytes):
        super().__init__(name="tokenizer")
        self.source_model_proto = source_model
        self.target_model_proto = target_model
        # Distinct names matter: the SentencePiece op's resource is named after its node, so two models
        # created under one name would be the same resource once a SavedModel is loaded.
        # The op's own SentencePiece library logs "precompiled_charsmap is empty. use identity normalization."
        # on the terminal when it first loads one of our models (identity normalization is our choice, above);
        # its logging is not TensorFlow's, so only silencing the native stderr keeps every command's stderr clean.
        with native_stderr_silenced():
            self.source = tf_text.SentencepieceTokenizer(
                model=source_model, out_type=tf.int32, name="source_sentencepiece"
            )
            self.target = (
                self.source
                if target_model == source_model
                else tf_text.SentencepieceTokenizer(model=target_model, out_type=tf.int32, name="target_sentencepiece")
            )
            self.source_vocab_size = int(self.source.vocab_size())
            self.target_vocab_size = int(self.target.vocab_size())

    @property
    def shared(self) -> bool:
        return self.source_model_proto == self.target_model_proto

    @classmethod
    def train(cls, config: TokenizerConfig, sources: list[str], targets: list[str]) -> Tokenizer:
        limit = config.max_training_sentences
        if config.shared:
            model = train_sentencepiece(
                sources[: limit // 2] + targets[: limit // 2], config.vocab_size, config.model_type
            )
            return cls(model, model)
        return cls(
            train_sentencepiece(sources[:limit], config.vocab_size, config.model_type),
            train_sentencepiece(targets[:limit], config.vocab_size, config.model_type),
        )

    def save(self, directory: str) -> None:
        """Write the model file(s) into `directory`, each atomically; a separate target model last, so
        that a reader seeing both files sees complete ones."""
        source_file, target_file = _FILES[self.shared]
        storage.write_bytes(storage.join(directory, source_file), self.source_model_proto)
        if target_file != source_file:
            storage.write_bytes(storage.join(directory, target_file), self.target_model_proto)

    @classmethod
    def saved_in(cls, directory: str) -> bool:
        return any(all(storage.exists(storage.join(directory, name)) for name in files) for files in _FILES.values())

    @classmethod
    def load(cls, directory: str) -> Tokenizer:
        for source_file, target_file in _FILES.values():
            source, target = storage.join(directory, source_file), storage.join(directory, target_file)
            if storage.exists(source) and storage.exists(target):
                return cls(storage.read_bytes(source), storage.read_bytes(target))
        raise TranslatorError(f"{directory}: no SentencePiece models (joint.model, or source.model and target.model)")

    def encode_source(self, text: tf.Tensor) -> tf.RaggedTensor:
        """[batch] strings → [batch, (tokens)] int32 ids, without BOS/EOS."""
        return self.source.tokenize(text)

    def encode_target(self, text: tf.Tensor) -> tf.RaggedTensor:
        return self.target.tokenize(text)

    def decode_target(self, ids: tf.Tensor | tf.RaggedTensor) -> tf.Tensor:
        """[batch, (tokens)] ids → [batch] strings; specials (pad, BOS, EOS) are dropped."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        keep = ids > EOS_ID
        return self.target.detokenize(tf.ragged.boolean_mask(ids, keep))


def load_or_train_tokenizer(
    directory: str,
    config: ExperimentConfig,
    read_train: Callable[[], tuple[list[str], list[str]]],
    write: bool = True,
    log: Callable[[str], None] = print,
) -> Tokenizer:
    """A run's tokenizer: loaded from `directory`, or trained on the pairs `read_train()` returns (the
    training split: `translator.data.load_training_data` shares one read with the corpus cache) and
    written there. Only the writer (the chief) trains; other workers wait for its files."""
    if Tokenizer.saved_in(directory):
        return Tokenizer.load(directory)
    if not write:
        for _ in range(600):
            if Tokenizer.saved_in(directory):
                return Tokenizer.load(directory)
            time.sleep(1)
        raise TranslatorError(f"{directory}: the chief did not write the tokenizer in 10 minutes")
    log(
        f"training SentencePiece ({config.tokenizer.model_type}, vocabulary {config.tokenizer.vocab_size}) "
        f"on {config.data.train}"
    )
    sources, targets = read_train()
    tokenizer = Tokenizer.train(config.tokenizer, sources, targets)
    tokenizer.save(directory)
    return tokenizer
