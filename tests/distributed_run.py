"""Trains a recipe on one device and on two, prints the largest weight difference as JSON.

Run in a fresh process (device counts are fixed when the backend starts):
    KERAS_BACKEND=tensorflow python tests/distributed_run.py default_dnn
    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \
        python tests/distributed_run.py default_dnn
"""

import json
import os
import sys

import numpy as np

backend = os.environ.get("KERAS_BACKEND", "tensorflow")
if backend == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

import keras_recipes  # noqa: E402


def distribution():
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    devices = keras.distribution.list_devices("cpu")
    assert len(devices) == 2, devices
    return keras.distribution.DataParallel(devices=devices)


def train(recipe, strategy):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 10)).astype("float32")
    y = (x[:, :3].argmax(axis=1)).astype("int64")
    model = keras_recipes.get_recipe(recipe)((10,), 3, num_hidden_layers=2, units=32, seed=0,
                                             distribution=strategy)
    history = model.fit(x, y, epochs=3, batch_size=32, shuffle=False, verbose=0)
    return model, history


if __name__ == "__main__":
    recipe = sys.argv[1]
    single, single_history = train(recipe, None)
    spread, spread_history = train(recipe, distribution())
    diffs = [float(np.abs(a - b).max()) for a, b in zip(single.get_weights(),
                                                          spread.get_weights())]
    print(json.dumps({
        "backend": backend,
        "max_weight_difference": max(diffs),
        "iterations": [int(keras.ops.convert_to_numpy(m.optimizer.iterations))
                       for m in (single, spread)],
        "total_steps": [single.optimizer._learning_rate.total_steps,
                        spread.optimizer._learning_rate.total_steps]
        if single.auto_one_cycle else None,
        "loss": [single_history.history["loss"][-1], spread_history.history["loss"][-1]],
    }))
