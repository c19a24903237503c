"""The chapter's decays (`schedule="cosine" | "exponential" | "power" | "piecewise"`): Keras's
formulas stretched over each `fit`, their settings (`schedule_kwargs`), and the recipe's
callbacks around them."""

import math
import re

import keras
import numpy as np
import pytest

import keras_recipes
from keras_recipes import Recipe
from keras_recipes.config import load_config
from keras_recipes.optimizers import SGD, Adam, learning_rate_schedule
from keras_recipes.recipe._fit_callbacks import watched_from
from keras_recipes.schedules import (
    ExponentialDecay,
    OneCycle,
    OneCycleMomentum,
    PiecewiseConstantDecay,
    PowerDecay,
    WarmupCosineDecay,
)

BACKEND = keras.backend.backend()
KERAS = keras.optimizers.schedules
DECAYS = {"cosine": WarmupCosineDecay, "exponential": ExponentialDecay, "power": PowerDecay,
          "piecewise": PiecewiseConstantDecay}


def _values(schedule, steps):
    return keras.ops.convert_to_numpy(schedule(keras.ops.convert_to_tensor(np.asarray(steps))))


def _keras_values(schedule, steps):
    return np.array([float(keras.ops.convert_to_numpy(schedule(int(s)))) for s in steps])


# --- values: Keras's formulas -----------------------------------------------------------------


@pytest.mark.parametrize("ours, theirs", [
    (WarmupCosineDecay(0.01, 200),
     KERAS.CosineDecay(0.0, 190, alpha=0.0, warmup_target=0.01, warmup_steps=10)),
    (WarmupCosineDecay(0.01, 200, warmup_fraction=0.2, alpha=0.1),
     KERAS.CosineDecay(0.0, 160, alpha=0.1, warmup_target=0.01, warmup_steps=40)),
    (WarmupCosineDecay(0.02, 200, warmup_fraction=0.0), KERAS.CosineDecay(0.02, 200)),
    (ExponentialDecay(0.01, 200), KERAS.ExponentialDecay(0.01, 200, 0.1)),
    (ExponentialDecay(0.01, 200, decay_rate=0.5, decay_fraction=0.25),
     KERAS.ExponentialDecay(0.01, 50, 0.5)),
    (PowerDecay(0.01, 200), KERAS.InverseTimeDecay(0.01, 50, 1.0)),
    (PowerDecay(0.03, 200, decay_fraction=0.1), KERAS.InverseTimeDecay(0.03, 20, 1.0)),
    (PiecewiseConstantDecay(0.01, 200), KERAS.PiecewiseConstantDecay([100, 150],
                                                                     [0.01, 0.001, 0.0001])),
    (PiecewiseConstantDecay(0.01, 200, boundaries=[0.2, 0.6], values=[1.0, 0.5, 0.1]),
     KERAS.PiecewiseConstantDecay([40, 120], [0.01, 0.005, 0.001])),
], ids=lambda s: type(s).__name__)
def test_each_decay_equals_keras_s_schedule_at_every_step(ours, theirs):
    steps = np.arange(200)
    np.testing.assert_allclose(_values(ours, steps), _keras_values(theirs, steps), rtol=1e-6,
                               atol=1e-9)


def test_power_decay_with_another_power_is_the_chapter_s_formula():
    steps = np.arange(300)
    expected = 0.05 / (1 + steps / (0.4 * 300)) ** 1.7  # lr0 / (1 + t / s) ** c
    np.testing.assert_allclose(_values(PowerDecay(0.05, 300, decay_fraction=0.4, power=1.7),
                                       steps), expected, rtol=1e-6)


@pytest.mark.parametrize("name", DECAYS)
@pytest.mark.parametrize("total_steps", [7, 37, 200])
def test_each_decay_peaks_at_the_learning_rate_and_then_only_falls(name, total_steps):
    schedule = DECAYS[name](0.01, total_steps)
    values = _values(schedule, np.arange(total_steps)).astype("float64")
    peak = int(np.argmax(values))
    assert values[peak] == pytest.approx(0.01, rel=1e-6)
    assert peak == (schedule.warmup_steps if name == "cosine" else 0)
    assert np.all(np.diff(values[:peak + 1]) > 0)  # the warm-up rises
    assert np.all(np.diff(values[peak:]) <= 0) and np.all(values[peak:] > 0)
    if name == "cosine":  # "to near zero"
        assert values[-1] < 0.01 * 10 / total_steps ** 2


def test_the_defaults_are_those_documented():
    steps = np.arange(100)
    assert _values(ExponentialDecay(1.0, 100), [99])[0] == pytest.approx(0.1 ** 0.99, rel=1e-6)
    assert _values(PowerDecay(1.0, 100), [100])[0] == pytest.approx(1 / (1 + 99 / 25), rel=1e-6)
    assert WarmupCosineDecay(1.0, 100).warmup_steps == 5
    piecewise = _values(PiecewiseConstantDecay(1.0, 100), steps)
    assert sorted(set(np.round(piecewise, 6))) == [0.01, 0.1, 1.0]
    assert piecewise[50] == 1.0 and piecewise[51] == pytest.approx(0.1)
    assert piecewise[75] == pytest.approx(0.1) and piecewise[76] == pytest.approx(0.01)


# --- the span and the state the compiled step reads ------------------------------------------


@pytest.mark.parametrize("name", DECAYS)
def test_start_step_shifts_and_hold_step_holds_each_decay(name):
    plain = DECAYS[name](0.01, 60)
    shifted = DECAYS[name](0.01, 60, start_step=15, hold_step=40)
    values = _values(plain, np.arange(60))
    np.testing.assert_array_equal(_values(shifted, np.arange(15, 55)), values[:40])
    np.testing.assert_array_equal(_values(shifted, [55, 75, 10_000]), values[[40] * 3])
    np.testing.assert_array_equal(_values(shifted, [0, 14]), values[[0, 0]])
    np.testing.assert_array_equal(_values(plain, [60, 10_000]), values[[59, 59]])  # held


@pytest.mark.parametrize("name", DECAYS)
def test_state_in_the_optimizer_gives_the_same_values_and_follows_set_span(name):
    constant, stateful = DECAYS[name](0.01, 50), DECAYS[name](0.01, 50)
    optimizer = Adam(stateful)
    optimizer.build([keras.Variable(np.zeros(3, "float32"))])
    assert stateful.state is not None and constant.state is None
    steps = np.arange(60)
    np.testing.assert_array_equal(_values(stateful, steps), _values(constant, steps))
    stateful.set_span(80, 7, 50)
    stateful.set_max_learning_rate(0.03)
    expected = DECAYS[name](0.03, 80, start_step=7, hold_step=50)
    assert stateful.get_config() == expected.get_config()
    np.testing.assert_array_equal(_values(stateful, np.arange(100)),
                                  _values(expected, np.arange(100)))


@pytest.mark.parametrize("schedule", [
    WarmupCosineDecay(0.3, 77, warmup_fraction=0.2, alpha=0.05, start_step=5, hold_step=60),
    ExponentialDecay(0.3, 77, decay_rate=0.3, decay_fraction=0.5, start_step=2),
    PowerDecay(0.3, 77, decay_fraction=0.2, power=2.0, hold_step=3),
    PiecewiseConstantDecay(0.3, 77, boundaries=[0.1, 0.4, 0.9], values=[1.0, 0.5, 0.5, 0.2]),
], ids=lambda s: type(s).__name__)
def test_config_round_trip_keeps_every_argument(schedule):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(restored) is type(schedule) and restored.get_config() == schedule.get_config()
    np.testing.assert_array_equal(_values(restored, np.arange(90)),
                                  _values(schedule, np.arange(90)))


@pytest.mark.parametrize("make, error, message", [
    (lambda: WarmupCosineDecay(0.01, 100, warmup_fraction=1.0), ValueError,
     "Argument `warmup_fraction` must be in the range [0, 1). Received: warmup_fraction=1.0"),
    (lambda: WarmupCosineDecay(0.01, 100, alpha=-0.1), ValueError,
     "Argument `alpha` must be in the range [0, 1). Received: alpha=-0.1"),
    (lambda: WarmupCosineDecay(0, 100), ValueError,
     "Argument `max_learning_rate` must be a number > 0. Received: max_learning_rate=0.0"),
    (lambda: ExponentialDecay(0.01, 100, decay_rate=1), ValueError,
     "Argument `decay_rate` must be in the range (0, 1). Received: decay_rate=1.0"),
    (lambda: ExponentialDecay(0.01, 0), ValueError,
     "Argument `total_steps` must be a positive integer. Received: total_steps=0"),
    (lambda: PowerDecay(0.01, 100, decay_fraction=0), ValueError,
     "Argument `decay_fraction` must be a number > 0. Received: decay_fraction=0.0"),
    (lambda: PowerDecay(0.01, 100, power="2"), TypeError,
     "Argument `power` must be a number > 0. Received: power='2'"),
    (lambda: PiecewiseConstantDecay(0.01, 100, boundaries=[0.75, 0.5]), ValueError,
     "Argument `boundaries` must be a non-empty list of increasing fractions of the span, each "
     "in the range (0, 1). Received: boundaries=[0.75, 0.5]"),
    (lambda: PiecewiseConstantDecay(0.01, 100, boundaries=0.5), TypeError,
     "Argument `boundaries` must be a non-empty list of increasing fractions of the span, each "
     "in the range (0, 1). Received: boundaries=0.5"),
    (lambda: PiecewiseConstantDecay(0.01, 100, values=[1.0, 0.1]), ValueError,
     "Argument `values` must be a list of 3 non-increasing multiples of the peak learning rate "
     "in the range (0, 1], the first 1.0 (one more than `boundaries`). Received: "
     "values=[1.0, 0.1]"),
    (lambda: PiecewiseConstantDecay(0.01, 100, values=[0.5, 0.1, 0.2]), ValueError,
     "Argument `values` must be a list of 3 non-increasing multiples"),
    (lambda: ExponentialDecay(0.01, 100, hold_step=-1), ValueError,
     "Argument `hold_step` must be a non-negative integer or None. Received: hold_step=-1"),
])
def test_bad_settings_are_refused_with_the_message(make, error, message):
    with pytest.raises(error, match="^" + re.escape(message)):
        make()


# --- the recipe's option ---------------------------------------------------------------------


@pytest.mark.parametrize("name, settings, expected", [
    ("cosine", {"warmup_fraction": 0.2, "alpha": 0.1}, {"warmup_fraction": 0.2, "alpha": 0.1}),
    ("exponential", {"decay_rate": 0.5}, {"decay_rate": 0.5, "decay_fraction": 1.0}),
    ("power", {"power": 2.0}, {"decay_fraction": 0.25, "power": 2.0}),
    ("piecewise", {"boundaries": [0.3], "values": [1, 0.2]},
     {"boundaries": [0.3], "values": [1.0, 0.2]}),
])
def test_each_schedule_name_makes_its_decay_with_the_settings(name, settings, expected):
    recipe = Recipe(optimizer="adamw", learning_rate=3e-3, schedule=name,
                    schedule_kwargs=settings)
    assert recipe.stretches_schedule and not recipe.stretches_one_cycle
    optimizer = recipe.make_optimizer()
    schedule = learning_rate_schedule(optimizer)
    assert type(schedule) is DECAYS[name] and schedule.max_learning_rate == 3e-3
    assert {key: schedule.get_config()[key] for key in expected} == expected
    assert float(keras.ops.convert_to_numpy(optimizer.beta_1)) == pytest.approx(0.9)  # not cycled
    assert not Recipe(schedule=name, total_steps=50).stretches_schedule


def test_one_cycle_settings_reach_both_schedules():
    recipe = Recipe(schedule_kwargs={"pct_start": 0.25, "three_phase": True,
                                     "base_momentum": 0.8, "div_factor": 10})
    optimizer = recipe.make_optimizer()
    rate = learning_rate_schedule(optimizer)
    momentum = keras_recipes.optimizers.scheduled.raw_hyperparameter(optimizer, "beta_1")
    assert isinstance(rate, OneCycle) and isinstance(momentum, OneCycleMomentum)
    assert (rate.pct_start, rate.three_phase, rate.div_factor) == (0.25, True, 10.0)
    assert (momentum.pct_start, momentum.three_phase, momentum.base_momentum) == (0.25, True, 0.8)


def test_plateau_settings_reach_reduce_lr_on_plateau():
    model = keras_recipes.build_default_dnn((4,), 3, num_hidden_layers=1, schedule="plateau",
                                            schedule_kwargs={"factor": 0.2, "patience": 2})
    (plateau,) = [c for c in model.recipe_callbacks(has_validation=True)
                  if isinstance(c, keras.callbacks.ReduceLROnPlateau)]
    assert (plateau.factor, plateau.patience) == (0.2, 2)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(schedule="cosine", schedule_kwargs={"warmup": 0.1}), ValueError,
     "Argument `schedule_kwargs` must be a dict of the settings of schedule='cosine' "
     "(warmup_fraction, alpha). Received: schedule_kwargs={'warmup': 0.1}. Did you mean "
     "'warmup_fraction'?"),
    (dict(schedule_kwargs={"warmup_fraction": 0.1}), ValueError,
     "Argument `schedule_kwargs` must be a dict of the settings of schedule='one_cycle' "
     "(pct_start, anneal_strategy, div_factor, final_div_factor, three_phase, base_momentum, "
     "max_momentum). Received: schedule_kwargs={'warmup_fraction': 0.1}"),
    (dict(schedule="constant", schedule_kwargs={"factor": 0.5}), ValueError,
     "Argument `schedule_kwargs` must be None or empty for schedule='constant'. Received: "
     "schedule_kwargs={'factor': 0.5} (it has no settings)"),
    (dict(schedule="plateau", schedule_kwargs={"factor": 2}), ValueError,
     "Argument `factor` must be in the range (0, 1). Received: factor=2.0"),
    (dict(schedule="plateau", schedule_kwargs={"patience": 1.5}), TypeError,
     "Argument `patience` must be a non-negative integer. Received: patience=1.5"),
    (dict(schedule="exponential", schedule_kwargs={"decay_rate": 2}), ValueError,
     "Argument `decay_rate` must be in the range (0, 1). Received: decay_rate=2.0"),
    (dict(schedule="cosine", schedule_kwargs=[("alpha", 0.1)]), TypeError,
     "Argument `schedule_kwargs` must be a dict of the schedule's settings or None. Received: "
     "schedule_kwargs=[('alpha', 0.1)]"),
    (dict(optimizer=keras.optimizers.Adam(), schedule="cosine"), ValueError,
     "Argument `schedule` must be \"constant\", \"plateau\" or \"auto\" when `optimizer` is an "
     "instance. Received: schedule='cosine'. Pass an optimizer name to get the recipe's "
     "cosine schedule"),
])
def test_bad_schedule_options_are_refused_naming_the_option(kwargs, error, message):
    with pytest.raises(error, match="^" + re.escape(message)):
        Recipe(**kwargs)


def test_early_stopping_waits_for_the_warm_up_only():
    def first_watched(schedule, **settings):
        recipe = Recipe(schedule=schedule, schedule_kwargs=settings or None)
        return watched_from(recipe.make_optimizer(), 20)

    assert first_watched("one_cycle") == 10  # the 1cycle: half the epochs
    assert first_watched("cosine") == 1  # a 5% warm-up ends within the first epoch
    assert first_watched("cosine", warmup_fraction=0.12) == 3
    assert [first_watched(name) for name in ("exponential", "power", "piecewise", "constant")] \
        == [0, 0, 0, 0]


# --- training ---------------------------------------------------------------------------------


def _regression(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x @ rng.normal(size=(4, 1))).astype("float32")


def _linear(schedule, **options):
    """A linear model on plain SGD under the recipe's `schedule`, weights from zero."""
    net = keras.Sequential([keras.Input((4,)),
                            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    return keras_recipes.compile_recipe(net, loss="mse", optimizer="sgd", learning_rate=0.1,
                                        schedule=schedule, early_stopping_patience=None,
                                        steps_per_execution=1, **options)


def _sgd_with(rates, x, y):
    """Full-batch SGD on least squares from zero weights, in float64, one step per rate."""
    w = np.zeros((4, 1))
    for rate in rates:
        w -= rate * 2 * x.T @ (x @ w - y) / len(y)
    return w


@pytest.mark.train
@pytest.mark.parametrize("name", [*DECAYS, "one_cycle"])
def test_fit_trains_at_the_rates_of_the_schedule_stretched_over_its_steps(name):
    x, y = _regression()
    model = _linear(name)
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)  # one step per epoch
    schedule = learning_rate_schedule(model.optimizer)
    assert (schedule.total_steps, schedule.start_step, schedule.hold_step) == (10, 0, None)
    expected = type(schedule)(0.1, 10) if name != "one_cycle" else OneCycle(0.1, 10)
    rates = _values(expected, np.arange(10))
    np.testing.assert_allclose(model.get_weights()[0], _sgd_with(rates, x, y), rtol=1e-4,
                               atol=1e-6)
    # Not the rates of a schedule sized for other steps (the placeholder's 100).
    unstretched = _values(type(expected)(0.1, 100), np.arange(10))
    assert np.abs(_sgd_with(unstretched, x, y) - _sgd_with(rates, x, y)).max() > 1e-3


class _StopAfter(keras.callbacks.Callback):
    """Stops `fit` after `epoch` (from 0), as a run that is interrupted there."""

    def __init__(self, epoch, save_to=None):
        super().__init__()
        self.epoch, self.save_to = epoch, save_to

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            if self.save_to:
                self.model.save(self.save_to)
            self.model.stop_training = True


@pytest.mark.train
def test_a_resumed_fit_continues_the_schedule_and_a_new_fit_retraces_nothing():
    x, y = _regression()
    whole = _linear("cosine")
    whole.fit(x, y, epochs=10, batch_size=32, verbose=0)
    parts = _linear("cosine")
    parts.fit(x, y, epochs=10, batch_size=32, verbose=0, callbacks=[_StopAfter(3)])
    function = parts.train_function
    parts.fit(x, y, epochs=10, initial_epoch=4, batch_size=32, verbose=0)
    np.testing.assert_allclose(parts.get_weights()[0], whole.get_weights()[0], rtol=1e-5)
    schedule = learning_rate_schedule(parts.optimizer)
    assert (schedule.total_steps, schedule.start_step) == (10, 0)
    assert parts.train_function is function  # the span is state the compiled step reads


@pytest.mark.train
@pytest.mark.parametrize("name", ["cosine", "piecewise"])
def test_a_model_saved_mid_schedule_resumes_at_the_same_step_with_the_same_rates(name, tmp_path):
    x, y = _regression()
    path = str(tmp_path / "mid.keras")
    whole = _linear(name)
    whole.fit(x, y, epochs=10, batch_size=32, verbose=0)
    interrupted = _linear(name)
    interrupted.fit(x, y, epochs=10, batch_size=32, verbose=0,
                    callbacks=[_StopAfter(3, save_to=path)])
    loaded = keras.models.load_model(path)
    schedule = learning_rate_schedule(loaded.optimizer)
    assert type(schedule) is DECAYS[name] and schedule.state is not None
    assert (schedule.total_steps, int(loaded.optimizer.iterations)) == (10, 4)
    expected = DECAYS[name](0.1, 10)
    assert float(loaded.optimizer.learning_rate) == pytest.approx(
        float(_values(expected, [4])[0]), rel=1e-6)
    loaded.fit(x, y, epochs=10, initial_epoch=4, batch_size=32, verbose=0)
    np.testing.assert_allclose(loaded.get_weights()[0], whole.get_weights()[0], rtol=1e-5)


@pytest.mark.train
def test_learning_rate_find_sets_the_peak_of_a_decay():
    x, y = _regression(n=256)
    model = keras_recipes.build_default_dnn((4,), 2, num_hidden_layers=1, schedule="power",
                                            learning_rate="find", seed=0)
    model.fit(x, (y[:, 0] > 0).astype("int64"), epochs=1, batch_size=32, verbose=0)
    schedule = learning_rate_schedule(model.optimizer)
    found = model.learning_rate_finder_result.suggestion
    assert type(schedule) is PowerDecay and schedule.max_learning_rate == pytest.approx(found)
    assert model.recipe.learning_rate == pytest.approx(found)


# --- every entry point and the configs --------------------------------------------------------


def _own_base():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="own_base")


@pytest.mark.parametrize("entry", ["build_default_dnn", "build_self_normalizing_dnn",
                                   "build_plain_dnn", "compile_recipe", "build_transfer_model"])
@pytest.mark.parametrize("name", DECAYS)
def test_every_entry_point_takes_each_schedule_and_its_settings(entry, name):
    settings = {"cosine": {"alpha": 0.01}, "exponential": {"decay_fraction": 0.5},
                "power": {"power": 0.5}, "piecewise": {"boundaries": [0.9], "values": [1, 0.3]}}
    options = dict(schedule=name, schedule_kwargs=settings[name], learning_rate=2e-3)
    if entry == "compile_recipe":
        net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        model = keras_recipes.compile_recipe(net, loss="mse", **options)
    elif entry == "build_transfer_model":
        model = keras_recipes.build_transfer_model(_own_base(), 3, weights=None, **options)
    else:
        model = getattr(keras_recipes, entry)((4,), 3, num_hidden_layers=1, **options)
    schedule = learning_rate_schedule(model.optimizer)
    assert type(schedule) is DECAYS[name] and schedule.max_learning_rate == 2e-3
    key, value = next(iter(settings[name].items()))
    assert schedule.get_config()[key] == (value if not isinstance(value, list) else
                                          [float(v) for v in value])
    assert model.recipe.schedule_kwargs == settings[name]


def test_yaml_sets_the_schedule_and_its_settings(tmp_path):
    from keras_recipes.commands.show import check_model_settings

    path = tmp_path / "cosine.yaml"
    path.write_text("recipe: default_dnn\nmodel:\n  schedule: cosine\n  optimizer: adamw\n"
                    "  schedule_kwargs: {warmup_fraction: 0.1}\n  swa_epochs: 3\n"
                    "  label_smoothing: 0.1\n")
    config = load_config(str(path))
    assert config.model["schedule_kwargs"] == {"warmup_fraction": 0.1}
    assert (config.model["swa_epochs"], config.model["label_smoothing"]) == (3, 0.1)
    check_model_settings(config)  # the model section builds
    bad = load_config(str(path), ["model.schedule_kwargs={warmup: 0.1}"])
    with pytest.raises(ValueError, match=re.escape(
            "model.schedule_kwargs: Argument `schedule_kwargs` must be a dict of the settings "
            "of schedule='cosine' (warmup_fraction, alpha)")):
        check_model_settings(bad)
    defaults = load_config("default_dnn").model
    assert (defaults["schedule_kwargs"], defaults["swa_epochs"]) == (None, None)


@pytest.mark.train
def test_fine_tune_trains_both_phases_on_the_recipe_s_decay():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (32, 8, 8, 3)).astype("float32")
    labels = np.arange(32) % 3
    model = keras_recipes.build_transfer_model(
        _own_base(), 3, weights=None, schedule="exponential",
        schedule_kwargs={"decay_rate": 0.5}, learning_rate=1e-2, seed=0)
    seen = []

    class Phase(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            schedule = learning_rate_schedule(self.model.optimizer)
            seen.append((type(schedule).__name__, schedule.max_learning_rate,
                         schedule.decay_rate, schedule.total_steps))

    keras_recipes.fine_tune(model, (images, labels), head_epochs=2, epochs=3, batch_size=16,
                            callbacks=[Phase()], verbose=0)
    assert seen == [("ExponentialDecay", 1e-2, 0.5, 4), ("ExponentialDecay", 1e-4, 0.5, 6)]
    assert model.recipe.schedule == "exponential" and model.recipe.learning_rate == 1e-4


def test_sgd_is_plain_and_momentum_is_separate():
    assert Recipe(optimizer="sgd", schedule="constant").make_optimizer().momentum == 0.0
    assert isinstance(Recipe(optimizer="sgd").make_optimizer(), SGD)
    assert math.isclose(Recipe(optimizer="momentum", schedule="cosine").make_optimizer().momentum,
                        0.9)
