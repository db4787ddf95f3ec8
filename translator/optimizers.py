"""The Transformer's optimizer: Adam on the inverse-square-root schedule ("Attention Is All You Need")."""

from __future__ import annotations

import keras
import tensorflow as tf

from translator.schedules import Cooldown, InverseSqrtSchedule


@keras.saving.register_keras_serializable(package="translator")
class FusedAdam(keras.optimizers.Adam):
    """Keras' Adam (same hyper-parameters, slots, checkpoints and config) whose update of each variable
    is TensorFlow's fused kernel, `ResourceApplyAdam`: one operation reading the gradient and the three
    tensors once, where Keras' `update_step` is a dozen element-wise operations, each a pass over memory
    and each an op to trace. Same formula (Kingma & Ba's with ε outside the root, as Keras); the kernel
    computes 1 − β in float32 where Keras rounds Python's 1 − β, so the two differ in the last bits of
    an update, not more. AMSGrad keeps Keras' update."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.constant(self.beta_1, dtype), tf.constant(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.constant(self.epsilon, dtype),
            grad=tf.cast(tf.convert_to_tensor(gradient), dtype),
        )


def _handle(variable) -> tf.Tensor:
    """The resource handle of a Keras or TensorFlow variable (inside a strategy's update: this device's)."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


def transformer_adam(
    d_model: int,
    warmup_steps: int = 4000,
    learning_rate: float = 2.0,
    beta_2: float = 0.98,
    clip_norm: float = 0.0,
    epsilon: float = 1e-9,
    cooldown: Cooldown | None = None,
) -> FusedAdam:
    """Adam(β1 0.9, β2 `beta_2`, ε `epsilon`) whose learning rate is `learning_rate` · d_model^-0.5 ·
    min(step^-0.5, step · warmup^-1.5). `clip_norm` > 0 clips the global gradient norm. Usable in
    `model.compile(optimizer=...)` and by the training loop alike. A `cooldown` (its variables owned and
    set by the caller) brings the rate down to zero at the end of a run."""
    return FusedAdam(
        learning_rate=InverseSqrtSchedule(d_model, warmup_steps, learning_rate, cooldown),
        beta_1=0.9,
        beta_2=beta_2,
        epsilon=epsilon,
        global_clipnorm=clip_norm or None,
    )
