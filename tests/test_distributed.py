"""tf.distribute on CPU: Mirrored over logical devices, multi-worker on localhost, bfloat16, kill/resume."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO
from translator.checkpoints import average_checkpoints
from translator.config import load_config
from translator.inference import Translator
from translator.model import build_model
from translator.rundir import RunDirectory
from translator.tokenizer import Tokenizer
from translator.training import train

pytestmark = pytest.mark.slow
HELPERS = REPO / "tests" / "helpers"


def python(*args, env=None, timeout=900):
    return subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


def test_mirrored_step_equals_single_device_step(tmp_path):
    result = python(HELPERS / "mirrored_first_step.py", tmp_path / "run")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report["replica_batches"]) == 2
    assert abs(report["mirrored_loss"] - report["single_loss"]) <= 1e-4
    assert report["weights_moved"] > 1e-4  # the step did something …
    assert report["weight_difference"] <= 1e-5  # … and the same thing on one device and on two


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def test_multiworker_on_localhost_trains_with_identical_weights(tmp_path):
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    run_dir = tmp_path / "run"
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(HELPERS / "multiworker_train.py"),
                    str(run_dir),
                    str(tmp_path / f"w{index}.npz"),
                    "12",
                ],
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [worker.communicate(timeout=900)[0] for worker in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
    assert "MultiWorkerMirroredStrategy with 2 replica(s)" in outputs[0]
    assert "finished at step 12" in outputs[0]
    first, second = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key])
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("ckpt-12")  # the chief's
    assert not list(run_dir.glob("worker-tmp-*"))  # other workers' scratch checkpoints are removed


def test_mixed_bfloat16_trains_on_cpu(tmp_path):
    lines = []
    config = load_config(
        "tiny",
        ["train.mixed_precision=mixed_bfloat16", "train.steps=40", "train.log_every=10", "train.learning_rate=2.0"],
    )
    result = train(config, tmp_path, log=lines.append)
    losses = [float(line.split("| loss ")[1].split()[0]) for line in lines if "| loss " in line]
    assert np.isfinite(result.loss) and losses[-1] < losses[0]
    model = Translator.from_run_dir(tmp_path, "latest").model  # weights are float32 in the checkpoint
    assert all(w.dtype == np.float32 for w in model.get_weights())


def test_killed_run_resumes_and_finishes(tmp_path):
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "translator.cli",
        "train",
        "--config",
        "tiny",
        "--run-dir",
        str(run_dir),
        "--set",
        "train.steps=400",
        "--set",
        "train.checkpoint_every=20",
        "--set",
        "train.log_every=20",
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    index = run_dir / "checkpoints" / "checkpoint"
    deadline = time.monotonic() + 600
    while not index.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert index.exists(), "no checkpoint was written before the kill"
    killed_at = int(tf.train.latest_checkpoint(str(run_dir / "checkpoints")).rsplit("-", 1)[1])
    assert killed_at < 400

    resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from step {killed_at}" in resumed.stdout
    assert "finished at step 400" in resumed.stdout


def test_average_of_checkpoints_is_their_mean(trained_run, tmp_path):
    copy = shutil.copytree(trained_run, tmp_path / "run")
    run = RunDirectory(copy)
    state = tf.train.get_checkpoint_state(str(run.checkpoint_dir))
    paths = list(state.all_model_checkpoint_paths)[-2:]
    weights = []
    for path in paths:
        model = build_model(run.load_config(), Tokenizer.load(run.tokenizer_dir))
        tf.train.Checkpoint(model=model).restore(path).expect_partial()
        weights.append(model.get_weights())
    averaged_path = average_checkpoints(str(copy), 2)
    averaged = Translator.from_run_dir(copy, "averaged").model.get_weights()
    assert averaged_path.startswith(str(run.averaged_dir))
    for mean, a, b in zip(averaged, *weights):
        np.testing.assert_allclose(mean, (a.astype(np.float64) + b) / 2, atol=1e-6)


def test_strategy_errors_are_clear_without_the_hardware(monkeypatch):
    from translator.errors import TranslatorError
    from translator.strategy import build_strategy

    with pytest.raises(TranslatorError, match="no TPU found"):
        build_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(TranslatorError, match="needs TF_CONFIG"):
        build_strategy("multiworker")
    with pytest.raises(TranslatorError, match="unknown strategy 'gpu'"):
        build_strategy("gpu")
