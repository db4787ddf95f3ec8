"""Training end to end on the tiny preset: learning, checkpoints, resuming, config guards."""

import numpy as np
import pytest
import tensorflow as tf

from translator.config import load_config
from translator.errors import TranslatorError
from translator.rundir import RunDirectory
from translator.train import train

pytestmark = pytest.mark.slow


def test_tiny_run_learns_and_writes_its_run_directory(trained_run):
    run = RunDirectory(trained_run)
    assert run.config_path.exists() and (run.tokenizer_dir / "joint.model").exists()
    assert tf.train.latest_checkpoint(str(run.checkpoint_dir)).endswith("ckpt-40")
    assert any(run.log_dir.glob("events.out.tfevents.*"))
    assert list(run.cache_dir.glob("*.npz"))
    model, tokenizer, config, _ = run.load_model("latest")
    assert config.train.steps == 40 and model.count_params() > 0


def test_resume_continues_from_the_last_checkpoint(tmp_path):
    lines = []
    config = load_config("tiny", ["train.steps=20", "train.checkpoint_every=10", "train.log_every=5"])
    first = train(config, tmp_path, log=lines.append)
    assert first.step == 20 and "finished at step 20 (step limit)" in lines[-1]
    weights_after_20 = [w.copy() for w in RunDirectory(tmp_path).load_model("latest")[0].get_weights()]

    lines.clear()
    longer = load_config("tiny", ["train.steps=30", "train.checkpoint_every=10", "train.log_every=5"])
    second = train(longer, tmp_path, log=lines.append)
    assert any(line.startswith("resumed from step 20") for line in lines)
    assert second.step == 30 and "finished at step 30" in lines[-1]
    assert first.loss > 0 and np.isfinite(second.loss)
    weights_after_30 = RunDirectory(tmp_path).load_model("latest")[0].get_weights()
    assert any(np.abs(a - b).max() > 0 for a, b in zip(weights_after_20, weights_after_30))


def test_loss_goes_down(tmp_path):
    lines = []
    config = load_config("tiny", ["train.steps=60", "train.log_every=10", "train.learning_rate=2.0"])
    train(config, tmp_path, log=lines.append)
    losses = [float(line.split("| loss ")[1].split()[0]) for line in lines if "| loss " in line]
    assert losses[-1] < losses[0] - 1.0


def test_a_run_directory_refuses_another_model(trained_run):
    other = load_config("tiny", ["model.d_model=64"])
    with pytest.raises(TranslatorError, match="has model.d_model=32 but this command asks for 64"):
        train(other, trained_run)


def test_time_budget_stops_training(tmp_path):
    lines = []
    config = load_config("tiny", ["train.steps=100000", "train.max_minutes=0.05"])
    result = train(config, tmp_path, log=lines.append)
    assert result.step < 100000 and "time budget" in lines[-1]
