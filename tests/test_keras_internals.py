"""Direct tests of `keras_recipes._keras_internals`, the one module touching Keras internals.

Small and fast: they run in the main suite (released Keras) and in `.ci/run`'s step on
the Keras nightly, so that a change inside Keras shows up here first, by name.
"""

import keras
import numpy as np
import pytest

from keras_recipes import _keras_internals as internals


def _branched_model():
    """inputs -> dense_a -> (dense_b | dense_c) -> add -> out: one branch, one merge."""
    inputs = keras.Input(shape=(4,), name="inputs")
    a = keras.layers.Dense(3, name="dense_a")(inputs)
    b = keras.layers.Dense(3, name="dense_b")(a)
    c = keras.layers.Dense(3, name="dense_c")(a)
    merged = keras.layers.Add(name="add")([b, c])
    outputs = keras.layers.Dense(2, name="out")(merged)
    return keras.Model(inputs, outputs, name="branched")


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def _names(nodes):
    return [node.operation.name for node in nodes]


# --- the graph of a functional model ----------------------------------------------------------


def test_graph_nodes_are_in_topological_order_without_the_input_layer():
    model = _branched_model()
    names = _names(internals.graph_nodes(model))
    assert sorted(names) == ["add", "dense_a", "dense_b", "dense_c", "out"]
    assert names[0] == "dense_a" and names[-2:] == ["add", "out"]
    for node in internals.graph_nodes(model):
        inputs = node.arguments.keras_tensors  # the public node attributes the docstring names
        assert inputs and node.output_tensors
        for parent in node.parent_nodes:
            if not isinstance(parent.operation, keras.layers.InputLayer):
                assert names.index(parent.operation.name) < names.index(node.operation.name)


def test_producer_maps_a_symbolic_tensor_to_its_layer_and_node():
    inputs = keras.Input(shape=(4,))
    dense = keras.layers.Dense(3, name="dense")
    first, second = dense(inputs), dense(inputs)  # a layer called twice: two nodes
    operation, node = internals.producer(second)
    assert operation is dense
    assert node is internals.inbound_nodes(dense)[1]
    assert internals.producer(first)[1] is internals.inbound_nodes(dense)[0]
    assert node.output_tensors[0] is second
    assert len(internals.inbound_nodes(dense)) == 2


def test_functional_graph_of_functional_sequential_and_subclassed_models():
    functional = _branched_model()
    assert internals.functional_graph(functional) is functional
    sequential = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2, name="d")])
    graph = internals.functional_graph(sequential)
    assert isinstance(graph, internals.Functional) and graph is not sequential
    assert _names(internals.graph_nodes(sequential)) == ["d"]
    unbuilt = keras.Sequential([keras.layers.Dense(2)])  # no input shape: no graph yet
    assert internals.functional_graph(unbuilt) is None
    subclassed = _Subclassed()
    subclassed(np.zeros((1, 4), "float32"))
    assert internals.functional_graph(subclassed) is None
    assert internals.graph_nodes(subclassed) is None
    assert internals.graph_output_operations(subclassed) == []
    assert internals.is_graph_model(functional) and internals.is_graph_model(sequential)
    assert not internals.is_graph_model(subclassed)
    assert not isinstance(subclassed, internals.Functional)


def test_graph_output_operations_follow_the_output_order():
    inputs = keras.Input(shape=(4,))
    first = keras.layers.Dense(1, name="first")(inputs)
    second = keras.layers.Dense(2, name="second")(inputs)
    model = keras.Model(inputs, [second, first])
    assert [op.name for op in internals.graph_output_operations(model)] == ["second", "first"]


def test_flatten_layers_lists_parents_before_children():
    inner = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, name="inner_d")],
                             name="inner")
    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="top_d")(inner(inputs)),
                        name="outer")
    names = [layer.name for layer in internals.flatten_layers(model)]
    assert names[0] == "outer"
    assert {"inner", "inner_d", "top_d"} <= set(names)
    assert names.index("inner") < names.index("inner_d")
    without = [layer.name for layer in internals.flatten_layers(model, include_self=False)]
    assert without == names[1:]
    assert [layer.name for layer in internals.flatten_layers(keras.layers.Dense(1, name="x"))
            ] == ["x"]


def test_standardize_inputs_and_run_through_graph_replay_the_model():
    inputs = {"a": keras.Input(shape=(2,), name="a"), "b": keras.Input(shape=(2,), name="b")}
    merged = keras.layers.Concatenate(name="concat")([inputs["a"], inputs["b"]])
    outputs = keras.layers.Dense(1, name="out")(merged)
    model = keras.Model(inputs, outputs)
    data = {"b": np.ones((3, 2), "float32"), "a": np.zeros((3, 2), "float32")}
    flat = internals.standardize_inputs(model, data)
    assert len(flat) == 2
    called = []

    def operation_fn(operation):
        def call(*args, **kwargs):
            called.append(operation.name)
            return operation(*args, **kwargs)

        return call

    replayed = internals.run_through_graph(model, flat, operation_fn)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(replayed),
                               keras.ops.convert_to_numpy(model(data)), rtol=1e-6)
    assert called == ["concat", "out"]


def test_run_through_graph_substitutes_an_operation():
    model = _branched_model()
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    flat = internals.standardize_inputs(model, x)

    def zero_dense_c(operation):
        if operation.name == "dense_c":
            return lambda *args, **kwargs: keras.ops.zeros((2, 3))
        return operation

    replayed = internals.run_through_graph(model, flat, zero_dense_c)
    out = model.get_layer("out")
    expected = out(model.get_layer("dense_b")(model.get_layer("dense_a")(x)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(replayed),
                               keras.ops.convert_to_numpy(expected), rtol=1e-5, atol=1e-6)


# --- masks ------------------------------------------------------------------------------------


def test_masks_set_and_read_on_a_tensor():
    x = keras.ops.ones((2, 3, 4))
    assert internals.get_keras_mask(x) is None
    mask = keras.ops.convert_to_tensor(np.array([[True, True, False], [True, False, False]]))
    internals.set_keras_mask(x, mask)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(internals.get_keras_mask(x)),
                                  keras.ops.convert_to_numpy(mask))


def test_a_masking_layer_output_carries_its_mask():
    data = np.array([[[1.0], [0.0]], [[2.0], [3.0]]], "float32")
    output = keras.layers.Masking(mask_value=0.0)(data)
    mask = internals.get_keras_mask(output)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(mask), [[True, False], [True, True]])


# --- optimizers -------------------------------------------------------------------------------


def test_inner_optimizer_unwraps_loss_scaling():
    adam = keras.optimizers.Adam(1e-3)
    scaled = keras.optimizers.LossScaleOptimizer(adam)
    assert internals.inner_optimizer(scaled) is adam
    assert internals.inner_optimizer(adam) is adam
    assert internals.component_optimizers(scaled) == [adam]
    assert internals.default_optimizer(scaled) is adam
    assert not internals.is_multi_optimizer(scaled)


@pytest.mark.skipif(not hasattr(keras.optimizers, "MultiOptimizer"),
                    reason="keras.optimizers.MultiOptimizer is new in Keras 3.15")
def test_multi_optimizer_components_and_default():
    head, base = keras.optimizers.Adam(1e-3), keras.optimizers.SGD(1e-4)
    optimizer_map = keras.optimizers.OptimizerMap(head)
    optimizer_map["base/.*"] = base
    multi = keras.optimizers.MultiOptimizer(optimizer_map)
    assert internals.is_multi_optimizer(multi)
    components = internals.component_optimizers(multi)
    assert {id(o) for o in components} == {id(head), id(base)}
    assert internals.default_optimizer(multi) is head
    scaled = keras.optimizers.LossScaleOptimizer(multi)
    assert internals.is_multi_optimizer(internals.inner_optimizer(scaled))
    assert internals.default_optimizer(scaled) is head


def test_tensorboard_profiles_follows_profile_batch():
    assert not internals.tensorboard_profiles(keras.callbacks.TensorBoard("unused"))
    if keras.backend.backend() == "tensorflow":  # the backend Keras profiles on at any Python
        assert internals.tensorboard_profiles(
            keras.callbacks.TensorBoard("unused", profile_batch=(2, 3)))


def test_learning_rate_object_round_trip():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    assert internals.learning_rate_object(optimizer) is schedule
    constant = keras.optimizers.SGD(learning_rate=0.01)
    variable = internals.learning_rate_object(constant)
    assert isinstance(variable, keras.Variable)
    # A schedule put in place of the constant rate (the public setter refuses it) ...
    internals.set_learning_rate_object(constant, schedule)
    assert internals.learning_rate_object(constant) is schedule
    assert float(constant.learning_rate) == pytest.approx(0.1)  # the schedule at step 0
    # ... and the saved variable put back.
    internals.set_learning_rate_object(constant, variable)
    assert internals.learning_rate_object(constant) is variable
    assert float(constant.learning_rate) == pytest.approx(0.01)
    scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(learning_rate=schedule))
    assert internals.learning_rate_object(scaled) is schedule


# --- the state of `fit` -----------------------------------------------------------------------


def _small_compiled_model():
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


@pytest.mark.train
def test_initial_epoch_is_what_backup_and_restore_resumes_at(tmp_path):
    model = _small_compiled_model()
    x, y = np.zeros((8, 3), "float32"), np.zeros((8, 2), "float32")
    assert internals.initial_epoch(model) is None

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(x, y, epochs=4, verbose=0, callbacks=[backup, Interrupt()])
    seen = []

    class See(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(internals.initial_epoch(self.model))

    history = model.fit(x, y, epochs=4, verbose=0, callbacks=[backup, See()])
    assert seen == [2] and history.epoch == [2, 3]  # resumed after the last finished epoch
    # Keras 3.15 leaves it set after that `fit` (see `clear_initial_epoch`).
    assert internals.initial_epoch(model) in (2, None)
    internals.clear_initial_epoch(model)
    assert internals.initial_epoch(model) is None
    assert model.fit(x, y, epochs=1, verbose=0).epoch == [0]


class BuiltBeforeTracing(internals.BuildsBeforeTracing, keras.Sequential):
    """A Sequential whose `fit` and `evaluate` build their state before tracing.

    (Named without a leading underscore: TensorFlow refuses a name scope such as
    `_built_before_tracing`, so the symbolic build of such a model fails and falls back.)
    """


class FailsSymbolically(internals.BuildsBeforeTracing, keras.Model):
    """A model that runs eagerly only: its `call` reads its inputs with numpy."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(keras.ops.convert_to_tensor(np.asarray(x)))


def _count_steps(model, name):
    calls = []
    step = getattr(model, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return step(*args, **kwargs)

    setattr(model, name, counted)
    return calls


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="the override is the TensorFlow trainer's")
@pytest.mark.parametrize("call", ["fit", "evaluate"])
def test_built_before_tracing_the_first_step_is_traced_once(call):
    x, y = np.zeros((8, 3), "float32"), np.zeros((8, 2), "float32")
    models = {}
    for kind in (keras.Sequential, BuiltBeforeTracing):
        model = kind([keras.Input(shape=(3,)), keras.layers.Dense(2)])
        model.compile(optimizer="adam", loss="mse", metrics=["mae"])
        models[kind] = _count_steps(model, "train_step" if call == "fit" else "test_step")
        getattr(model, call)(x, y, batch_size=4, verbose=0)
    # Keras builds the optimizer and metrics inside the first trace, then traces again.
    assert len(models[keras.Sequential]) == 2
    assert len(models[BuiltBeforeTracing]) == 1


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="the override is the TensorFlow trainer's")
def test_built_before_tracing_reads_no_batch_so_a_shuffled_dataset_trains_as_before():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 3)).astype("float32"), rng.normal(size=(32, 2)).astype("float32")
    weights = {}
    for kind in (keras.Sequential, BuiltBeforeTracing):
        keras.utils.set_random_seed(0)
        # Reshuffled at every pass: an extra pass (taking a batch to build) changes the order.
        data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(32, seed=1).batch(4)
        model = kind([keras.Input(shape=(3,)), keras.layers.Dense(2)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        model.fit(data, epochs=2, verbose=0)
        weights[kind] = model.get_weights()
    for plain, built in zip(weights[keras.Sequential], weights[BuiltBeforeTracing]):
        np.testing.assert_allclose(built, plain, rtol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="the override is the TensorFlow trainer's")
def test_built_before_tracing_falls_back_to_the_first_trace_when_it_cannot_build():
    model = FailsSymbolically()
    model.compile(optimizer="adam", loss="mse", run_eagerly=True)
    x, y = np.ones((8, 3), "float32"), np.ones((8, 2), "float32")
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and model.optimizer.built


def test_symbolic_build_builds_the_optimizer_and_metrics_as_fit_would():
    model = _small_compiled_model()
    assert not model.optimizer.built
    before = len(model.metrics_variables)
    internals.symbolic_build(model, (np.zeros((4, 3), "float32"), np.zeros((4, 2), "float32")))
    assert model.optimizer.built
    # Adam: iterations, learning rate, and two slots per weight (kernel and bias).
    assert len(model.optimizer.variables) >= 2 + 2 * 2
    assert len(model.metrics_variables) > before  # the compiled `mae` got its variables
