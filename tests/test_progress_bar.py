"""The progress bar of a recipe model counts right with several batches per compiled call."""

import re

import numpy as np
import pytest

import keras_recipes
from keras_recipes.callbacks.progress_bar import ChunkedProgbarLogger
from keras_recipes.recipe._fit_callbacks import watches_batches

COUNT = re.compile(r"(\d+)/(\d+|Unknown) ")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _bar_lines(text):
    """Each state the bar was drawn in: the printed text split at carriage returns."""
    text = ANSI.sub("", text).replace("\b", "")
    return [line for line in re.split(r"[\r\n]", text) if COUNT.match(line.strip())]


def _check(text, total):
    lines = _bar_lines(text)
    assert lines, text
    for line in lines:
        done, target = COUNT.match(line.strip()).groups()
        assert int(done) <= total and target in (str(total), "Unknown"), line
        assert not re.search(r" -\d+s ", line), line  # no negative ETA
        assert len(line) < 200, line  # a normal width, not a bar hundreds of characters wide
    assert COUNT.match(lines[-1].strip()).groups() == (str(total), str(total))


@pytest.fixture
def model_and_data():
    model = keras_recipes.build_default_dnn((4,), 3, num_hidden_layers=1, seed=0)
    assert model.steps_per_execution == 32  # the fast default this is about
    rng = np.random.default_rng(0)
    x = rng.random((39 * 32 - 5, 4)).astype("float32")
    return model, x, np.arange(len(x)) % 3


@pytest.fixture
def terminal(monkeypatch):
    """Keras draws its dynamic bar (carriage returns) on a terminal, as a user sees it."""
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)


@pytest.mark.train
def test_fit_evaluate_predict_counts_never_pass_the_total(model_and_data, terminal, capsys):
    model, x, y = model_and_data
    model.fit(x, y, epochs=2, batch_size=32, validation_data=(x[:100], y[:100]), verbose=1)
    printed = capsys.readouterr().out
    assert printed.count("Epoch ") == 2
    _check(printed, 39)
    model.evaluate(x[:370], y[:370], batch_size=32, verbose=1)
    _check(capsys.readouterr().out, 12)
    model.predict(x[:370], batch_size=32, verbose=1)
    _check(capsys.readouterr().out, 12)


@pytest.mark.train
def test_datasets_of_one_batch_and_of_unknown_length(model_and_data, terminal, capsys):
    import tensorflow as tf

    model, x, y = model_and_data
    one_batch = tf.data.Dataset.from_tensor_slices((x[:32], y[:32])).batch(32)
    model.fit(one_batch, epochs=1, verbose=1)
    _check(capsys.readouterr().out, 1)

    def batches():
        for start in range(0, 39 * 32 - 5, 32):
            yield x[start:start + 32], y[start:start + 32]

    unknown = tf.data.Dataset.from_generator(batches, output_signature=(
        tf.TensorSpec((None, 4), "float32"), tf.TensorSpec((None,), "int64")))
    # (A 1cycle needs the length: steps_per_epoch= would make it known.)
    model = keras_recipes.build_default_dnn((4,), 3, num_hidden_layers=1, one_cycle=False)
    model.fit(unknown, epochs=2, verbose=1)
    _check(capsys.readouterr().out, 39)


def test_the_bar_is_not_a_batch_callback_and_a_users_own_bar_is_kept(model_and_data):
    model, x, y = model_and_data
    assert not watches_batches(ChunkedProgbarLogger())
    history = model.fit(x, y, epochs=1, verbose=0, callbacks=[ChunkedProgbarLogger()])
    assert model.steps_per_execution == 32 and len(history.epoch) == 1
