"""compile_recipe: the recipe on a model of yours, and the `schedule=` choice of every recipe.

The recipe's behaviours (1cycle span and values, early stopping, NaN stop, save/reload,
kill-and-resume) are tested for each kind of model of yours alongside the factories, in
test_recipes.py and test_reliability.py (parametrized over MODEL_KINDS).
"""

import math
import re
import warnings

import keras
import numpy as np
import pytest
from test_recipes import OWN_MODELS, own_cnn, own_rnn, own_subclassed, small_data, small_model

import keras_recipes
from keras_recipes.callbacks import TrainingMonitor
from keras_recipes.config import load_config
from keras_recipes.lr_finder.range_test import ramp_learning_rates
from keras_recipes.models import RecipeModel, RecipeWrapper
from keras_recipes.models.registry import get_recipe_spec
from keras_recipes.optimizers import learning_rate_schedule

LOSS = "sparse_categorical_crossentropy"


@pytest.mark.train
def test_a_graph_model_becomes_a_recipe_model_on_the_same_layers():
    for build in (own_cnn, own_rnn):
        yours = build(3)
        model = keras_recipes.compile_recipe(yours, loss=LOSS)
        assert type(model) is RecipeModel and model.compiled and not yours.compiled
        assert [id(layer) for layer in model.layers] == [id(layer) for layer in yours.layers] \
            or [id(layer) for layer in model.layers[1:]] == [id(layer) for layer in yours.layers]
        x, y = small_data(build.__name__, n=64)
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
        # Training the recipe's model trained yours: they share every weight.
        np.testing.assert_allclose(yours.predict(x, verbose=0), model.predict(x, verbose=0),
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.train
def test_a_subclassed_or_unbuilt_model_is_wrapped_and_trains_in_place(tmp_path):
    x, y = small_data("own_subclassed", n=64)
    for yours in (own_subclassed(3), keras.Sequential([keras.layers.Dense(3, "softmax")])):
        model = keras_recipes.compile_recipe(yours, loss=LOSS, metrics=["accuracy"])
        assert type(model) is RecipeWrapper and model.inner_model is yours
        model.fit(x, y, epochs=2, batch_size=32, verbose=0)
        assert learning_rate_schedule(model.optimizer).total_steps == 4
        np.testing.assert_allclose(yours.predict(x, verbose=0), model.predict(x, verbose=0),
                                   rtol=1e-6, atol=1e-6)
        model.save(tmp_path / "m.keras")
        reloaded = keras.models.load_model(tmp_path / "m.keras")  # no custom_objects
        assert type(reloaded) is RecipeWrapper and type(reloaded.inner_model) is type(yours)
        assert reloaded.recipe.stretches_one_cycle
        assert reloaded.recipe.early_stopping_patience == 10
        np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.train
def test_learning_rate_find_runs_the_finder_on_a_model_of_yours():
    x, y = small_data("own_subclassed", n=128)
    model = small_model("own_subclassed", learning_rate="find")
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    suggestion = model.learning_rate_finder_result.suggestion
    assert learning_rate_schedule(model.optimizer).max_learning_rate == pytest.approx(suggestion)
    assert not model.recipe.finds_learning_rate


class BatchNormNet(keras.Model):
    """A subclassed model of "yours" with BatchNorm and dropout (Glorot before a ReLU)."""

    def __init__(self, rate=0.3, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(8, activation="relu", name="hidden",
                                         kernel_initializer=keras.initializers.GlorotUniform(0))
        self.norm = keras.layers.BatchNormalization(name="norm")
        self.dropout = keras.layers.Dropout(rate, seed=1, name="drop")
        self.out = keras.layers.Dense(3, activation="softmax", name="out",
                                      kernel_initializer=keras.initializers.GlorotUniform(1))

    def call(self, inputs, training=None):
        hidden = self.norm(self.hidden(inputs), training=training)
        return self.out(self.dropout(hidden, training=training))


@pytest.mark.train
def test_diagnose_reads_the_layers_of_the_subclassed_model_a_wrapper_calls():
    x, y = small_data("own_subclassed", n=64)
    model = keras_recipes.compile_recipe(BatchNormNet(), loss=LOSS)
    report = keras_recipes.diagnose(model, x, y, num_steps=0, seed=0)
    yours = BatchNormNet()
    yours.compile(optimizer="nadam", loss=LOSS)
    expected = keras_recipes.diagnose(yours, x, y, num_steps=0, seed=0)
    # Your model is linted as if compiled by you, not as a pretrained base of the wrapper.
    assert report.rules == expected.rules == {"initializer_mismatch",
                                              "batch_normalization_after_activation"}
    assert [s.layer for s in report.layers] == [s.layer for s in expected.layers] \
        == ["hidden", "out"]
    assert all(math.isfinite(s.gradient_norm) for s in report.layers)


@pytest.mark.train
def test_diagnose_and_the_monitor_measure_the_layers_of_an_unbuilt_sequential_in_a_wrapper():
    x, y = small_data("own_subclassed", n=64)
    yours = keras.Sequential([
        keras.layers.Dense(8, activation="relu", kernel_initializer="he_normal", name="hidden"),
        keras.layers.Dense(3, activation="softmax", name="out")])
    model = keras_recipes.compile_recipe(yours, loss=LOSS)
    assert type(model) is RecipeWrapper
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=0,
                        callbacks=[TrainingMonitor(x, y, seed=0)])
    assert "monitor_hidden_dead_fraction" in history.history
    report = keras_recipes.diagnose(model, x, y, num_steps=0, seed=0)
    assert not report.notes and not report.rules
    assert [s.layer for s in report.layers] == ["hidden", "out"]
    assert math.isfinite(report.layers[0].mean) and report.layers[0].dead_fraction is not None


@pytest.mark.train
def test_a_subclassed_model_built_before_compile_recipe_keeps_its_weights_and_is_ready(
        tmp_path):
    x, y = small_data("own_subclassed", n=64)
    yours = own_subclassed(3, dropout_rate=0.2)
    yours(x[:2])  # built by a call, as after a first use
    initial = yours.get_weights()
    model = keras_recipes.compile_recipe(yours, loss=LOSS)
    assert model.built and model.count_params() == yours.count_params()
    for a, b in zip(model.get_weights(), initial):
        np.testing.assert_array_equal(a, b)
    # Ready before any fit: MC Dropout and diagnose on your layers.
    assert keras_recipes.MCDropoutPredictor(model, num_samples=4).predict(x[:2]).mean.shape \
        == (2, 3)
    assert not keras_recipes.diagnose(model).rules
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert learning_rate_schedule(model.optimizer).total_steps == 4
    assert any(np.abs(a - b).max() > 0 for a, b in zip(yours.get_weights(), initial))
    model.save(tmp_path / "built.keras")
    reloaded = keras.models.load_model(tmp_path / "built.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)


class Linear(keras.Model):
    """A subclassed `x -> w * x` from w = 0."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")

    def call(self, inputs):
        return self.dense(inputs)


@pytest.mark.parametrize("accumulation", [None, 2])
def test_the_lr_finder_on_a_wrapper_counts_optimizer_updates(accumulation):
    """Golden values, as in test_lr_finder: loss (w - 1)^2 from w = 0, SGD at the ramp's
    rate per update (the same batch each time, so an accumulated gradient is one batch's)."""
    x = np.ones((8, 1), "float32")
    model = keras_recipes.compile_recipe(
        Linear(), loss="mse",
        optimizer=keras.optimizers.SGD(gradient_accumulation_steps=accumulation))
    assert type(model) is RecipeWrapper
    result = keras_recipes.find_learning_rate(model, x, x, min_learning_rate=1e-2,
                                              max_learning_rate=0.5, num_steps=6,
                                              batch_size=4, divergence_factor=None)
    w, expected = 0.0, []
    for lr in ramp_learning_rates(1e-2, 0.5, 6):
        expected.append((w - 1.0) ** 2)
        w -= lr * 2.0 * (w - 1.0)
    np.testing.assert_allclose(result.losses, expected, rtol=1e-5)
    assert float(keras.ops.convert_to_numpy(model.inner_model.dense.kernel)[0, 0]) == 0.0
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


@pytest.mark.train
def test_learning_rate_find_with_gradient_accumulation_and_a_constant_rate():
    x, y = small_data("own_subclassed", n=128)
    model = small_model("own_subclassed", learning_rate="find", schedule="constant",
                        optimizer_kwargs={"gradient_accumulation_steps": 2})
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    suggestion = model.learning_rate_finder_result.suggestion
    assert float(model.optimizer.learning_rate) == pytest.approx(suggestion)
    assert int(model.optimizer.iterations) == 4  # 8 batches, one update per 2


class _OwnStep(keras.Model):
    def train_step(self, data):  # pragma: no cover - never run
        return super().train_step(data)


@pytest.mark.parametrize("model, kwargs, error, message", [
    (3, {}, TypeError, "Argument `model` must be a keras.Model (Sequential, functional or "
     "subclassed). Received: model=3"),
    (_OwnStep(), {}, ValueError, "Argument `model` must be a model that uses Keras's train "
     "step. Received: model=<_OwnStep with its own train_step>"),
    # The factories' checks, with the factories' messages:
    (None, dict(optimizer="adamm"), ValueError, "Argument `optimizer` must be one of 'sgd', "
     "'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam', 'adamax', 'nadam', 'adamw'. "
     "Received: optimizer='adamm'. Did you mean 'adam'?"),
    (None, dict(learning_rate=-1), ValueError, "Argument `learning_rate` must be a number > 0. "
     "Received: learning_rate=-1"),
    (None, dict(learning_rate="auto"), ValueError, "Argument `learning_rate` must be a number "
     "> 0 or \"find\""),
    (None, dict(schedule="cosin"), ValueError, "Argument `schedule` must be one of 'auto', "
     "'one_cycle', 'cosine', 'exponential', 'power', 'piecewise', 'plateau', 'constant'. "
     "Received: schedule='cosin'. Did you mean 'cosine'?"),
    (None, dict(schedule="cosine", schedule_kwargs={"warmup": 0.1}), ValueError,
     "Argument `schedule_kwargs` must be a dict of the settings of schedule='cosine' "
     "(warmup_fraction, alpha). Received: schedule_kwargs={'warmup': 0.1}. Did you mean "
     "'warmup_fraction'?"),
    (None, dict(clipnorm=0), ValueError, "Argument `clipnorm` must be a number > 0 or None"),
    (None, dict(total_steps=0), ValueError, "Argument `total_steps` must be a positive integer "
     "or None. Received: total_steps=0"),
    (None, dict(early_stopping_patience=-1), ValueError, "Argument `early_stopping_patience` "
     "must be a non-negative integer or None"),
    (None, dict(backup_dir=3), TypeError, "Argument `backup_dir` must be None or a folder path"),
    (None, dict(steps_per_execution=0), ValueError, "Argument `steps_per_execution` must be a "
     "positive integer or \"auto\""),
    (None, dict(optimizer=keras.optimizers.Adam(), schedule="one_cycle"), ValueError,
     "Argument `schedule` must be \"constant\", \"plateau\" or \"auto\" when `optimizer` is an "
     "instance"),
    (None, dict(optimizer_kwargs={"beta_1": 0.8}), ValueError, "Argument `optimizer_kwargs` "
     "must be free of `beta_1`. Received: optimizer_kwargs={'beta_1': 0.8} (the recipe sets "
     "it: the 1cycle cycles momentum and beta_1"),
    (None, dict(optimizer_kwargs=[("use_ema", True)]), TypeError,
     "Argument `optimizer_kwargs` must be a dict of optimizer arguments or None"),
    (None, dict(optimizer_kwargs={"gradient_accumulation_steps": 2}), ValueError,
     "must be free of `gradient_accumulation_steps` with schedule=\"one_cycle\""),
])
def test_compile_recipe_rejects_bad_arguments_as_the_factories_do(model, kwargs, error,
                                                                   message):
    model = own_cnn(3) if model is None else model
    with pytest.raises(error, match=re.escape(message)):
        keras_recipes.compile_recipe(model, loss=LOSS, **kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(early_stopping_patience=-1), dict(early_stopping_patience=2.5),
    dict(early_stopping_patience="10"), dict(learning_rate=0), dict(learning_rate="fast"),
    dict(clipnorm=-1.0), dict(total_steps=1.5), dict(schedule="cyclic"), dict(backup_dir=1),
    dict(steps_per_execution=0), dict(jit_compile="yes"), dict(optimizer="lion"),
    dict(schedule_kwargs={"warmup": 0.1}), dict(swa_epochs=0),
])
def test_compile_recipe_says_what_build_default_dnn_says_for_each_shared_argument(kwargs):
    """One validation code path: the same error and message for the same bad value."""
    with pytest.raises((TypeError, ValueError)) as factory:
        keras_recipes.build_default_dnn((4,), 3, **kwargs)
    with pytest.raises(factory.type, match=f"^{re.escape(str(factory.value))}$"):
        keras_recipes.compile_recipe(own_cnn(3), loss=LOSS, **kwargs)


# --- schedule= ------------------------------------------------------------------------------


@pytest.mark.train
@pytest.mark.parametrize("name", ["default_dnn", "baseline", *OWN_MODELS])
def test_plateau_halves_the_learning_rate_when_the_validation_loss_stalls(name):
    x, y = small_data(name, n=64)
    x_val, y_val = small_data(name, n=64, seed=5)
    y_val = (y_val + 1) % 3  # labels the model cannot learn: the validation loss never improves
    # (A high learning rate for a model of yours, so that it fits the training labels
    # within a few epochs and the validation loss soon rises.)
    extra = {"learning_rate": 3e-2} if name in OWN_MODELS else {}
    rates = {}
    for schedule in ("plateau", "constant"):
        model = small_model(name, schedule=schedule, early_stopping_patience=None, **extra)
        assert (model.recipe.schedule == "plateau") is (schedule == "plateau")
        start = float(model.optimizer.learning_rate)
        model.fit(x, y, epochs=12, batch_size=32, validation_data=(x_val, y_val), verbose=0,
                  shuffle=False)  # the same batches whatever ran before (no global RNG)
        rates[schedule] = float(model.optimizer.learning_rate) / start
    # ReduceLROnPlateau(factor=0.5, patience=5): halved after 5 epochs without improvement.
    assert rates["plateau"] == pytest.approx(0.5) or rates["plateau"] == pytest.approx(0.25)
    assert rates["constant"] == pytest.approx(1.0)


def test_plateau_is_on_a_float_learning_rate_and_watches_the_training_loss_without_validation():
    model = small_model("default_dnn", schedule="plateau")
    assert not model.recipe.stretches_one_cycle
    assert learning_rate_schedule(model.optimizer) is None  # a float rate, in a variable
    [plateau] = [c for c in model.recipe_callbacks([], has_validation=True)
                 if isinstance(c, keras.callbacks.ReduceLROnPlateau)]
    assert (plateau.monitor, plateau.factor, plateau.patience) == ("val_loss", 0.5, 5)
    [plateau] = [c for c in model.recipe_callbacks([]) if
                 isinstance(c, keras.callbacks.ReduceLROnPlateau)]
    assert plateau.monitor == "loss"
    mine = keras.callbacks.ReduceLROnPlateau(patience=2)
    assert [c for c in model.recipe_callbacks([mine])
            if isinstance(c, keras.callbacks.ReduceLROnPlateau)] == [mine]


@pytest.mark.parametrize("name", ["default_dnn", "own_cnn"])
def test_reduce_lr_on_plateau_with_the_1cycle_is_refused_with_a_clear_message(name):
    x, y = small_data(name, n=64)
    model = small_model(name)
    with pytest.raises(ValueError, match=re.escape(
            "`keras.callbacks.ReduceLROnPlateau` cannot be used with this model: its optimizer's "
            "learning rate follows a schedule (OneCycle), which ReduceLROnPlateau cannot lower "
            "(Keras would fail with a TypeError at its first reduction). Build the model with "
            'schedule="plateau"')):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[keras.callbacks.ReduceLROnPlateau()])
    scheduled = keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9))
    with pytest.raises(ValueError, match=re.escape(
            "Argument `schedule` must be \"constant\" or \"auto\" for an optimizer whose learning "
            "rate is a schedule")):
        keras_recipes.compile_recipe(own_cnn(3), loss=LOSS, optimizer=scheduled,
                                     schedule="plateau")


def test_the_settings_of_the_previous_release_are_read_from_the_recipe_with_a_warning():
    model = keras_recipes.build_default_dnn((4,), 3, schedule="plateau", backup_dir="b",
                                            early_stopping_patience=4)
    expected = {"early_stopping_patience": 4, "auto_one_cycle": False, "backup_dir": "b",
                "auto_learning_rate": False, "reduce_lr_on_plateau": True}
    for name, value in expected.items():
        with pytest.warns(DeprecationWarning, match="is deprecated: read model.recipe."):
            assert getattr(model, name) == value
    inputs = keras.Input((4,))
    with pytest.warns(DeprecationWarning, match="pass recipe=keras_recipes.Recipe"):
        legacy = keras_recipes.RecipeModel(inputs, keras.layers.Dense(3)(inputs),
                                           early_stopping_patience=2, auto_one_cycle=True)
    assert legacy.recipe.early_stopping_patience == 2 and legacy.recipe.stretches_one_cycle


def test_one_cycle_is_a_deprecated_alias_of_schedule():
    with pytest.warns(DeprecationWarning, match="`one_cycle` is deprecated"):
        model = keras_recipes.build_default_dnn((4,), 3, one_cycle=False)
    assert not model.recipe.stretches_one_cycle and model.recipe.schedule != "plateau"
    with pytest.warns(DeprecationWarning):
        assert keras_recipes.build_default_dnn((4,), 3, one_cycle=True,
                                               schedule="one_cycle").recipe.stretches_one_cycle
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default says nothing
        assert keras_recipes.build_default_dnn((4,), 3).recipe.stretches_one_cycle
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match=re.escape(
            "Argument `one_cycle` must be left out when `schedule='plateau'`. Received: "
            "one_cycle=True (`one_cycle` is the deprecated form of `schedule`)")):
        keras_recipes.build_default_dnn((4,), 3, one_cycle=True, schedule="plateau")


@pytest.mark.parametrize("recipe", keras_recipes.list_recipes())
def test_every_recipe_and_config_takes_schedule(recipe):
    config = load_config(recipe, ["model.schedule=plateau"])
    assert config.model["schedule"] == "plateau"
    shipped = load_config(recipe).model["schedule"]
    assert shipped in ("one_cycle", "constant")
    spec = get_recipe_spec(recipe)
    assert "schedule" in spec.model_defaults


# --- the Keras features people combine it with ----------------------------------------------


@pytest.mark.train
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_model_runs_the_whole_1cycle(policy):
    x, y = small_data("own_cnn", n=64)
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        model = small_model("own_cnn")
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    schedule = keras_recipes._keras_internals.learning_rate_object(model.optimizer)
    assert (schedule.total_steps, schedule.start_step) == (4, 0)
    assert float(model.optimizer.learning_rate) == pytest.approx(
        schedule.final_learning_rate, rel=1e-4)
    assert all(w.dtype == "float32" for w in model.trainable_weights)


@pytest.mark.train
def test_ema_weights_replace_the_trained_ones_and_the_1cycle_still_runs(tmp_path):
    x, y = small_data("own_subclassed", n=64)
    model = small_model("own_subclassed", optimizer_kwargs={"use_ema": True, "ema_momentum": 0.5})
    assert model.optimizer.use_ema
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert learning_rate_schedule(model.optimizer).total_steps == 4
    ema = [keras.ops.convert_to_numpy(v) for v in model.optimizer._model_variables_moving_average]
    for weight, average in zip(model.trainable_weights, ema):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(weight), average, rtol=1e-6)
    model.save(tmp_path / "ema.keras")
    assert keras.models.load_model(tmp_path / "ema.keras").optimizer.use_ema


@pytest.mark.train
@pytest.mark.parametrize("schedule", ["plateau", "constant"])
def test_gradient_accumulation_works_with_plateau_and_constant(schedule):
    x, y = small_data("own_cnn", n=64)
    model = small_model("own_cnn", schedule=schedule,
                        optimizer_kwargs={"gradient_accumulation_steps": 2})
    model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0)
    assert int(model.optimizer.iterations) == 3  # 6 batches, one update per 2
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-2)  # not lowered


def test_clipnorm_bounds_each_weights_update_of_an_rnn():
    x, y = small_data("own_rnn", n=32)
    x = x * 100  # large inputs: large gradients
    updates = {}
    for clipnorm in (1e-3, None):
        model = keras_recipes.compile_recipe(own_rnn(3), loss=LOSS, optimizer="sgd",
                                             schedule="constant", learning_rate=1.0,
                                             clipnorm=clipnorm)
        assert model.optimizer.clipnorm == clipnorm
        model.build((None, 6, 4))
        before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
        model.train_on_batch(x, y)  # one SGD step: the update is learning_rate * gradient
        updates[clipnorm] = [np.linalg.norm(keras.ops.convert_to_numpy(w) - b)
                             for w, b in zip(model.trainable_weights, before)]
    assert max(updates[1e-3]) <= 1e-3 * (1 + 1e-4)  # each gradient clipped to norm 1e-3
    assert max(updates[None]) > 1e-2  # without clipping the same step is far larger


@pytest.mark.train
def test_a_variable_length_input_takes_sequences_of_any_length_and_checks_the_rest():
    rnn = keras.Sequential([keras.Input((None, 8)), keras.layers.LSTM(4), keras.layers.Dense(1)])
    model = keras_recipes.compile_recipe(rnn, loss="mse")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(32, 12, 8)), rng.normal(size=(32, 1)), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `x` must be an array of shape (num_samples, None, 8) to match the model's "
            "input_shape=(None, 8). Received: x=<array of shape (32, 12, 5)>")):
        model.fit(rng.normal(size=(32, 12, 5)), rng.normal(size=(32, 1)), epochs=1, verbose=0)
