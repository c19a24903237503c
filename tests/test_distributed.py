"""Data-parallel training over two CPU devices matches one device with the same global batch."""

import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import pytest

import keras_recipes

SCRIPT = pathlib.Path(__file__).parent / "distributed_run.py"
BACKEND = keras.backend.backend()


@pytest.mark.slow
@pytest.mark.skipif(BACKEND not in ("tensorflow", "jax"), reason="no distribution on this backend")
@pytest.mark.parametrize("recipe", ["default_dnn", "self_normalizing"])
def test_two_device_data_parallel_matches_one_device(recipe):
    env = dict(os.environ, KERAS_BACKEND=BACKEND,
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    result = subprocess.run([sys.executable, str(SCRIPT), recipe], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == BACKEND
    assert report["max_weight_difference"] < 1e-5
    # The 1cycle counts global steps: 256 samples / 32 per global batch * 3 epochs.
    assert report["iterations"] == [24, 24] and report["total_steps"] == [24, 24]


def test_distribution_of_the_wrong_kind_is_refused():
    with pytest.raises(TypeError, match=re.escape(
            "Argument `distribution` must be None, a tf.distribute.Strategy (TensorFlow) or a "
            "keras.distribution distribution (JAX). Received: distribution='mirrored'")):
        keras_recipes.build_default_dnn((4,), 3, distribution="mirrored")


@pytest.mark.skipif(BACKEND == "jax", reason="keras.distribution works on JAX")
def test_keras_distribution_needs_jax():
    devices = keras.distribution.list_devices()
    with pytest.raises(ValueError, match="keras.distribution needs the JAX backend"):
        keras_recipes.build_default_dnn(
            (4,), 3, distribution=keras.distribution.DataParallel(devices=devices))
