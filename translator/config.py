"""Experiment configuration: frozen dataclasses, loaded from YAML presets and `--set` overrides.

One `ExperimentConfig` is built by the CLI (or a notebook) and handed down to every module; nothing
reads settings from anywhere else. Presets live in `translator/configs/*.yaml` and list only what
differs from the defaults below. Overrides are type-checked against the dataclass fields, and an
unknown key fails with the closest valid key as a suggestion.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from translator.errors import TranslatorError

PRESET_DIR = Path(__file__).parent / "configs"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which corpus, which languages. Specs are described in `translator.corpus`."""

    train: str = "bible_es_en/kjv:train"
    dev: str = "bible_es_en/kjv:dev"
    test: str = "bible_es_en/kjv:test"
    source_lang: str = "es"
    target_lang: str = "en"
    max_source_length: int = 128  # tokens; longer training pairs are dropped (and counted)
    max_target_length: int = 128
    tfds_data_dir: str = ""  # empty: TFDS's default (~/tensorflow_datasets)

    def __post_init__(self):
        _at_least(self, "data", 2, "max_source_length", "max_target_length")  # a token and EOS


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    vocab_size: int = 8000
    shared: bool = True  # one joint SentencePiece model for both languages
    model_type: str = "unigram"  # or "bpe"
    max_training_sentences: int = 2_000_000

    def __post_init__(self):
        _at_least(self, "tokenizer", 8, "vocab_size")  # the 4 specials and a few pieces
        _at_least(self, "tokenizer", 1, "max_training_sentences")
        if self.model_type not in ("unigram", "bpe"):
            raise TranslatorError(f"tokenizer.model_type must be unigram or bpe, got {self.model_type!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    num_layers: int = 6  # encoder layers, and decoder layers unless decoder_layers says otherwise
    # 0: num_layers. Fewer decoder than encoder layers ("deep encoder, shallow decoder", Kasai et al. 2021)
    # makes beam search faster, as the decoder runs once per target position and beam
    decoder_layers: int = 0
    d_model: int = 512
    num_heads: int = 8
    ffn_dim: int = 2048
    dropout: float = 0.1
    attention_dropout: float = 0.0
    pre_norm: bool = True
    share_embeddings: bool = True  # source, target and output projection share one matrix

    def __post_init__(self):
        _at_least(self, "model", 1, "num_layers", "d_model", "num_heads", "ffn_dim")
        _at_least(self, "model", 0, "decoder_layers")
        _fraction(self, "model", "dropout", "attention_dropout")
        if self.d_model % (2 * self.num_heads):
            raise TranslatorError(
                f"model.d_model={self.d_model} must be a multiple of 2 × model.num_heads={self.num_heads} "
                "(equal heads, and sine/cosine position pairs)"
            )

    @property
    def depths(self) -> tuple[int, int]:
        """(encoder layers, decoder layers), with decoder_layers' 0 resolved: what every consumer needs."""
        return self.num_layers, self.decoder_layers or self.num_layers


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int = 100_000
    max_minutes: float = 0.0  # wall-clock budget over the whole run (resumes included); 0: none
    batch_tokens: int = 4096  # target tokens per step, padding included, over all replicas
    accumulate_steps: int = 1  # batches per update: an effective batch of accumulate_steps × batch_tokens
    learning_rate: float = 2.0  # scale of the inverse-square-root schedule
    warmup_steps: int = 4000
    # The last fraction of the run over which the learning rate falls linearly to zero (0: never). It
    # begins at (1 - cooldown) × train.steps, or at (1 - cooldown) × train.max_minutes, whichever comes
    # first; then it spans the steps left (by the time budget: at the speed measured so far)
    cooldown: float = 0.0
    cooldown_shape: str = "linear"  # linear: the factor 1 − p over the cooldown's share p; 1-sqrt: 1 − √p
    adam_beta_2: float = 0.98
    label_smoothing: float = 0.1
    clip_norm: float = 0.0  # 0: no clipping
    checkpoint_every: int = 1000
    checkpoint_minutes: float = 10.0  # also checkpoint at least this often
    keep_checkpoints: int = 5
    average_last: int = 0  # average the last K checkpoints at the end (0: no)
    eval_every: int = 0  # dev BLEU (greedy) every N steps; 0: only at the end (data.dev="" : never)
    early_stopping: int = 0  # stop after N dev evaluations without improvement; 0: never
    log_every: int = 100
    seed: int = 1234
    strategy: str = "auto"  # auto | default | mirrored | multiworker | tpu
    cpu_devices: int = 0  # split the host CPU into N logical devices (tests, debugging)
    # multiworker: how long a worker waits for every worker of TF_CONFIG's cluster to start before it exits
    # (status 1); 0: for as long as it takes. TensorFlow's wait does not end on Ctrl-C or SIGTERM.
    cluster_wait_minutes: float = 30.0
    # XLA-compiled steps: true, false or auto (true when the run trains in float32: XLA's CPU code does
    # not use the bfloat16 units); a run records what auto resolved to in its config.yaml
    jit_compile: bool | str = True
    # bucketed: one shape per (source, target) length bucket met, hundreds over a run; fixed: at most
    # `batch_shapes` shapes chosen from the corpus before training (few XLA compilations; translator.data);
    # packed: several pairs per row of `pack_width` tokens, one or two shapes (translator.packing);
    # auto: fixed, except on several CPU replicas (no XLA there), where it is bucketed
    batching: str = "bucketed"
    batch_shapes: int = 16
    pack_width: int = 128
    # auto: mixed_bfloat16 where bfloat16 training pays (AMX or AVX512_BF16 CPUs, Ampere+ GPUs, TPUs), else
    # float32 (translator.precision); a run records the policy it resolved to in its config.yaml
    mixed_precision: str = "float32"  # auto | float32 | mixed_bfloat16 | mixed_float16
    # Fine-tuning (translator.finetune): the parent run, PARENT_RUN[:auto|averaged|best|latest], whose
    # weights and tokenizer a new run starts from; `train` records the parent's path and the checkpoint
    # it actually used in `init_checkpoint`. Ignored once the run has checkpoints of its own.
    init_from: str = ""
    init_checkpoint: str = ""

    def __post_init__(self):
        _at_least(self, "train", 1, "steps", "batch_tokens", "accumulate_steps", "checkpoint_every", "log_every")
        _at_least(self, "train", 1, "keep_checkpoints", "batch_shapes", "pack_width")
        if self.cooldown_shape not in COOLDOWN_SHAPES:
            raise TranslatorError(
                f"train.cooldown_shape must be {' or '.join(COOLDOWN_SHAPES)}, got {self.cooldown_shape!r}"
            )
        if self.batching not in ("bucketed", "fixed", "packed", "auto"):
            raise TranslatorError(f"train.batching must be bucketed, fixed, packed or auto, got {self.batching!r}")
        if not isinstance(self.jit_compile, bool) and self.jit_compile != "auto":
            raise TranslatorError(f"train.jit_compile must be true, false or auto, got {self.jit_compile!r}")
        _at_least(self, "train", 0, "average_last", "eval_every", "early_stopping", "cpu_devices", "warmup_steps")
        if self.average_last > self.keep_checkpoints:  # said now, not after the hour of training
            raise TranslatorError(
                f"train.average_last ({self.average_last}) cannot exceed train.keep_checkpoints "
                f"({self.keep_checkpoints}): only that many checkpoints are kept to average"
            )
        minutes = ("max_minutes", "checkpoint_minutes", "cluster_wait_minutes")
        _at_least(self, "train", 0.0, *minutes, "clip_norm", "learning_rate")
        _fraction(self, "train", "label_smoothing", "cooldown")
        if self.mixed_precision not in ("auto", "float32", "mixed_bfloat16", "mixed_float16"):
            raise TranslatorError(
                "train.mixed_precision must be auto, float32, mixed_bfloat16 or mixed_float16, "
                f"got {self.mixed_precision!r}"
            )


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    beam_size: int = 4
    length_penalty: float = 0.6  # GNMT alpha; 0 disables the penalty
    max_length: int = 256  # hard cap on generated tokens
    max_length_ratio: float = 1.5  # per sentence: at most ratio * source length + 10 tokens (EOS included)
    # source tokens per decoding batch (padding included; with beams, divided by the beam size): 8192
    # decoded 1.14× (small) and 1.16× (tutorial size) faster than 4096 (docs/benchmarks.md, 2026-12-04)
    batch_tokens: int = 8192
    # Batches decoded at once, each on its own thread: a decoding step is many small operations, so two
    # batches side by side keep two cores busier than one batch on both (docs/benchmarks.md). The
    # translations do not depend on it; with a CTranslate2 export it is CTranslate2's inter_threads.
    workers: int = 2
    # Compile the searches with XLA. Off by default: since the cache grows step by step and the beams
    # share their memory, beam search without XLA is as fast at the tutorial size and 1.2× faster at the
    # `small` size (docs/benchmarks.md, 2026-12-04), with no compilation for each batch shape and with
    # finished sentences leaving the batch. The default of translators loaded from a run (translate,
    # evaluate, load, the dev BLEU while training); `bench decode --xla` and `Translator(jit_compile=...)`
    # override it.
    xla: bool = False
    # Sampling (back-translation) replaces greedy and beam search unless sampling_topk is 1. The
    # convention is CTranslate2's and OpenNMT's: 1 takes the most likely token (no sampling), 0 samples
    # from the whole vocabulary, K from the K most likely.
    sampling_topk: int = 1
    sampling_topp: float = 1.0  # then keep the smallest set of most likely tokens reaching this probability
    sampling_temperature: float = 1.0  # logits divided by this before sampling (< 1: sharper, > 1: flatter)
    seed: int = 0  # the sampling stream: the same seed and input give the same translations
    # bfloat16: the model's matrix products in bfloat16 (its weights stay float32; attention softmax and
    # the output logits in float32), for CPUs with AMX units, GPUs and TPUs. auto: bfloat16 for a model
    # that trained under mixed_bfloat16, on hardware that has it natively, else float32
    # (translator.precision). On an AMX CPU the `small` model decoded 1.28-1.38× faster at the same BLEU;
    # the float32-trained tutorial size no faster and 0.28 BLEU lower (docs/benchmarks.md, 2026-12-05).
    # A loaded translator holds the resolved value, which reports record.
    precision: str = "auto"

    def __post_init__(self):
        _at_least(self, "decode", 1, "beam_size", "max_length", "batch_tokens", "workers")
        if self.precision not in DECODE_PRECISIONS:
            raise TranslatorError(f"decode.precision must be {', '.join(DECODE_PRECISIONS)}, got {self.precision!r}")
        _at_least(self, "decode", 0.0, "length_penalty")  # beam search's early stop relies on it
        _at_least(self, "decode", 0, "sampling_topk", "seed")
        if self.max_length_ratio <= 0:
            raise TranslatorError(f"decode.max_length_ratio must be positive, got {self.max_length_ratio}")
        if not 0 < self.sampling_topp <= 1:
            raise TranslatorError(f"decode.sampling_topp must be in (0, 1], got {self.sampling_topp}")
        if self.sampling_temperature <= 0:
            raise TranslatorError(f"decode.sampling_temperature must be positive, got {self.sampling_temperature}")
        if self.seed >= 2**31:
            raise TranslatorError(f"decode.seed must be below 2**31, got {self.seed}")
        for key, neutral in (("sampling_topp", 1.0), ("sampling_temperature", 1.0)):
            if not self.sampling and getattr(self, key) != neutral:
                raise TranslatorError(
                    f"decode.{key}={getattr(self, key)} needs sampling: set decode.sampling_topk "
                    "(--sampling-topk) to 0 for the whole vocabulary, or to K > 1"
                )

    @property
    def sampling(self) -> bool:
        """Whether translations are sampled (one per sentence) rather than searched."""
        return self.sampling_topk != 1


# decode.precision → the Keras dtype policy the decoding model is built with.
DECODE_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
DECODE_PRECISIONS = ("auto", *DECODE_POLICIES)  # what decode.precision and --precision accept
# How a run's learning-rate cooldown can fall (translator.schedules.Cooldown), and how its log says so
COOLDOWN_SHAPES = {"linear": "linearly", "1-sqrt": "as 1 − √(share of the cooldown done)"}


def _at_least(section, name: str, minimum, *keys: str) -> None:
    for key in keys:
        if getattr(section, key) < minimum:
            raise TranslatorError(f"{name}.{key} must be at least {minimum}, got {getattr(section, key)}")


def _fraction(section, name: str, *keys: str) -> None:
    for key in keys:
        if not 0 <= getattr(section, key) < 1:
            raise TranslatorError(f"{name}.{key} must be in [0, 1), got {getattr(section, key)}")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = dataclasses.field(default_factory=TokenizerConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    decode: DecodeConfig = dataclasses.field(default_factory=DecodeConfig)

    def __post_init__(self):
        if self.model.share_embeddings and not self.tokenizer.shared:
            raise TranslatorError(
                "model.share_embeddings=true ties the source and target embeddings, which needs one vocabulary "
                "(tokenizer.shared=true): set one of the two"
            )

    def replace(self, **sections: Any) -> ExperimentConfig:
        return dataclasses.replace(self, **sections)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def available_presets() -> list[str]:
    return sorted(path.stem for path in PRESET_DIR.glob("*.yaml"))


def load_config(name_or_path: str | Path = "small", overrides: typing.Sequence[str] = ()) -> ExperimentConfig:
    """Load a preset name or a YAML file, then apply `key=value` overrides (YAML-typed values)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise TranslatorError(
                f"unknown preset {str(name_or_path)!r}: choose one of {', '.join(available_presets())} "
                "or give a path to a YAML file"
            )
    if not path.exists():
        raise TranslatorError(f"config file {path} does not exist")
    values = read_yaml(path)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep:
            raise TranslatorError(f"--set {override!r}: expected key=value, e.g. train.steps=2000")
        section, dot, field = key.strip().partition(".")
        if not dot:
            raise TranslatorError(f"--set {override!r}: the key needs a section, e.g. model.{key.strip()}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as error:
            raise TranslatorError(f"--set {override!r}: the value is not valid YAML ({error})") from error
        values.setdefault(section, {})
        if not isinstance(values[section], dict):
            raise TranslatorError(f"--set {override!r}: {section!r} is a section, not a value")
        values[section][field] = value
    return config_from_dict(values, origin=str(path))


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise TranslatorError(f"{path}: not a valid YAML file ({error})") from error
    return parse_yaml(text, str(path))


def parse_yaml(text: str, origin: str) -> dict[str, Any]:
    """The sections of a YAML config text; `origin` names it in errors."""
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise TranslatorError(f"{origin}: not a valid YAML file ({error})".replace("\n", " ")) from error
    if not isinstance(values, dict):
        raise TranslatorError(f"{origin}: expected a mapping of sections (data, model, train, ...)")
    return values


def config_from_dict(values: dict[str, Any], origin: str = "config") -> ExperimentConfig:
    """Build a config from nested dicts, rejecting unknown keys and values of the wrong type."""
    sections = {field.name: field for field in dataclasses.fields(ExperimentConfig)}
    built = {}
    for section_name, section_values in values.items():
        if section_name not in sections:
            raise TranslatorError(_unknown(f"{origin}: unknown section {section_name!r}", section_name, sections))
        section_type = typing.get_type_hints(ExperimentConfig)[section_name]
        if not isinstance(section_values, dict):
            raise TranslatorError(f"{origin}: section {section_name!r} must be a mapping")
        built[section_name] = _build_section(section_type, section_values, f"{origin}: {section_name}")
    return ExperimentConfig(**built)


def _build_section(section_type: type, values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(section_type)
    checked = {}
    for key, value in values.items():
        if key not in hints:
            raise TranslatorError(_unknown(f"{where}.{key} is not a known key", key, hints, where.split(": ")[-1]))
        checked[key] = _check_type(value, hints[key], f"{where}.{key}")
    return section_type(**checked)


def _check_type(value: Any, expected: Any, where: str) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected in (int, float, str, bool):
        if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
            return value
        raise TranslatorError(f"{where} must be {expected.__name__}, got {value!r} ({type(value).__name__})")
    if isinstance(expected, types.UnionType):  # checked by the section's __post_init__
        return value
    return value


def _unknown(message: str, key: str, known: typing.Iterable[str], prefix: str = "") -> str:
    match = difflib.get_close_matches(key, list(known), n=1)
    if match:
        suggestion = f"{prefix}.{match[0]}" if prefix else match[0]
        return f"{message}; did you mean {suggestion!r}?"
    return f"{message}; known: {', '.join(sorted(known))}"


def config_to_yaml(config: ExperimentConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
