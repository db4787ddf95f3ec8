"""Training end to end on the tiny preset: learning, checkpoints, resuming, config guards."""

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import checkpoint_weights
from translator.config import load_config
from translator.errors import TranslatorError
from translator.inference import Translator
from translator.rundir import RunDirectory
from translator.training import train

pytestmark = pytest.mark.slow


def test_tiny_run_learns_and_writes_its_run_directory(trained_run):
    run = RunDirectory(trained_run)
    assert (trained_run / "config.yaml").exists() and (trained_run / "tokenizer" / "joint.model").exists()
    assert tf.train.latest_checkpoint(run.checkpoint_dir).endswith("ckpt-40")
    assert any((trained_run / "logs").glob("events.out.tfevents.*"))
    assert list((trained_run / "cache").glob("*.npz"))
    assert run.load_config().train.steps == 40 and Translator.from_run_dir(run.path).model.count_params() > 0


def test_resume_continues_from_the_last_checkpoint(seeded_run):
    tmp_path = seeded_run()
    lines = []
    config = load_config("tiny", ["train.steps=20", "train.checkpoint_every=10", "train.log_every=5"])
    first = train(config, tmp_path, log=lines.append)
    assert first.step == 20 and "finished at step 20 (step limit)" in lines[-1]
    weights_after_20 = [w.copy() for w in Translator.from_run_dir(tmp_path, "latest").model.get_weights()]

    lines.clear()
    longer = load_config("tiny", ["train.steps=30", "train.checkpoint_every=10", "train.log_every=5"])
    second = train(longer, tmp_path, log=lines.append)
    assert any(line.startswith("resumed from step 20") for line in lines)
    assert second.step == 30 and "finished at step 30" in lines[-1]
    assert first.loss > 0 and np.isfinite(second.loss)
    weights_after_30 = Translator.from_run_dir(tmp_path, "latest").model.get_weights()
    assert any(np.abs(a - b).max() > 0 for a, b in zip(weights_after_20, weights_after_30))


def test_loss_goes_down(seeded_run):
    lines = []
    config = load_config("tiny", ["train.steps=60", "train.log_every=10", "train.learning_rate=2.0"])
    train(config, seeded_run(), log=lines.append)
    losses = [float(line.split("| loss ")[1].split()[0]) for line in lines if "| loss " in line]
    assert losses[-1] < losses[0] - 1.0


def test_a_run_directory_refuses_another_model(trained_run):
    other = load_config("tiny", ["model.d_model=64"])
    with pytest.raises(TranslatorError, match="has model.d_model=32 but this command asks for 64"):
        train(other, trained_run)


def test_time_budget_stops_training(seeded_run):
    lines = []
    config = load_config("tiny", ["train.steps=100000", "train.max_minutes=0.05"])
    result = train(config, seeded_run(), log=lines.append)
    assert result.step < 100000 and "time budget" in lines[-1]


def _dev_evaluations(lines):
    evaluations = [line for line in lines if "dev BLEU" in line]
    return [(int(line.split()[1]), float(line.split("dev BLEU ")[1].split()[0])) for line in evaluations]


def test_dev_bleu_every_n_steps_and_at_the_end_keeps_the_best(seeded_run):
    tmp_path = seeded_run()
    lines = []
    config = load_config("tiny", ["train.steps=25", "train.eval_every=10"])
    result = train(config, tmp_path, log=lines.append)
    evaluations = _dev_evaluations(lines)
    assert [step for step, _ in evaluations] == [10, 20, 25]  # the final weights are scored too
    assert result.best_dev_bleu == pytest.approx(max(bleu for _, bleu in evaluations), abs=0.01)
    best = tf.train.latest_checkpoint(str(RunDirectory(tmp_path).best_dir))
    assert best is not None


def test_eval_every_zero_scores_dev_only_at_the_end_and_no_dev_never(seeded_run):
    lines = []
    train(load_config("tiny", ["train.steps=12", "train.eval_every=0"]), seeded_run("end"), log=lines.append)
    assert [step for step, _ in _dev_evaluations(lines)] == [12]
    lines.clear()
    result = train(load_config("tiny", ["train.steps=12", "data.dev="]), seeded_run("none"), log=lines.append)
    assert _dev_evaluations(lines) == [] and result.best_dev_bleu is None


def test_a_malformed_dev_file_fails_before_training(seeded_run, tmp_path):
    dev = tmp_path / "dev.tsv"
    dev.write_text("es\ten\nuno\tone\ndos sin tabulador\n", encoding="utf-8")
    lines = []
    with pytest.raises(TranslatorError, match=r"dev\.tsv.*line 3"):
        train(load_config("tiny", [f"data.dev=tsv:{dev}"]), seeded_run(), log=lines.append)
    assert not any("| loss " in line for line in lines)


def test_accumulated_batches_make_one_update_on_their_union(seeded_run):
    import keras

    from translator.losses import smoothed_cross_entropy_sum
    from translator.training import Trainer

    config = load_config("tiny", ["train.accumulate_steps=2", "train.batch_tokens=256"])
    trainer = Trainer(config, seeded_run(), log=lambda line: None)
    # Plain SGD with learning rate 1 (in the trainer's loss-scale guard): the update is the gradient.
    trainer.optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(1.0), initial_scale=1.0)
    variables = trainer.model.trainable_variables
    trainer.optimizer.build(variables)
    before = [v.numpy() for v in variables]
    peek = trainer._datasets()
    batches = [next(peek), next(peek)]
    assert batches[0][1].shape != batches[1][1].shape or not np.array_equal(batches[0][1], batches[1][1])

    loss_sum, tokens = trainer._train_step_fn()(trainer._datasets())
    after = [v.numpy() for v in variables]

    for variable, value in zip(variables, before):
        variable.assign(value)
    with tf.GradientTape() as tape:
        sums, counts = zip(*[smoothed_cross_entropy_sum(y, trainer.model(x, training=True), 0.1) for x, y in batches])
        union_loss = tf.add_n(sums) / tf.add_n(counts)
    gradients = tape.gradient(union_loss, variables)
    assert float(tokens) == float(tf.add_n(counts))
    assert abs(float(loss_sum / tokens) - float(union_loss)) <= 1e-5
    for new, old, gradient in zip(after, before, gradients):
        np.testing.assert_allclose(new, old - gradient.numpy(), atol=1e-5)


def test_plot_reads_the_logs_and_draws_both_curves(trained_run, tmp_path):
    from translator.curves import plot_curves, read_scalars

    scalars = read_scalars(str(trained_run))
    assert [step for step, _ in scalars["train/loss"]] == [1, 10, 20, 30, 40]
    assert [step for step, _ in scalars["dev/bleu"]] == [40]
    output = plot_curves(str(trained_run), str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and output.endswith("curves.png")


def test_separate_tokenizers_train_and_export_without_shared_embeddings(tmp_path):
    import translator

    run_dir = tmp_path / "separate"
    translator.train(
        "tiny",
        run_dir,
        {"tokenizer.shared": False, "model.share_embeddings": False},
        train_steps=3,
        data_dev="",
        log=lambda line: None,
    )
    assert (run_dir / "tokenizer" / "source.model").exists() and (run_dir / "tokenizer" / "target.model").exists()
    model = translator.load(run_dir)
    assert not model.tokenizer.shared and model.model.source_embedding is not model.model.target_embedding
    exported = translator.load(model.export(tmp_path / "export"))
    assert exported.translate(["Y dijo Dios."]) == model.translate(["Y dijo Dios."])


def _file_hashes(folder) -> dict[str, str]:
    import hashlib

    files = [path for path in folder.rglob("*") if path.is_file()]
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


def test_fine_tuning_starts_from_the_parent_and_fits_the_new_data(trained_run, tmp_path, capsys):
    import yaml

    import translator
    from tests.conftest import read_corpus
    from translator.cli import main

    # The new domain: 32 short pairs the parent never trained on (short, so none is dropped by the tiny limits).
    pairs = [(s, t) for s, t in zip(*read_corpus("dev")) if len(s.split()) <= 14 and len(t.split()) <= 14][:32]
    sources, targets = map(list, zip(*pairs))
    corpus = tmp_path / "domain.tsv"
    corpus.write_text("es\ten\n" + "".join(f"{s}\t{t}\n" for s, t in zip(sources, targets)), encoding="utf-8")
    parent_files = _file_hashes(trained_run)
    parent = translator.load(trained_run)
    settings = {"data.train": f"tsv:{corpus}", "data.dev": "", "train.warmup_steps": 5, "train.learning_rate": 0.2}
    settings["train.log_every"] = 5
    child_dir, lines = tmp_path / "child", []
    result = translator.train(
        "tiny", child_dir, settings, train_steps=15, log=lines.append, init_from=f"{trained_run}:latest"
    )

    # The child's own run: step 0 to 15 (the parent is at step 40), a fresh schedule from the parent's weights.
    assert result.step == 15 and any(line.startswith("step      1/15") for line in lines), lines
    assert any(line.startswith(f"initialized from {trained_run}/checkpoints/ckpt-40 (latest") for line in lines)
    rates = [float(line.split("| lr ")[1].split()[0]) for line in lines if "| lr " in line]
    assert rates[0] < rates[1], lines  # warming up again (train.warmup_steps=5), not the parent's decay
    child = translator.load(child_dir)
    loss = {
        name: -np.mean([score.per_token for score in model.score(sources, targets)])
        for name, model in (("parent", parent), ("child", child))
    }
    assert loss["child"] < loss["parent"] - 0.2, loss  # per-token loss on the new data: 5.10 → 4.56 once
    joint = "tokenizer/joint.model"
    assert (child_dir / joint).read_bytes() == (trained_run / joint).read_bytes()  # the parent's tokenizer
    recorded = yaml.safe_load((child_dir / "config.yaml").read_text(encoding="utf-8"))["train"]
    assert recorded["init_from"] == str(trained_run) and recorded["init_checkpoint"].endswith("checkpoints/ckpt-40")
    assert _file_hashes(trained_run) == parent_files  # the parent is only read

    # A second `train` resumes the child and says that --init-from no longer applies.
    lines.clear()
    again = translator.train("tiny", child_dir, settings, train_steps=18, log=lines.append, init_from=str(trained_run))
    assert again.step == 18 and any("resuming it, not re-initializing" in line for line in lines), lines
    assert any(line.startswith("resumed from step 15") for line in lines)
    assert yaml.safe_load((child_dir / "config.yaml").read_text(encoding="utf-8"))["train"] == {
        **recorded,
        "steps": 18,
    }
    capsys.readouterr()
    assert main(["info", "--run-dir", str(child_dir)]) == 0
    assert f"fine-tuned from: {trained_run} ({recorded['init_checkpoint']})" in capsys.readouterr().out


@pytest.mark.parametrize(
    "setting, message",
    [
        ("tokenizer.vocab_size=500", "tokenizer.vocab_size=500 but the parent has 1000: a fine-tuned run keeps"),
        ("model.d_model=64", "model.d_model=64 but the parent has 32"),
    ],
)
def test_fine_tuning_refuses_another_tokenizer_or_model_in_one_line(trained_run, tmp_path, setting, message):
    import dataclasses

    config = load_config("tiny", [setting])
    config = config.replace(train=dataclasses.replace(config.train, init_from=str(trained_run)))
    with pytest.raises(TranslatorError, match=message) as error:
        train(config, tmp_path / "child", log=lambda line: None)
    assert "\n" not in str(error.value) and not (tmp_path / "child" / "config.yaml").exists()


def test_fixed_batching_logs_its_shapes_averages_and_resumes_exactly(seeded_run):
    """`train.batching=fixed`: the shape count is logged before the first step; a run stopped at step 3
    and resumed ends with the very same state as one trained straight to step 6. Averaging works, and a
    run with fewer checkpoints than `train.average_last` averages those it has, or with one, none, and
    still finishes."""
    settings = ["train.batching=fixed", "model.dropout=0.1", "data.dev=", "train.checkpoint_every=3"]
    lines = []
    straight, resumed = seeded_run("straight"), seeded_run("resumed")
    train(load_config("tiny", [*settings, "train.steps=6", "train.average_last=3"]), straight, log=lines.append)
    shapes = next(line for line in lines if line.startswith("batch shapes: "))
    assert lines.index(shapes) < next(i for i, line in enumerate(lines) if "| loss " in line)
    assert shapes.endswith("(fixed batching, at most 16, chosen before training)")  # no XLA: nothing to compile
    assert int(shapes.split()[2]) <= 16
    averaged = next(line for line in lines if line.startswith("averaged the last "))
    assert averaged.startswith("averaged the last 2 checkpoints (train.average_last is 3; the run has 2): ")
    assert tf.train.latest_checkpoint(str(straight / "checkpoints" / "averaged")).endswith("ckpt-6")
    assert lines[-1].startswith("finished at step 6 ")

    lines.clear()
    train(load_config("tiny", [*settings, "train.steps=3", "train.average_last=2"]), resumed, log=lines.append)
    assert "no averaged checkpoint: the run has 1 checkpoint, train.average_last asks for 2" in lines
    assert lines[-1].startswith("finished at step 3 ") and not (resumed / "checkpoints" / "averaged").exists()
    lines.clear()
    train(load_config("tiny", [*settings, "train.steps=6"]), resumed, log=lines.append)
    assert any(line.startswith("resumed from step 3") for line in lines)
    expected = checkpoint_weights(tf.train.latest_checkpoint(str(straight / "checkpoints")))
    actual = checkpoint_weights(tf.train.latest_checkpoint(str(resumed / "checkpoints")))
    assert expected.keys() == actual.keys() and len(expected) > 20
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def test_packed_batching_and_a_cooldown_log_their_plans_average_and_resume_exactly(seeded_run):
    """`train.batching=packed`: one or two shapes, logged before the first step. `train.cooldown=0.5` of 6
    steps: the rate falls to 0 over steps 4-6 and the run stops there. A run interrupted at step 5 (the
    packed stream skips what it already took; the cooldown plan comes back from the checkpoint) ends in
    the very same state as a straight one; more steps later do not reopen a finished cooldown."""
    settings = ["train.batching=packed", "train.pack_width=32", "model.dropout=0.1", "data.dev="]
    settings += ["train.checkpoint_every=3", "train.cooldown=0.5", "train.steps=6", "train.log_every=1"]
    lines = []
    straight, resumed = seeded_run("straight"), seeded_run("resumed")
    train(load_config("tiny", [*settings, "train.average_last=2"]), straight, log=lines.append)
    shapes = next(line for line in lines if line.startswith("batch shapes: "))
    assert lines.index(shapes) < next(i for i, line in enumerate(lines) if "| loss " in line)
    assert shapes.startswith("batch shapes: 2 (packed batching, pairs packed into rows of 32 tokens"), shapes
    assert (straight / "checkpoints" / "averaged").is_dir()
    assert "step 3 | cooldown: the learning rate falls linearly to 0 over the next 3 steps" in lines
    rates = [float(line.split("| lr ")[1].split()[0]) for line in lines if "| lr " in line]
    # Logged after step k: the rate of update k (0-based), in warm-up (∝ k + 1) times the cooldown's
    # factor, 1 for update 3, then 2/3, 1/3, 0.
    assert rates[3] / rates[2] == pytest.approx(5 / 4 * 2 / 3, rel=2e-3)  # logged with 3 digits
    assert rates[4] / rates[2] == pytest.approx(6 / 4 / 3, rel=2e-3)
    assert rates[5] == 0.0
    assert "finished at step 6 (learning rate cooled down to 0)" in lines[-1]

    def interrupt_at_step_5(line):
        if line.startswith("step      5/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(load_config("tiny", settings), resumed, log=interrupt_at_step_5)
    lines.clear()
    train(load_config("tiny", settings), resumed, log=lines.append)
    assert any(line.startswith("resumed from step 5") for line in lines)
    assert not any("cooldown:" in line for line in lines)  # the plan came back with the checkpoint
    expected = checkpoint_weights(tf.train.latest_checkpoint(str(straight / "checkpoints")))
    actual = checkpoint_weights(tf.train.latest_checkpoint(str(resumed / "checkpoints")))
    assert {"cooldown/start/.ATTRIBUTES/VARIABLE_VALUE", "cooldown/length/.ATTRIBUTES/VARIABLE_VALUE"} <= set(expected)
    assert expected.keys() == actual.keys() and len(expected) > 20
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)

    lines.clear()
    train(load_config("tiny", [*settings, "train.steps=20"]), resumed, log=lines.append)
    assert "finished at step 6 (nothing to do: the run reached its limit)" in lines[-1]


def test_a_1_sqrt_cooldown_reaches_the_optimizer_and_says_so(seeded_run):
    """`train.cooldown_shape=1-sqrt` flows from the config to the optimizer's rate: over 4 cooldown updates
    the factor is 1 − √(1/4), 1 − √(1/2), 1 − √(3/4), then 0, on top of the warm-up's (k + 1)."""
    lines = []
    settings = ["train.cooldown=0.5", "train.cooldown_shape=1-sqrt", "train.steps=8", "train.log_every=1", "data.dev="]
    train(load_config("tiny", settings), seeded_run(), log=lines.append)
    assert (
        "step 4 | cooldown: the learning rate falls as 1 − √(share of the cooldown done) to 0 over the next 4 steps"
        in lines
    )
    rates = [float(line.split("| lr ")[1].split()[0]) for line in lines if "| lr " in line]
    for update, done in ((5, 1 / 4), (6, 1 / 2), (7, 3 / 4)):  # logged after step k: the rate of update k
        assert rates[update - 1] / rates[0] == pytest.approx((update + 1) / 2 * (1 - done**0.5), rel=3e-3)
    assert rates[-1] == 0.0


@pytest.mark.parametrize("batching", ["fixed", "packed"])
def test_early_stopping_with_fixed_shapes(seeded_run, batching):
    """With a learning rate of 0 the dev BLEU cannot improve: patience 1 stops at the second evaluation."""
    lines = []
    settings = [f"train.batching={batching}", "train.learning_rate=0", "train.eval_every=2", "train.early_stopping=1"]
    result = train(load_config("tiny", [*settings, "train.steps=20"]), seeded_run(), log=lines.append)
    assert [step for step, _ in _dev_evaluations(lines)] == [2, 4] and result.step == 4
    assert "early stopping (1 evaluations without improvement)" in lines[-1]
