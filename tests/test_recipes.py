"""Tests every registered recipe gets, plus the specifics of each recipe."""

import inspect
import re

import keras
import numpy as np
import pytest

import keras_recipes
from keras_recipes.models.registry import fine_tune_model, fit_model, get_recipe_spec
from keras_recipes.models.transfer import fine_tune, transfer_learning_recipe
from keras_recipes.optimizers import learning_rate_schedule
from keras_recipes.optimizers.scheduled import raw_hyperparameter
from keras_recipes.schedules import OneCycle, OneCycleMomentum

RECIPES = keras_recipes.list_recipes()


def conv_base(input_shape=(8, 8, 3), seed=0, rescaling=False):
    """A small stand-in for a pretrained base: two Conv -> BatchNorm -> ReLU blocks, seeded
    (after a Rescaling(1/255) of the pixels with `rescaling=True`), 64 features.

    (With 8 features, a head trained on them is so slow to start that `diagnose`'s 20-step
    sanity check saw the loss fall by under 1% for 6 of 6 batch seeds on JAX; with 64, by
    3-5% on TensorFlow and JAX.)
    """
    inputs = keras.Input(input_shape)
    x = keras.layers.Rescaling(1 / 255, name="rescaling")(inputs) if rescaling else inputs
    for i, (filters, strides) in enumerate([(16, 1), (64, 2)], start=1):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", name=f"conv_{i}",
                                kernel_initializer=keras.initializers.GlorotUniform(seed + i))(x)
        x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
        x = keras.layers.ReLU(name=f"relu_{i}")(x)
    return keras.Model(inputs, x, name="conv_base")


# A small configuration of each registered recipe -- the shape of one input sample and the
# factory's arguments (made afresh for each model) -- so registry-wide tests stay fast.
# A new recipe must add itself here (test_every_recipe_has_a_small_test_configuration), and
# to SMALL_FIT when its training function takes more than `epochs`.
SMALL = {
    "baseline": ((12,), lambda: dict(num_hidden_layers=2, units=16)),
    "default_dnn": ((12,), lambda: dict(num_hidden_layers=2, units=16)),
    "self_normalizing": ((12,), lambda: dict(num_hidden_layers=2, units=16)),
    # Small images on a tiny conv base of "yours" (a keras.applications base takes ~20 s to
    # trace here; the shipped MobileNetV2 config is trained in test_cli, marked slow).
    "transfer_learning": ((8, 8, 3), lambda: dict(
        base=conv_base(), weights=None, preprocessing=keras.layers.Rescaling(1 / 255),
        num_hidden_layers=2, units=16)),
}
SMALL_FIT = {"transfer_learning": dict(head_epochs=1, epochs=1, unfreeze=3)}


@keras.saving.register_keras_serializable(package="keras_recipes_tests")
class SubclassedNet(keras.Model):
    """A subclassed model of "yours": Dense -> ReLU -> [Dropout] -> softmax."""

    def __init__(self, num_classes=3, units=8, dropout_rate=0.0, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.units, self.dropout_rate, self.seed = (
            num_classes, units, dropout_rate, seed)
        self.hidden = keras.layers.Dense(
            units, activation="relu", kernel_initializer=keras.initializers.HeNormal(seed))
        self.dropout = keras.layers.Dropout(dropout_rate, seed=seed + 1000)
        self.output_layer = keras.layers.Dense(
            num_classes, activation="softmax",
            kernel_initializer=keras.initializers.GlorotUniform(seed + 1))

    def call(self, inputs, training=None):
        return self.output_layer(self.dropout(self.hidden(inputs), training=training))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "units": self.units,
                "dropout_rate": self.dropout_rate, "seed": self.seed}


def own_cnn(num_classes, dropout_rate=0.0, seed=0):
    """A functional CNN of "yours" on 8x8x1 images."""
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False,
                            kernel_initializer=keras.initializers.HeNormal(seed))(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, seed=seed + 1000)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax",
                                 kernel_initializer=keras.initializers.GlorotUniform(seed + 1))(x)
    return keras.Model(inputs, outputs, name="own_cnn")


def own_rnn(num_classes, dropout_rate=0.0, seed=0):
    """A Sequential GRU of "yours" on sequences of 6 steps of 4 features."""
    return keras.Sequential([
        keras.Input((6, 4)),
        keras.layers.GRU(4, kernel_initializer=keras.initializers.GlorotUniform(seed),
                         # (Keras 3.15's seeded Orthogonal draws differently each time.)
                         recurrent_initializer=keras.initializers.GlorotUniform(seed + 2)),
        *([keras.layers.Dropout(dropout_rate, seed=seed + 1000)] if dropout_rate else []),
        keras.layers.Dense(num_classes, activation="softmax",
                           kernel_initializer=keras.initializers.GlorotUniform(seed + 1)),
    ], name="own_rnn")


def own_subclassed(num_classes, dropout_rate=0.0, seed=0):
    return SubclassedNet(num_classes, dropout_rate=dropout_rate, seed=seed, name="own_sub")


# Models of "yours" given to `compile_recipe`: each kind gets the recipe behaviour tests the
# factories get (parametrized over MODEL_KINDS). Shape of one sample, the model, and the
# arguments of compile_recipe (the chapter's clipnorm for the RNN; the factories' peak
# learning rate, so that these tiny models learn, and overfit, within a few epochs).
OWN_MODELS = {
    "own_cnn": ((8, 8, 1), own_cnn, {"learning_rate": 1e-2}),
    "own_rnn": ((6, 4), own_rnn, {"learning_rate": 1e-2, "clipnorm": 1.0}),
    "own_subclassed": ((12,), own_subclassed, {"learning_rate": 1e-2}),
}
MODEL_KINDS = RECIPES + list(OWN_MODELS)


@pytest.fixture(scope="module")
def digits():
    return keras_recipes.datasets.load("digits")


def small_data(name="default_dnn", n=192, classes=3, seed=0):
    """Inputs for recipe `name` (vectors or images) and labels that depend on them."""
    rng = np.random.default_rng(seed)
    if name in OWN_MODELS:
        # Labels from the mean of three slices of the inputs, whatever their shape.
        x = rng.normal(size=(n, *OWN_MODELS[name][0])).astype("float32")
        flat = x.reshape(n, -1)
        slices = np.array_split(flat[:, : flat.shape[1] // classes * classes], classes, axis=1)
        return x, np.stack([s.mean(axis=1) for s in slices], 1).argmax(axis=1).astype("int64")
    shape = SMALL[name][0]
    if len(shape) == 1:
        x = rng.normal(size=(n, *shape)).astype("float32")
        return x, (x[:, :classes].argmax(axis=1)).astype("int64")
    # Images with pixels in [0, 255]; the class's colour channel is brighter.
    y = rng.integers(0, classes, n).astype("int64")
    x = rng.uniform(0, 155, size=(n, *shape)).astype("float32")
    x[np.arange(n), ..., y] += 100
    return x, y


def small_model(name, num_classes=3, **kwargs):
    """A small model of recipe `name` (its SMALL configuration, updated with `kwargs`), or
    one of OWN_MODELS compiled with `compile_recipe(**kwargs)` (`dropout_rate` goes to
    the model)."""
    if name in OWN_MODELS:
        _, build, compile_kwargs = OWN_MODELS[name]
        model = build(num_classes, dropout_rate=kwargs.pop("dropout_rate", 0.0), seed=0)
        return keras_recipes.compile_recipe(
            model, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
            **{**compile_kwargs, **kwargs})
    shape, small = SMALL[name]
    return keras_recipes.get_recipe(name)(shape, num_classes, seed=0, **{**small(), **kwargs})



def _accepts(name, argument):
    if name in OWN_MODELS:
        return argument == "dropout_rate" or \
            argument in inspect.signature(keras_recipes.compile_recipe).parameters
    return argument in inspect.signature(keras_recipes.get_recipe(name)).parameters


def _cycled(name, **kwargs):
    """A small model of a recipe that uses the 1cycle, or a skip."""
    model = small_model(name, **kwargs)
    if not model.recipe.stretches_one_cycle:
        pytest.skip(f"the {name} recipe has no 1cycle")
    return model


def test_every_recipe_has_a_small_test_configuration():
    assert sorted(SMALL) == RECIPES


def test_registry_lists_and_resolves_recipes():
    assert RECIPES == ["baseline", "default_dnn", "self_normalizing", "transfer_learning"]
    assert keras_recipes.get_recipe("Default_DNN") is keras_recipes.build_default_dnn
    assert keras_recipes.get_recipe("transfer_learning") is transfer_learning_recipe
    assert get_recipe_spec("Default_DNN").train is fit_model
    assert get_recipe_spec("transfer_learning").train is fine_tune_model
    with pytest.raises(ValueError, match=re.escape(
            "Argument `name` must be one of 'baseline', 'default_dnn', 'self_normalizing', "
            "'transfer_learning'. Received: name='default_dn'. Did you mean 'default_dnn'?")):
        keras_recipes.get_recipe("default_dn")
    with pytest.raises(ValueError, match=re.escape("Did you mean 'transfer_learning'?")):
        get_recipe_spec("transfer_learnig")
    with pytest.raises(TypeError, match=re.escape(
            "Argument `name` must be one of 'baseline', 'default_dnn', 'self_normalizing', "
            "'transfer_learning'. Received: name=3")):
        get_recipe_spec(3)


@pytest.mark.train
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_trains_with_its_training_function(name):
    spec = get_recipe_spec(name)
    fit = {**spec.fit_defaults, "epochs": 2, **SMALL_FIT.get(name, {})}
    spec.check_fit(fit)
    x, y = small_data(name)
    model = small_model(name)
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: seen.append([]),
        on_epoch_end=lambda epoch, logs: seen[-1].append(logs["loss"]))
    history = spec.train(model, (x[:128], y[:128]), (x[128:], y[128:]), callbacks=[record],
                         verbose=0, **fit)
    phases = spec.phases(fit) if spec.phases else [None]
    # One fit call per phase, every epoch in the history, the caller's callback in each call.
    assert len(seen) == len(phases)
    assert history.history["loss"] == pytest.approx([loss for call in seen for loss in call])
    assert "val_loss" in history.history
    if spec.phases:
        assert history.history["phase"] == [p for p, call in zip(phases, seen) for _ in call]


@pytest.mark.train
@pytest.mark.parametrize("name", MODEL_KINDS)
def test_recipe_returns_a_compiled_model_whose_fit_runs_one_whole_cycle(name):
    x, y = small_data(name)
    model = _cycled(name)
    assert isinstance(model, keras.Model) and model.compiled
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    steps = 3 * (len(x) // 32)
    lr_schedule = learning_rate_schedule(model.optimizer)
    assert isinstance(lr_schedule, OneCycle)
    assert (lr_schedule.total_steps, lr_schedule.start_step) == (steps, 0)
    assert int(model.optimizer.iterations) == steps
    # At the end of the fit the learning rate has annealed to its final value
    # and beta_1 is back at its maximum.
    assert float(model.optimizer.learning_rate) == pytest.approx(lr_schedule.final_learning_rate,
                                                                 rel=1e-4)
    assert float(model.optimizer.beta_1) == pytest.approx(0.95)
    # A second fit runs a new cycle over its own steps.
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert (lr_schedule.total_steps, lr_schedule.start_step) == (2 * 3, steps)


@pytest.mark.train
@pytest.mark.parametrize("name", MODEL_KINDS)
def test_recipe_cycle_is_applied_inside_the_compiled_step(name):
    # The learning rate and beta_1 read by each batch are the schedules' values at that
    # step: recorded from the optimizer after every batch, by a callback that only reads.
    x, y = small_data(name)
    model = _cycled(name)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            optimizer = self.model.optimizer
            seen.append((int(optimizer.iterations), float(optimizer.learning_rate),
                         float(optimizer.beta_1)))

    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[Record()])
    steps, learning_rates, momenta = map(list, zip(*seen))
    assert steps == list(range(1, 13))
    peak = learning_rate_schedule(model.optimizer).max_learning_rate
    expected_lr = OneCycle(max_learning_rate=peak, total_steps=12)
    expected_beta = OneCycleMomentum(total_steps=12)
    assert learning_rates == pytest.approx([float(expected_lr(s)) for s in steps], rel=1e-5)
    assert momenta == pytest.approx([float(expected_beta(s)) for s in steps], rel=1e-5)
    # Momentum cycles against the learning rate: lowest where the learning rate peaks.
    assert np.argmax(learning_rates) == np.argmin(momenta)
    # Identical training with a constant learning rate gives other weights.
    other = small_model(name, schedule="constant")
    other.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
    model2 = small_model(name)
    model2.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
    # (Every trainable weight: a transfer model's base is frozen, its head trained.)
    differences = [np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b)).max()
                   for a, b in zip(other.trainable_weights, model2.trainable_weights)]
    assert max(differences) > 1e-4


@pytest.mark.parametrize("name", MODEL_KINDS)
def test_recipe_adds_no_per_batch_callback(name):
    model = small_model(name)
    callbacks = model.recipe_callbacks([], has_validation=True)
    base = keras.callbacks.Callback
    assert any(isinstance(c, keras_recipes.callbacks.StopOnNaN) for c in callbacks)
    for callback in callbacks:
        for hook in ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin",
                     "on_batch_end"):
            # A per-batch Python hook would make every compiled step wait for Python.
            assert getattr(type(callback), hook) is getattr(base, hook), (callback, hook)


@pytest.mark.train
@pytest.mark.parametrize("name", MODEL_KINDS)
def test_recipe_saves_and_reloads_mid_cycle_and_resumes_at_the_same_step(name, tmp_path):
    x, y = small_data(name)
    straight = small_model(name)
    straight.fit(x, y, epochs=4, batch_size=32, shuffle=False, verbose=0)

    class StopAfterTwo(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    interrupted = small_model(name)
    interrupted.fit(x, y, epochs=4, batch_size=32, shuffle=False, verbose=0,
                    callbacks=[StopAfterTwo()])
    path = tmp_path / "mid_cycle.keras"
    interrupted.save(path)
    reloaded = keras.models.load_model(path)  # no custom_objects
    assert type(reloaded) is type(interrupted)
    assert isinstance(reloaded, keras_recipes.models.RecipeModel if name not in OWN_MODELS
                      or OWN_MODELS[name][1] is not own_subclassed
                      else keras_recipes.models.RecipeWrapper)
    assert int(reloaded.optimizer.iterations) == 12
    assert keras.optimizers.serialize(reloaded.optimizer) == \
        keras.optimizers.serialize(interrupted.optimizer)
    assert float(reloaded.optimizer.learning_rate) == pytest.approx(
        float(interrupted.optimizer.learning_rate))
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), interrupted.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)
    reloaded.fit(x, y, epochs=4, initial_epoch=2, batch_size=32, shuffle=False, verbose=0)
    if reloaded.recipe.stretches_one_cycle:
        assert learning_rate_schedule(reloaded.optimizer).total_steps == 24
    for resumed, reference in zip(reloaded.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(resumed, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.train
@pytest.mark.parametrize("name", MODEL_KINDS)
def test_recipe_early_stopping_only_with_validation_and_user_callbacks_still_run(name):
    model = small_model(name, early_stopping_patience=10)
    assert not any(isinstance(c, keras.callbacks.EarlyStopping)
                   for c in model.recipe_callbacks([], has_validation=False))
    stopping = [c for c in model.recipe_callbacks([], has_validation=True)
                if isinstance(c, keras.callbacks.EarlyStopping)]
    assert len(stopping) == 1 and stopping[0].restore_best_weights
    assert stopping[0].monitor == "val_loss" and stopping[0].patience == 10
    # With a 1cycle, early stopping watches the second half of the epochs only.
    [late] = [c for c in model.recipe_callbacks([], has_validation=True, epochs=30)
              if isinstance(c, keras.callbacks.EarlyStopping)]
    assert late.start_from_epoch == (15 if model.recipe.stretches_one_cycle else 0)
    mine = keras.callbacks.EarlyStopping(patience=1)
    assert [c for c in model.recipe_callbacks([mine], has_validation=True)
            if isinstance(c, keras.callbacks.EarlyStopping)] == [mine]

    x, y = small_data(name)
    epochs_seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: epochs_seen.append(e))
    model.fit(x, y, epochs=2, batch_size=32, validation_split=0.25, verbose=0, callbacks=[record])
    assert epochs_seen == [0, 1]


@pytest.mark.train
@pytest.mark.parametrize("name", MODEL_KINDS)
def test_recipe_early_stopping_restores_the_best_weights(name):
    x, y = small_data(name)
    x_val, y_val = small_data(name, seed=5)
    y_val = (y_val + 1) % 3  # validation labels the model cannot learn: val_loss rises
    model = small_model(name, early_stopping_patience=1)
    best = {}
    [stopping] = [c for c in model.recipe_callbacks([], has_validation=True, epochs=20)
                  if isinstance(c, keras.callbacks.EarlyStopping)]

    class Track(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch >= stopping.start_from_epoch and logs["val_loss"] < best.get("loss", np.inf):
                best.update(loss=logs["val_loss"], weights=self.model.get_weights())

    history = model.fit(x, y, epochs=20, batch_size=32, validation_data=(x_val, y_val),
                        verbose=0, callbacks=[Track()])
    assert len(history.epoch) < 20
    # It waits for the 1cycle to anneal: nothing is watched in the first half of the epochs,
    # so the earliest stop is `patience` epochs after the first watched one.
    assert stopping.start_from_epoch == (10 if model.recipe.stretches_one_cycle else 0)
    assert len(history.epoch) >= stopping.start_from_epoch + stopping.patience + 1
    for restored, kept in zip(model.get_weights(), best["weights"]):
        np.testing.assert_array_equal(restored, kept)


@pytest.mark.train
@pytest.mark.parametrize("name", MODEL_KINDS)
def test_recipe_stops_on_nan_loss(name):
    x, y = small_data(name)
    weights = np.ones(len(x), "float32")
    weights[5] = np.nan  # makes the loss itself NaN, whatever the architecture
    model = small_model(name)
    history = model.fit(x, y, sample_weight=weights, epochs=5, batch_size=32, shuffle=False,
                        verbose=0)
    assert len(history.epoch) == 1 and np.isnan(history.history["loss"][-1])


@pytest.mark.train
@pytest.mark.parametrize("name", MODEL_KINDS)
def test_recipe_is_reproducible_with_a_seed(name):
    x, y = small_data(name)
    weights = []
    for _ in range(2):
        extra = {"dropout_rate": 0.2} if _accepts(name, "dropout_rate") else {}
        model = small_model(name, **extra)
        model.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


@pytest.mark.train
@pytest.mark.parametrize("name", RECIPES)
@pytest.mark.parametrize("task, num_classes, loss, units, activation", [
    ("auto", 3, "sparse_categorical_crossentropy", 3, "softmax"),
    ("auto", 2, "binary_crossentropy", 1, "sigmoid"),
    ("regression", None, "mse", 2, "linear"),
])
def test_recipe_output_and_loss_follow_the_task(name, task, num_classes, loss, units, activation):
    model = small_model(name, num_classes, task=task, num_outputs=2, num_hidden_layers=1,
                        units=8)
    output = model.get_layer("output")
    assert output.units == units and output.activation.__name__ == activation
    assert model.loss == loss
    x, _ = small_data(name)
    y = np.random.default_rng(0).integers(0, 2, size=len(x)) if num_classes else \
        np.random.default_rng(0).normal(size=(len(x), 2)).astype("float32")
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("name", RECIPES)
@pytest.mark.parametrize("kwargs, error, message", [
    (dict(input_shape=(0,)), ValueError, "Argument `input_shape` must be a tuple of positive "
     "integers, e.g. (64,) or (28, 28, 1). Received: input_shape=(0,)"),
    (dict(input_shape="64"), TypeError, "Argument `input_shape` must be a non-empty tuple"),
    (dict(num_classes=1), ValueError, "Argument `num_classes` must be an integer >= 2. "
     "Received: num_classes=1"),
    (dict(num_classes=None), ValueError, "Argument `num_classes` must be an integer >= 2 for "
     "classification. Received: num_classes=None. For regression pass task=\"regression\""),
    (dict(task="classify"), ValueError, "Argument `task` must be one of 'auto', 'multiclass', "
     "'binary', 'regression'. Received: task='classify'"),
    (dict(num_hidden_layers=0), ValueError, "Argument `num_hidden_layers` must be a positive "
     "integer. Received: num_hidden_layers=0"),
    (dict(dropout_rate=1.0), ValueError, "Argument `dropout_rate` must be in the range [0, 1). "
     "Received: dropout_rate=1.0"),
    (dict(optimizer="adamm"), ValueError, "Argument `optimizer` must be one of 'sgd', "
     "'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam', 'adamax', 'nadam', 'adamw'. "
     "Received: optimizer='adamm'. Did you mean 'adam'?"),
    (dict(optimizer=3), TypeError, "Argument `optimizer` must be an optimizer name"),
    (dict(optimizer=keras.optimizers.Adam(), one_cycle=True), ValueError,
     "Argument `one_cycle` must be False (or \"auto\") when `optimizer` is an instance"),
    (dict(learning_rate=-1), ValueError, "Argument `learning_rate` must be a number > 0. "
     "Received: learning_rate=-1"),
    (dict(total_steps=0), ValueError, "Argument `total_steps` must be a positive integer or "
     "None. Received: total_steps=0"),
    (dict(seed=-3), ValueError, "Argument `seed` must be a non-negative integer or None. "
     "Received: seed=-3"),
    (dict(normalization_data=np.zeros((5, 3))), ValueError, "Argument `normalization_data` must "
     "be an array of shape (num_samples, *(12,)) matching `input_shape`"),
])
def test_recipe_rejects_bad_arguments(name, kwargs, error, message):
    if not all(_accepts(name, argument) for argument in kwargs):
        pytest.skip(f"the {name} recipe has no such argument")
    parameters = inspect.signature(keras_recipes.get_recipe(name)).parameters
    if kwargs.get("num_hidden_layers") == 0 and parameters["num_hidden_layers"].default == 0:
        pytest.skip(f"the {name} recipe may have no hidden layer (its default is 0)")
    if "one_cycle" in kwargs and parameters["schedule"].default != "auto":
        kwargs = {**kwargs, "schedule": "auto"}  # (the baseline's default is "constant")
    shape, small = SMALL[name]
    kwargs = {"input_shape": shape, "num_classes": 3, **small(), **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        keras_recipes.get_recipe(name)(**kwargs)


# --- build_default_dnn -------------------------------------------------------------------


def test_default_dnn_blocks_are_dense_without_bias_then_batchnorm_then_elu():
    model = keras_recipes.build_default_dnn((12,), 3, num_hidden_layers=3)
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    kinds = [type(layer).__name__ for layer in layers]
    assert kinds == ["Dense", "BatchNormalization", "Activation"] * 3 + ["Dense"]
    for dense in layers[:-1:3]:
        assert not dense.use_bias
        assert type(dense.kernel_initializer).__name__ == "HeNormal"
    assert all(layer.activation.__name__ == "elu" for layer in layers[2:-1:3])
    assert type(model.optimizer).__name__ == "Nadam"
    assert isinstance(raw_hyperparameter(model.optimizer, "beta_1"), OneCycleMomentum)


@pytest.mark.parametrize("activation, initializer, layer_type", [
    ("relu", "HeNormal", "Activation"), ("leaky_relu", "HeNormal", "LeakyReLU"),
    ("prelu", "HeNormal", "PReLU"), ("elu", "HeNormal", "Activation"),
    ("selu", "LecunNormal", "Activation"), ("swish", "HeNormal", "Activation"),
    ("silu", "HeNormal", "Activation"), ("gelu", "HeNormal", "Activation"),
    ("tanh", "GlorotNormal", "Activation"), ("sigmoid", "GlorotNormal", "Activation"),
])
def test_default_dnn_matches_the_initializer_to_the_activation(activation, initializer,
                                                               layer_type):
    model = keras_recipes.build_default_dnn((12,), 3, num_hidden_layers=1, activation=activation)
    assert type(model.get_layer("hidden_1").kernel_initializer).__name__ == initializer
    assert type(model.get_layer(f"{activation}_1")).__name__ == layer_type


@pytest.mark.parametrize("activation, variance", [("tanh", 1.0), ("sigmoid", 1.0),
                                                  ("relu", 2.0), ("selu", 1.0)])
def test_default_dnn_initial_pre_activation_variance_is_the_chapters(activation, variance):
    """Closed form: with unit-variance inputs and a square layer, a unit's pre-activation
    variance is fan_in * Var(w): 1 for Glorot (1 / fan_avg) and LeCun (1 / fan_in), 2 for
    He (2 / fan_in)."""
    x = np.random.default_rng(0).normal(size=(2048, 256)).astype("float32")
    model = keras_recipes.build_default_dnn((256,), 3, num_hidden_layers=1, units=256,
                                            activation=activation, normalization=None, seed=0)
    kernel = keras.ops.convert_to_numpy(model.get_layer("hidden_1").kernel)
    assert float(np.var(x @ kernel)) == pytest.approx(variance, rel=0.05)
    assert float(256 * np.mean(kernel**2)) == pytest.approx(variance, rel=0.05)


def test_default_dnn_tanh_keeps_its_signal_where_he_init_saturates_it():
    """The effect of the pairing: ten tanh layers with Glorot keep the last layer's outputs
    mostly in tanh's responsive range; with He (what the recipe would use for ReLU) twice
    the variance drives more of them towards the flat ends, where the gradient vanishes."""
    x = np.random.default_rng(0).normal(size=(512, 64)).astype("float32")
    model = keras_recipes.build_default_dnn((64,), 3, num_hidden_layers=10, units=64,
                                            activation="tanh", normalization=None, seed=0)
    glorot = keras.Model(model.inputs, model.get_layer("tanh_10").output)
    he = keras.Sequential([keras.Input((64,))] + [
        keras.layers.Dense(64, activation="tanh", kernel_initializer=keras.initializers.HeNormal(i))
        for i in range(10)])

    def derivative(outputs):  # tanh'(z) = 1 - tanh(z)^2, the factor gradients go through
        return float(np.mean(1 - keras.ops.convert_to_numpy(outputs) ** 2))

    assert derivative(glorot(x)) > 0.9 > derivative(he(x)) + 0.1
    assert "initializer_mismatch" not in keras_recipes.diagnose(model).rules
    assert "initializer_mismatch" in keras_recipes.diagnose(he).rules


def test_default_dnn_regularisation_options_are_wired():
    model = keras_recipes.build_default_dnn(
        (4, 3), 3, num_hidden_layers=2, dropout_rate=0.3, l1=1e-4, l2=1e-3, max_norm=2.0,
        clipnorm=1.0, normalization=None, optimizer="momentum")
    hidden = model.get_layer("hidden_1")
    assert hidden.use_bias  # no BatchNorm, so the bias is back
    assert hidden.kernel_regularizer.get_config() == {"l1": pytest.approx(1e-4),
                                                      "l2": pytest.approx(1e-3)}
    assert hidden.kernel_constraint.get_config()["max_value"] == 2.0
    assert model.get_layer("dropout_2").rate == 0.3
    assert model.get_layer("flatten") is not None
    assert model.optimizer.clipnorm == 1.0
    assert isinstance(raw_hyperparameter(model.optimizer, "momentum"), OneCycleMomentum)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


def test_default_dnn_takes_an_optimizer_instance_as_given():
    optimizer = keras.optimizers.Adam(1e-3)
    model = keras_recipes.build_default_dnn((12,), 3, optimizer=optimizer)
    assert model.optimizer is optimizer and not model.recipe.stretches_one_cycle


@pytest.mark.train
def test_default_dnn_explicit_total_steps_is_kept_by_fit():
    x, y = small_data()
    model = keras_recipes.build_default_dnn((12,), 3, total_steps=50, num_hidden_layers=1)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert learning_rate_schedule(model.optimizer).total_steps == 50


def test_default_dnn_normalization_layer_standardises_with_training_statistics():
    x, _ = small_data()
    x = x * 5.0 + 3.0
    x[:, 0] = 7.0  # a constant feature must not blow up
    model = keras_recipes.build_default_dnn((12,), 3, normalization_data=x)
    standardize = keras.Model(model.inputs[0], model.get_layer("standardize").output)
    z = keras.ops.convert_to_numpy(standardize(x[:50]))
    expected = (x[:50] - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    np.testing.assert_allclose(z, expected, rtol=1e-4, atol=1e-4)


def test_cycle_resize_that_leaves_a_phase_empty_explains_the_cycle_is_too_short():
    from keras_recipes.optimizers.span import resize

    schedule = OneCycle(0.1, total_steps=100, pct_start=0.5)
    with pytest.raises(ValueError, match=re.escape(
            "This `fit` runs 2 optimizer steps, too few for the recipe's 1cycle (pct_start=0.5)")):
        resize(schedule, 2, 0)
    assert schedule.total_steps == 100  # left as it was
    resize(schedule, 60, 7)
    assert (schedule.total_steps, schedule.start_step) == (60, 7)
    assert float(schedule(7 + 29)) == pytest.approx(0.1, rel=1e-6)


@pytest.mark.slow
def test_default_dnn_reaches_95_percent_on_digits_within_30_epochs(digits):
    model = keras_recipes.build_default_dnn(digits.input_shape, digits.num_classes, seed=0)
    keras.utils.set_random_seed(0)
    history = model.fit(digits.x_train, digits.y_train, epochs=30, batch_size=32,
                        validation_data=(digits.x_val, digits.y_val), verbose=0)
    assert len(history.epoch) <= 30
    _, accuracy = model.evaluate(digits.x_test, digits.y_test, verbose=0)
    assert accuracy >= 0.95


# --- build_self_normalizing_dnn ----------------------------------------------------------


def test_self_normalizing_dnn_uses_lecun_selu_and_alpha_dropout_without_batchnorm():
    model = keras_recipes.build_self_normalizing_dnn((12,), 3, num_hidden_layers=3,
                                                     dropout_rate=0.1)
    dense = [model.get_layer(f"hidden_{i}") for i in (1, 2, 3)]
    assert all(d.activation.__name__ == "selu" for d in dense)
    assert all(type(d.kernel_initializer).__name__ == "LecunNormal" for d in dense)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "AlphaDropout" in kinds and "Dropout" not in kinds
    assert "BatchNormalization" not in kinds


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_norm=True), "Argument `batch_norm` must be False in a self-normalizing network. "
     "Received: batch_norm=True (a self-normalizing network normalises itself"),
    (dict(activation="relu"), "Argument `activation` must be 'selu' in a self-normalizing "
     "network. Received: activation='relu' (SELU's scale and offset"),
    (dict(kernel_initializer="he_normal"), "Argument `kernel_initializer` must be "
     "'lecun_normal' in a self-normalizing network. Received: kernel_initializer='he_normal' "
     "(the fixed point holds only"),
    (dict(dropout="standard"), "Argument `dropout` must be 'alpha' in a self-normalizing "
     "network. Received: dropout='standard' (plain Dropout sets activations to 0"),
    (dict(l2=1e-4), "Argument `l2` must be 0.0 in a self-normalizing network. Received: "
     "l2=0.0001 (L1/L2 penalties"),
    (dict(l1=0.1), "Argument `l1` must be 0.0 in a self-normalizing network."),
])
def test_self_normalizing_dnn_refuses_what_breaks_self_normalisation(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        keras_recipes.build_self_normalizing_dnn((12,), 3, **kwargs)
    # The explanation points to the recipe that allows it.
    with pytest.raises(ValueError, match="Use `build_default_dnn` for other choices"):
        keras_recipes.build_self_normalizing_dnn((12,), 3, **kwargs)


def test_self_normalizing_dnn_standardises_from_given_statistics():
    mean, variance = np.full(12, 3.0, "float32"), np.full(12, 4.0, "float32")
    model = keras_recipes.build_self_normalizing_dnn((12,), 3, input_mean=mean,
                                                     input_variance=variance)
    standardize = keras.Model(model.inputs[0], model.get_layer("standardize").output)
    z = keras.ops.convert_to_numpy(standardize(np.full((2, 12), 5.0, "float32")))
    np.testing.assert_allclose(z, 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `input_variance` must be given together with the other statistic")):
        keras_recipes.build_self_normalizing_dnn((12,), 3, input_mean=mean)


def _layer_statistics(model, x, layer_names):
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in layer_names])
    outputs = probe(x)
    return [(float(np.mean(o)), float(np.std(o))) for o in map(keras.ops.convert_to_numpy,
                                                                 outputs)]


@pytest.mark.slow
def test_selu_fixed_point_holds_through_100_layers_where_relu_glorot_does_not():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 100)).astype("float32")
    depth = 100
    names = [f"hidden_{i}" for i in range(1, depth + 1)]
    snn = keras_recipes.build_self_normalizing_dnn((100,), 10, num_hidden_layers=depth,
                                                   units=100, seed=0)
    for mean, std in _layer_statistics(snn, x, names):
        assert abs(mean) < 0.25 and 0.75 < std < 1.25

    inputs = keras.Input((100,))
    h = inputs
    for i in range(1, depth + 1):
        h = keras.layers.Dense(100, activation="relu", kernel_initializer=keras.initializers.
                               GlorotUniform(seed=i), name=f"hidden_{i}")(h)
    relu = keras.Model(inputs, h)
    stds = [std for _, std in _layer_statistics(relu, x, names)]
    assert stds[-1] < 1e-3 * stds[0]


@pytest.mark.train
@pytest.mark.parametrize("name", ["default_dnn", "self_normalizing"])
def test_learning_rate_find_runs_the_finder_on_the_fit_data_and_trains_at_its_suggestion(name):
    x, y = small_data(n=384)
    found = small_model(name, learning_rate="find")
    assert found.recipe.finds_learning_rate
    found.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
    result = found.learning_rate_finder_result
    assert isinstance(result, keras_recipes.LRFinderResult) and not found.recipe.finds_learning_rate
    assert learning_rate_schedule(found.optimizer).max_learning_rate == pytest.approx(
        result.suggestion)
    # Training ran at the suggestion and the finder left no trace: the same model
    # built with that learning rate given explicitly ends at the same weights.
    given = small_model(name, learning_rate=result.suggestion)
    given.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
    for a, b in zip(found.get_weights(), given.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_learning_rate_rejects_other_strings():
    with pytest.raises(ValueError, match=re.escape(
            "Argument `learning_rate` must be a number > 0 or \"find\". "
            "Received: learning_rate='auto'")):
        keras_recipes.build_default_dnn((4,), 3, learning_rate="auto")


@pytest.mark.train
@pytest.mark.parametrize("name", RECIPES)
def test_recipes_pass_their_own_diagnosis(name):
    # The recipes follow the chapter's cautions, so the lint finds nothing to say,
    # except about the deliberately plain baseline.
    model = small_model(name)
    findings = {finding.rule for finding in keras_recipes.diagnose(model).findings}
    assert findings == ({"initializer_mismatch"} if name == "baseline" else set())
    x, y = small_data(name)
    measured = {f.rule for f in keras_recipes.diagnose(model, x, y).findings}
    assert measured <= ({"initializer_mismatch"} if name == "baseline" else set())


@pytest.mark.train
def test_default_dnn_max_norm_bounds_every_hidden_unit_after_training():
    x, y = small_data()
    model = keras_recipes.build_default_dnn((12,), 3, num_hidden_layers=2, units=16,
                                            max_norm=0.5, learning_rate=0.5, seed=0)
    model.fit(x * 50, y, epochs=3, batch_size=16, verbose=0)
    for name in ("hidden_1", "hidden_2"):
        kernel = keras.ops.convert_to_numpy(model.get_layer(name).kernel)
        assert np.linalg.norm(kernel, axis=0).max() <= 0.5 + 1e-6
    assert model.get_layer("output").kernel_constraint is None


# --- transfer_learning: trained with fine_tune ----------------------------------------------


def _base_weights(model, *names):
    base = model.get_layer("conv_base")
    return {name: [keras.ops.convert_to_numpy(w) for w in base.get_layer(name).weights]
            for name in names}


@pytest.mark.train
def test_transfer_learning_trains_the_head_then_the_top_of_the_base():
    x, y = small_data("transfer_learning", n=128)
    model = small_model("transfer_learning", dropout_rate=0.0)
    layers = ("conv_1", "bn_1", "conv_2", "bn_2")
    before = _base_weights(model, *layers)
    after_phase = []
    record = keras.callbacks.LambdaCallback(
        on_train_end=lambda logs: after_phase.append(_base_weights(model, *layers)))
    fine_tune_model(model, (x, y), head_epochs=1, epochs=1, unfreeze=3, callbacks=[record],
                    verbose=0)
    changed = [{name for name in layers
                if any(not np.array_equal(a, b) for a, b in zip(start[name], end[name]))}
               for start, end in zip([before, after_phase[0]], after_phase)]
    # Phase 1: the base is frozen. Phase 2: the top 3 layers (conv_2, bn_2, relu_2) are
    # unfrozen, but BatchNormalization stays frozen (its moving statistics too).
    assert changed == [set(), {"conv_2"}]


@pytest.mark.train
def test_fine_tune_model_keeps_the_models_clipnorm_and_one_cycle_choice_in_phase_2():
    x, y = small_data("transfer_learning", n=64)
    model = small_model("transfer_learning", one_cycle=False, clipnorm=0.5, learning_rate=0.02)
    fine_tune_model(model, (x, y), head_epochs=0, epochs=1, unfreeze=3, verbose=0)
    assert model.optimizer.clipnorm == 0.5
    assert not isinstance(learning_rate_schedule(model.optimizer), OneCycle)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0002)
    # With the model's defaults phase 2 runs a 1cycle peaking at a hundredth of the head's rate,
    # unclipped, as the head did.
    model = small_model("transfer_learning")
    fine_tune_model(model, (x, y), head_epochs=0, epochs=1, unfreeze=3, verbose=0)
    assert model.optimizer.clipnorm is None
    assert learning_rate_schedule(model.optimizer).max_learning_rate == pytest.approx(1e-4)


def test_fine_tune_model_takes_only_what_a_config_may_set():
    model = small_model("transfer_learning")
    with pytest.raises(TypeError, match=re.escape(
            "fine_tune_model() got unexpected keyword arguments ['learning_rate']; it takes "
            "head_epochs, epochs, batch_size, unfreeze, fine_tune_learning_rate, "
            "discriminative_factor, discriminative_groups")):
        fine_tune_model(model, small_data("transfer_learning", n=8), learning_rate=0.1)


@pytest.mark.parametrize("key, value", [
    ("head_epochs", -1), ("head_epochs", 1.5), ("epochs", "ten"), ("batch_size", 0),
    ("unfreeze", True), ("unfreeze", 1.5), ("unfreeze", 0), ("unfreeze", [3]),
    ("fine_tune_learning_rate", 0), ("fine_tune_learning_rate", "low"),
    ("discriminative_factor", 1.0), ("discriminative_groups", 0),
])
def test_transfer_learning_fit_checks_say_what_fine_tune_says(key, value):
    # The config checks these before any data is loaded; fine_tune would refuse the same
    # value, with the same message, once the model is built.
    spec = get_recipe_spec("transfer_learning")
    fit = {**spec.fit_defaults, key: value}
    with pytest.raises((ValueError, TypeError)) as checked:
        spec.check_fit(fit)
    model = small_model("transfer_learning")
    with pytest.raises(type(checked.value)) as refused:
        fine_tune(model, small_data("transfer_learning", n=8), verbose=0, **fit)
    differences = {
        # fine_tune knows the base (6 layers); the config does not, yet.
        ("unfreeze", "0"): ("a positive integer", "an integer in the range [1, 6]"),
        # A config's batch size is a number (32 by default); fine_tune also takes None.
        ("batch_size", "0"): ("a positive integer.", "a positive integer or None."),
    }
    expected = str(refused.value)
    if (key, repr(value)) in differences:
        config_text, fine_tune_text = differences[key, repr(value)]
        assert fine_tune_text in expected
        expected = expected.replace(fine_tune_text, config_text)
    assert str(checked.value) == expected
    assert f"Argument `{key}`" in str(checked.value)


def test_transfer_learning_fit_with_no_epoch_at_all_is_refused():
    spec = get_recipe_spec("transfer_learning")
    with pytest.raises(ValueError, match=re.escape(
            "Argument `epochs` must be positive when head_epochs=0. Received: epochs=0 "
            "(nothing to train)")):
        spec.check_fit({**spec.fit_defaults, "head_epochs": 0, "epochs": 0})
    assert spec.phases({**spec.fit_defaults, "head_epochs": 0}) == [2]
    assert spec.phases({**spec.fit_defaults, "epochs": 0}) == [1]
