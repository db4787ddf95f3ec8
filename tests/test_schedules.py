"""The learning-rate schedule and its cooldown: values, the untouched rate before a cooldown, config round trip."""

import keras
import numpy as np
import pytest

from translator.schedules import NEVER, Cooldown, InverseSqrtSchedule


def _rates(schedule, steps):
    return np.array([float(schedule(step)) for step in steps])


def test_inverse_sqrt_warms_up_linearly_then_decays_as_one_over_root_step():
    schedule = InverseSqrtSchedule(d_model=64, warmup_steps=10, scale=2.0)
    rates = _rates(schedule, range(40))
    peak = 2.0 * 64**-0.5 * 10**-0.5
    np.testing.assert_allclose(rates[9], peak, rtol=1e-6)  # update 9 counts step 10, the end of warm-up
    np.testing.assert_allclose(rates[:10], peak * np.arange(1, 11) / 10, rtol=1e-6)
    np.testing.assert_allclose(rates[10:], peak * np.sqrt(10 / np.arange(11, 41)), rtol=1e-6)


def test_cooldown_falls_linearly_to_zero_and_leaves_the_rate_alone_until_it_begins():
    plain = InverseSqrtSchedule(d_model=64, warmup_steps=10, scale=2.0)
    cooldown = Cooldown()
    cooled = InverseSqrtSchedule(d_model=64, warmup_steps=10, scale=2.0, cooldown=cooldown)
    steps = range(30)
    assert not cooldown.started
    np.testing.assert_array_equal(_rates(cooled, steps), _rates(plain, steps))  # exactly, not just close

    cooldown.begin(20, 5)
    assert cooldown.started and cooldown.end == 25
    factor = np.array([float(cooldown.factor(step)) for step in steps])
    np.testing.assert_allclose(factor, np.clip((25 - np.arange(30)) / 5, 0, 1), rtol=0, atol=1e-7)
    np.testing.assert_array_equal(_rates(cooled, range(20)), _rates(plain, range(20)))
    np.testing.assert_allclose(_rates(cooled, steps), _rates(plain, steps) * factor, rtol=1e-6)
    assert float(cooled(25)) == 0.0 and float(cooled(10**6)) == 0.0


def test_a_1_sqrt_cooldown_falls_as_one_minus_root_of_the_share_done():
    """Exactly 1 before the cooldown and 0 at its end, like the linear one; in between 1 − √p, so below
    the linear factor everywhere inside (√p > p for p in (0, 1))."""
    linear, root = Cooldown(), Cooldown(shape="1-sqrt")
    for cooldown in (linear, root):
        cooldown.begin(20, 8)
    steps = np.arange(40)
    done = np.clip((steps - 20) / 8, 0, 1)
    factor = np.array([float(root.factor(step)) for step in steps])
    np.testing.assert_allclose(factor, 1 - np.sqrt(done), rtol=0, atol=1e-6)
    assert (factor[:21] == 1.0).all() and (factor[28:] == 0.0).all()
    inside = slice(21, 28)
    assert (factor[inside] < np.array([float(linear.factor(step)) for step in steps])[inside]).all()
    with pytest.raises(ValueError, match="cooldown shape must be one of linear, 1-sqrt"):
        Cooldown(shape="cosine")


def test_schedule_config_round_trips_with_its_cooldown_plan():
    cooldown = Cooldown()
    cooldown.begin(100, 40)
    schedule = InverseSqrtSchedule(d_model=64, warmup_steps=10, scale=0.5, cooldown=cooldown)
    config = keras.saving.serialize_keras_object(schedule)
    again = keras.saving.deserialize_keras_object(config)
    assert again.get_config() == schedule.get_config()
    assert again.get_config()["cooldown"] == {"start": 100, "length": 40}
    np.testing.assert_array_equal(_rates(again, range(0, 200, 7)), _rates(schedule, range(0, 200, 7)))
    plain = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(InverseSqrtSchedule(64)))
    assert plain.cooldown is None and "cooldown" not in plain.get_config()
    assert Cooldown().start.numpy() == NEVER
    root = Cooldown(shape="1-sqrt")
    root.begin(100, 40)
    schedule = InverseSqrtSchedule(d_model=64, warmup_steps=10, scale=0.5, cooldown=root)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert again.get_config()["cooldown"] == {"start": 100, "length": 40, "shape": "1-sqrt"}
    np.testing.assert_array_equal(_rates(again, range(90, 150, 3)), _rates(schedule, range(90, 150, 3)))
