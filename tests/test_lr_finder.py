"""Tests of keras_recipes.lr_finder: the learning-rate range test and its suggestions."""

import re
import sys

import keras
import numpy as np
import pytest

from keras_recipes._keras_internals import learning_rate_object
from keras_recipes.lr_finder import (
    LRFinderResult,
    find_learning_rate,
    lag_free_losses,
    minimum,
    one_cycle,
    ramp_learning_rates,
    smooth_losses,
    steepest,
    valley,
)
from keras_recipes.schedules import OneCycle

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _regression_data(n=64, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x @ rng.normal(size=(d, 1)) + 0.5).astype("float32")
    return x, y


def _linear_model(optimizer, d=4, seed=0):
    model = keras.Sequential(
        [
            keras.Input((d,)),
            keras.layers.Dense(1, kernel_initializer=keras.initializers.RandomNormal(seed=seed)),
        ]
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _classifier(optimizer, seed=0, with_bomb=None, seeded_dropout=True):
    """A small MLP with BatchNorm and Dropout, so that every kind of state is present."""
    layers = [keras.Input((8,))]
    if with_bomb is not None:
        layers.append(with_bomb)
    layers += [
        keras.layers.Dense(
            16, use_bias=False, kernel_initializer=keras.initializers.HeNormal(seed=seed)
        ),
        keras.layers.BatchNormalization(),
        keras.layers.Activation("elu"),
        keras.layers.Dropout(0.2, seed=seed if seeded_dropout else None),
        keras.layers.Dense(3, activation="softmax",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1)),
    ]
    model = keras.Sequential(layers)
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        run_eagerly=with_bomb is not None,
    )
    return model


def _classification_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (np.argmax(x[:, :3], axis=1)).astype("int32")
    return x, y


def _state(model):
    """Every number the finder may touch: model variables, optimizer variables, metrics."""
    return (
        [np.array(v.numpy()) for v in model.variables],
        [np.array(v.numpy()) for v in model.optimizer.variables],
        [np.array(v.numpy()) for v in model.metrics_variables],
    )


def _assert_same_state(before, after):
    for group_before, group_after in zip(before, after):
        assert len(group_before) == len(group_after)
        for a, b in zip(group_before, group_after):
            np.testing.assert_array_equal(a, b)


class _Bomb(keras.layers.Layer):
    """Identity layer that raises `error` at its `at`-th training call (eager models only)."""

    def __init__(self, at, error, **kwargs):
        super().__init__(**kwargs)
        self.at, self.error, self.calls = at, error, 0

    def call(self, inputs, training=False):
        if training:
            self.calls += 1
            if self.calls == self.at:
                raise self.error
        return inputs


# ---------------------------------------------------------------------------
# Pure functions: golden values and synthetic curves
# ---------------------------------------------------------------------------


def test_ramp_learning_rates_is_geometric_from_min_to_max():
    lrs = ramp_learning_rates(1e-6, 1.0, 7)
    np.testing.assert_allclose(lrs, [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0], rtol=1e-12)


def test_smooth_losses_matches_the_debiased_recurrence():
    losses = [4.0, 2.0, 1.0]
    beta = 0.5
    # a_1 = 2, a_2 = 2, a_3 = 1.5; debias by 1 - beta^k: 0.5, 0.75, 0.875
    expected = [2.0 / 0.5, 2.0 / 0.75, 1.5 / 0.875]
    np.testing.assert_allclose(smooth_losses(losses, smoothing=beta), expected, rtol=1e-12)
    np.testing.assert_array_equal(smooth_losses(losses, smoothing=0.0), losses)
    # A constant curve stays constant (the debiasing removes the pull towards 0).
    np.testing.assert_allclose(smooth_losses([3.0] * 50), 3.0, rtol=1e-12)


def test_the_range_test_smooths_with_smooth_losses():
    """One smoothing: the curve the run stops on is `smooth_losses` of its raw losses."""
    x, y = _regression_data()
    result = find_learning_rate(_linear_model(keras.optimizers.SGD(0.01)), x, y,
                                num_steps=20, smoothing=0.9, seed=0)
    np.testing.assert_array_equal(result.smoothed_losses,
                                  smooth_losses(result.losses, smoothing=0.9))


@pytest.mark.parametrize("accumulation", [None, 2, 3])
def test_steps_are_optimizer_updates_under_gradient_accumulation(accumulation):
    """Golden values: loss (w - 1)^2 from w = 0, SGD with the ramp's rate per update.

    Every batch is the same, so the accumulated gradient is that of one batch, and
    the batches of a window all see the weights of the last update.
    """
    x = np.ones((8, 1), "float32")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, use_bias=False, kernel_initializer="zeros")])
    model.compile(keras.optimizers.SGD(gradient_accumulation_steps=accumulation), "mse")
    result = find_learning_rate(model, x, x, min_learning_rate=1e-2, max_learning_rate=0.5,
                                num_steps=6, batch_size=4, divergence_factor=None)
    lrs = ramp_learning_rates(1e-2, 0.5, 6)
    w, expected = 0.0, []
    for lr in lrs:
        expected.append((w - 1.0) ** 2)
        w -= lr * 2.0 * (w - 1.0)
    np.testing.assert_allclose(result.learning_rates, lrs)
    np.testing.assert_allclose(result.losses, expected, rtol=1e-5)
    assert float(model.layers[0].kernel.numpy()[0, 0]) == 0.0  # restored
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


def test_exponential_moving_average_is_restored():
    x, y = _regression_data()
    model = _linear_model(keras.optimizers.Adam(1e-3, use_ema=True))
    find_learning_rate(model, x, y, num_steps=5)  # builds the optimizer, EMA included
    before = [v.numpy().copy() for v in model.optimizer.variables]
    assert any("average" in v.path for v in model.optimizer.variables)
    find_learning_rate(model, x, y, num_steps=10, seed=0)
    for value, variable in zip(before, model.optimizer.variables):
        np.testing.assert_array_equal(value, variable.numpy())


def test_works_under_a_mixed_bfloat16_policy():
    x, y = _regression_data()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = _linear_model(keras.optimizers.SGD(0.01))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.layers[0].compute_dtype == "bfloat16"
    before = [v.numpy().copy() for v in model.variables]
    result = find_learning_rate(model, x, y, num_steps=10, seed=0)
    assert np.all(np.isfinite(result.losses)) and result.suggestion > 0
    for value, variable in zip(before, model.variables):
        np.testing.assert_array_equal(value, variable.numpy())


def _valley_curve():
    """Flat at 3 for 20 points, strictly down to 1 over the next 41, then up."""
    lrs = np.logspace(-6, 1, 100)
    losses = np.concatenate(
        [np.full(20, 3.0), np.linspace(2.95, 1.0, 41), np.linspace(1.2, 6.0, 39)]
    )
    return lrs, losses


def test_valley_on_a_synthetic_curve():
    lrs, losses = _valley_curve()
    # Longest strictly decreasing run: one flat point (index 19), then 20..60
    # (42 points, start 19, end 60); the suggestion is start + int(41/3) + int(41/6).
    assert valley(lrs, losses) == lrs[19 + 13 + 6]


def test_minimum_on_a_synthetic_curve():
    lrs, losses = _valley_curve()
    assert minimum(lrs, losses) == pytest.approx(lrs[60] / 10, rel=1e-12)


def test_steepest_on_a_synthetic_curve():
    lrs = np.logspace(-4, 0, 9)
    losses = np.array([2.0, 1.98, 1.9, 1.7, 1.0, 0.8, 0.7, 0.9, 3.0])
    # The biggest drop (0.7) is from index 3 to 4, equally spaced in log(lr).
    assert steepest(lrs, losses) == lrs[3]


def test_lag_free_losses_is_a_centred_average_over_decades():
    lrs = np.logspace(-4, 0, 9)  # 0.5 decades apart
    losses = [2.0, 2.0, 1.9, 1.5, 1.0, 0.6, 0.5, 0.9, 3.0]
    kept, averaged = lag_free_losses(lrs, losses, decades=0.5)  # one step either side
    np.testing.assert_array_equal(kept, lrs)
    np.testing.assert_allclose(averaged, [4.0 / 2, 5.9 / 3, 5.4 / 3, 4.4 / 3, 3.1 / 3,
                                          2.1 / 3, 2.0 / 3, 4.4 / 3, 3.9 / 2], rtol=1e-12)
    np.testing.assert_array_equal(lag_free_losses(lrs, losses, decades=0.0)[1], losses)
    # Two steps either side; a non-finite loss is left out with its learning rate.
    kept, averaged = lag_free_losses(lrs, losses[:4] + [np.nan] + losses[5:], decades=1.0)
    np.testing.assert_array_equal(kept, np.delete(lrs, 4))
    assert averaged[0] == pytest.approx((2.0 + 2.0 + 1.9) / 3, rel=1e-12)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `decades` must be a number >= 0. Received: decades=-1.0")):
        lag_free_losses(lrs, losses, decades=-1)


def test_one_cycle_is_a_fifth_of_the_lag_free_minimum():
    lrs = np.logspace(-4, 0, 9)
    losses = [2.0, 2.0, 1.9, 1.5, 1.0, 0.6, 0.5, 0.9, 3.0]
    # +-0.3 decades is one step here: the averages are lowest (2.0 / 3) at 0.1.
    assert one_cycle(lrs, losses) == pytest.approx(0.1 / 5, rel=1e-12)


def test_one_cycle_reads_the_loss_where_the_moving_average_lags():
    """The reason for the rule (benchmarks/bench_lr_finder.py): on the default ramp the
    debiased moving average (0.98) puts the loss minimum more than a decade too far
    right; `one_cycle` finds the raw minimum, and the result hands it the raw losses."""
    lrs = ramp_learning_rates(1e-7, 10.0, 100)
    log_lrs = np.log10(lrs)
    raw = np.minimum(2.3, 0.3 + 0.8 * np.abs(log_lrs - log_lrs[70]))  # lowest at step 70
    smoothed = smooth_losses(raw)
    assert np.log10(lrs[int(np.argmin(smoothed))] / lrs[70]) > 1.0
    assert one_cycle(lrs, raw) == pytest.approx(lrs[70] / 5, rel=1e-12)
    result = LRFinderResult(lrs, raw, smoothed, method="one_cycle")
    assert result.suggestion == result.one_cycle == pytest.approx(lrs[70] / 5, rel=1e-12)
    assert result.minimum > 1.5 * lrs[70] / 10  # fastai's rule reads the lagging curve


@pytest.mark.parametrize("fn", [valley, minimum, steepest, one_cycle])
def test_suggestion_functions_are_pure_and_ignore_nan(fn):
    lrs, losses = _valley_curve()
    lrs_list, losses_list = list(lrs), list(losses)
    first = fn(lrs_list, losses_list)
    assert fn(lrs_list, losses_list) == first
    assert lrs_list == list(lrs) and losses_list == list(losses)
    assert isinstance(first, float)
    # A NaN tail (a diverged run) does not change the answer.
    with_nan = np.concatenate([losses, [np.nan, np.inf]])
    lrs_more = np.concatenate([lrs, [20.0, 30.0]])
    assert fn(lrs_more, with_nan) == first
    np.testing.assert_array_equal(with_nan[:-2], losses)


@pytest.mark.parametrize("fn", [valley, minimum, steepest, one_cycle])
def test_suggestion_functions_reject_bad_curves(fn):
    with pytest.raises(
        ValueError,
        match=re.escape("Argument `losses` must be as long as `learning_rates` (3 values). "
                        "Received: losses='<2 values>'"),
    ):
        fn([1e-3, 1e-2, 1e-1], [1.0, 2.0])
    with pytest.raises(ValueError, match=re.escape("Argument `learning_rates` must be finite "
                                                   "and > 0. Received: learning_rates=[0.0, 1.0]")):
        fn([0.0, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=re.escape("Argument `losses` must be a curve with at "
                                                   "least 2 finite values")):
        fn([1e-3, 1e-2, 1e-1], [1.0, np.nan, np.nan])


def test_result_trims_like_fastai_and_picks_the_method():
    lrs, losses = _valley_curve()
    result = LRFinderResult(lrs, losses, method="minimum")
    trimmed = slice(10, 95)  # first 10% and last 5 points skipped
    assert result.valley == valley(lrs[trimmed], losses[trimmed])
    assert result.minimum == minimum(lrs[trimmed], losses[trimmed])
    assert result.steepest == steepest(lrs[trimmed], losses[trimmed])
    assert result.one_cycle == one_cycle(lrs[trimmed], losses[trimmed])
    assert result.suggestion == result.minimum
    data = result.to_dict()
    assert data["suggestion"] == result.minimum and len(data["losses"]) == 100
    assert data["one_cycle"] == result.one_cycle
    assert "suggestion=" in repr(result)


def test_result_rejects_unknown_method():
    with pytest.raises(
        ValueError,
        match=re.escape("Argument `method` must be one of 'valley', 'minimum', 'steepest', "
                        "'one_cycle'. Received: method='valey'. Did you mean 'valley'?"),
    ):
        LRFinderResult([1e-3, 1e-2], [1.0, 2.0], method="valey")


# ---------------------------------------------------------------------------
# The run: effect inside compiled training
# ---------------------------------------------------------------------------


def _reference_sgd_losses(kernel, bias, x, y, learning_rates, batch_size):
    """Numpy float64 SGD on a linear model with MSE: the loss of each batch before its step."""
    w, b = kernel.astype("float64"), bias.astype("float64")
    losses, n = [], len(x)
    for step, lr in enumerate(learning_rates):
        start = (step * batch_size) % n
        bx, by = x[start : start + batch_size].astype("float64"), y[start : start + batch_size]
        error = bx @ w + b - by
        losses.append(float(np.mean(error**2)))
        w = w - lr * (2.0 / len(bx)) * bx.T @ error
        b = b - lr * (2.0 / len(bx)) * error.sum(axis=0)
    return np.array(losses)


@pytest.mark.parametrize(
    "learning_rate",
    ["float", "schedule"],
)
def test_ramp_takes_effect_inside_the_compiled_step(learning_rate):
    """The recorded losses equal plain SGD at the ramp's learning rates, step for step."""
    x, y = _regression_data()
    lr = 0.05 if learning_rate == "float" else OneCycle(0.05, total_steps=100)
    model = _linear_model(keras.optimizers.SGD(lr))
    model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)  # traced, iterations=4
    kernel, bias = model.get_weights()
    result = find_learning_rate(
        model, x, y, min_learning_rate=1e-3, max_learning_rate=0.5, num_steps=12,
        batch_size=16, shuffle=False, divergence_factor=None,
    )
    expected = _reference_sgd_losses(kernel, bias, x, y, result.learning_rates, 16)
    np.testing.assert_allclose(result.losses, expected, rtol=2e-4)
    # Not a no-op: at the fixed learning rate the losses would be different.
    fixed = _reference_sgd_losses(kernel, bias, x, y, np.full(12, 0.05), 16)
    assert np.max(np.abs(fixed - expected) / expected) > 0.1


def test_loss_blows_up_at_high_learning_rate_and_the_run_stops_early():
    x, y = _regression_data(n=256)
    model = _linear_model(keras.optimizers.SGD(0.01))
    result = find_learning_rate(model, x, y, min_learning_rate=1e-4, max_learning_rate=100.0,
                                num_steps=60, batch_size=16, seed=0)
    assert result.stopped_early
    assert len(result.losses) < 60
    last = result.smoothed_losses[-1]
    best = np.min(result.smoothed_losses[:-1])
    assert not np.isfinite(last) or last > 4 * best
    # Everything before the last step was below the threshold.
    assert np.all(result.smoothed_losses[:-1] <= 4 * np.minimum.accumulate(
        result.smoothed_losses[:-1]))


def test_suggestion_for_linear_regression_is_below_the_stability_limit():
    """SGD on MSE diverges above 2 / largest eigenvalue of the Hessian 2 X^T X / n."""
    x, y = _regression_data(n=512)
    limit = 2.0 / np.max(np.linalg.eigvalsh(2.0 * x.T @ x / len(x)))
    model = _linear_model(keras.optimizers.SGD(0.01))
    result = find_learning_rate(model, x, y, min_learning_rate=1e-5, max_learning_rate=10.0,
                                num_steps=80, batch_size=64, seed=0)
    assert result.stopped_early
    assert limit / 100 < result.suggestion < limit
    assert result.learning_rates[-1] > limit / 2  # it stopped where SGD becomes unstable


# ---------------------------------------------------------------------------
# The model comes back exactly as it was
# ---------------------------------------------------------------------------


@pytest.mark.train
@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum", "one_cycle_adam", "loss_scale"])
def test_future_training_is_identical_to_never_running_the_finder(optimizer):
    """Model A runs the finder (unbuilt optimizer), model B does not; then both train."""

    def make_optimizer():
        if optimizer == "adam":
            return keras.optimizers.Adam(1e-3)
        if optimizer == "sgd_momentum":
            return keras.optimizers.SGD(0.01, momentum=0.9)
        if optimizer == "loss_scale":
            return keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01))
        return keras.optimizers.Adam(OneCycle(1e-2, total_steps=20))

    x, y = _classification_data()
    model_a, model_b = _classifier(make_optimizer()), _classifier(make_optimizer())
    _assert_same_state(
        ([w.numpy() for w in model_a.variables], [], []),
        ([w.numpy() for w in model_b.variables], [], []),
    )
    lr_object = learning_rate_object(model_a.optimizer) if optimizer != "loss_scale" else None
    result = find_learning_rate(model_a, x, y, num_steps=20, batch_size=16, seed=1)
    assert len(result.losses) >= 5
    if lr_object is not None:
        assert learning_rate_object(model_a.optimizer) is lr_object
    assert int(model_a.optimizer.iterations.numpy()) == 0
    for model in (model_a, model_b):
        model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(model_a.variables, model_b.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(model_a.optimizer.variables, model_b.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.train
@pytest.mark.parametrize("schedule, method", [("one_cycle", "one_cycle"), ("constant", "valley")])
def test_learning_rate_find_trains_at_the_rule_of_its_schedule(schedule, method):
    """`learning_rate="find"` peaks the 1cycle at `one_cycle` (valley was 3-6x too low on
    the benchmark's three models); the other schedules keep `valley`."""
    import keras_recipes
    from keras_recipes.optimizers import learning_rate_schedule

    x, y = _classification_data(n=256)
    model = keras_recipes.build_default_dnn((8,), 3, num_hidden_layers=1, schedule=schedule,
                                            learning_rate="find", seed=0)
    assert model.recipe.finder_method == method
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    result = model.learning_rate_finder_result
    assert result.method == method and result.suggestion == getattr(result, method)
    assert result.one_cycle != result.valley  # the two rules differ on this curve
    assert model.recipe.learning_rate == pytest.approx(result.suggestion)
    if schedule == "one_cycle":
        peak = learning_rate_schedule(model.optimizer).max_learning_rate
        assert peak == pytest.approx(result.one_cycle)


@pytest.mark.train
def test_future_training_is_identical_with_unseeded_dropout():
    """Unseeded Dropout draws from the global generator on PyTorch; the finder restores it.

    Both models are trained first so that both are built alike (Keras's first fit on
    PyTorch draws from that generator too, see `find_learning_rate`)."""
    x, y = _classification_data()
    model_a, model_b = (
        _classifier(keras.optimizers.Adam(1e-3), seeded_dropout=False) for _ in range(2)
    )
    for model in (model_a, model_b):
        model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(model_a.variables + model_a.optimizer.variables,
                    model_b.variables + model_b.optimizer.variables):
        b.assign(a.numpy())
    keras.utils.set_random_seed(2)
    find_learning_rate(model_a, x, y, num_steps=20, batch_size=16, seed=1)
    model_a.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    keras.utils.set_random_seed(2)
    model_b.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(model_a.variables, model_b.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.train
def test_state_after_training_is_restored_bit_for_bit():
    """A model mid-training (non-zero slots, iterations, BN statistics, metrics) is untouched."""
    x, y = _classification_data()
    model = _classifier(keras.optimizers.Adam(OneCycle(1e-2, total_steps=60)))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    model.evaluate(x, y, verbose=0)  # non-zero metric state
    before = _state(model)
    train_function = model.train_function
    schedule = learning_rate_object(model.optimizer)
    lr_before = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    find_learning_rate(model, x, y, num_steps=30, batch_size=16, seed=0)
    _assert_same_state(before, _state(model))
    assert model.train_function is train_function
    assert learning_rate_object(model.optimizer) is schedule
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == lr_before
    assert int(model.optimizer.iterations.numpy()) == 12


@pytest.mark.train
@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_restores_everything_when_the_run_raises_mid_way(error):
    x, y = _classification_data()
    bomb = _Bomb(at=None, error=error)
    model = _classifier(keras.optimizers.Adam(1e-3), with_bomb=bomb)
    twin = _classifier(keras.optimizers.Adam(1e-3), with_bomb=_Bomb(at=10**9, error=error))
    model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    twin.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    before = _state(model)
    learning_rate = learning_rate_object(model.optimizer)
    train_function = model.train_function
    bomb.calls, bomb.at = 0, 6
    with pytest.raises(type(error)):
        find_learning_rate(model, x, y, num_steps=20, batch_size=16, seed=0)
    assert bomb.calls == 6  # it really failed in the middle of the run
    _assert_same_state(before, _state(model))
    assert learning_rate_object(model.optimizer) is learning_rate
    assert model.train_function is train_function
    model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    twin.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(model.variables, twin.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


class _FailingData(keras.utils.PyDataset):
    def __init__(self, x, y, fail_at):
        super().__init__()
        self.x, self.y, self.fail_at, self.served = x, y, fail_at, 0

    def __len__(self):
        return len(self.x) // 16

    def __getitem__(self, index):
        self.served += 1
        if self.served == self.fail_at:
            raise KeyboardInterrupt
        return self.x[index * 16 : (index + 1) * 16], self.y[index * 16 : (index + 1) * 16]


@pytest.mark.train
def test_restores_a_compiled_model_interrupted_by_its_data():
    x, y = _classification_data()
    model = _classifier(keras.optimizers.SGD(0.05, momentum=0.9))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    before = _state(model)
    data = _FailingData(x, y, fail_at=9)
    with pytest.raises(KeyboardInterrupt):
        find_learning_rate(model, data, num_steps=30)
    assert data.served == 9
    _assert_same_state(before, _state(model))
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.05)


def test_raises_with_restored_model_when_the_loss_is_nan_from_the_start():
    x, y = _regression_data()
    model = _linear_model(keras.optimizers.SGD(0.01))
    before = _state(model)
    x_bad = x.copy()
    x_bad[:] = np.nan
    with pytest.raises(ValueError, match=re.escape("recorded fewer than 2 finite losses")):
        find_learning_rate(model, x_bad, y, num_steps=10)
    _assert_same_state(before, _state(model))


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------


def test_tf_dataset_input_is_cycled_when_shorter_than_the_ramp():
    import tensorflow as tf

    x, y = _regression_data(n=48)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)  # 3 batches
    model = _linear_model(keras.optimizers.SGD(0.01))
    kernel, bias = model.get_weights()
    result = find_learning_rate(model, dataset, min_learning_rate=1e-3, max_learning_rate=0.3,
                                num_steps=10, divergence_factor=None)
    assert len(result.losses) == 10
    expected = _reference_sgd_losses(kernel, bias, x, y, result.learning_rates, 16)
    np.testing.assert_allclose(result.losses, expected, rtol=2e-4)


def test_sample_weight_is_used():
    x, y = _regression_data()
    weights = np.zeros(len(x), "float32")
    model = _linear_model(keras.optimizers.SGD(0.01))
    result = find_learning_rate(model, x, y, sample_weight=weights, num_steps=5,
                                divergence_factor=None)
    np.testing.assert_array_equal(result.losses, 0.0)


def test_shuffling_uses_a_private_generator():
    x, y = _regression_data()
    state = np.random.get_state()  # noqa: NPY002 - checking that the global state is untouched
    runs = [
        find_learning_rate(_linear_model(keras.optimizers.SGD(0.01)), x, y, num_steps=8,
                           batch_size=8, seed=7).losses
        for _ in range(2)
    ]
    after = np.random.get_state()  # noqa: NPY002
    assert state[0] == after[0] and state[2:] == after[2:]
    np.testing.assert_array_equal(state[1], after[1])
    np.testing.assert_array_equal(runs[0], runs[1])
    # A different seed draws different batches.
    other = find_learning_rate(_linear_model(keras.optimizers.SGD(0.01)), x, y, num_steps=8,
                               batch_size=8, seed=8).losses
    assert not np.array_equal(runs[0], other)


# ---------------------------------------------------------------------------
# Plot
# ---------------------------------------------------------------------------


def test_plot_marks_the_suggestion():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lrs, losses = _valley_curve()
    result = LRFinderResult(lrs, losses)
    ax = result.plot()
    assert ax.get_xscale() == "log"
    marked = [line for line in ax.get_lines() if list(line.get_xdata()) == [result.suggestion]]
    assert len(marked) == 1
    assert any("suggestion" in text.get_text() for text in ax.get_legend().get_texts())
    plt.close(ax.figure)


def test_matplotlib_is_optional_and_imported_lazily(monkeypatch):
    import ast
    import pathlib

    import keras_recipes.lr_finder as package

    modules = sorted(pathlib.Path(package.__file__).parent.glob("*.py"))
    assert len(modules) >= 4  # the package and its modules
    for module in modules:
        tree = ast.parse(module.read_text())
        top_level = [
            alias.name
            for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        ] + [node.module for node in tree.body if isinstance(node, ast.ImportFrom)]
        assert not any("matplotlib" in (name or "") for name in top_level), module
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    lrs, losses = _valley_curve()
    with pytest.raises(ImportError, match=re.escape('pip install "keras-recipes[cli]"')):
        LRFinderResult(lrs, losses).plot()


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"min_learning_rate": 0.0}, ValueError,
         "Argument `min_learning_rate` must be a number > 0. Received: min_learning_rate=0.0"),
        ({"max_learning_rate": 1e-8}, ValueError,
         "Argument `max_learning_rate` must be greater than min_learning_rate=1e-07. "
         "Received: max_learning_rate=1e-08"),
        ({"num_steps": 3}, ValueError,
         "Argument `num_steps` must be an integer >= 5. Received: num_steps=3"),
        ({"num_steps": 10.0}, TypeError,
         "Argument `num_steps` must be an integer >= 5. Received: num_steps=10.0"),
        ({"batch_size": 0}, ValueError,
         "Argument `batch_size` must be a positive integer. Received: batch_size=0"),
        ({"smoothing": 1.0}, ValueError,
         "Argument `smoothing` must be in the range [0, 1). Received: smoothing=1.0"),
        ({"divergence_factor": 1.0}, ValueError,
         "Argument `divergence_factor` must be a number > 1 or None. "
         "Received: divergence_factor=1.0"),
        ({"method": "steep"}, ValueError,
         "Argument `method` must be one of 'valley', 'minimum', 'steepest', 'one_cycle'. "
         "Received: method='steep'. Did you mean 'steepest'?"),
        ({"shuffle": "yes"}, TypeError,
         "Argument `shuffle` must be a bool (True or False). Received: shuffle='yes'"),
        ({"seed": 1.5}, TypeError,
         "Argument `seed` must be a non-negative integer or None. Received: seed=1.5"),
        ({"seed": -1}, ValueError,
         "Argument `seed` must be a non-negative integer or None. Received: seed=-1"),
        ({"verbose": 3}, ValueError,
         'Argument `verbose` must be 0 (silent), 1, 2 or "auto". Received: verbose=3'),
    ],
)
def test_bad_arguments(kwargs, error, message):
    x, y = _regression_data()
    model = _linear_model(keras.optimizers.SGD(0.01))
    with pytest.raises(error, match=re.escape(message)):
        find_learning_rate(model, x, y, **kwargs)


def test_bad_model_and_data():
    x, y = _regression_data()
    with pytest.raises(TypeError, match=re.escape("Argument `model` must be a keras.Model. "
                                                  "Received: model='model'")):
        find_learning_rate("model", x, y)
    uncompiled = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match=re.escape("must be a compiled keras.Model") + ".*"
                       + re.escape("Call `model.compile(optimizer=..., loss=...)` first")):
        find_learning_rate(uncompiled, x, y)
    model = _linear_model(keras.optimizers.SGD(0.01))
    with pytest.raises(ValueError, match=re.escape(
            "Argument `y` must be as many samples as `x` (64). Received: y='<10 samples>'")):
        find_learning_rate(model, x, y[:10])
    with pytest.raises(TypeError, match=re.escape("Argument `x` must be a numpy array (or a "
                                                  "list/dict of arrays), a tf.data.Dataset")):
        find_learning_rate(model, "data.csv", y)
    with pytest.raises(ValueError, match=re.escape("Argument `x` must be at least one sample")):
        find_learning_rate(model, x[:0], y[:0])

    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `y` must be None when `x` is a dataset. Received: y='<array>' "
            "(the dataset yields its own targets and weights)")):
        find_learning_rate(model, dataset, y)


# ---------------------------------------------------------------------------
# Quality
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_suggestion_lands_within_a_factor_3_of_the_best_fixed_learning_rate():
    """On load_digits a grid of fixed Adam learning rates has a clear best after 2 epochs."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.astype("float32")
    x_train, x_val, y_train, y_val = train_test_split(
        x, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    mean, std = x_train.mean(0), x_train.std(0)
    std[std == 0] = 1.0
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std

    # Initial weights drawn with numpy (He normal, Glorot uniform), so that the problem
    # and its grid are the same on every backend: one Keras seed draws different
    # weights on TensorFlow, JAX and PyTorch.
    rng = np.random.default_rng(1)
    kernel_1 = rng.normal(scale=np.sqrt(2 / 64), size=(64, 64)).astype("float32")
    limit = np.sqrt(6 / (64 + 10))
    kernel_2 = rng.uniform(-limit, limit, size=(64, 10)).astype("float32")

    def make(learning_rate):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu",
                               kernel_initializer=keras.initializers.Constant(kernel_1)),
            keras.layers.Dense(10, activation="softmax",
                               kernel_initializer=keras.initializers.Constant(kernel_2)),
        ])
        model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
        return model

    grid = 10.0 ** np.arange(-4.0, -0.9, 1.0 / 3.0)  # 1e-4 .. 1e-1, factor 2.15
    val_losses = []
    for learning_rate in grid:
        model = make(learning_rate)
        model.fit(x_train, y_train, epochs=2, batch_size=32, shuffle=False, verbose=0)
        val_losses.append(model.evaluate(x_val, y_val, verbose=0))
    val_losses = np.array(val_losses)
    best = int(np.argmin(val_losses))
    # A clear best: both neighbours are worse by more than 10%.
    assert 0 < best < len(grid) - 1
    assert val_losses[best - 1] > 1.1 * val_losses[best]
    assert val_losses[best + 1] > 1.1 * val_losses[best]

    result = find_learning_rate(make(1e-3), x_train, y_train, min_learning_rate=1e-6,
                                max_learning_rate=10.0, num_steps=100, seed=0)
    ratio = result.suggestion / grid[best]
    assert 1 / 3 <= ratio <= 3, (result.suggestion, grid[best], val_losses)


def test_plot_tells_the_suggestions_apart_and_keeps_the_raw_loss_in_view():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lrs, losses = _valley_curve()
    noisy = np.asarray(losses) + np.random.default_rng(0).normal(0, 0.05, len(losses))
    result = LRFinderResult(lrs, noisy)
    ax = result.plot()
    vertical = {line.get_label().split(":")[0]: line for line in ax.get_lines()
                if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2}
    assert set(vertical) == {"valley", "minimum / 10 (fastai's rule)", "steepest descent",
                             "1cycle peak (lag-free minimum / 5)"}
    styles = {(line.get_color(), line.get_linestyle()) for line in vertical.values()}
    assert len(styles) == 4  # "minimum" and "steepest" no longer look the same
    lowest = int(np.argmin(result.smoothed_losses))
    assert any(line.get_label().startswith("smoothed loss minimum, at ") and
               line.get_xdata()[0] == pytest.approx(result.minimum * 10) for line in ax.get_lines())
    bottom, top = ax.get_ylim()
    assert bottom <= noisy[: lowest + 1].min() and top >= noisy[: lowest + 1].max()
    figure = ax.figure
    figure.canvas.draw()
    assert figure.get_layout_engine() is not None  # nothing clipped by savefig
    plt.close(figure)
