"""Tests of `keras_recipes._graph_walk`, the one walker max-norm, MC Dropout, the
diagnostics and transfer learning use. Small and fast: also run on the Keras nightly."""

import keras

from keras_recipes import _graph_walk as gw


def _nested_model():
    """inputs -> inner(dense_a -> dense_b) -> out, with `inner` frozen but `dense_a` not."""
    inner_inputs = keras.Input(shape=(4,), name="inner_inputs")
    a = keras.layers.Dense(8, name="dense_a")(inner_inputs)
    b = keras.layers.Dense(8, name="dense_b")(a)
    inner = keras.Model(inner_inputs, b, name="inner")
    inner.trainable = False  # freezes its layers too
    inner.get_layer("dense_a").trainable = True  # trainable itself, frozen through `inner`
    inputs = keras.Input(shape=(4,), name="inputs")
    outputs = keras.layers.Dense(2, name="out")(inner(inputs))
    return keras.Model(inputs, outputs, name="outer"), inner


def _into_models(layer):
    return gw.sublayers(layer) if isinstance(layer, keras.Model) else None


def test_walk_is_depth_first_parents_first_with_expanded_and_frozen():
    model, _ = _nested_model()
    steps = list(gw.walk(model, _into_models))
    assert [(s.layer.name, s.expanded, s.frozen) for s in steps] == [
        ("outer", True, False),
        ("inputs", False, False),
        ("inner", True, True),
        ("inner_inputs", False, True),
        ("dense_a", False, True),  # frozen through `inner`
        ("dense_b", False, True),
        ("out", False, False),
    ]


def test_walk_without_the_root_still_walks_into_it():
    model, _ = _nested_model()
    names = [s.layer.name for s in gw.walk(model, _into_models, include_root=False)]
    assert names[0] == "inputs" and "outer" not in names and "dense_b" in names


def test_walk_unique_yields_a_shared_layer_once():
    shared = keras.layers.Dense(8, name="shared")
    tree = {"root": ["a", "b"], "a": [shared], "b": [shared]}

    class Node:
        def __init__(self, name):
            self.name = name

    nodes = {name: Node(name) for name in tree}

    def children(layer):
        if isinstance(layer, Node):
            return [nodes[c] if isinstance(c, str) else c for c in tree[layer.name]]
        return None

    every = [s.layer.name for s in gw.walk(nodes["root"], children)]
    once = [s.layer.name for s in gw.walk(nodes["root"], children, unique=True)]
    assert every == ["root", "a", "shared", "b", "shared"]
    assert once == ["root", "a", "shared", "b"]


def test_operations_in_graph_order_and_sublayers_of_a_plain_layer():
    model, inner = _nested_model()
    assert [op.name for op in gw.operations(model)] == ["inputs", "inner", "out"]

    class Block(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.first = keras.layers.Dense(8, name="first")
            self.second = keras.layers.Dense(8, name="second")

    assert [layer.name for layer in gw.sublayers(Block())] == ["first", "second"]
    assert gw.sublayers(inner) == list(inner.layers)


def test_upstream_follows_single_inputs_back_to_the_input_layer():
    inputs = keras.Input(shape=(4,), name="inputs")
    hidden = keras.layers.Dense(8, name="hidden")(inputs)
    outputs = keras.layers.Dense(2, name="out")(hidden)
    chain = list(gw.upstream(outputs))
    assert [operation.name for _, operation, _ in chain] == ["out", "hidden", "inputs"]
    assert chain[1][0] is hidden


def test_upstream_stops_at_a_node_with_several_inputs():
    inputs = keras.Input(shape=(4,))
    merged = keras.layers.Add(name="add")([keras.layers.Dense(4)(inputs),
                                           keras.layers.Dense(4)(inputs)])
    outputs = keras.layers.Dense(2, name="out")(merged)
    assert [operation.name for _, operation, _ in gw.upstream(outputs)] == ["out", "add"]


def test_has_defined_inputs_is_not_is_graph_model():
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    assert gw.is_graph_model(unbuilt) and not gw.has_defined_inputs(unbuilt)
    model, _ = _nested_model()
    assert gw.is_graph_model(model) and gw.has_defined_inputs(model)
