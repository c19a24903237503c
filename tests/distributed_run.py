"""Trains a recipe on one device and on two, prints the largest weight difference as JSON.

Run in a fresh process (device counts are fixed when the backend starts):
    KERAS_BACKEND=tensorflow python tests/distributed_run.py default_dnn
    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \
        python tests/distributed_run.py default_dnn

`transfer` runs `fine_tune` (both phases) on a `build_transfer_model` with a tiny
conv base instead.
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
from fixed_order import FixedOrderBatches  # noqa: E402

import keras_recipes  # noqa: E402
from keras_recipes.optimizers import learning_rate_schedule  # noqa: E402


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


class PhaseSteps(keras.callbacks.Callback):
    """The optimizer steps each `fit` (each phase of `fine_tune`) ran."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_end(self, logs=None):
        self.steps.append(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))


def conv_base():
    """Conv -> BatchNorm -> ReLU, twice: 6 layers, seeded."""
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for i, (filters, strides) in enumerate([(4, 1), (6, 2)], start=1):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", name=f"conv_{i}",
                                kernel_initializer=keras.initializers.GlorotUniform(i))(x)
        x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
        x = keras.layers.ReLU(name=f"relu_{i}")(x)
    return keras.Model(inputs, x, name="conv_base")


def undistributed(model):
    """Paths of the model's and optimizer's variables not created in a distribution."""
    variables = list(model.variables) + list(model.optimizer.variables)
    if backend == "tensorflow":
        import tensorflow as tf

        return [v.path for v in variables
                if not isinstance(v.value, tf.distribute.DistributedValues)]
    return [v.path for v in variables if len(v.value.sharding.device_set) != 2]


def train_transfer(strategy):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(64, 8, 8, 3)).astype("float32")
    y = (x.reshape(64, -1, 3).mean(axis=1).argmax(axis=1)).astype("int64")
    model = keras_recipes.build_transfer_model(conv_base(), 3, dropout_rate=0.0, seed=0,
                                               distribution=strategy)
    steps = PhaseSteps()
    if backend == "tensorflow":
        import tensorflow as tf

        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    else:
        data = FixedOrderBatches(x, y, 32)
    history = keras_recipes.fine_tune(model, data, head_epochs=2, epochs=2,
                                      unfreeze=3, callbacks=[steps], distribution=strategy,
                                      verbose=0)
    return model, history, steps.steps


def compare_transfer():
    single, single_history, single_steps = train_transfer(None)
    spread, spread_history, spread_steps = train_transfer(distribution())
    diffs = [float(np.abs(a - b).max()) for a, b in zip(single.get_weights(),
                                                          spread.get_weights())]
    return {
        "backend": backend,
        "max_weight_difference": max(diffs),
        "phase_steps": [single_steps, spread_steps],
        "total_steps": [learning_rate_schedule(single.optimizer).total_steps,
                        learning_rate_schedule(spread.optimizer).total_steps],
        "phase": [single_history.history["phase"], spread_history.history["phase"]],
        "loss": [single_history.history["loss"], spread_history.history["loss"]],
        "undistributed": undistributed(spread),
    }


if __name__ == "__main__":
    recipe = sys.argv[1]
    if recipe == "transfer":
        print(json.dumps(compare_transfer()))
        sys.exit(0)
    single, single_history = train(recipe, None)
    spread, spread_history = train(recipe, distribution())
    diffs = [float(np.abs(a - b).max()) for a, b in zip(single.get_weights(),
                                                          spread.get_weights())]
    print(json.dumps({
        "backend": backend,
        "max_weight_difference": max(diffs),
        "iterations": [int(keras.ops.convert_to_numpy(m.optimizer.iterations))
                       for m in (single, spread)],
        "total_steps": [learning_rate_schedule(single.optimizer).total_steps,
                        learning_rate_schedule(spread.optimizer).total_steps]
        if single.recipe.stretches_one_cycle else None,
        "loss": [single_history.history["loss"][-1], spread_history.history["loss"][-1]],
    }))
