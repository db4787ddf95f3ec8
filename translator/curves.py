"""Training curves from a run's TensorBoard logs, as one picture (`translator plot`).

TensorBoard shows a live run; a picture is what goes into a report or a README. The scalars are read
from RUN_DIR/logs with TensorFlow's own event reader (any file system), so the picture is made from
exactly what TensorBoard would show.
"""

from __future__ import annotations

import collections

import tensorflow as tf

from translator import storage
from translator.errors import TranslatorError
from translator.rundir import RunDirectory

PANELS = (("train/loss", "training loss (per target token)"), ("dev/bleu", "dev BLEU (greedy)"))


def read_scalars(run_dir: str) -> dict[str, list[tuple[int, float]]]:
    """Every scalar summary of the run: tag → [(step, value)] sorted by step (a resumed run's later
    value for a step wins)."""
    run = RunDirectory(run_dir)
    files = storage.glob(storage.join(run.log_dir, "events.out.tfevents.*"))
    if not files:
        raise TranslatorError(f"{run.log_dir}: no TensorBoard logs (train the run first)")
    values: dict[str, dict[int, float]] = collections.defaultdict(dict)
    for path in files:
        # TensorFlow's own reader, tf.compat.v1.train.summary_iterator, logs a deprecation warning on every
        # use; this is the replacement it names.
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.HasField("tensor"):
                    values[value.tag][int(event.step)] = float(tf.make_ndarray(value.tensor))
                elif value.HasField("simple_value"):
                    values[value.tag][int(event.step)] = value.simple_value
    return {tag: sorted(points.items()) for tag, points in values.items()}


def plot_curves(run_dir: str, output: str, title: str | None = None) -> str:
    """Write a PNG with the training loss and the dev BLEU against the step; returns its path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise TranslatorError("plotting needs matplotlib: pip install matplotlib (or translator[dev])") from error
    scalars = read_scalars(run_dir)
    figure, axes = plt.subplots(1, len(PANELS), figsize=(6 * len(PANELS), 3.6))
    for ax, (tag, label) in zip(axes, PANELS):
        points = scalars.get(tag, [])
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o" if len(points) < 30 else None, markersize=3)
        else:
            ax.text(0.5, 0.5, f"no {tag} in the logs", ha="center", va="center", transform=ax.transAxes)
        ax.set(xlabel="step", title=label)
        ax.grid(alpha=0.3)
    figure.suptitle(title or run_dir)
    figure.tight_layout()
    storage.write_png(output, figure)
    return output
