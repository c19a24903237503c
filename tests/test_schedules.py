import json
import math
import pathlib
import re

import keras
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from keras_recipes.schedules import OneCycle, OneCycleMomentum

GOLDEN = json.loads((pathlib.Path(__file__).parent / "golden" / "one_cycle_torch.json").read_text())
CASES = GOLDEN["cases"]
SHARED = ("total_steps", "pct_start", "anneal_strategy", "three_phase")


def _schedules(case):
    case = dict(case)
    shared = {k: case[k] for k in SHARED}
    lr = OneCycle(case["max_lr"], div_factor=case.get("div_factor", 25.0),
                  final_div_factor=case.get("final_div_factor", 1e4), **shared)
    momentum = OneCycleMomentum(base_momentum=case.get("base_momentum", 0.85),
                                max_momentum=case.get("max_momentum", 0.95), **shared)
    return lr, momentum


def _evaluate(schedule, steps):
    return keras.ops.convert_to_numpy(schedule(keras.ops.convert_to_tensor(steps)))


@pytest.mark.parametrize("golden", CASES, ids=lambda g: json.dumps(g["case"], sort_keys=True))
def test_matches_pytorch_one_cycle_lr_at_every_step(golden):
    lr, momentum = _schedules(golden["case"])
    steps = np.arange(golden["case"]["total_steps"])
    np.testing.assert_allclose(_evaluate(lr, steps), golden["learning_rates"], rtol=1e-5, atol=0)
    np.testing.assert_allclose(_evaluate(momentum, steps), golden["momenta"], rtol=0, atol=1e-6)


def test_scalar_step_matches_vectorised_and_python_ints():
    lr = OneCycle(0.1, total_steps=100)
    assert float(lr(0)) == pytest.approx(0.004, rel=1e-6)
    assert float(lr(29)) == pytest.approx(0.1, rel=1e-6)
    assert float(lr(50)) == pytest.approx(float(_evaluate(lr, np.array([50]))[0]))


@pytest.mark.parametrize("three_phase", [False, True])
def test_holds_final_value_past_the_end_instead_of_failing(three_phase):
    lr = OneCycle(0.1, total_steps=50, three_phase=three_phase)
    momentum = OneCycleMomentum(total_steps=50, three_phase=three_phase)
    past = _evaluate(lr, np.array([49, 50, 51, 10_000]))
    np.testing.assert_allclose(past, lr.final_learning_rate, rtol=1e-5)
    np.testing.assert_allclose(_evaluate(momentum, np.array([49, 60, 10_000])), 0.95, atol=1e-7)


def test_start_step_shifts_the_cycle():
    plain = OneCycle(0.1, total_steps=40)
    shifted = OneCycle(0.1, total_steps=40, start_step=25)
    np.testing.assert_allclose(_evaluate(shifted, np.arange(25, 65)),
                               _evaluate(plain, np.arange(40)), rtol=1e-6)
    # Before its start the cycle holds its initial value.
    np.testing.assert_allclose(_evaluate(shifted, np.array([0, 10])), plain.initial_learning_rate,
                               rtol=1e-6)


@pytest.mark.parametrize("cls, kwargs", [
    (OneCycle, dict(max_learning_rate=0.3, total_steps=77, pct_start=0.2, anneal_strategy="linear",
                    div_factor=10.0, final_div_factor=50.0, three_phase=True, start_step=5)),
    (OneCycleMomentum, dict(total_steps=77, pct_start=0.4, base_momentum=0.8, max_momentum=0.9,
                            three_phase=True, start_step=3)),
])
def test_config_round_trip_keeps_every_argument(cls, kwargs):
    schedule = cls(**kwargs)
    config = schedule.get_config()
    for key, value in kwargs.items():
        assert config[key] == value
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(restored) is cls
    assert restored.get_config() == config
    steps = np.arange(90)
    np.testing.assert_array_equal(_evaluate(restored, steps), _evaluate(schedule, steps))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(total_steps=0), ValueError,
     "Argument `total_steps` must be a positive integer. Received: total_steps=0"),
    (dict(total_steps=10.5), TypeError,
     "Argument `total_steps` must be a positive integer. Received: total_steps=10.5"),
    (dict(total_steps=100, pct_start=1.5), ValueError,
     "Argument `pct_start` must be in the range (0, 1). Received: pct_start=1.5"),
    (dict(total_steps=100, pct_start=0.0), ValueError,
     "Argument `pct_start` must be in the range (0, 1). Received: pct_start=0.0"),
    (dict(total_steps=100, anneal_strategy="cosine"), ValueError,
     "Argument `anneal_strategy` must be one of 'cos', 'linear'. Received: "
     "anneal_strategy='cosine'. Did you mean 'cos'?"),
    (dict(total_steps=100, three_phase="yes"), TypeError,
     "Argument `three_phase` must be a bool (True or False). Received: three_phase='yes'"),
    (dict(total_steps=100, div_factor=0), ValueError,
     "Argument `div_factor` must be a number > 0. Received: div_factor=0.0"),
    (dict(total_steps=100, final_div_factor=-1), ValueError,
     "Argument `final_div_factor` must be a number > 0. Received: final_div_factor=-1.0"),
    (dict(total_steps=100, max_learning_rate=float("nan")), ValueError,
     "Argument `max_learning_rate` must be a number > 0. Received: max_learning_rate=nan"),
    (dict(total_steps=2, pct_start=0.5), ValueError,
     "Argument `total_steps` must be large enough that every phase lasts at least one step "
     "with pct_start=0.5, three_phase=False. Received: total_steps=2 (a phase of zero length"),
])
def test_one_cycle_rejects_bad_arguments_at_construction(kwargs, error, message):
    kwargs = {"max_learning_rate": 0.1, **kwargs}
    with pytest.raises(error, match="^" + re.escape(message)):
        OneCycle(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(base_momentum=1.0), "Argument `base_momentum` must be in the range [0, 1). "
     "Received: base_momentum=1.0"),
    (dict(base_momentum=0.96), "Argument `base_momentum` must be <= max_momentum=0.95. "
     "Received: base_momentum=0.96"),
])
def test_momentum_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        OneCycleMomentum(total_steps=100, **kwargs)


def _torch_formula(case, step):
    """PyTorch's OneCycleLR.get_lr, transcribed, in float64."""
    total, pct = case["total_steps"], case["pct_start"]
    initial = case["max_lr"] / case["div_factor"]
    final = initial / case["final_div_factor"]
    if case["three_phase"]:
        phases = [(pct * total - 1, initial, case["max_lr"]),
                  (2 * pct * total - 2, case["max_lr"], initial), (total - 1, initial, final)]
    else:
        phases = [(pct * total - 1, initial, case["max_lr"]), (total - 1, case["max_lr"], final)]
    start = 0.0
    for i, (end, a, b) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            frac = (step - start) / (end - start)
            if case["anneal_strategy"] == "cos":
                return b + (a - b) / 2.0 * (math.cos(math.pi * frac) + 1)
            return (b - a) * frac + a
        start = end


@settings(max_examples=40, deadline=None)
@given(
    total_steps=st.integers(10, 5000),
    pct_start=st.floats(0.05, 0.45),
    anneal_strategy=st.sampled_from(["cos", "linear"]),
    three_phase=st.booleans(),
    max_lr=st.floats(1e-4, 10.0),
    div_factor=st.floats(1.5, 100.0),
    final_div_factor=st.floats(1.5, 1e5),
)
def test_any_valid_arguments_give_finite_bounded_values_equal_to_the_pytorch_formula(**case):
    # A warm-up ending at step 0 (pct_start * total_steps == 1) is refused by design (see
    # test_one_cycle_rejects_bad_arguments_at_construction); it is not a valid argument set.
    assume(case["pct_start"] * case["total_steps"] != 1)
    schedule = OneCycle(case["max_lr"], case["total_steps"], case["pct_start"],
                        case["anneal_strategy"], case["div_factor"], case["final_div_factor"],
                        case["three_phase"])
    steps = np.arange(case["total_steps"])
    values = _evaluate(schedule, steps).astype("float64")
    assert np.all(np.isfinite(values))
    lowest = schedule.final_learning_rate
    assert values.min() >= lowest * (1 - 1e-5) and values.max() <= case["max_lr"] * (1 + 1e-5)
    expected = np.array([_torch_formula(case, s) for s in steps])
    np.testing.assert_allclose(values, expected, rtol=2e-5)
    _assert_phase_shapes(values, case, schedule.initial_learning_rate)


def _assert_phase_shapes(values, case, initial):
    """Monotone within each phase: rising in warm-up, then falling; with three phases
    the second falls from the peak to the initial rate and the third from there on."""
    total, pct, tolerance = case["total_steps"], case["pct_start"], 1e-6 * case["max_lr"]
    steps = np.arange(total)
    ends = [pct * total - 1] + ([2 * pct * total - 2] if case["three_phase"] else []) + [total]
    starts = [-1] + ends[:-1]
    for phase, (start, end) in enumerate(zip(starts, ends)):
        diffs = np.diff(values[(steps > start) & (steps <= end)])
        if phase == 0:
            assert np.all(diffs >= -tolerance), f"warm-up falls: {diffs.min()}"
        else:
            assert np.all(diffs <= tolerance), f"phase {phase + 1} rises: {diffs.max()}"
    if case["three_phase"]:
        middle, last = values[(steps > ends[0]) & (steps <= ends[1])], values[steps > ends[1]]
        # (A short cycle can leave a phase without a whole step: nothing to check there.)
        if middle.size:
            assert middle.min() >= initial * (1 - 1e-5), "phase 2 falls below the initial rate"
        if last.size:
            assert last.max() <= initial * (1 + 1e-5), "phase 3 starts above the initial rate"


class _ThreePhaseSkipsTheInitialRate(OneCycle):
    """A broken three-phase cycle: down to the final rate in phase 2, back up in phase 3."""

    def _phase_values(self):
        initial, peak, final = (self.initial_learning_rate, self.max_learning_rate,
                                self.final_learning_rate)
        return [(initial, peak), (peak, final), (final, initial)]


def test_the_phase_shape_check_rejects_a_wrong_three_phase_cycle():
    case = dict(total_steps=200, pct_start=0.25, three_phase=True, max_lr=0.1)
    broken = _ThreePhaseSkipsTheInitialRate(0.1, 200, pct_start=0.25, three_phase=True)
    values = _evaluate(broken, np.arange(200)).astype("float64")
    with pytest.raises(AssertionError, match="phase 3 rises"):
        _assert_phase_shapes(values, case, broken.initial_learning_rate)
    right = OneCycle(0.1, 200, pct_start=0.25, three_phase=True)
    _assert_phase_shapes(_evaluate(right, np.arange(200)).astype("float64"), case,
                         right.initial_learning_rate)


def _followed(*schedules):
    """Builds an optimizer of ours that follows `schedules`: they then read its state."""
    from keras_recipes.optimizers import Adam

    learning_rate, beta_1 = schedules
    optimizer = Adam(learning_rate, beta_1=beta_1)
    optimizer.build([keras.Variable(np.zeros(3, "float32"))])
    return optimizer


@pytest.mark.parametrize("golden", CASES, ids=lambda g: json.dumps(g["case"], sort_keys=True))
def test_schedules_reading_optimizer_state_give_the_same_values_to_the_last_bit(golden):
    constants, state = _schedules(golden["case"]), _schedules(golden["case"])
    _followed(*state)
    assert all(s.state is not None for s in state) and all(s.state is None for s in constants)
    steps = np.arange(golden["case"]["total_steps"] + 5)
    for plain, stateful in zip(constants, state):
        np.testing.assert_array_equal(_evaluate(stateful, steps), _evaluate(plain, steps))


@pytest.mark.parametrize("three_phase", [False, True])
def test_set_span_and_peak_give_the_schedule_built_with_them(three_phase):
    lr = OneCycle(0.1, total_steps=100, pct_start=0.25, three_phase=three_phase)
    momentum = OneCycleMomentum(total_steps=100, pct_start=0.25, three_phase=three_phase)
    optimizer = _followed(lr, momentum)
    state_before = [keras.ops.convert_to_numpy(s.state) for s in (lr, momentum)]
    lr.set_span(60, 7)
    lr.set_max_learning_rate(0.3)
    momentum.set_span(60, 7)
    expected_lr = OneCycle(0.3, total_steps=60, pct_start=0.25, three_phase=three_phase,
                           start_step=7)
    expected_momentum = OneCycleMomentum(total_steps=60, pct_start=0.25,
                                         three_phase=three_phase, start_step=7)
    assert lr.get_config() == expected_lr.get_config()
    assert momentum.get_config() == expected_momentum.get_config()
    steps = np.arange(80)
    np.testing.assert_array_equal(_evaluate(lr, steps), _evaluate(expected_lr, steps))
    np.testing.assert_array_equal(_evaluate(momentum, steps), _evaluate(expected_momentum, steps))
    # The same optimizer variables, with new values.
    assert [v.path for v in optimizer.variables].count(lr.state.path) == 1
    assert not np.array_equal(keras.ops.convert_to_numpy(lr.state), state_before[0])


def test_a_span_too_short_is_refused_and_leaves_the_schedule_as_it_was():
    lr = OneCycle(0.1, total_steps=100, pct_start=0.5)
    _followed(lr, OneCycleMomentum(100))
    state = keras.ops.convert_to_numpy(lr.state)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `total_steps` must be large enough that every phase lasts at least one "
            "step with pct_start=0.5, three_phase=False. Received: total_steps=2")):
        lr.set_span(2, 0)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `max_learning_rate` must be a number > 0. Received: max_learning_rate=0.0")):
        lr.set_max_learning_rate(0.0)
    assert (lr.total_steps, lr.start_step, lr.max_learning_rate) == (100, 0, 0.1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(lr.state), state)
