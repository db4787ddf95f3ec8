"""tf.distribute on CPU: Mirrored over logical devices, multi-worker on localhost, bfloat16, kill/resume."""

import dataclasses
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO, checkpoint_weights, train_command
from translator.checkpoints import average_checkpoints
from translator.config import load_config
from translator.errors import TranslatorError
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


def test_mirrored_updates_equal_single_device_updates(seeded_run):
    """Several Adam updates with clipping, accumulation and label smoothing: 2 replicas ≡ 1 device."""
    result = python(HELPERS / "mirrored_steps.py", seeded_run())
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert min(report["gradient_norms"]) > 0.05  # clipping was active at every update
    assert report["weights_moved"] > 1e-4  # the updates did something …
    assert report["weight_difference"] <= 1e-5  # … and the same thing on one device and on two


def free_ports(count: int) -> list[int]:
    """Ports free now, all different, and below the kernel's ephemeral range when it leaves room. A
    worker binds its port seconds after the test chose it (TensorFlow's import); an ephemeral port
    (what `bind(("", 0))` returns) may be handed to another process's outgoing connection meanwhile,
    and the worker then fails ("Could not start gRPC server") while its peer waits for it for ever:
    a suite run hung so (2026-12-07). Ports below that range are handed out only on request."""
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    candidates = random.sample(range(20000, ephemeral_low), 200) if ephemeral_low > 21000 else [0] * count
    sockets, ports = [], []
    try:
        for port in candidates:
            sock = socket.socket()
            try:
                sock.bind(("localhost", port))
            except OSError:  # in use
                sock.close()
                continue
            sockets.append(sock)  # held until all are chosen: bind(0) twice may return one port twice
            ports.append(sock.getsockname()[1])
            if len(ports) == count:
                return ports
        raise RuntimeError(f"no {count} free ports among {len(candidates)} tried")
    finally:
        for sock in sockets:
            sock.close()


def start_workers(run_dir, tmp_path, steps: int, minutes: float, *settings: str) -> list[subprocess.Popen]:
    """Two workers of one multi-worker run. Each writes its output to `tmp_path/w{index}.log` (a file, not a
    pipe: `finish_workers` reads all of them whichever ends first)."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        command = [sys.executable, str(HELPERS / "multiworker_train.py"), str(run_dir), str(tmp_path / f"w{index}.npz")]
        with open(tmp_path / f"w{index}.log", "w") as log:
            workers.append(
                subprocess.Popen(
                    [*command, str(steps), str(minutes), *settings],
                    env=env,
                    cwd=REPO,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
    return workers


def finish_workers(workers: list[subprocess.Popen], tmp_path, timeout: float, grace: float = 120) -> list[str]:
    """Wait for every worker and return their outputs. A worker that fails leaves the others waiting for it
    forever (a collective, or the cluster's start-up), so once one has failed the others get `grace`
    seconds, then are killed, and the test fails with every worker's output instead of hanging."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        codes = [w.poll() for w in workers]  # every worker polled: `any` over poll() would stop at the first
        if None not in codes:
            break
        if any(code not in (None, 0) for code in codes):
            deadline = min(deadline, time.monotonic() + grace)
        time.sleep(0.1)
    hung = [index for index, w in enumerate(workers) if w.poll() is None]
    for index in hung:
        workers[index].kill()
        workers[index].wait()
    outputs = [(tmp_path / f"w{index}.log").read_text() for index in range(len(workers))]
    assert not hung, f"worker(s) {hung} still running after the others ended or {timeout} s: " + "\n".join(
        f"--- worker {index} (exit code {w.returncode}):\n{output[-3000:]}"
        for index, (w, output) in enumerate(zip(workers, outputs))
    )
    return outputs


def test_multiworker_saves_by_time_together_survives_a_kill_and_ends_identical(seeded_run, tmp_path):
    """Time-based checkpoints (each worker's own clock) are agreed by both workers; a SIGTERM to one
    worker (a preempted machine) stops both at the same step, the chief saving it; the run resumes on
    both from there; only the chief's files remain. The resumed part cools its learning rate down under a
    time budget: both workers plan the same cooldown."""
    run_dir = seeded_run()
    workers = start_workers(run_dir, tmp_path, steps=400, minutes=0.002)
    index = run_dir / "checkpoints" / "checkpoint"
    deadline = time.monotonic() + 600
    while not index.exists() and time.monotonic() < deadline and all(w.poll() is None for w in workers):
        time.sleep(0.05)
    time.sleep(1.0)  # a few more time-based saves
    workers[1].send_signal(signal.SIGTERM)
    outputs = finish_workers(workers, tmp_path, timeout=300)
    assert index.exists(), "no checkpoint before the signal"
    killed_at = int(tf.train.latest_checkpoint(str(run_dir / "checkpoints")).rsplit("-", 1)[1])
    for output, said in zip(outputs, ("stopped with the other workers", "terminated (SIGTERM)")):
        assert f"{said}: checkpoint written at step {killed_at};" in output, output[-3000:]

    cooldown = ("train.cooldown=0.99", "train.max_minutes=60")  # begins at once, over the 12 steps left
    workers = start_workers(run_dir, tmp_path, killed_at + 12, 0.002, *cooldown)
    outputs = finish_workers(workers, tmp_path, timeout=900)
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
        assert f"resumed from step {killed_at}" in output, output[-3000:]
    assert "MultiWorkerMirroredStrategy with 2 replica(s)" in outputs[0]
    for index, output in enumerate(outputs):
        joining = f"joining the cluster as worker {index} (localhost:"
        assert joining in output and "of a cluster of 2 workers: this waits until every worker" in output, output
    assert f"finished at step {killed_at + 12} (learning rate cooled down to 0)" in outputs[0]
    for output in outputs:
        assert f"cooldown: the learning rate falls linearly to 0 over the next {12 - 1} steps" in output, output
    first, second = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key])
    saved = [int(path.stem.split("-")[1]) for path in (run_dir / "checkpoints").glob("ckpt-*.index")]
    assert max(saved) == killed_at + 12 and len(saved) > 1  # the chief's, several of them by time
    assert not list(run_dir.glob("worker-tmp-*"))  # other workers' scratch checkpoints are removed


def test_a_worker_whose_peer_never_starts_gives_up_after_its_wait(seeded_run):
    """Alone in a cluster of two, a worker waits in TensorFlow's start-up, which Ctrl-C and SIGTERM do not end
    (README, "Scaling out"); after train.cluster_wait_minutes it exits with status 1 and says why."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})
    result = subprocess.run(
        train_command(seeded_run(), "train.cluster_wait_minutes=0.05", strategy="multiworker"),
        env={**os.environ, "TF_CONFIG": tf_config},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "joining the cluster as worker 0" in result.stdout
    assert "at most 0.05 minutes (train.cluster_wait_minutes), then exits with status 1" in result.stdout
    # faulthandler's own line: the wait ran its 3 s and ended in the constructor, not anywhere after it.
    assert "Timeout (0:00:03)!" in result.stderr and "in build_strategy" in result.stderr, result.stderr


def test_mixed_bfloat16_trains_on_cpu(seeded_run):
    tmp_path = seeded_run()
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


RESUME_STEPS = 20  # killed at the first checkpoint (step 10), resumed to step 20
RESUME_SETTINGS = (
    f"train.steps={RESUME_STEPS}",
    "train.checkpoint_every=10",
    "train.log_every=10",
    "model.dropout=0.1",
    "data.dev=",
)


def kill_at_first_checkpoint(command: list[str], run_dir) -> int:
    """Start `command`, SIGKILL it as soon as its first checkpoint is complete; the step it reached."""
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    index = run_dir / "checkpoints" / "checkpoint"
    deadline = time.monotonic() + 600
    while not index.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert index.exists(), "no checkpoint was written before the kill"
    return int(tf.train.latest_checkpoint(str(run_dir / "checkpoints")).rsplit("-", 1)[1])


@pytest.mark.parametrize(
    "strategy, extra, tolerance",
    [(None, (), 0.0), ("mirrored", ("train.accumulate_steps=2",), 1e-5)],
    ids=["default", "mirrored-accumulate"],
)
def test_killed_and_resumed_run_equals_an_uninterrupted_one(seeded_run, strategy, extra, tolerance):
    settings = (*RESUME_SETTINGS, *extra)
    devices = 2 if strategy else 0
    straight, killed = seeded_run("straight"), seeded_run("killed")
    done = subprocess.run(
        train_command(straight, *settings, strategy=strategy, cpu_devices=devices),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    command = train_command(killed, *settings, strategy=strategy, cpu_devices=devices)
    killed_at = kill_at_first_checkpoint(command, killed)
    assert killed_at < RESUME_STEPS
    resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from step {killed_at}" in resumed.stdout
    assert f"finished at step {RESUME_STEPS}" in resumed.stdout

    expected = checkpoint_weights(tf.train.latest_checkpoint(str(straight / "checkpoints")))
    actual = checkpoint_weights(tf.train.latest_checkpoint(str(killed / "checkpoints")))
    assert expected.keys() == actual.keys()
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], atol=tolerance, rtol=0, err_msg=name)


def test_two_fresh_runs_with_one_seed_are_identical(seeded_run):
    config = load_config("tiny", ["train.steps=8", "model.dropout=0.1", "data.dev=", "train.log_every=4"])
    a, b, c = seeded_run("a"), seeded_run("b"), seeded_run("c")
    train(config, a, log=lambda line: None)
    train(config, b, log=lambda line: None)
    first = checkpoint_weights(tf.train.latest_checkpoint(str(a / "checkpoints")))
    second = checkpoint_weights(tf.train.latest_checkpoint(str(b / "checkpoints")))
    assert first.keys() == second.keys() and len(first) > 20
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    reseeded = config.replace(train=dataclasses.replace(config.train, seed=config.train.seed + 1))
    train(reseeded, c, log=lambda line: None)
    third = checkpoint_weights(tf.train.latest_checkpoint(str(c / "checkpoints")))
    assert any(not np.array_equal(first[name], third[name]) for name in first)  # the seed matters


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
    with pytest.raises(TranslatorError, match="must be at least 1, got 0"):  # not [-0:], every checkpoint
        average_checkpoints(str(copy), 0)
    averaged = Translator.from_run_dir(copy, "averaged").model.get_weights()
    assert averaged_path.startswith(str(run.averaged_dir))
    for mean, a, b in zip(averaged, *weights):
        np.testing.assert_allclose(mean, (a.astype(np.float64) + b) / 2, atol=1e-6)


def test_strategy_errors_are_clear_without_the_hardware(monkeypatch):
    from translator.strategy import build_strategy

    with pytest.raises(TranslatorError, match="no TPU found"):
        build_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(TranslatorError, match="needs TF_CONFIG"):
        build_strategy("multiworker")
    with pytest.raises(TranslatorError, match="unknown strategy 'gpu'"):
        build_strategy("gpu")


@pytest.mark.parametrize(
    "tf_config, error",
    [
        ("{'cluster': {}}", "TF_CONFIG is not valid JSON: Expecting property name enclosed in double quotes"),
        ('{"task": {"type": "worker", "index": 0}}', '"cluster" must map each job'),
        ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker"}}', 'cluster "worker" must be a list'),
        (
            '{"cluster": {"worker": ["a:1", "b:1"]}}',
            '"task" must name its "type", one of the cluster\'s jobs \\(worker\\)',
        ),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "one of the cluster's jobs"),
        (
            '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
            'task index 2 is outside "worker", which lists 2 address',
        ),
    ],
)
def test_a_bad_tf_config_is_refused_naming_its_field(monkeypatch, tf_config, error):
    """Checked before TensorFlow reads it, each error naming the field at fault."""
    from translator.strategy import build_strategy

    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(TranslatorError, match=error):
        build_strategy("multiworker")


def test_a_worker_says_where_it_stands_in_its_cluster():
    from translator.strategy import describe_cluster

    tf_config = {"cluster": {"chief": ["c:1"], "worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    assert describe_cluster(json.dumps(tf_config)) == "worker 1 (b:2) of a cluster of 1 chief, 2 workers"
    tf_config["task"]["index"] = "0"  # an index written as a string names the same task
    assert describe_cluster(json.dumps(tf_config)) == "worker 0 (a:1) of a cluster of 1 chief, 2 workers"


def test_the_cluster_wait_ends_with_its_block():
    """The give-up timer of `exit_if_not_done_within` is cancelled once the block is done: a timer left
    running would end this very process (status 1) shortly after."""
    from translator.strategy import exit_if_not_done_within

    with exit_if_not_done_within(0.001):  # 60 ms
        pass
    time.sleep(0.3)
    with pytest.raises(TranslatorError), exit_if_not_done_within(0.001):  # also when the block fails
        raise TranslatorError("the strategy could not be built")
    time.sleep(0.3)
