"""Every public entry point answers a wrong call with a clear error.

Each row is one wrong call: the exception type, the argument the message must
name, the received value it must show, and what it must say was expected. A
mistake the entry point can see must never surface as a traceback from deep
inside Keras or NumPy.
"""

import re

import numpy as np
import pytest

import keras_recipes
from keras_recipes import _validation, datasets, optimizers, plots
from keras_recipes._validation import argument_of
from keras_recipes.callbacks import TrainingMonitor
from keras_recipes.config import ConfigError, load_config
from keras_recipes.models.registry import get_recipe_spec
from keras_recipes.models.transfer import transfer_learning_recipe
from keras_recipes.schedules import OneCycle, OneCycleMomentum

X = np.random.default_rng(0).normal(size=(64, 12)).astype("float32")
Y = np.arange(64) % 3


def _model():
    return keras_recipes.build_default_dnn((12,), 3, num_hidden_layers=1, units=8, seed=0)


def _fit(**kwargs):
    arguments = {"x": X, "y": Y, "epochs": 1, "verbose": 0, **kwargs}
    return _model().fit(**arguments)


def _with(array, index, value):
    array = array.copy()
    array[index] = value
    return array


DNN = keras_recipes.build_default_dnn
SNN = keras_recipes.build_self_normalizing_dnn
PLAIN = keras_recipes.build_plain_dnn
TRANSFER = transfer_learning_recipe


def _check_transfer_fit(**fit):
    spec = get_recipe_spec("transfer_learning")
    spec.check_fit({**spec.fit_defaults, **fit})

CASES = [
    # --- schedules ----------------------------------------------------------------------
    ("one_cycle total_steps 0", lambda: OneCycle(0.1, 0), ValueError, "total_steps", "0",
     "a positive integer"),
    ("one_cycle total_steps float", lambda: OneCycle(0.1, 10.5), TypeError, "total_steps",
     "10.5", "a positive integer"),
    ("one_cycle total_steps str", lambda: OneCycle(0.1, "100"), TypeError, "total_steps",
     "'100'", "a positive integer"),
    ("one_cycle max_lr 0", lambda: OneCycle(0.0, 10), ValueError, "max_learning_rate", "0.0",
     "> 0"),
    ("one_cycle max_lr inf", lambda: OneCycle(float("inf"), 10), ValueError,
     "max_learning_rate", "inf", "> 0"),
    ("one_cycle max_lr None", lambda: OneCycle(None, 10), TypeError, "max_learning_rate",
     "None", "> 0"),
    ("one_cycle pct_start 1", lambda: OneCycle(0.1, 10, pct_start=1.0), ValueError,
     "pct_start", "1.0", "(0, 1)"),
    ("one_cycle pct_start negative", lambda: OneCycle(0.1, 10, pct_start=-0.2), ValueError,
     "pct_start", "-0.2", "(0, 1)"),
    ("one_cycle anneal unknown", lambda: OneCycle(0.1, 10, anneal_strategy="cosine"),
     ValueError, "anneal_strategy", "'cosine'", "one of 'cos', 'linear'"),
    ("one_cycle anneal not str", lambda: OneCycle(0.1, 10, anneal_strategy=1), TypeError,
     "anneal_strategy", "1", "one of 'cos', 'linear'"),
    ("one_cycle div_factor negative", lambda: OneCycle(0.1, 10, div_factor=-5), ValueError,
     "div_factor", "-5", "> 0"),
    ("one_cycle final_div_factor 0", lambda: OneCycle(0.1, 10, final_div_factor=0),
     ValueError, "final_div_factor", "0", "> 0"),
    ("one_cycle three_phase str", lambda: OneCycle(0.1, 10, three_phase="no"), TypeError,
     "three_phase", "'no'", "a bool"),
    ("one_cycle start_step negative", lambda: OneCycle(0.1, 10, start_step=-1), ValueError,
     "start_step", "-1", "a non-negative integer"),
    ("one_cycle empty phase", lambda: OneCycle(0.1, 2, pct_start=0.5), ValueError,
     "total_steps", "2", "every phase lasts at least one step"),
    ("momentum base above max", lambda: OneCycleMomentum(10, base_momentum=0.99),
     ValueError, "base_momentum", "0.99", "<= max_momentum=0.95"),
    ("momentum max 1", lambda: OneCycleMomentum(10, max_momentum=1.0), ValueError,
     "max_momentum", "1.0", "[0, 1)"),
    ("momentum total_steps None", lambda: OneCycleMomentum(None), TypeError, "total_steps",
     "None", "a positive integer"),
    # --- optimizers -------------------------------------------------------------------
    ("adam beta_1 1.5", lambda: optimizers.Adam(beta_1=1.5), ValueError, "beta_1", "1.5",
     "[0, 1)"),
    ("nadam beta_1 negative", lambda: optimizers.Nadam(beta_1=-0.1), ValueError, "beta_1",
     "-0.1", "[0, 1)"),
    ("adamw beta_1 str", lambda: optimizers.AdamW(beta_1="high"), TypeError, "beta_1",
     "'high'", "[0, 1)"),
    ("sgd momentum 1", lambda: optimizers.SGD(momentum=1.0), ValueError, "momentum", "1.0",
     "[0, 1)"),
    ("sgd momentum list", lambda: optimizers.SGD(momentum=[0.9]), TypeError, "momentum",
     "[0.9]", "[0, 1)"),
    # --- recipe factories -------------------------------------------------------------
    ("dnn input_shape zero", lambda: DNN((0,), 3), ValueError, "input_shape", "(0,)",
     "positive integers"),
    ("dnn input_shape str", lambda: DNN("12", 3), TypeError, "input_shape", "'12'",
     "tuple of positive integers"),
    ("dnn input_shape empty", lambda: DNN((), 3), TypeError, "input_shape", "()",
     "non-empty tuple"),
    ("dnn num_classes 1", lambda: DNN((12,), 1), ValueError, "num_classes", "1", ">= 2"),
    ("dnn num_classes float", lambda: DNN((12,), 3.0), TypeError, "num_classes", "3.0",
     ">= 2"),
    ("dnn num_classes with regression", lambda: DNN((12,), 3, task="regression"), ValueError,
     "num_classes", "3", 'None when task="regression"'),
    ("dnn binary with 3 classes", lambda: DNN((12,), 3, task="binary"), ValueError,
     "num_classes", "3", '2 when task="binary"'),
    ("dnn task unknown", lambda: DNN((12,), 3, task="multilabel"), ValueError, "task",
     "'multilabel'", "one of 'auto', 'multiclass', 'binary', 'regression'"),
    ("dnn num_outputs 0", lambda: DNN((12,), None, task="regression", num_outputs=0),
     ValueError, "num_outputs", "0", "a positive integer"),
    ("dnn units 0", lambda: DNN((12,), 3, units=0), ValueError, "units", "0",
     "a positive integer"),
    ("dnn layers float", lambda: DNN((12,), 3, num_hidden_layers=2.5), TypeError,
     "num_hidden_layers", "2.5", "a positive integer"),
    ("dnn activation unknown", lambda: DNN((12,), 3, activation="relu6"), ValueError,
     "activation", "'relu6'", "one of 'relu'"),
    ("dnn batch_norm int", lambda: DNN((12,), 3, batch_norm=1), TypeError, "batch_norm", "1",
     "a bool"),
    ("dnn dropout negative", lambda: DNN((12,), 3, dropout_rate=-0.1), ValueError,
     "dropout_rate", "-0.1", "[0, 1)"),
    ("dnn l1 negative", lambda: DNN((12,), 3, l1=-1e-3), ValueError, "l1", "-0.001", ">= 0"),
    ("dnn l2 str", lambda: DNN((12,), 3, l2="1e-3"), TypeError, "l2", "'1e-3'", ">= 0"),
    ("dnn max_norm 0", lambda: DNN((12,), 3, max_norm=0), ValueError, "max_norm", "0",
     "> 0"),
    ("dnn optimizer unknown", lambda: DNN((12,), 3, optimizer="lion"), ValueError,
     "optimizer", "'lion'", "one of 'sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop'"),
    ("dnn optimizer type", lambda: DNN((12,), 3, optimizer=0.1), TypeError, "optimizer",
     "0.1", "an optimizer name"),
    ("dnn learning_rate 0", lambda: DNN((12,), 3, learning_rate=0), ValueError,
     "learning_rate", "0", "> 0"),
    ("dnn learning_rate str", lambda: DNN((12,), 3, learning_rate="fast"), ValueError,
     "learning_rate", "'fast'", 'a number > 0 or "find"'),
    ("dnn one_cycle str", lambda: DNN((12,), 3, one_cycle="yes"), TypeError, "one_cycle",
     "'yes'", "a bool"),
    ("dnn total_steps negative", lambda: DNN((12,), 3, total_steps=-5), ValueError,
     "total_steps", "-5", "a positive integer or None"),
    ("dnn clipnorm negative", lambda: DNN((12,), 3, clipnorm=-1.0), ValueError, "clipnorm",
     "-1.0", "> 0"),
    ("dnn patience negative", lambda: DNN((12,), 3, early_stopping_patience=-1), ValueError,
     "early_stopping_patience", "-1", "a non-negative integer or None"),
    ("dnn seed str", lambda: DNN((12,), 3, seed="0"), TypeError, "seed", "'0'",
     "a non-negative integer or None"),
    ("dnn normalization shape", lambda: DNN((12,), 3, normalization_data=np.zeros((5, 4))),
     ValueError, "normalization_data", "<array of shape (5, 4)>", "matching `input_shape`"),
    ("dnn normalization nan", lambda: DNN((12,), 3, normalization_data=_with(X, (0, 0),
                                                                              np.nan)),
     ValueError, "normalization_data", "<array with NaN or Inf>", "finite values"),
    ("dnn backup_dir type", lambda: DNN((12,), 3, backup_dir=1), TypeError, "backup_dir",
     "1", "None or a folder path"),
    ("dnn distribution type", lambda: DNN((12,), 3, distribution="mirrored"), TypeError,
     "distribution", "'mirrored'", "a tf.distribute.Strategy"),
    ("snn batch_norm", lambda: SNN((12,), 3, batch_norm=True), ValueError, "batch_norm",
     "True", "False in a self-normalizing network"),
    ("snn relu", lambda: SNN((12,), 3, activation="relu"), ValueError, "activation",
     "'relu'", "'selu' in a self-normalizing network"),
    ("snn he init", lambda: SNN((12,), 3, kernel_initializer="he_normal"), ValueError,
     "kernel_initializer", "'he_normal'", "'lecun_normal'"),
    ("snn plain dropout", lambda: SNN((12,), 3, dropout="standard"), ValueError, "dropout",
     "'standard'", "'alpha'"),
    ("snn l1", lambda: SNN((12,), 3, l1=0.01), ValueError, "l1", "0.01", "0.0"),
    ("snn mean without variance", lambda: SNN((12,), 3, input_mean=np.zeros(12)), ValueError,
     "input_variance", "None", "given together with the other statistic"),
    ("plain learning_rate negative", lambda: PLAIN((12,), 3, learning_rate=-1), ValueError,
     "learning_rate", "-1", "> 0"),
    ("registry unknown", lambda: keras_recipes.get_recipe("resnet"), ValueError, "name",
     "'resnet'", "one of 'baseline', 'default_dnn', 'self_normalizing', 'transfer_learning'"),
    ("registry spec type", lambda: get_recipe_spec(None), TypeError, "name", "None",
     "one of 'baseline', 'default_dnn', 'self_normalizing', 'transfer_learning'"),
    ("transfer recipe base typo", lambda: TRANSFER((32, 32, 3), 3, base="MobilNetV2"),
     ValueError, "base", "'MobilNetV2'", "one of 'ConvNeXtBase'"),
    ("transfer recipe base type", lambda: TRANSFER((32, 32, 3), 3, base=3), TypeError, "base",
     "3", "a keras.applications model name (e.g. 'MobileNetV2') or a keras.Model"),
    ("transfer recipe weights file", lambda: TRANSFER((32, 32, 3), 3, weights="absent.h5"),
     ValueError, "weights", "'absent.h5'", "'imagenet', None or the path of an existing "
     "weights file"),
    ("transfer recipe base_kwargs", lambda: TRANSFER((32, 32, 3), 3, weights=None,
                                                     base_kwargs={"alpa": 0.35}),
     ValueError, "base_kwargs", "{'alpa': 0.35}", "arguments of keras.applications.MobileNetV2"),
    ("transfer recipe input_shape", lambda: TRANSFER((12,), 3, weights=None), ValueError,
     "input_shape", "(12,)", "the shape of one image, e.g. (160, 160, 3), for the "
     "keras.applications base 'MobileNetV2'"),
    ("transfer recipe pooling", lambda: TRANSFER((32, 32, 3), 3, weights=None, pooling="mean"),
     ValueError, "pooling", "'mean'", "one of 'avg', 'max'"),
    ("transfer fit head_epochs", lambda: _check_transfer_fit(head_epochs=-2), ValueError,
     "head_epochs", "-2", "a non-negative integer"),
    ("transfer fit unfreeze type", lambda: _check_transfer_fit(unfreeze=None), TypeError,
     "unfreeze", "None", 'a layer name or "all"'),
    ("transfer fit discriminative_factor", lambda: _check_transfer_fit(
        discriminative_factor=2.0), ValueError, "discriminative_factor", "2.0", "(0, 1)"),
    # --- fit data ---------------------------------------------------------------------
    ("fit x shape", lambda: _fit(x=np.zeros((64, 10), "float32")), ValueError, "x",
     "<array of shape (64, 10)>", "input_shape=(12,)"),
    ("fit x empty", lambda: _fit(x=X[:0], y=Y[:0]), ValueError, "x",
     "<empty array of shape (0, 12)>", "at least one sample"),
    ("fit x nan", lambda: _fit(x=_with(X, (3, 4), np.nan)), ValueError, "x",
     "<array with 1 NaN/Inf values, the first at index (3, 4)>", "finite numbers"),
    ("fit x inf", lambda: _fit(x=_with(X, (0, 1), np.inf)), ValueError, "x",
     "<array with 1 NaN/Inf values", "finite numbers"),
    ("fit labels too large", lambda: _fit(y=_with(Y, 7, 3)), ValueError, "y",
     "<labels including 3>", "integer class labels in [0, 3)"),
    ("fit labels negative", lambda: _fit(y=_with(Y, 0, -1)), ValueError, "y",
     "<labels including -1>", "integer class labels in [0, 3)"),
    ("fit labels fractional", lambda: _fit(y=_with(Y.astype("float32"), 0, 0.5)),
     ValueError, "y", "<labels including 0.5>", "integer class labels"),
    ("fit lengths", lambda: _fit(y=Y[:30]), ValueError, "y", "<array of 30 samples>",
     "as many samples as `x` (64)"),
    ("fit validation labels", lambda: _fit(validation_data=(X, _with(Y, 0, 9))), ValueError,
     "validation_data[1]", "<labels including 9>", "[0, 3)"),
    ("fit validation shape", lambda: _fit(validation_data=(X[:, :5], Y)), ValueError,
     "validation_data[0]", "<array of shape (64, 5)>", "input_shape=(12,)"),
    ("evaluate labels too large", lambda: _model().evaluate(X, _with(Y, 5, 3), verbose=0),
     ValueError, "y", "<labels including 3>", "integer class labels in [0, 3)"),
    ("evaluate x shape", lambda: _model().evaluate(X[:, :5], Y, verbose=0), ValueError, "x",
     "<array of shape (64, 5)>", "input_shape=(12,)"),
    # --- datasets ---------------------------------------------------------------------
    ("load unknown", lambda: datasets.load("digit"), ValueError, "name", "'digit'",
     "'digits', a folder of images, a .npz / .csv path, or a TensorFlow Datasets name"),
    ("load name type", lambda: datasets.load(5), TypeError, "name", "5",
     "a dataset name or a path"),
    ("load test_split 0", lambda: datasets.load("digits", test_split=0.0), ValueError,
     "test_split", "0.0", "(0, 1)"),
    ("load validation_split 1", lambda: datasets.load("digits", validation_split=1),
     ValueError, "validation_split", "1", "(0, 1)"),
    ("load seed negative", lambda: datasets.load("digits", seed=-1), ValueError, "seed",
     "-1", "a non-negative integer"),
    ("load standardize str", lambda: datasets.load("digits", standardize="yes"), TypeError,
     "standardize", "'yes'", "a bool"),
    ("load image_size", lambda: datasets.load("digits", image_size=(0, 8)), ValueError,
     "image_size", "(0, 8)", "a pair of positive integers"),
    ("load max_train_samples", lambda: datasets.load("digits", max_train_samples=0),
     ValueError, "max_train_samples", "0", "a positive integer or None"),
    ("load missing file", lambda: datasets.load("absent.npz"), ValueError, "name",
     "'absent.npz'", "an existing .npz or .csv file"),
    # --- LR finder, diagnostics, monitor, plots ---------------------------------------
    ("finder num_steps", lambda: keras_recipes.find_learning_rate(_model(), X, Y,
                                                                 num_steps=1),
     ValueError, "num_steps", "1", "an integer >= 5"),
    ("finder min above max", lambda: keras_recipes.find_learning_rate(
        _model(), X, Y, min_learning_rate=1.0, max_learning_rate=0.1),
     ValueError, "max_learning_rate", "0.1", "greater than min_learning_rate=1.0"),
    ("finder batch_size", lambda: keras_recipes.find_learning_rate(_model(), X, Y,
                                                                  batch_size=0),
     ValueError, "batch_size", "0", "a positive integer"),
    ("finder method", lambda: keras_recipes.find_learning_rate(_model(), X, Y,
                                                              method="valleys"),
     ValueError, "method", "'valleys'", "one of 'valley', 'minimum', 'steepest', 'one_cycle'"),
    ("diagnose not a model", lambda: keras_recipes.diagnose("model"), TypeError, "model",
     "'model'", "a keras.Model"),
    ("monitor every_n_epochs", lambda: TrainingMonitor(X, Y, every_n_epochs=0), ValueError,
     "every_n_epochs", "0", "a positive integer"),
    ("plot metric", lambda: plots.plot_learning_curves({"loss": [1.0]}, metric="acc"),
     ValueError, "metric", "'acc'", "one of ['loss']"),
    ("plot history type", lambda: plots.plot_learning_curves([1.0, 2.0]), TypeError,
     "history", "[1.0, 2.0]", "a keras History or a dict"),
]


# Raised with a hand-written message rather than `_validation.fail`, so without the
# `argument` attribute (keras_recipes/plots.py; to be converted by its owner).
NOT_CARRYING_THE_ARGUMENT = {"plot metric", "plot history type"}


@pytest.mark.parametrize("case, call, error, argument, received, expected", CASES,
                         ids=[case[0] for case in CASES])
def test_wrong_call_gets_a_clear_error(case, call, error, argument, received, expected):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert f"Argument `{argument}`" in message, message
    assert f"Received: {argument}={received}" in message, message
    assert expected and expected in message, message
    # Raised at our entry point, not from inside Keras or NumPy.
    assert "keras_recipes" in info.traceback[-1].path.as_posix(), info.traceback[-1].path
    # The error carries its argument, for the config layer and the CLI.
    assert type(info.value) in (ValueError, TypeError)
    if case not in NOT_CARRYING_THE_ARGUMENT:
        assert argument_of(info.value) == argument


def test_there_are_at_least_60_wrong_calls():
    assert len(CASES) >= 60


@pytest.mark.parametrize("source, overrides, message", [
    ("default_dnn", ["fit.batch_size=0"], "fit.batch_size: Argument `batch_size`"),
    ("default_dnn", ["report.lr_find=maybe"], "report.lr_find: Argument `lr_find`"),
    ("default_dnn", ["report.mc_dropout_samples=-1"], "report.mc_dropout_samples"),
    ("transfer_learning", ["fit.batch_size=0"], "fit.batch_size: Argument `batch_size`"),
    ("transfer_learning", ["fit.epochs=-1"], "fit.epochs: Argument `epochs`"),
    ("transfer_learning", ["fit.unfreeze=0.0"], "fit.unfreeze: Argument `unfreeze`"),
    ("transfer_learning", ["fit.discriminative_groups=0"],
     "fit.discriminative_groups: Argument `discriminative_groups`"),
    ("transfer_learning", ["fit.head_epochs=0", "fit.epochs=0"], "fit.epochs: Argument `epochs`"),
])
def test_config_values_are_checked_before_training(source, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("`", ".")):
        load_config(source, overrides)


def test_errors_carry_the_argument_and_the_received_value():
    with pytest.raises(ValueError) as info:
        _validation.check_int("units", 0, min_value=1)
    assert type(info.value) is ValueError  # what users catch, and what the CLI names
    assert (info.value.argument, info.value.value) == ("units", 0)
    assert str(info.value) == "Argument `units` must be a positive integer. Received: units=0"
    with pytest.raises(TypeError) as info:
        _validation.check_bool("standardize", "yes")
    assert type(info.value) is TypeError and argument_of(info.value) == "standardize"
    assert argument_of(ValueError("Argument `units` must be ...")) is None  # never parsed


@pytest.mark.parametrize("hint, ending", [
    ("Pass a number", "Received: x=0. Pass a number"),
    ("(nothing to train)", "Received: x=0 (nothing to train)"),
    (", which could not be loaded: no file", "Received: x=0, which could not be loaded: no file"),
])
def test_hints_follow_the_received_value(hint, ending):
    with pytest.raises(ValueError, match=re.escape(ending) + "$"):
        _validation.fail("x", 0, "positive", hint=hint)


@pytest.mark.parametrize("value, allow_none, error, expected", [
    (-1, True, ValueError, "a non-negative integer or None"),
    (1.5, True, TypeError, "a non-negative integer or None"),
    (True, True, TypeError, "a non-negative integer or None"),
    ("0", False, TypeError, "a non-negative integer"),
    (None, False, TypeError, "a non-negative integer"),
])
def test_one_seed_check(value, allow_none, error, expected):
    with pytest.raises(error) as info:
        _validation.check_seed(value, allow_none=allow_none)
    assert str(info.value) == f"Argument `seed` must be {expected}. Received: seed={value!r}"
    assert argument_of(info.value) == "seed"


def test_seeds_that_pass():
    assert _validation.check_seed(None) is None
    assert _validation.check_seed(0, allow_none=False) == 0
    assert _validation.check_seed(np.int64(7)) == 7
    assert type(_validation.check_seed(np.int64(7))) is int


@pytest.mark.parametrize("value, resolved", [(0, 0), (1, 1), (2, 2), ("auto", 1),
                                             (np.int64(1), 1)])
def test_verbose_takes_what_keras_fit_takes(value, resolved):
    assert _validation.check_verbose(value) == resolved


@pytest.mark.parametrize("value, error", [(3, ValueError), (-1, ValueError),
                                          ("loud", ValueError), (1.0, TypeError),
                                          (True, TypeError), (None, TypeError)])
def test_verbose_refuses_the_rest(value, error):
    with pytest.raises(error) as info:
        _validation.check_verbose(value)
    assert str(info.value) == ('Argument `verbose` must be 0 (silent), 1, 2 or "auto". '
                               f"Received: verbose={value!r}")
