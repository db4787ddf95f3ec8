"""The Transformer's optimizer: Adam on the inverse-square-root schedule ("Attention Is All You Need")."""

from __future__ import annotations

import keras

from translator.schedules import Cooldown, InverseSqrtSchedule


def transformer_adam(
    d_model: int,
    warmup_steps: int = 4000,
    learning_rate: float = 2.0,
    beta_2: float = 0.98,
    clip_norm: float = 0.0,
    epsilon: float = 1e-9,
    cooldown: Cooldown | None = None,
) -> keras.optimizers.Adam:
    """Adam(β1 0.9, β2 `beta_2`, ε `epsilon`) whose learning rate is `learning_rate` · d_model^-0.5 ·
    min(step^-0.5, step · warmup^-1.5). `clip_norm` > 0 clips the global gradient norm. Usable in
    `model.compile(optimizer=...)` and by the training loop alike. A `cooldown` (its variables owned and
    set by the caller) brings the rate down to zero at the end of a run."""
    return keras.optimizers.Adam(
        learning_rate=InverseSqrtSchedule(d_model, warmup_steps, learning_rate, cooldown),
        beta_1=0.9,
        beta_2=beta_2,
        epsilon=epsilon,
        global_clipnorm=clip_norm or None,
    )
