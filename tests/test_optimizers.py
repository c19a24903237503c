import pathlib
import re

import keras
import numpy as np
import pytest

from keras_recipes import optimizers
from keras_recipes.optimizers import learning_rate_schedule
from keras_recipes.optimizers.scheduled import followed_schedules, raw_hyperparameter
from keras_recipes.schedules import OneCycle, OneCycleMomentum

GOLDEN = pathlib.Path(__file__).parent / "golden" / "one_cycle_adam_torch.npz"


def _golden_model(golden):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(3)])
    model.set_weights([golden["w1"], golden["b1"], golden["w2"], golden["b2"]])
    return model


def _fit_golden(optimizer, golden):
    model = _golden_model(golden)
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(golden["x"], golden["y"], batch_size=int(golden["batch_size"]),
              epochs=int(golden["epochs"]), shuffle=False, verbose=0)
    return model.get_weights()


def test_one_cycle_adam_ends_at_the_weights_of_pytorch_adam_with_one_cycle_lr():
    golden = np.load(GOLDEN)
    total = int(golden["total_steps"])
    optimizer = optimizers.Adam(learning_rate=OneCycle(float(golden["max_lr"]), total),
                                beta_1=OneCycleMomentum(total), epsilon=1e-12)
    weights = _fit_golden(optimizer, golden)
    for weight, key in zip(weights, ["final_w1", "final_b1", "final_w2", "final_b2"]):
        np.testing.assert_allclose(weight, golden[key], rtol=0, atol=1e-5)


@pytest.mark.train
def test_momentum_cycling_has_an_effect_in_compiled_training():
    # The same run with a constant beta_1 ends far from PyTorch's cycled one:
    # momentum cycling is not a silent no-op.
    golden = np.load(GOLDEN)
    total = int(golden["total_steps"])
    constant = optimizers.Adam(learning_rate=OneCycle(float(golden["max_lr"]), total),
                               beta_1=0.9, epsilon=1e-12)
    weights = _fit_golden(constant, golden)
    assert np.abs(weights[0] - golden["final_w1"]).max() > 1e-2


def _sgd_reference(x, y, w0, learning_rates, momenta, batch_size, nesterov):
    """Keras's SGD rule on a linear least-squares model, in numpy."""
    w, velocity, step = w0.copy(), np.zeros_like(w0), 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        grad = 2 * xb.T @ (xb @ w - yb) / yb.size
        lr, m = learning_rates[step], momenta[step]
        velocity = m * velocity - lr * grad
        w = w + (m * velocity - lr * grad if nesterov else velocity)
        step += 1
    return w


@pytest.mark.train
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_follows_a_momentum_schedule_step_by_step(nesterov):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 2)) + 0.1 * rng.normal(size=(96, 2))).astype("float32")
    w0 = rng.normal(size=(4, 2)).astype("float32")
    total = 12
    lr_schedule, momentum_schedule = OneCycle(0.2, total), OneCycleMomentum(total)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, use_bias=False)])
    model.set_weights([w0])
    model.compile(optimizer=optimizers.SGD(lr_schedule, momentum=momentum_schedule,
                                           nesterov=nesterov), loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    steps = keras.ops.arange(total)
    expected = _sgd_reference(x.astype("float64"), y, w0.astype("float64"),
                              keras.ops.convert_to_numpy(lr_schedule(steps)),
                              keras.ops.convert_to_numpy(momentum_schedule(steps)), 8, nesterov)
    np.testing.assert_allclose(model.get_weights()[0], expected, rtol=1e-4, atol=1e-5)
    # And a constant momentum of the schedule's mean gives other weights.
    constant = _sgd_reference(x.astype("float64"), y, w0.astype("float64"),
                              keras.ops.convert_to_numpy(lr_schedule(steps)),
                              np.full(total, 0.9), 8, nesterov)
    assert np.abs(constant - expected).max() > 1e-3


@pytest.mark.train
@pytest.mark.parametrize("cls, name", [
    (optimizers.Adam, "beta_1"), (optimizers.Nadam, "beta_1"), (optimizers.AdamW, "beta_1"),
    (optimizers.Adamax, "beta_1"), (optimizers.RMSprop, "momentum")])
def test_a_momentum_schedule_changes_training_and_a_constant_one_equals_the_float(cls, name):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")

    def train(value):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="tanh"),
                                  keras.layers.Dense(1)])
        model.compile(optimizer=cls(learning_rate=0.05, **{name: value}), loss="mse")
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        return model.get_weights()[0]

    flat = OneCycleMomentum(total_steps=16, base_momentum=0.9, max_momentum=0.9)
    np.testing.assert_allclose(train(flat), train(0.9), rtol=1e-5, atol=1e-6)
    cycled = train(OneCycleMomentum(total_steps=16, base_momentum=0.5, max_momentum=0.95))
    assert np.abs(cycled - train(0.9)).max() > 1e-3


class CountingMomentum(OneCycleMomentum):
    """A 1cycle momentum that counts its evaluations."""

    calls = 0

    def __call__(self, step):
        CountingMomentum.calls += 1
        return super().__call__(step)


@pytest.mark.parametrize("cls, name", [
    (optimizers.Adam, "beta_1"), (optimizers.Nadam, "beta_1"), (optimizers.AdamW, "beta_1"),
    (optimizers.Adamax, "beta_1"), (optimizers.SGD, "momentum"),
    (optimizers.RMSprop, "momentum")])
def test_a_momentum_schedule_is_evaluated_once_per_step_whatever_the_variable_count(cls, name):
    # Keras's update steps read the hyperparameter per variable (Nadam several times):
    # evaluated there, a schedule would put as many copies of itself in a compiled step.
    variables = [keras.Variable(np.ones((3, 2), "float32")) for _ in range(5)]
    gradients = [keras.ops.ones((3, 2)) for _ in variables]
    optimizer = cls(learning_rate=0.01, **{name: CountingMomentum(total_steps=10)})
    optimizer.build(variables)
    CountingMomentum.calls = 0
    for _ in range(3):
        optimizer.apply(gradients, variables)
    assert CountingMomentum.calls == 3
    # Outside a step the hyperparameter still reads as the schedule's value at `iterations`.
    assert float(getattr(optimizer, name)) == pytest.approx(
        float(OneCycleMomentum(total_steps=10)(3)))


SCHEDULED = [(optimizers.Adam, "beta_1"), (optimizers.Nadam, "beta_1"),
             (optimizers.AdamW, "beta_1"), (optimizers.Adamax, "beta_1"),
             (optimizers.SGD, "momentum"), (optimizers.RMSprop, "momentum")]


@pytest.mark.parametrize("cls, name", SCHEDULED)
def test_optimizer_config_round_trip_keeps_the_schedule(cls, name):
    optimizer = cls(learning_rate=OneCycle(0.01, 200), **{name: OneCycleMomentum(200)})
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is cls
    restored_schedule = restored.__dict__[f"_{name}_value"]
    assert isinstance(restored_schedule, OneCycleMomentum)
    assert restored_schedule.get_config() == OneCycleMomentum(200).get_config()
    assert float(getattr(restored, name)) == pytest.approx(0.95)
    plain = cls(learning_rate=0.01, **{name: 0.8})
    assert keras.optimizers.deserialize(keras.optimizers.serialize(plain)).get_config()[name] == 0.8


@pytest.mark.parametrize("cls, name", [(optimizers.Adam, "beta_1"), (optimizers.SGD, "momentum"),
                                       (optimizers.RMSprop, "momentum")])
def test_optimizer_rejects_bad_hyperparameter(cls, name):
    with pytest.raises(ValueError, match=re.escape(
            f"Argument `{name}` must be in the range [0, 1). Received: {name}=1.5")):
        cls(**{name: 1.5})
    with pytest.raises(TypeError, match=re.escape(f"Received: {name}='fast'")):
        cls(**{name: "fast"})


def _built(cls, name):
    optimizer = cls(learning_rate=OneCycle(0.01, 200), **{name: OneCycleMomentum(200)})
    optimizer.build([keras.Variable(np.zeros((3, 2), "float32"))])
    return optimizer


@pytest.mark.parametrize("cls, name", SCHEDULED)
def test_the_1cycle_state_is_an_optimizer_variable_saved_and_loaded_with_it(cls, name):
    optimizer = _built(cls, name)
    schedules = [learning_rate_schedule(optimizer), raw_hyperparameter(optimizer, name)]
    states = [schedule.state for schedule in schedules]
    # The last variables, after the slots, float32 whatever floatx is.
    assert [v.path for v in optimizer.variables[-2:]] == [v.path for v in states]
    assert all(state.dtype == "float32" for state in states)
    schedules[0].set_span(50, 10)
    store = {}
    optimizer.save_own_variables(store)
    np.testing.assert_array_equal(store[str(len(store) - 2)],
                                  keras.ops.convert_to_numpy(states[0]))
    # Loaded into an optimizer with another span, the definition (the config) wins.
    other = _built(cls, name)
    other.load_own_variables(store)
    assert learning_rate_schedule(other).total_steps == 200
    steps = keras.ops.arange(250)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(learning_rate_schedule(other)(steps)),
                                  keras.ops.convert_to_numpy(OneCycle(0.01, 200)(steps)))


def test_an_optimizer_saved_before_the_1cycle_kept_state_still_loads():
    optimizer = _built(optimizers.Adam, "beta_1")
    optimizer.iterations.assign(17)
    store = {}
    optimizer.save_own_variables(store)
    old_layout = {key: store[key] for key in list(store)[:-2]}  # as saved before the state
    loaded = _built(optimizers.Adam, "beta_1")
    loaded.load_own_variables(old_layout)
    assert int(loaded.iterations) == 17
    for mine, saved in zip(loaded.variables[:-2], optimizer.variables[:-2]):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine),
                                      keras.ops.convert_to_numpy(saved))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(learning_rate_schedule(loaded).state),
                                  keras.ops.convert_to_numpy(learning_rate_schedule(optimizer).state))


@pytest.mark.parametrize("ours, theirs", [
    (optimizers.RMSprop(0.01, momentum=0.5), keras.optimizers.RMSprop(0.01, momentum=0.5)),
    (optimizers.RMSprop(0.01, momentum=0.5, centered=True),
     keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True)),
    (optimizers.RMSprop(0.01), keras.optimizers.RMSprop(0.01)),
    (optimizers.Adamax(0.02), keras.optimizers.Adamax(0.02)),
    (optimizers.Adagrad(0.05), keras.optimizers.Adagrad(0.05)),
], ids=["rmsprop-momentum", "rmsprop-centered", "rmsprop", "adamax", "adagrad"])
def test_with_float_hyperparameters_each_trains_exactly_as_keras_s_own(ours, theirs):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(32, 5)).astype("float32")
    y = rng.normal(size=(32, 2)).astype("float32")

    def train(optimizer):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
        model.compile(optimizer=optimizer, loss="mse")
        for start in range(0, 32, 8):
            model.train_on_batch(x[start:start + 8], y[start:start + 8])
        return model.get_weights(), [keras.ops.convert_to_numpy(v) for v in optimizer.variables]

    (weights, slots), (expected, expected_slots) = train(ours), train(theirs)
    for mine, theirs_ in zip(weights + slots, expected + expected_slots):
        np.testing.assert_allclose(mine, theirs_, rtol=1e-6, atol=1e-7)
    assert len(slots) == len(expected_slots)  # the same variables: files load either way


def test_adagrad_keeps_the_state_of_a_schedule_it_follows():
    from keras_recipes.schedules import ExponentialDecay

    schedule = ExponentialDecay(0.01, 100)
    optimizer = optimizers.Adagrad(schedule)
    optimizer.build([keras.Variable(np.zeros(3, "float32"))])
    assert optimizer.variables[-1] is schedule.state
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is optimizers.Adagrad
    assert learning_rate_schedule(restored).get_config() == schedule.get_config()


# The recipe's optimizer names: the class, and what the 1cycle cycles (None: nothing).
NAMES = {"sgd": (optimizers.SGD, None, 0.0), "momentum": (optimizers.SGD, "momentum", 0.9),
         "nesterov": (optimizers.SGD, "momentum", 0.9),
         "adagrad": (optimizers.Adagrad, None, None),
         "rmsprop": (optimizers.RMSprop, "momentum", 0.0),
         "adam": (optimizers.Adam, "beta_1", 0.9), "adamax": (optimizers.Adamax, "beta_1", 0.9),
         "nadam": (optimizers.Nadam, "beta_1", 0.9), "adamw": (optimizers.AdamW, "beta_1", 0.9)}


@pytest.mark.parametrize("name", NAMES)
def test_each_optimizer_name_cycles_what_it_has_with_the_1cycle(name):
    from keras_recipes import Recipe
    from keras_recipes.recipe._optimizers import optimizer_name

    cls, cycled, constant_value = NAMES[name]
    cycling = Recipe(optimizer=name, learning_rate=0.01).make_optimizer()
    constant = Recipe(optimizer=name, learning_rate=0.01, schedule="constant").make_optimizer()
    assert type(cycling) is cls and type(constant) is cls
    assert getattr(cycling, "nesterov", False) is (name == "nesterov")
    assert optimizer_name(cycling) == optimizer_name(constant) == name
    if cycled is None:  # nothing to cycle: the 1cycle is the learning rate's alone
        assert [type(s) for s in followed_schedules(cycling)] == [OneCycle]
    else:
        assert isinstance(raw_hyperparameter(cycling, cycled), OneCycleMomentum)
        assert raw_hyperparameter(constant, cycled) == constant_value
    if name == "sgd":
        assert raw_hyperparameter(cycling, "momentum") == 0.0  # plain SGD has no momentum


def test_keras_s_own_sgd_is_named_by_its_momentum():
    from keras_recipes.recipe._optimizers import optimizer_name

    assert optimizer_name(keras.optimizers.SGD(0.1)) == "sgd"
    assert optimizer_name(keras.optimizers.SGD(0.1, momentum=0.9)) == "momentum"
    assert optimizer_name(keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True)) == "nesterov"
    assert optimizer_name(keras.optimizers.RMSprop()) == "rmsprop"
    assert optimizer_name(keras.optimizers.Lion()) is None


def test_diagnose_warns_against_the_recipe_s_adagrad_on_a_deep_network():
    import keras_recipes
    from keras_recipes.diagnostics.rules import lint

    def rules(optimizer, layers):
        model = keras_recipes.build_default_dnn((4,), 3, num_hidden_layers=layers,
                                                optimizer=optimizer, learning_rate=1e-2)
        return {finding.rule for finding in lint(model)[1]}

    assert "adagrad_on_deep_network" in rules("adagrad", 6)
    assert "adagrad_on_deep_network" not in rules("adagrad", 2)  # shallow: the chapter's fine
    assert "adagrad_on_deep_network" not in rules("rmsprop", 6)
