"""Config loading: presets, overrides, type checks and helpful errors."""

import pytest

from translator.config import (
    ExperimentConfig,
    available_presets,
    config_from_dict,
    config_to_yaml,
    load_config,
    read_yaml,
)
from translator.errors import TranslatorError


def test_presets_load_and_differ():
    assert {"tiny", "small", "base"} <= set(available_presets())
    tiny, small, base = (load_config(name) for name in ("tiny", "small", "base"))
    assert tiny.model.d_model < small.model.d_model < base.model.d_model
    assert small.train.max_minutes == 60
    assert (base.model.num_layers, base.model.d_model, base.model.ffn_dim, base.model.num_heads) == (6, 512, 2048, 8)


def test_overrides_are_typed():
    config = load_config("tiny", ["train.steps=7", "model.dropout=0", "data.train=tsv:x.tsv", "train.jit_compile=true"])
    assert config.train.steps == 7 and config.model.dropout == 0.0 and isinstance(config.model.dropout, float)
    assert config.data.train == "tsv:x.tsv" and config.train.jit_compile is True


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.step=5", "did you mean 'train.steps'"),
        ("trian.steps=5", "did you mean 'train'"),
        ("train.steps=many", "train.steps must be int, got 'many'"),
        ("model.pre_norm=3", "model.pre_norm must be bool"),
        ("steps=3", "the key needs a section"),
        ("train.steps", "expected key=value"),
        ("train.batching=sorted", "train.batching must be bucketed, fixed, packed or auto, got 'sorted'"),
        ("train.pack_width=0", "train.pack_width must be at least 1"),
        ("train.cooldown_shape=cosine", "train.cooldown_shape must be linear or 1-sqrt, got 'cosine'"),
        ("train.batch_shapes=0", "train.batch_shapes must be at least 1"),
        ("decode.workers=0", "decode.workers must be at least 1"),
        ("model.decoder_layers=-1", "model.decoder_layers must be at least 0"),
        ("train.average_last=6", r"train.average_last \(6\) cannot exceed train.keep_checkpoints \(5\)"),
    ],
)
def test_bad_overrides_fail_with_a_clear_message(override, message):
    with pytest.raises(TranslatorError, match=message):
        load_config("tiny", [override])


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(TranslatorError, match="unknown preset 'smal'.*small"):
        load_config("smal")


def test_saved_config_round_trips(tmp_path):
    config = load_config("small", ["decode.beam_size=6"])
    (tmp_path / "config.yaml").write_text(config_to_yaml(config), encoding="utf-8")
    assert config_from_dict(read_yaml(tmp_path / "config.yaml")) == config
    assert ExperimentConfig() == config_from_dict({})


def test_yaml_is_read_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("train: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(TranslatorError, match="not a valid YAML file"):
        load_config(path)
