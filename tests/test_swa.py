"""`swa_epochs=N`: the mean of the weights at the end of the last N epochs of a `fit`, its
BatchNorm statistics recomputed, at a constant rate, surviving a kill."""

import re

import keras
import numpy as np
import pytest

import keras_recipes
from keras_recipes import Recipe
from keras_recipes.callbacks.resumable import ResumableEarlyStopping
from keras_recipes.callbacks.swa import StochasticWeightAveraging, update_batch_norm
from keras_recipes.optimizers import learning_rate_schedule

BN_EPSILON = 1e-3  # Keras's BatchNormalization default


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, x[:, :3].argmax(axis=1)


def _model(**options):
    options = {"num_hidden_layers": 2, "units": 8, "seed": 0, "swa_epochs": 3,
               "steps_per_execution": 1, **options}
    keras.utils.set_random_seed(0)
    return keras_recipes.build_default_dnn((6,), 3, **options)


class _EpochEndWeights(keras.callbacks.Callback):
    """Records the trainable weights each epoch's training ends with (before validation,
    where the last epoch is averaged) and the learning rate."""

    def __init__(self):
        super().__init__()
        self.weights, self.rates = [], []

    def on_test_begin(self, logs=None):
        self.weights.append([keras.ops.convert_to_numpy(v)
                             for v in self.model.trainable_variables])
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def _fit(model, x, y, epochs=6, **kwargs):
    recorder = _EpochEndWeights()
    history = model.fit(x, y, epochs=epochs, batch_size=16, shuffle=False, verbose=0,
                        validation_data=(x[:32], y[:32]), callbacks=[recorder, *kwargs.pop(
                            "callbacks", [])], **kwargs)
    return history, recorder


def _batch_norm_inputs_statistics(model, x, batch_size=16):
    """The moving statistics `update_batch_norm` must give the two BatchNorm layers of
    `_model`, computed in numpy: per batch, Keras's (biased) moments, then their mean."""
    w1 = keras.ops.convert_to_numpy(model.get_layer("hidden_1").kernel).astype("float64")
    w2 = keras.ops.convert_to_numpy(model.get_layer("hidden_2").kernel).astype("float64")
    bn1 = model.get_layer("batch_norm_1")
    gamma, beta = (keras.ops.convert_to_numpy(v).astype("float64") for v in (bn1.gamma, bn1.beta))
    means, variances = [[], []], [[], []]
    for start in range(0, len(x), batch_size):
        h1 = x[start:start + batch_size].astype("float64") @ w1
        mean, variance = h1.mean(axis=0), h1.var(axis=0)
        z = (h1 - mean) / np.sqrt(variance + BN_EPSILON) * gamma + beta  # training mode
        h2 = np.where(z > 0, z, np.expm1(z)) @ w2  # ELU
        for i, h in enumerate((h1, h2)):
            means[i].append(h.mean(axis=0))
            variances[i].append(h.var(axis=0))
    return [(np.mean(m, axis=0), np.mean(v, axis=0)) for m, v in zip(means, variances)]


@pytest.mark.train
def test_the_kept_weights_are_the_mean_of_the_last_epochs_and_bn_is_recomputed():
    x, y = _data()
    model = _model()
    history, recorder = _fit(model, x, y)
    assert len(recorder.weights) == 6
    last_three = recorder.weights[3:]
    for index, variable in enumerate(model.trainable_variables):
        expected = np.mean(np.stack([w[index] for w in last_three]).astype("float64"), axis=0)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable),
                                      expected.astype("float32"))
    # The moving statistics are those of one training-mode pass with the averaged weights.
    for i, (mean, variance) in enumerate(_batch_norm_inputs_statistics(model, x), start=1):
        layer = model.get_layer(f"batch_norm_{i}")
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_mean), mean,
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_variance), variance,
                                   rtol=1e-4, atol=1e-5)
    # Validation scored the averaged model, and early stopping restored nothing over it.
    assert history.history["val_loss"][-1] == pytest.approx(
        model.evaluate(x[:32], y[:32], verbose=0)[0], rel=1e-5)
    assert model.early_stopping.best_weights is None
    swa = model.recipe_state.parts["StochasticWeightAveraging"]
    assert swa.averaged_epochs == [3, 4, 5] and swa.applied


@pytest.mark.train
def test_the_rate_is_constant_from_where_the_averaging_starts():
    x, y = _data()
    model = _model(schedule="cosine")
    _, recorder = _fit(model, x, y)
    schedule = learning_rate_schedule(model.optimizer)
    steps = 3  # 48 samples, batches of 16
    assert (schedule.total_steps, schedule.hold_step) == (6 * steps, 3 * steps)
    rates = recorder.rates  # read after each epoch's training
    held = float(keras.ops.convert_to_numpy(schedule(3 * steps)))
    assert rates[2:] == pytest.approx([held] * 4, rel=1e-6)  # from the end of epoch 3 on
    assert rates[0] != pytest.approx(held) and rates[1] != pytest.approx(held)
    # Without averaging the cosine runs on to near zero.
    plain = _model(schedule="cosine", swa_epochs=None)
    _, recorder = _fit(plain, x, y)
    assert recorder.rates[-1] < held / 10


@pytest.mark.train
def test_a_killed_run_resumes_with_the_same_running_sum(tmp_path):
    x, y = _data()
    whole = _model()
    _fit(whole, x, y)

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 4:  # before the recipe backs epoch 4 up: epochs 0-3 are saved
                raise RuntimeError("killed")

    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="killed"):
        _fit(_model(backup_dir=backup), x, y, callbacks=[Kill()])
    resumed = _model(backup_dir=backup)
    history, _ = _fit(resumed, x, y)
    # It trains epochs 4 and 5; its History is the whole run's (the backup keeps the logs).
    assert resumed.recipe_state.resumed_at == 4 and history.epoch == list(range(6))
    swa = resumed.recipe_state.parts["StochasticWeightAveraging"]
    assert swa.averaged_epochs == [3, 4, 5] and swa.applied
    for mine, expected in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(mine, expected, rtol=1e-5, atol=1e-6)


def test_update_batch_norm_changes_only_the_moving_statistics():
    x, _ = _data(50)
    model = keras_recipes.build_default_dnn((6,), 3, num_hidden_layers=2, units=8, seed=0,
                                            dropout_rate=0.3)
    before = {v.path: keras.ops.convert_to_numpy(v) for v in model.variables}
    assert update_batch_norm(model, x, batch_size=16) == 4  # the last batch of 2 included
    changed = {v.path for v in model.variables
               if not np.array_equal(keras.ops.convert_to_numpy(v), before[v.path])}
    assert changed == {f"batch_norm_{i}/{name}" for i in (1, 2)
                       for name in ("moving_mean", "moving_variance")}
    # The same statistics from a dataset of the same batches, or a validation split.
    from_arrays = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    padded = np.concatenate([x, np.zeros((25, 6), "float32")])
    update_batch_norm(model, padded, batch_size=16, validation_split=1 / 3)
    np.testing.assert_allclose([keras.ops.convert_to_numpy(v)
                                for v in model.non_trainable_variables][0], from_arrays[0],
                               rtol=1e-6)
    tf = pytest.importorskip("tensorflow")
    update_batch_norm(model, tf.data.Dataset.from_tensor_slices((x, x[:, 0])).batch(16))
    for mine, expected in zip(model.non_trainable_variables, from_arrays):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(mine), expected, rtol=1e-6)


def test_frozen_batch_norm_layers_are_left_alone():
    model = keras_recipes.build_default_dnn((6,), 3, num_hidden_layers=1, units=8, seed=0)
    layer = model.get_layer("batch_norm_1")
    layer.trainable = False
    before = keras.ops.convert_to_numpy(layer.moving_mean)
    assert update_batch_norm(model, _data()[0]) == 0
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.moving_mean), before)


def test_early_stopping_does_not_watch_the_averaged_epochs():
    stopping = ResumableEarlyStopping(monitor="val_loss", patience=0, until_epoch=3)
    stopping.on_train_begin()
    stopping.on_epoch_end(3, {"val_loss": 0.5})
    assert stopping.best_epoch == 0 and stopping.wait == 0 and stopping.best != 0.5
    model = _model(swa_epochs=4)
    (recipe_stopping,) = [c for c in model.recipe_callbacks(has_validation=True, epochs=10)
                          if isinstance(c, keras.callbacks.EarlyStopping)]
    assert (recipe_stopping.start_from_epoch, recipe_stopping.until_epoch) == (5, 6)


def test_without_the_training_data_batch_norm_cannot_be_recomputed():
    model = _model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = _data(16)
    with pytest.raises(ValueError, match=re.escape(
            "`swa_epochs` needs the training data of this `fit` to recompute the "
            "BatchNormalization statistics of the averaged weights, and was given none.")):
        keras.Model.fit(model, x, y, epochs=1, verbose=0,
                        callbacks=[StochasticWeightAveraging(2)])


@pytest.mark.parametrize("value, error, message", [
    (0, ValueError, "Argument `swa_epochs` must be a positive integer or None. Received: "
     "swa_epochs=0"),
    (1.5, TypeError, "Argument `swa_epochs` must be a positive integer or None. Received: "
     "swa_epochs=1.5"),
])
def test_bad_swa_epochs_is_refused(value, error, message):
    with pytest.raises(error, match="^" + re.escape(message)):
        Recipe(swa_epochs=value)


def test_the_recipe_keeps_swa_epochs_when_saved():
    recipe = Recipe(swa_epochs=5, schedule="cosine")
    assert Recipe.from_config(recipe.get_config()).swa_epochs == 5
