"""The one place that chooses and builds the `tf.distribute` strategy."""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import tensorflow as tf

from translator.errors import TranslatorError

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")


def split_cpu(devices: int) -> None:
    """Split the host CPU into `devices` logical devices (before TensorFlow initializes them)."""
    if devices <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    except RuntimeError as error:
        if len(tf.config.list_logical_devices("CPU")) != devices:
            raise TranslatorError(
                f"--cpu-devices {devices}: TensorFlow was already initialized with "
                f"{len(tf.config.list_logical_devices('CPU'))} CPU devices in this process"
            ) from error


def _local_tpu_devices() -> bool:
    """A TPU attached to this VM (Cloud TPU VMs, Colab's TPU runtime) shows up as /dev/accel* or /dev/vfio."""
    return any(Path("/dev").glob("accel*")) or Path("/dev/vfio").is_dir()


def _tpu_requested() -> bool:
    return bool(os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR") or _local_tpu_devices())


def _find_tpu():
    """A TPU resolver: `tpu="local"` for a TPU on this VM, else the resolver's own discovery (TPU_NAME,
    COLAB_TPU_ADDR, the GCE metadata of a TPU node). None when neither finds a TPU."""
    for tpu in (["local"] if _local_tpu_devices() else []) + [None]:
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return resolver
        except (ValueError, RuntimeError, tf.errors.NotFoundError, tf.errors.InvalidArgumentError):
            continue
    return None


def describe_cluster(tf_config: str) -> str:
    """This task's place in the cluster TF_CONFIG describes, checked before TensorFlow reads it: TensorFlow
    answers a malformed TF_CONFIG with a bare JSON, key or value error from deep in its start-up, and once
    started it waits, without a word, for every worker of the cluster (a worker that cannot start leaves the
    others waiting, `exit_if_not_done_within` bounds it), so the log says first where this task stands."""
    try:
        config = json.loads(tf_config)
    except json.JSONDecodeError as error:
        raise TranslatorError(f"TF_CONFIG is not valid JSON: {error}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        raise TranslatorError('TF_CONFIG: "cluster" must map each job to its "host:port" addresses')
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise TranslatorError(f'TF_CONFIG: cluster "{job}" must be a list of "host:port" addresses')
    task = config.get("task")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise TranslatorError(
            f'TF_CONFIG: "task" must name its "type", one of the cluster\'s jobs ({", ".join(cluster)})'
        )
    index, addresses = task.get("index", 0), cluster[task["type"]]
    if isinstance(index, str) and index.isdigit():
        index = int(index)
    if not isinstance(index, int) or not 0 <= index < len(addresses):
        raise TranslatorError(
            f'TF_CONFIG: task index {index!r} is outside "{task["type"]}", which lists {len(addresses)} address(es)'
        )
    jobs = ", ".join(f"{len(addresses)} {job}{'s' * (len(addresses) != 1)}" for job, addresses in cluster.items())
    return f"{task['type']} {index} ({addresses[index]}) of a cluster of {jobs}"


@contextlib.contextmanager
def exit_if_not_done_within(minutes: float) -> Iterator[None]:
    """Exit the process (status 1, with every thread's Python traceback on stderr) if the block has not
    finished after `minutes`; 0: no limit.

    For TensorFlow's multi-worker start-up: it blocks inside one native call that holds the GIL until every
    worker of the cluster has registered, so no Python code runs meanwhile (neither a watchdog thread nor a
    Ctrl-C handler), and its own SIGTERM handler (the coordination service's preemption notifier) keeps
    SIGTERM from ending it: a worker whose peer never comes would wait until SIGKILL. faulthandler's timer
    runs in a native thread that needs no GIL. It is one timer per process: this replaces any other."""
    if minutes <= 0:
        yield
        return
    for stream in (sys.stdout, sys.stderr):  # that exit skips Python's buffers: what was said is said now
        stream.flush()
    faulthandler.dump_traceback_later(minutes * 60, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def build_strategy(
    name: str, cpu_devices: int = 0, log: Callable[[str], None] | None = None, cluster_wait_minutes: float = 0.0
) -> tf.distribute.Strategy:
    """auto: a TPU if a resolver finds one, else Mirrored over all GPUs if more than one, else default.
    `log` hears what may take long: joining a multi-worker cluster waits until every worker has started,
    for at most `cluster_wait_minutes` (0: no limit), after which the process exits with status 1."""
    if name not in STRATEGIES:
        raise TranslatorError(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise TranslatorError("--strategy multiworker needs TF_CONFIG (cluster and task) in the environment")
        place = describe_cluster(os.environ["TF_CONFIG"])
        if log is not None:
            limit = (
                f"at most {cluster_wait_minutes:g} minutes (train.cluster_wait_minutes), then exits with status 1"
                if cluster_wait_minutes > 0
                else "with no limit (train.cluster_wait_minutes=0)"
            )
            log(
                f"joining the cluster as {place}: this waits until every worker has started, {limit}; "
                "Ctrl-C and SIGTERM do not end this wait"
            )
        with exit_if_not_done_within(cluster_wait_minutes):
            return tf.distribute.MultiWorkerMirroredStrategy()
    split_cpu(cpu_devices)
    if name == "tpu" or (name == "auto" and _tpu_requested()):
        resolver = _find_tpu()
        if resolver is not None:
            return tf.distribute.TPUStrategy(resolver)
        if name == "tpu":
            raise TranslatorError("--strategy tpu: no TPU found (TPUClusterResolver failed)")
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "auto" and len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Only the chief writes checkpoints, logs and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not os.environ.get("TF_CONFIG"):
        return True
    task = json.loads(os.environ["TF_CONFIG"]).get("task", {})
    return task.get("type") in (None, "chief") or (
        task.get("type") == "worker"
        and task.get("index", 0) == 0
        and "chief" not in json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
    )


def describe_strategy(strategy: tf.distribute.Strategy) -> str:
    """The strategy by its public name (TensorFlow's classes are aliases such as CollectiveAllReduceStrategy)."""
    names = [
        (tf.distribute.TPUStrategy, "TPUStrategy"),
        (tf.distribute.MultiWorkerMirroredStrategy, "MultiWorkerMirroredStrategy"),
        (tf.distribute.MirroredStrategy, "MirroredStrategy"),
    ]
    name = next((label for cls, label in names if isinstance(strategy, cls)), "default strategy")
    try:
        devices = f" ({', '.join(strategy.extended.worker_devices)})"
    except RuntimeError:  # the default strategy does not list its device
        devices = ""
    return f"{name} with {strategy.num_replicas_in_sync} replica(s){devices}"
