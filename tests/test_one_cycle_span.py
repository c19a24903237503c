"""OneCycleSpan: a recipe's 1cycle spans exactly the steps of the `fit` that runs it,
for each optimizer of a MultiOptimizer too."""

import keras
import numpy as np
import pytest

import keras_recipes
from keras_recipes.optimizers import Adam, learning_rate_schedule
from keras_recipes.optimizers.introspection import one_cycle_schedules
from keras_recipes.schedules import OneCycle, OneCycleMomentum

pytestmark = pytest.mark.skipif(not hasattr(keras.optimizers, "MultiOptimizer"),
                                reason="keras.optimizers.MultiOptimizer needs Keras >= 3.15")


def _data(n=200):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 12)).astype("float32")
    return x, x[:, :3].argmax(axis=1).astype("int64")


def _cycled_adam(peak):
    return Adam(OneCycle(peak, total_steps=100), beta_1=OneCycleMomentum(total_steps=100))


def _with_two_optimizers():
    """A recipe model whose first hidden layer trains at a tenth of the others' rate."""
    model = keras_recipes.build_default_dnn((12,), 3, num_hidden_layers=2, seed=0)
    optimizer_map = keras.optimizers.OptimizerMap(default_optimizer=_cycled_adam(1e-2))
    optimizer_map["hidden_1/.*"] = _cycled_adam(1e-3)
    optimizer = keras.optimizers.MultiOptimizer(optimizer_map)
    model.compile(optimizer=optimizer, loss=model.loss, metrics=["accuracy"])
    low, high = optimizer_map["hidden_1/kernel"], optimizer_map.default_optimizer
    return model, (low, high)


@pytest.mark.train
def test_every_optimizer_of_a_multi_optimizer_runs_one_whole_cycle():
    x, y = _data()
    model, (low, high) = _with_two_optimizers()
    assert len(one_cycle_schedules(model.optimizer)) == 4
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    steps = 3 * 7
    for inner, peak in ((low, 1e-3), (high, 1e-2)):
        assert int(inner.iterations) == steps
        schedule = learning_rate_schedule(inner)
        assert (schedule.total_steps, schedule.start_step) == (steps, 0)
        # Annealed to the end of the cycle, momentum back at its maximum.
        assert float(inner.learning_rate) == pytest.approx(schedule.final_learning_rate,
                                                           rel=1e-4)
        assert schedule.max_learning_rate == peak
        assert float(inner.beta_1) == pytest.approx(0.95)


@pytest.mark.train
def test_a_second_fit_continues_each_cycle_from_its_initial_epoch():
    x, y = _data()
    model, (low, high) = _with_two_optimizers()
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    model.fit(x, y, epochs=4, initial_epoch=2, batch_size=32, verbose=0)
    for inner in (low, high):
        schedule = learning_rate_schedule(inner)
        assert (schedule.total_steps, schedule.start_step) == (4 * 7, 0)
        assert float(inner.learning_rate) == pytest.approx(schedule.final_learning_rate,
                                                           rel=1e-4)


def test_early_stopping_waits_for_the_annealing_with_a_multi_optimizer():
    x, y = _data()
    model, _ = _with_two_optimizers()
    callbacks = model.recipe_callbacks(has_validation=True, epochs=10)
    (stopping,) = [c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)]
    assert stopping.start_from_epoch == 5
