"""Tests of tests/conftest.py's own behaviour: that the fast suite's execution patch applies.

The patch replaces `keras_recipes.recipe._execution.resolve_execution`; if a recipe stopped
reading it through that module (or the function moved), every TensorFlow test would compile
with XLA again and the suite would silently take twice as long.
"""

import os

import keras
import pytest

import keras_recipes
from keras_recipes.recipe import _execution

TENSORFLOW_WITHOUT_XLA = (keras.backend.backend() == "tensorflow"
                          and os.environ.get("KERAS_RECIPES_TEST_XLA") != "1")


@pytest.mark.skipif(not TENSORFLOW_WITHOUT_XLA, reason="the patch is for TensorFlow without "
                    "KERAS_RECIPES_TEST_XLA=1")
def test_recipes_compile_without_xla_in_the_fast_suite():
    factory_model = keras_recipes.build_default_dnn((4,), 2, num_hidden_layers=1, units=8,
                                                    seed=0)
    inputs = keras.Input((4,))
    own = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    wrapped = keras_recipes.compile_recipe(own, loss="sparse_categorical_crossentropy")
    assert factory_model.jit_compile is False
    assert wrapped.jit_compile is False


@pytest.mark.real_execution_defaults
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="XLA by default on TF")
def test_tests_marked_real_execution_defaults_keep_xla():
    assert _execution.resolve_execution(keras_recipes.Recipe()) == (
        _execution.STEPS_PER_EXECUTION, True)
    model = keras_recipes.build_default_dnn((4,), 2, num_hidden_layers=1, units=8, seed=0)
    assert model.jit_compile is True
