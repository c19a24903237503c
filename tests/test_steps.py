"""`fit`, `evaluate` and `predict` run exactly the steps asked for, with the recipes'
default of several batches per compiled call, on every backend and for the data users
bring (arrays, a repeated `tf.data` pipeline, a `PyDataset`); the 1cycle spans the steps
`fit` really takes."""

import keras
import numpy as np
import pytest

import keras_recipes
from keras_recipes.optimizers import learning_rate_schedule
from keras_recipes.recipe._execution import dividing_steps_per_execution

BATCH = 4
FEATURES = 6


class SampleCount(keras.metrics.Sum):
    """Counts the samples `evaluate` reads."""

    def __init__(self, name="samples", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(keras.ops.ones_like(y_true, dtype="float32"))


class Batches(keras.utils.PyDataset):
    """A long stream of batches."""

    def __len__(self):
        return 1000

    def __getitem__(self, index):
        rng = np.random.default_rng(index)
        x = rng.normal(size=(BATCH, FEATURES)).astype("float32")
        return x, np.arange(BATCH) % 3


def _arrays(n=400):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, FEATURES)).astype("float32"), np.arange(n) % 3


def _repeated_dataset():
    tf = pytest.importorskip("tensorflow")
    x, y = _arrays(64)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).repeat()


def _model(**kwargs):
    return keras_recipes.build_default_dnn((FEATURES,), 3, num_hidden_layers=1, units=8,
                                           seed=0, **kwargs)


def _cnn():
    cnn = keras.Sequential([
        keras.Input((FEATURES,)), keras.layers.Reshape((FEATURES, 1)),
        keras.layers.Conv1D(4, 3, activation="relu"), keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(3, activation="softmax")])
    return keras_recipes.compile_recipe(cnn, loss="sparse_categorical_crossentropy")


def _iterations(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


@pytest.mark.parametrize("configured, counts, expected", [
    (32, (8,), 8), (32, (40,), 20), (32, (100,), 25), (32, (64,), 32), (32, (37,), 1),
    (32, (8, 12), 4), (32, (None,), 32), (32, (), 32), (1, (40,), 1), (32, (40, None), 20)])
def test_the_batches_per_call_divide_every_requested_count(configured, counts, expected):
    assert dividing_steps_per_execution(configured, *counts) == expected


# What the tests below compile with: several batches per call, except on PyTorch, whose
# Keras trainer refuses more than one (there the counts are exact anyway).
SEVERAL_PER_CALL = 1 if keras.backend.backend() == "torch" else 32


@pytest.mark.skipif(keras.backend.backend() == "torch",
                    reason="Keras's PyTorch trainer runs one batch per call anyway")
def test_the_recipes_default_is_still_several_batches_per_call():
    model = _model()
    assert model.steps_per_execution > 1  # else the tests below would prove nothing


@pytest.mark.train
@pytest.mark.parametrize("steps_per_epoch", [8, 40])
@pytest.mark.parametrize("make_model", [_model, _cnn], ids=["default_dnn", "compile_recipe"])
def test_fit_on_a_repeated_dataset_runs_exactly_steps_per_epoch(make_model, steps_per_epoch):
    model = make_model()
    model.fit(_repeated_dataset(), steps_per_epoch=steps_per_epoch, epochs=4, verbose=0)
    assert _iterations(model) == 4 * steps_per_epoch


@pytest.mark.train
def test_fit_on_a_pydataset_reads_exactly_steps_per_epoch():
    model = _model()
    model.fit(Batches(), steps_per_epoch=8, epochs=3, verbose=0)
    assert _iterations(model) == 24  # (the adapter itself reads a few batches ahead)


@pytest.mark.train
def test_fit_on_arrays_runs_exactly_steps_per_epoch_and_all_batches_without_it():
    x, y = _arrays()  # 100 batches of 4
    model = _model()
    model.fit(x, y, batch_size=BATCH, steps_per_epoch=10, epochs=2, verbose=0)
    assert _iterations(model) == 20
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    assert _iterations(model) == 120


@pytest.mark.train
def test_the_one_cycle_spans_the_steps_fit_really_takes():
    """The learning rate at each epoch's end is the 1cycle's at that step of a cycle over
    all the steps, so the run ends annealed, not after its first epoch."""
    model, rates = _model(), []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: rates.append(
        (_iterations(model), float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))))
    model.fit(_repeated_dataset(), steps_per_epoch=8, epochs=4, verbose=0, callbacks=[record])
    schedule = learning_rate_schedule(model.optimizer)
    assert schedule.total_steps == 32
    assert [step for step, _ in rates] == [8, 16, 24, 32]
    for step, rate in rates:
        assert rate == pytest.approx(float(keras.ops.convert_to_numpy(schedule(step))),
                                     rel=1e-5)
    assert rates[0][1] > 100 * rates[-1][1]  # still high after epoch 1, annealed at the end


@pytest.mark.train
def test_validation_steps_are_run_exactly():
    model = _model()
    model.compile(optimizer=model.optimizer, loss="sparse_categorical_crossentropy",
                  metrics=[SampleCount()], steps_per_execution=SEVERAL_PER_CALL)
    model.fit(_repeated_dataset(), steps_per_epoch=8, epochs=1, verbose=0,
              validation_data=_repeated_dataset(), validation_steps=3)
    assert _iterations(model) == 8
    assert model.history.history["val_samples"] == [3 * BATCH]


@pytest.mark.parametrize("data", ["dataset", "pydataset"])
def test_evaluate_and_predict_read_exactly_the_steps_asked_for(data):
    model = _model()
    model.compile(optimizer=model.optimizer, loss="sparse_categorical_crossentropy",
                  metrics=[SampleCount()], steps_per_execution=SEVERAL_PER_CALL)
    source = _repeated_dataset() if data == "dataset" else Batches()
    logs = model.evaluate(source, steps=3, verbose=0, return_dict=True)
    assert logs["samples"] == 3 * BATCH
    x = source if data == "dataset" else Batches()
    assert model.predict(x, steps=5, verbose=0).shape == (5 * BATCH, 3)


@pytest.mark.train
def test_a_fit_like_an_earlier_one_reuses_its_compiled_function():
    model = _model()
    compiled = model.steps_per_execution
    model.fit(_repeated_dataset(), steps_per_epoch=8, epochs=1, verbose=0)
    assert model.steps_per_execution == compiled  # what you compiled with, after fit
    x, y = _arrays(64)
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)  # another number per call between
    function = model.train_function
    model.fit(_repeated_dataset(), steps_per_epoch=8, epochs=1, verbose=0)
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    assert model.train_function is function
    assert _iterations(model) == 8 + 16 + 8 + 16
