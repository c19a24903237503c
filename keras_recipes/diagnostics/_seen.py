"""Which model's layers the rules and measurements read: yours, inside a `RecipeWrapper`."""

from __future__ import annotations

from keras_recipes import _graph_walk
from keras_recipes.diagnostics._graph import LayerGraph

__all__ = ["layer_graph"]


def layer_graph(model):
    """The `LayerGraph` of the layers `model` runs.

    For `compile_recipe`'s `RecipeWrapper` (a subclassed model, or an unbuilt
    Sequential, of yours) that is the graph of your model, whose layers are
    linted and measured as if you had compiled it yourself; the wrapper is
    not a model nesting a (pretrained) base. Any other model is read as it is.
    """
    return LayerGraph(_graph_walk.model_of(model))
