"""The fused Adam: Keras' Adam's updates (to float rounding), its checkpoints and its config."""

import keras
import numpy as np
import tensorflow as tf

from tests.conftest import tiny_model
from translator.losses import smoothed_cross_entropy
from translator.optimizers import FusedAdam, transformer_adam
from translator.schedules import InverseSqrtSchedule

SHAPES = [(7, 5), (5,), (3, 4, 2)]
HYPER = dict(beta_1=0.9, beta_2=0.98, epsilon=1e-9)


def _gradients(updates: int, seed: int = 0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(shape).astype(np.float32) for shape in SHAPES] for _ in range(updates)]


def _start() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]


def _numpy_adam(start, gradients, rates, beta_1=0.9, beta_2=0.98, epsilon=1e-9) -> list[np.ndarray]:
    """Kingma & Ba's Adam with ε outside the root, in float64."""
    weights = [w.astype(np.float64) for w in start]
    m = [np.zeros_like(w) for w in weights]
    v = [np.zeros_like(w) for w in weights]
    for t, (grads, rate) in enumerate(zip(gradients, rates), start=1):
        alpha = rate * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        for i, g in enumerate(grads):
            m[i] += (g - m[i]) * (1 - beta_1)
            v[i] += (g * g - v[i]) * (1 - beta_2)
            weights[i] -= alpha * m[i] / (np.sqrt(v[i]) + epsilon)
    return weights


def _train(optimizer, start, gradients, compiled: bool) -> list[np.ndarray]:
    variables = [tf.Variable(w) for w in start]
    optimizer.build(variables)

    def apply(grads):
        optimizer.apply_gradients(zip(grads, variables))

    step = tf.function(apply, autograph=False) if compiled else apply
    for grads in gradients:
        step([tf.constant(g) for g in grads])
    return [v.numpy() for v in variables]


def test_fused_adam_makes_adams_updates_eagerly_and_in_a_graph():
    gradients, start = _gradients(5), _start()
    schedule = InverseSqrtSchedule(d_model=16, warmup_steps=3, scale=2.0)
    rates = [float(schedule(step)) for step in range(5)]
    reference = _numpy_adam(start, gradients, rates)
    keras_adam = _train(keras.optimizers.Adam(learning_rate=schedule, **HYPER), start, gradients, compiled=True)
    for compiled in (False, True):
        fused = _train(FusedAdam(learning_rate=schedule, **HYPER), start, gradients, compiled)
        for mine, theirs, exact, first in zip(fused, keras_adam, reference, start):
            moved = np.abs(exact - first).max()
            assert moved > 0.1  # the updates are not negligible against the tolerance
            np.testing.assert_allclose(mine, exact, rtol=0, atol=1e-6 * moved)
            np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-6 * moved)


def test_a_keras_adam_checkpoint_resumes_in_the_fused_adam(tmp_path):
    """Runs trained before the fused Adam keep their optimizer state: same slots, same checkpoint keys."""
    gradients, start = _gradients(4), _start()
    variables = [tf.Variable(w) for w in start]
    before = keras.optimizers.Adam(learning_rate=0.01, **HYPER)
    before.build(variables)
    for grads in gradients[:2]:
        before.apply_gradients(zip([tf.constant(g) for g in grads], variables))
    path = tf.train.Checkpoint(variables=variables, optimizer=before).write(str(tmp_path / "ckpt"))

    restored = [tf.Variable(np.zeros(shape, np.float32)) for shape in SHAPES]
    after = FusedAdam(learning_rate=0.01, **HYPER)
    after.build(restored)
    tf.train.Checkpoint(variables=restored, optimizer=after).read(path).assert_consumed()
    assert int(after.iterations.numpy()) == 2
    for grads in gradients[2:]:
        before.apply_gradients(zip([tf.constant(g) for g in grads], variables))
        after.apply_gradients(zip([tf.constant(g) for g in grads], restored))
    for mine, theirs in zip(restored, variables):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=0, atol=1e-6)


def test_transformer_adam_round_trips_through_keras_serialization():
    optimizer = transformer_adam(d_model=64, warmup_steps=10, learning_rate=2.0, beta_2=0.997, clip_norm=1.0)
    assert isinstance(optimizer, FusedAdam)
    copy = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(copy) is FusedAdam
    assert copy.get_config() == optimizer.get_config()
    assert float(copy.learning_rate) == float(optimizer.learning_rate)


def test_a_compiled_model_saves_and_resumes_its_fused_adam_in_a_keras_file(tmp_path):
    """`model.save` keeps the optimizer: the reloaded model's next `fit` step equals the original's."""
    rng = np.random.default_rng(2)
    features = {
        "source_ids": tf.constant(rng.integers(3, 60, (4, 7)), tf.int32),
        "target_input_ids": tf.constant(rng.integers(3, 60, (4, 6)), tf.int32),
    }
    labels = tf.constant(rng.integers(3, 60, (4, 6)), tf.int32)
    data = tf.data.Dataset.from_tensors((features, labels))
    model = tiny_model()
    model.compile(optimizer=transformer_adam(32, warmup_steps=5), loss=smoothed_cross_entropy(0.1))
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is FusedAdam and int(loaded.optimizer.iterations.numpy()) == 1
    for mine, theirs in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    loaded.fit(data, epochs=1, verbose=0, shuffle=False)
    moved = max(np.abs(a - b).max() for a, b in zip(model.get_weights(), tiny_model().get_weights()))
    assert moved > 1e-3
    for mine, theirs in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
