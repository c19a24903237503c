"""Data-parallel training over two CPU devices matches one device with the same global batch."""

import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_recipes

SCRIPT = pathlib.Path(__file__).parent / "distributed_run.py"
BACKEND = keras.backend.backend()
# The children see two host devices, with the XLA flags the tests set (tests/conftest.py).
TWO_DEVICE_FLAGS = " ".join([os.environ.get("XLA_FLAGS", ""),
                             "--xla_force_host_platform_device_count=2"]).strip()


@pytest.mark.slow
@pytest.mark.skipif(BACKEND not in ("tensorflow", "jax"), reason="no distribution on this backend")
@pytest.mark.parametrize("recipe", ["default_dnn", "self_normalizing"])
def test_two_device_data_parallel_matches_one_device(recipe):
    env = dict(os.environ, KERAS_BACKEND=BACKEND,
               XLA_FLAGS=TWO_DEVICE_FLAGS)
    result = subprocess.run([sys.executable, str(SCRIPT), recipe], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == BACKEND
    assert report["max_weight_difference"] < 1e-5
    # The 1cycle counts global steps: 256 samples / 32 per global batch * 3 epochs.
    assert report["iterations"] == [24, 24] and report["total_steps"] == [24, 24]


@pytest.mark.slow
@pytest.mark.skipif(BACKEND not in ("tensorflow", "jax"), reason="no distribution on this backend")
def test_two_device_fine_tune_matches_one_device():
    """build_transfer_model + both phases of fine_tune, with a tiny conv base."""
    env = dict(os.environ, KERAS_BACKEND=BACKEND,
               XLA_FLAGS=TWO_DEVICE_FLAGS)
    result = subprocess.run([sys.executable, str(SCRIPT), "transfer"], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == BACKEND
    # Base, head and both phases' optimizer state were created in the distribution.
    assert report["undistributed"] == []
    assert report["max_weight_difference"] < 1e-5
    for single, spread in zip(*report["loss"]):
        assert spread == pytest.approx(single, rel=1e-5)
    assert report["phase"] == [[1, 1, 2, 2]] * 2
    # Each phase counts global steps: 64 images / 32 per global batch * 2 epochs,
    # and phase 2's 1cycle spans them.
    assert report["phase_steps"] == [[4, 4], [4, 4]] and report["total_steps"] == [4, 4]


def _transfer_model(distribution=None):
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    base = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(features), name="base")
    return keras_recipes.build_transfer_model(base, 3, dropout_rate=0.0, seed=0,
                                              distribution=distribution)


def _one_device_distribution():
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.distribute.OneDeviceStrategy("/cpu:0")
    return keras.distribution.DataParallel(devices=keras.distribution.list_devices()[:1])


def _another_device_distribution():
    """A distribution on other devices than those the model is built on."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.distribute.OneDeviceStrategy("/cpu:0")  # any strategy: TF records none
    devices = keras.distribution.list_devices()
    if len(devices) < 2:
        pytest.skip("needs two JAX devices (XLA_FLAGS=--xla_force_host_platform_device_count=2)")
    return keras.distribution.DataParallel(devices=devices[1:2])


@pytest.mark.skipif(BACKEND not in ("tensorflow", "jax"), reason="no distribution on this backend")
def test_fine_tune_refuses_a_distribution_the_model_was_not_built_in():
    data = (np.zeros((4, 8, 8, 3), "float32"), np.zeros(4, "int64"))
    with pytest.raises(ValueError, match=re.escape(
            "Argument `distribution` must be None for a model built outside a distribution. "
            "Received: distribution=")):
        keras_recipes.fine_tune(_transfer_model(), data,
                                distribution=_another_device_distribution())


@pytest.mark.train
@pytest.mark.skipif(BACKEND not in ("tensorflow", "jax"), reason="no distribution on this backend")
def test_fine_tune_trains_in_the_distribution_the_model_was_built_in():
    data = (np.zeros((4, 8, 8, 3), "float32"), np.zeros(4, "int64"))
    built_in, other = _one_device_distribution(), _one_device_distribution()
    model = _transfer_model(built_in)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `distribution` must be None or the distribution the model was built in. "
            f"Received: distribution={other!r} (the model was built in {built_in!r})")):
        keras_recipes.fine_tune(model, data, distribution=other)
    if BACKEND == "tensorflow":  # None takes the model's own: phase 2's optimizer is in it
        keras_recipes.fine_tune(model, data, head_epochs=1, epochs=1, verbose=0)
        assert model.optimizer._distribution_strategy is built_in
    # (On JAX the two-device run, test_two_device_fine_tune_matches_one_device, shows
    # where every variable lives.)


def test_multi_worker_mirrored_strategy_is_refused_with_the_way_that_works():
    # Made for real, it must be made before TensorFlow starts; the check reads its type.
    strategy = type("MultiWorkerMirroredStrategy", (), {"scope": lambda self: None})()
    with pytest.raises(ValueError, match=r"Argument `distribution` must be a distribution "
                       r"Keras 3 can train with.*keras-team/keras#20585.*"
                       r"keras_recipes.join_processes\(\)"):
        keras_recipes.build_default_dnn((4,), 3, distribution=strategy)


def test_distribution_of_the_wrong_kind_is_refused():
    with pytest.raises(TypeError, match=re.escape(
            "Argument `distribution` must be None, a tf.distribute.Strategy (TensorFlow) or a "
            "keras.distribution distribution (JAX). Received: distribution='mirrored'")):
        keras_recipes.build_default_dnn((4,), 3, distribution="mirrored")


@pytest.mark.skipif(BACKEND == "jax", reason="keras.distribution works on JAX")
def test_keras_distribution_needs_jax():
    # (keras.distribution.list_devices() itself fails on PyTorch.)
    distribution = keras.distribution.DataParallel(devices=["cpu:0"])
    with pytest.raises(ValueError, match="keras.distribution needs the JAX backend"):
        keras_recipes.build_default_dnn((4,), 3, distribution=distribution)
    with pytest.raises(ValueError, match="keras.distribution needs the JAX backend"):
        _transfer_model(distribution)
    data = (np.zeros((4, 8, 8, 3), "float32"), np.zeros(4, "int64"))
    with pytest.raises(ValueError, match="keras.distribution needs the JAX backend"):
        keras_recipes.fine_tune(_transfer_model(), data, distribution=distribution)


@pytest.mark.skipif(BACKEND == "tensorflow", reason="tf.distribute works on TensorFlow")
def test_tf_distribute_needs_tensorflow():
    tf = pytest.importorskip("tensorflow")
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with pytest.raises(ValueError, match="tf.distribute strategies need the TensorFlow backend"):
        _transfer_model(strategy)
    data = (np.zeros((4, 8, 8, 3), "float32"), np.zeros(4, "int64"))
    with pytest.raises(ValueError, match="tf.distribute strategies need the TensorFlow backend"):
        keras_recipes.fine_tune(_transfer_model(), data, distribution=strategy)
