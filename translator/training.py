"""Training: strategy → datasets → model and optimizer in scope → loop → checkpoints.

One custom loop serves every strategy (Keras `fit` fails under MultiWorkerMirrored). The loss of a
step is the label-smoothed cross-entropy summed over the real target tokens of every replica, divided
by their global count, so a batch split across replicas gives the same gradient as on one device.

A run is resumable at any moment: checkpoints hold the model, the optimizer (and so the
learning-rate schedule), the step and the wall-clock time spent; the input stream is deterministic,
so a resumed run skips exactly the batches already consumed. Checkpoints are written by TensorFlow's
CheckpointManager, which updates its index only after the files are complete: a kill during a save
leaves the previous checkpoint as the latest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from translator import storage
from translator.checkpoints import restore
from translator.config import COOLDOWN_SHAPES, ExperimentConfig
from translator.corpus import read_pairs
from translator.data import batch_shapes, fixed_shapes, load_training_data, training_dataset
from translator.evaluation import evaluate_translator
from translator.finetune import copy_tokenizer, resolve_parent
from translator.inference import Translator, greedy_config
from translator.losses import smoothed_cross_entropy_sum
from translator.model import build_model
from translator.onednn import cpu_kernels
from translator.optimizers import transformer_adam
from translator.precision import resolve_precision
from translator.rundir import RunDirectory
from translator.schedules import Cooldown
from translator.strategy import build_strategy, describe_strategy, is_chief


@dataclasses.dataclass
class TrainResult:
    step: int
    loss: float  # the last logged training loss (per target token)
    best_dev_bleu: float | None
    minutes: float
    run_dir: str
    dev_bleu: dict[int, float] = dataclasses.field(default_factory=dict)  # step → greedy dev BLEU, this session


def _format_minutes(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def build_optimizer(config: ExperimentConfig, cooldown: Cooldown | None = None) -> keras.optimizers.LossScaleOptimizer:
    """Adam on the inverse-sqrt schedule (times `cooldown`'s factor), inside a loss-scale optimizer for
    every precision: it skips any step whose gradients are not finite. Only float16 needs a real
    (dynamic) scale; elsewhere the scale stays at 1 (a skipped step halves it, which is exact in float32
    and bfloat16)."""
    float16 = config.train.mixed_precision == "mixed_float16"
    adam = transformer_adam(
        config.model.d_model,
        config.train.warmup_steps,
        config.train.learning_rate,
        beta_2=config.train.adam_beta_2,
        cooldown=cooldown,
    )  # clipping is done by the train step, on the gradient of the whole global batch
    return keras.optimizers.LossScaleOptimizer(
        adam, initial_scale=2.0**15 if float16 else 1.0, dynamic_growth_steps=2000 if float16 else 2**31 - 1
    )


def resolve_compilation(
    jit_compile: bool | str, batching: str, precision: str, xla_works: bool = True, on_tpu: bool = False
) -> tuple[bool, str, str]:
    """(train.jit_compile, train.batching, why) with `auto` resolved for a run training under `precision`
    (`xla_works`: false under several replicas on the CPU, where `auto` is no XLA and bucketed steps; a TPU
    compiles every step whatever `jit_compile` says).

    XLA pays where few shapes meet float32 steps: on an AVX2 CPU the `small` preset's hour reached step
    3,102 with fixed shapes and XLA against 2,801 bucketed without it, test BLEU 34.10 against 32.32 (runs
    19 and 17, docs/benchmarks.md). Under bfloat16 (AMX and AVX512_BF16 CPUs) XLA's CPU code does not use
    the bfloat16 units and was 0.70x the step without it, so there `auto` leaves the steps uncompiled, to
    TensorFlow's (oneDNN's) kernels. `auto` batching is `fixed` on one machine either way: a run meets at
    most `train.batch_shapes` shapes, known before its first step, and uncompiled bfloat16 steps lose at
    most a few percent by it (on a 2-core AVX512_BF16 EPYC, 2026-12-07: 3,721,551 target tokens in 10 minutes
    against 3,584,327 bucketed over 60 shapes at the tutorial size, 3.7% fewer at `small` over 3 minutes;
    within 1.3% over 10 minutes on an AMX Xeon: docs/benchmarks.md).
    """
    if "auto" not in (jit_compile, batching):
        return jit_compile, batching, "as configured"
    if jit_compile == "auto":
        jit_compile = precision == "float32" and xla_works
    if batching == "auto":
        batching = "fixed" if xla_works or on_tpu else "bucketed"
    return jit_compile, batching, f"auto: training in {precision}" + ("" if xla_works else " on several CPU replicas")


def build_train_step(
    model: keras.Model,
    optimizer: keras.optimizers.LossScaleOptimizer,
    strategy: tf.distribute.Strategy,
    label_smoothing: float,
    jit_compile: bool,
    clip_norm: float = 0.0,
) -> Callable:
    """`update(batches)`: one optimizer update from a list of (features, labels) batches (per-replica
    values under a strategy; several batches accumulate gradients). Returns (loss sum, real target
    tokens) over all replicas and batches.

    Each batch's gradient is that of its mean loss (XLA-compiled where it works, so float16 loss
    scaling sees a well-scaled value), weighted by its token count and divided by the global token
    count: the update is the gradient of the mean loss over every real target token of the global,
    accumulated batch, whatever the number of replicas. `clip_norm` > 0 clips that gradient's global
    norm: the norm of the sum over replicas, not of each replica's part (Keras' own `global_clipnorm`
    would clip each part before the all-reduce). A step whose gradients are not finite on any replica is
    skipped by every replica (the loss-scale optimizer's guard).
    """

    def local_gradients(features, labels):
        with tf.GradientTape() as tape:
            logits = model(features, training=True)
            loss_sum, tokens = smoothed_cross_entropy_sum(labels, logits, label_smoothing)
            scaled = optimizer.scale_loss(loss_sum / tf.maximum(tokens, 1.0))
        return tape.gradient(scaled, model.trainable_variables), loss_sum, tokens

    compute = tf.function(local_gradients, jit_compile=jit_compile, autograph=False)

    def replica_step(batches):
        total, loss_sum, tokens = None, 0.0, 0.0
        for features, labels in batches:
            gradients, batch_loss, batch_tokens = compute(features, labels)
            weighted = [g * tf.cast(batch_tokens, g.dtype) for g in gradients]
            total = weighted if total is None else [a + b for a, b in zip(total, weighted)]
            loss_sum, tokens = loss_sum + batch_loss, tokens + batch_tokens
        context = tf.distribute.get_replica_context()
        global_tokens = tf.maximum(context.all_reduce("sum", tokens), 1.0)
        gradients = [g / tf.cast(global_tokens, g.dtype) for g in total]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients])
        any_bad = context.all_reduce("sum", 1.0 - tf.cast(finite, tf.float32)) > 0
        if clip_norm > 0:
            total = context.all_reduce("sum", gradients) if context.num_replicas_in_sync > 1 else gradients
            norm = tf.linalg.global_norm(total)
            scale = clip_norm / tf.maximum(norm, clip_norm)  # each replica's part scaled alike: the sum is clipped
            gradients = [g * tf.cast(scale, g.dtype) for g in gradients]
        # Make every replica see the failure, so that all of them skip the same step.
        gradients[0] += tf.where(any_bad, tf.constant(float("nan"), gradients[0].dtype), 0)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss_sum, tokens

    @tf.function(reduce_retracing=True, autograph=False)
    def update(batches):
        loss_sum, tokens = strategy.run(replica_step, args=(batches,))
        return strategy.reduce("sum", loss_sum, axis=None), strategy.reduce("sum", tokens, axis=None)

    return update


class Trainer:
    """Holds the live objects of one training run; `run()` trains until a limit is reached."""

    def __init__(self, config: ExperimentConfig, run_dir: str | Path, log: Callable[[str], None] = print):
        self.log = log
        self.run = RunDirectory(run_dir)
        self.strategy = build_strategy(
            config.train.strategy, config.train.cpu_devices, log, config.train.cluster_wait_minutes
        )
        self.chief = is_chief(self.strategy)
        precision, self.precision_reason = resolve_precision(config.train.mixed_precision, self.strategy)
        xla, batching, self.xla_reason = resolve_compilation(
            config.train.jit_compile,
            config.train.batching,
            precision,
            self._xla_works(),
            on_tpu=isinstance(self.strategy, tf.distribute.TPUStrategy),
        )
        config = dataclasses.replace(
            config,
            train=dataclasses.replace(config.train, mixed_precision=precision, jit_compile=xla, batching=batching),
        )
        config, self.parent = resolve_parent(config, self.run, log)
        self.config = self.run.prepare(config, write=self.chief)
        if self.parent is not None and self.chief:
            copy_tokenizer(self.parent, self.run)
        self.tokenizer, self.corpus = load_training_data(
            self.run.tokenizer_dir, self.run.cache_dir, self.config, write=self.chief, log=log
        )
        data = self.config.data
        limits = f"{data.max_source_length}/{data.max_target_length}"
        reasons = [
            (self.corpus.dropped, f"{self.corpus.dropped:,} longer than {limits} tokens"),
            (self.corpus.empty, f"{self.corpus.empty:,} with an empty side"),
        ]
        dropped = " and ".join(reason for count, reason in reasons if count)
        log(
            f"training data: {len(self.corpus):,} pairs from {data.train}"
            + (f" ({dropped} dropped)" if dropped else "")
        )
        # Fixed batch shapes are chosen from the whole corpus, before training: the same on every worker.
        fixed = self.config.train.batching == "fixed"
        self.shapes = fixed_shapes(self.corpus, self.config.train.batch_shapes) if fixed else None
        policy = self.config.train.mixed_precision
        with self.strategy.scope():
            self.model = build_model(self.config, self.tokenizer, dtype=policy, seed=self.config.train.seed)
            # The learning rate's cooldown (train.cooldown): planned during the run, checkpointed with it.
            train = self.config.train
            self.cooldown = Cooldown(shape=train.cooldown_shape) if train.cooldown > 0 else None
            self.optimizer = build_optimizer(self.config, self.cooldown)
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="seconds")
            self.best_bleu = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_bleu")
            # The input position: batches taken from this worker's input pipeline so far, and by how many
            # replicas. A resumed run skips exactly these, whatever the replica count was.
            self.batches_consumed = tf.Variable(0, dtype=tf.int64, trainable=False, name="batches_consumed")
            self.trained_replicas = tf.Variable(0, dtype=tf.int64, trainable=False, name="trained_replicas")
            state = dict(
                model=self.model,
                optimizer=self.optimizer,
                step=self.step,
                seconds=self.seconds,
                best_bleu=self.best_bleu,
                batches_consumed=self.batches_consumed,
                trained_replicas=self.trained_replicas,
                # Keras does not checkpoint its dropout seed generators; without them a resumed run
                # would draw other masks than an uninterrupted one.
                dropout_seeds=[v for v in self.model.non_trainable_variables if "seed_generator" in v.path],
            )
            planned = {} if self.cooldown is None else {"cooldown": self.cooldown}
            self.checkpoint = tf.train.Checkpoint(**state, **planned)
        # Saving is collective under multi-worker strategies: other workers save too, to scratch space
        # named by their task (a restarted worker finds and removes it). Every worker resumes from the
        # chief's checkpoint, so all start from the same step.
        task = getattr(self.strategy.cluster_resolver, "task_id", 0) if not self.chief else 0
        self.scratch_dir = None if self.chief else storage.join(self.run.path, f"worker-tmp-{task}")
        directory = self.run.checkpoint_dir if self.chief else storage.join(self.scratch_dir, "checkpoints")
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(directory), self.config.train.keep_checkpoints)
        latest = tf.train.latest_checkpoint(str(self.run.checkpoint_dir))
        if latest:
            # The cooldown's plan apart: a run begun without train.cooldown has none saved, and one
            # resumed without it leaves the saved plan unused.
            restore(tf.train.Checkpoint(**state), latest, partial=True)
            if self.cooldown is not None:
                tf.train.Checkpoint(cooldown=self.cooldown).restore(latest).expect_partial()
            log(f"resumed from step {int(self.step.numpy())} ({latest})")
            before, now = int(self.trained_replicas.numpy()), self.strategy.num_replicas_in_sync
            if before and before != now:
                log(
                    f"warning: this run was trained on {before} replica(s), now {now}: each replica's share of "
                    "train.batch_tokens changes, so from here the batches differ from an uninterrupted run's "
                    f"(training continues after the {int(self.batches_consumed.numpy()):,} batches already taken "
                    "from the new stream; the same replica count resumes exactly)"
                )
        elif self.parent is not None:  # fine-tuning: the parent's weights only; optimizer and step start afresh
            restore(tf.train.Checkpoint(model=self.model), self.parent.checkpoint.path, partial=True)
            choice = self.parent.checkpoint
            log(
                f"initialized from {choice.path} ({choice.kind}, step {choice.step} of {self.parent.run.path}); "
                "optimizer, schedule and step start afresh"
            )
        self.trained_replicas.assign(self.strategy.num_replicas_in_sync)
        self.last_saved_step = int(self.step.numpy()) if latest else -1  # the step of the newest checkpoint
        log(
            f"strategy: {describe_strategy(self.strategy)}; precision: {self.config.train.mixed_precision} "
            f"({self.precision_reason}); CPU kernels: {cpu_kernels()}; model: {self.model.count_params():,} parameters"
        )
        self.dev_translator: Translator | None = None

    def _pack_width(self) -> int:
        return self.config.train.pack_width if self.config.train.batching == "packed" else 0

    def _per_replica_tokens(self) -> int:
        return max(self.config.train.batch_tokens // self.strategy.num_replicas_in_sync, 1)

    def _datasets(self):
        per_replica_tokens = self._per_replica_tokens()
        skip = int(self.batches_consumed.numpy())

        def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
            # Each step takes one batch per replica of this pipeline, `accumulate_steps` times.
            self.batches_per_step = context.num_replicas_in_sync // context.num_input_pipelines
            self.batches_per_step *= self.config.train.accumulate_steps
            return training_dataset(
                self.corpus,
                per_replica_tokens,
                self.config.data.max_target_length,
                seed=self.config.train.seed,
                skip_batches=skip,
                input_context=context,
                shapes=self.shapes,
                pack_width=self._pack_width(),
            )

        return iter(self.strategy.distribute_datasets_from_function(dataset_fn))

    def _xla_works(self) -> bool:
        """XLA-compiled steps fail under several replicas on the CPU (logical devices, local workers)."""
        on_cpu = not tf.config.list_logical_devices("GPU") and not isinstance(self.strategy, tf.distribute.TPUStrategy)
        return not (on_cpu and self.strategy.num_replicas_in_sync > 1)

    def _use_xla(self) -> bool:
        return self.config.train.jit_compile and self._xla_works()

    def _train_step_fn(self):
        """The distributed train step over `train.accumulate_steps` batches from an iterator."""
        update = build_train_step(
            self.model,
            self.optimizer,
            self.strategy,
            self.config.train.label_smoothing,
            self._use_xla(),
            self.config.train.clip_norm,
        )
        accumulate = self.config.train.accumulate_steps

        @tf.function(autograph=False)
        def train_step(iterator):
            return update([next(iterator) for _ in range(accumulate)])

        return train_step

    @property
    def skipped_steps(self) -> int:
        """Steps whose update was skipped for non-finite gradients (the inner optimizer did not count them)."""
        return int(self.step.numpy()) - int(self.optimizer.iterations.numpy())

    def _cooldown_due(self, step: int, limit_seconds: float) -> bool:
        """Whether the learning rate's cooldown should begin now (train.cooldown of the steps or the time)."""
        if self.cooldown is None or self.cooldown.started:
            return False
        rest = 1.0 - self.config.train.cooldown
        return step >= rest * self.config.train.steps or float(self.seconds.numpy()) >= rest * limit_seconds

    def _begin_cooldown(self, step: int, limit_seconds: float, steps_per_second: float) -> None:
        """Plan the cooldown over the steps left: to train.steps, or as many as the time left allows at
        `steps_per_second` (every worker plans the same: their estimates are averaged)."""
        left = self.config.train.steps - step
        if math.isfinite(limit_seconds):
            time_left = max(limit_seconds - float(self.seconds.numpy()), 0.0)
            left = min(left, int(self._agreed_mean(time_left * steps_per_second)))
        start = int(self.optimizer.iterations.numpy())
        self.cooldown.begin(start, left)
        self.log(
            f"step {step} | cooldown: the learning rate falls {COOLDOWN_SHAPES[self.cooldown.shape]} to 0 "
            f"over the next {max(left, 1):,} steps"
            + (f" (estimated from {steps_per_second:.2f} steps/s)" if math.isfinite(limit_seconds) else "")
        )

    def _cooled_down(self) -> bool:
        return (
            self.cooldown is not None
            and self.cooldown.started
            and (int(self.optimizer.iterations.numpy()) >= self.cooldown.end)
        )

    def _agreed_mean(self, value: float) -> float:
        """The mean of `value` over the workers (itself on one machine): a figure every worker shares."""
        if not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return value
        values = self.strategy.run(lambda: tf.constant(value, tf.float32))
        return float(self.strategy.reduce("mean", values, axis=None).numpy())

    def _all_agree(self, *wishes: bool) -> tuple[bool, ...]:
        """For each wish (stop, save now), whether any worker has it. Each worker measures its own
        clock, yet every worker must stop and save (a collective operation) at the same step. One
        all-reduce under multi-worker strategies; a no-op on a single machine."""
        if not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return tuple(bool(wish) for wish in wishes)
        votes = self.strategy.run(lambda: tf.constant([float(wish) for wish in wishes]))
        return tuple(bool(total > 0) for total in self.strategy.reduce("sum", votes, axis=None).numpy())

    def save(self) -> None:
        """A checkpoint at this step, unless one was written at this step already (never rewritten)."""
        step = int(self.step.numpy())
        if step != self.last_saved_step:
            self.manager.save(checkpoint_number=step)
            self.last_saved_step = step

    def evaluate_dev(self) -> float:
        """Greedy dev BLEU with the current weights (a quick signal, not the reported score)."""
        if self.dev_translator is None:  # built once, so its compiled search is reused at every evaluation
            self.dev_translator = Translator(
                self.model,
                self.tokenizer,
                greedy_config(self.config.decode),
                self.config.data.max_source_length,
                jit_compile=self.config.decode.xla,
            )
        sources, references = self.dev_pairs
        return evaluate_translator(self.dev_translator, sources=sources, references=[references])["bleu"]["score"]

    def run_loop(self) -> TrainResult:
        config = self.config.train
        limit_seconds = config.max_minutes * 60 if config.max_minutes > 0 else math.inf
        start_step = int(self.step.numpy())
        if start_step >= config.steps or self.seconds.numpy() >= limit_seconds or self._cooled_down():
            self.log(f"finished at step {start_step} (nothing to do: the run reached its limit)")
            return TrainResult(start_step, float("nan"), self._best(), self.seconds.numpy() / 60, self.run.path)
        self.want_dev = bool(self.config.data.dev)  # read now: a bad dev set fails before training starts
        self.dev_pairs = (
            read_pairs(
                self.config.data.dev,
                self.config.data.source_lang,
                self.config.data.target_lang,
                self.config.data.tfds_data_dir,
            )
            if self.want_dev
            else None
        )
        self.writer = (
            tf.summary.create_file_writer(str(self.run.log_dir)) if self.chief else tf.summary.create_noop_writer()
        )
        best_dir = self.run.best_dir if self.chief else storage.join(self.scratch_dir, "best")
        self.best_manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=self.model), str(best_dir), 1)
        train_step = self._train_step_fn()
        iterator = self._datasets()
        self.log(
            f"training to step {config.steps}"
            + (f" or {config.max_minutes:g} minutes" if config.max_minutes else "")
            + f" with {config.batch_tokens} tokens per batch"
            + (f" × {config.accumulate_steps} accumulated" if config.accumulate_steps > 1 else "")
            + f", XLA {'on' if self._use_xla() else 'off'} ({self.xla_reason})"
        )
        shapes = batch_shapes(
            self.corpus, self._per_replica_tokens(), self.config.data.max_target_length, self.shapes, self._pack_width()
        )
        how = {
            "bucketed": "one per length bucket",
            "fixed": f"at most {config.batch_shapes}, chosen before training",
            "packed": f"pairs packed into rows of {config.pack_width} tokens, longer ones into rows of their own",
        }[config.batching]
        compiled = "; XLA compiles each the first time it comes, so the first steps are slow" if self._use_xla() else ""
        self.log(f"batch shapes: {len(shapes)} ({config.batching} batching, {how}){compiled}")
        window_loss = window_tokens = 0.0
        window_start = last_save = time.monotonic()
        session_start, base_seconds = time.monotonic(), float(self.seconds.numpy())
        first_step_done = None  # (time, step) after this session's first step, which includes tracing
        self.stale_evals, loss, last_eval = 0, float("nan"), -1
        self.dev_scores: dict[int, float] = {}
        stop_reason = "step limit"
        with _stop_at_a_step_boundary() as stop:
            try:
                while int(self.step.numpy()) < config.steps:
                    loss_sum, tokens = train_step(iterator)
                    self.step.assign_add(1)
                    self.batches_consumed.assign_add(self.batches_per_step)
                    self.seconds.assign(base_seconds + time.monotonic() - session_start)
                    window_loss += float(loss_sum)
                    window_tokens += float(tokens)
                    step = int(self.step.numpy())
                    if first_step_done is None:
                        first_step_done = (time.monotonic(), step)
                    if step % config.log_every == 0 or step == start_step + 1:
                        now = time.monotonic()
                        loss = window_loss / max(window_tokens, 1)
                        self._log_progress(step, loss, window_tokens / max(now - window_start, 1e-9), limit_seconds)
                        window_loss = window_tokens = 0.0
                        window_start = now
                    out_of_time, save_due, cool_now, stop_now = self._all_agree(
                        self.seconds.numpy() >= limit_seconds,
                        time.monotonic() - last_save > config.checkpoint_minutes * 60,
                        self._cooldown_due(step, limit_seconds),
                        stop.is_set(),  # a signal to one worker stops them all at this step
                    )
                    if cool_now:
                        steps_done, since = step - first_step_done[1], time.monotonic() - first_step_done[0]
                        rate = steps_done / since if steps_done else step / max(float(self.seconds.numpy()), 1e-9)
                        self._begin_cooldown(step, limit_seconds, rate)
                    if step % config.checkpoint_every == 0 or save_due:
                        self.save()
                        last_save = time.monotonic()
                    if self.want_dev and config.eval_every > 0 and step % config.eval_every == 0:
                        last_eval = step
                        if self._evaluate_and_keep_best(step):
                            stop_reason = f"early stopping ({self.stale_evals} evaluations without improvement)"
                            break
                    if out_of_time:
                        stop_reason = f"time budget ({config.max_minutes:g} minutes)"
                        break
                    if self._cooled_down():
                        stop_reason = "learning rate cooled down to 0"
                        break
                    if stop_now:
                        raise Stopped(stop.signum)
            except KeyboardInterrupt as error:
                self.save()
                how = {signal.SIGTERM: "terminated (SIGTERM)", 0: "stopped with the other workers"}
                self.log(
                    f"{how.get(getattr(error, 'signum', signal.SIGINT), 'interrupted')}: checkpoint written at step "
                    f"{int(self.step.numpy())}; run the same command to resume"
                )
                raise
        self.save()
        step = int(self.step.numpy())
        if self.want_dev and last_eval != step:
            self._evaluate_and_keep_best(step)  # the final weights compete for "best" too
        if config.average_last and self.chief:
            self._average(config.average_last)
        self.writer.flush()
        if self.scratch_dir is not None:
            storage.remove_tree(self.scratch_dir)
        skipped = f"; {self.skipped_steps} step(s) skipped for non-finite gradients" if self.skipped_steps else ""
        minutes = _format_minutes(self.seconds.numpy())
        self.log(f"finished at step {step} ({stop_reason}) after {minutes} of training{skipped}")
        return TrainResult(step, loss, self._best(), float(self.seconds.numpy()) / 60, self.run.path, self.dev_scores)

    def _average(self, last: int) -> None:
        """Average the run's last `last` checkpoints, or as many as a short run wrote: a run stopped after
        one or two checkpoints (a few minutes of the `small` preset) still finishes, and says what it did."""
        from translator.checkpoints import average_checkpoints

        kept = len(self.manager.checkpoints)
        if kept < 2:
            self.log(f"no averaged checkpoint: the run has {kept} checkpoint, train.average_last asks for {last}")
            return
        count = min(last, kept)
        asked = "" if count == last else f" (train.average_last is {last}; the run has {kept})"
        self.log(f"averaged the last {count} checkpoints{asked}: {average_checkpoints(str(self.run.path), count)}")

    def _evaluate_and_keep_best(self, step: int) -> bool:
        """Dev BLEU now; save the weights if they are the best so far. True when early stopping is due."""
        bleu = self.evaluate_dev()
        self.dev_scores[step] = bleu
        improved = bleu > self.best_bleu.numpy()
        if improved:
            self.best_bleu.assign(bleu)
            self.best_manager.save(checkpoint_number=step)
        self.stale_evals = 0 if improved else self.stale_evals + 1
        self.log(f"step {step} | dev BLEU {bleu:.2f} (greedy){' | new best' if improved else ''}")
        with self.writer.as_default():
            tf.summary.scalar("dev/bleu", bleu, step=step)
        patience = self.config.train.early_stopping
        return bool(patience and self.stale_evals >= patience)

    def _best(self) -> float | None:
        best = float(self.best_bleu.numpy())
        return None if best < 0 else best

    def _log_progress(self, step: int, loss: float, speed: float, limit_seconds: float) -> None:
        config = self.config.train
        elapsed = float(self.seconds.numpy())
        per_step = elapsed / max(step, 1)
        eta = min((config.steps - step) * per_step, limit_seconds - elapsed)
        learning_rate = (
            float(self.optimizer.learning_rate.numpy())
            if hasattr(self.optimizer.learning_rate, "numpy")
            else float(self.optimizer.learning_rate)
        )
        self.log(
            f"step {step:>6}/{config.steps} | loss {loss:.3f} | lr {learning_rate:.2e} | "
            f"{speed:,.0f} tgt tok/s | elapsed {_format_minutes(elapsed)} | ETA {_format_minutes(eta)}"
        )
        with self.writer.as_default():
            tf.summary.scalar("train/loss", loss, step=step)
            tf.summary.scalar("train/target_tokens_per_second", speed, step=step)
            tf.summary.scalar("train/learning_rate", learning_rate, step=step)


class Stopped(KeyboardInterrupt):
    """Training stopped at a step boundary, its checkpoint written, on signal `signum` (SIGINT: Ctrl-C;
    SIGTERM: what schedulers and preemptible VMs send before they kill; 0: another worker's signal)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class _StopRequest(threading.Event):
    signum = 0  # the signal that set it, if one did in this process


@contextlib.contextmanager
def _stop_at_a_step_boundary():
    """While training: the first Ctrl-C (SIGINT) or SIGTERM only sets the event it yields, which the loop
    checks after each step, so the checkpoint written on the way out is never one whose save was cut in
    half; a second one interrupts at once (Ctrl-C) or terminates (SIGTERM). Kubernetes, Slurm and
    preemptible VMs send SIGTERM some seconds before they kill: the run keeps the steps done since its
    last checkpoint. Outside the main thread (where Python delivers signals) it changes nothing."""
    stop = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    second = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}

    def first(signum, frame):
        stop.signum = signum
        stop.set()
        signal.signal(signum, second[signum])

    previous = {signum: signal.signal(signum, first) for signum in second}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def train(config: ExperimentConfig, run_dir: str | Path, log: Callable[[str], None] = print) -> TrainResult:
    """Train (or resume) the run in `run_dir` until `train.steps` or `train.max_minutes`."""
    return Trainer(config, run_dir, log).run_loop()
