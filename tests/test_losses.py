"""The label-smoothed loss: its value and gradient against the formula, padding left out."""

import numpy as np
import pytest
import tensorflow as tf

from translator.losses import smoothed_cross_entropy, smoothed_cross_entropy_sum

LABELS = tf.constant([[4, 1, 7, 0], [2, 2, 0, 0]])  # 0 is padding
LOGITS = tf.random.stateless_normal([2, 4, 9], seed=[3, 4]) * 3.0


def log_softmax_and_targets(labels: np.ndarray, logits: np.ndarray, smoothing: float):
    """(log softmax(z), q) in float64, with the smoothed target q = (1 - ε) one-hot + ε / V."""
    shifted = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    vocab = logits.shape[-1]
    return log_probs, smoothing / vocab + (1 - smoothing) * np.eye(vocab)[labels]


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_sum_and_count_match_the_formula_over_real_tokens(smoothing):
    total, count = smoothed_cross_entropy_sum(LABELS, LOGITS, smoothing)
    log_probs, targets = log_softmax_and_targets(LABELS.numpy(), LOGITS.numpy(), smoothing)
    per_token = -(targets * log_probs).sum(-1)
    real = LABELS.numpy() != 0
    assert count.numpy() == real.sum() == 5
    np.testing.assert_allclose(total.numpy(), per_token[real].sum(), rtol=1e-5)


def test_gradient_is_softmax_minus_smoothed_target_on_real_tokens():
    smoothing = 0.1
    with tf.GradientTape() as tape:
        tape.watch(LOGITS)
        total, _ = smoothed_cross_entropy_sum(LABELS, LOGITS, smoothing)
    gradient = tape.gradient(total, LOGITS).numpy()
    log_probs, targets = log_softmax_and_targets(LABELS.numpy(), LOGITS.numpy(), smoothing)
    expected = (np.exp(log_probs) - targets) * (LABELS.numpy() != 0)[..., None]
    np.testing.assert_allclose(gradient, expected, atol=1e-6)


def test_keras_loss_is_the_mean_over_real_tokens():
    loss = smoothed_cross_entropy(0.1)
    total, count = smoothed_cross_entropy_sum(LABELS, LOGITS, 0.1)
    np.testing.assert_allclose(loss(LABELS, LOGITS).numpy(), (total / count).numpy(), rtol=1e-6)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_loss_and_gradient_are_the_same_in_a_graph_and_under_xla(jit_compile):
    def loss_and_gradient(logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            total, _ = smoothed_cross_entropy_sum(LABELS, logits, 0.1)
        return total, tape.gradient(total, logits)

    eager = loss_and_gradient(LOGITS)
    compiled = tf.function(loss_and_gradient, jit_compile=jit_compile, autograph=False)(LOGITS)
    np.testing.assert_allclose(compiled[0].numpy(), eager[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(compiled[1].numpy(), eager[1].numpy(), atol=1e-6)
