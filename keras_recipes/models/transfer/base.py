"""The base of a transfer model: a `keras.applications` network or a model of yours.

What `build_transfer_model` puts under the head: the application's names, families and
input sizes, building it (weights from ImageNet or a local file), and for a model of
yours a copy cut at its features; the global pooling of a feature map.
"""

from __future__ import annotations

import functools
import os
import warnings

import keras

from keras_recipes import _graph_walk
from keras_recipes import _validation as v

__all__ = [
    "application_family",
    "application_names",
    "build_application",
    "check_base_kwargs",
    "check_weights",
    "default_input_shape",
    "pooling_layer",
    "user_base",
]

# Input sizes the ImageNet weights were trained at, where not 224.
_DEFAULT_SIZES = {
    "EfficientNetB1": 240,
    "EfficientNetB2": 260,
    "EfficientNetB3": 300,
    "EfficientNetB4": 380,
    "EfficientNetB5": 456,
    "EfficientNetB6": 528,
    "EfficientNetB7": 600,
    "EfficientNetV2B1": 240,
    "EfficientNetV2B2": 260,
    "EfficientNetV2B3": 300,
    "EfficientNetV2S": 384,
    "EfficientNetV2M": 480,
    "EfficientNetV2L": 480,
    "InceptionResNetV2": 299,
    "InceptionV3": 299,
    "NASNetLarge": 331,
    "Xception": 299,
}

# Arguments of the application builders that `build_transfer_model` sets itself.
_RESERVED_KWARGS = ("include_top", "weights", "input_tensor", "input_shape", "pooling",
                    "classes", "classifier_activation")


@functools.cache
def application_names():
    """The model builders of the installed `keras.applications`, e.g. `"MobileNetV2"`."""
    return tuple(sorted(name for name in dir(keras.applications)
                        if name[:1].isupper() and callable(getattr(keras.applications, name))))


def application_family(name):
    """The `keras.applications` module of an application: `"MobileNetV2"` -> `"mobilenet_v2"`."""
    return getattr(keras.applications, name).__module__.rsplit(".", 1)[-1]


def default_input_shape(name):
    """The input shape an application's ImageNet weights were trained at."""
    size = _DEFAULT_SIZES.get(name, 224)
    if keras.config.image_data_format() == "channels_first":
        return (3, size, size)
    return (size, size, 3)


def check_weights(weights):
    """`"imagenet"`, None or the path of an existing file; returns it (paths as str)."""
    if weights is None or weights == "imagenet":
        return weights
    if isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
        return os.fspath(weights)
    expected = "'imagenet', None or the path of an existing weights file"
    if isinstance(weights, (str, os.PathLike)):
        v.fail("weights", weights, expected, hint="(no file at that path)")
    v.fail("weights", weights, expected, error=TypeError)


def _load_weights(model, path, what):
    # Keras warns once per layer it cannot match before it raises; our error says
    # it all, so the warnings are kept back and shown only if the load succeeds.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(path)
        except (ValueError, OSError, KeyError) as error:
            message = str(error).split("\n")[0]
            raise ValueError(
                f"Argument `weights` must be a weights file of {what}. Received: "
                f"weights={path!r}, which could not be loaded: {message}"
            ) from None
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename,
                               warning.lineno)


def build_application(name, input_shape, weights, base_kwargs):
    """`keras.applications.<name>(include_top=False, ...)`, with our error messages."""
    builder = getattr(keras.applications, name)
    kwargs = dict(base_kwargs)
    kwargs.update(include_top=False, input_shape=input_shape,
                  weights="imagenet" if weights == "imagenet" else None)
    try:
        base = builder(**kwargs)
    except ValueError as error:
        if "input" in str(error).lower():
            v.fail("input_shape", input_shape, f"a shape {name} accepts",
                   hint=f"(keras.applications.{name} says: {error})")
        raise ValueError(
            f"keras.applications.{name}(include_top=False, weights={weights!r}, "
            f"input_shape={input_shape}, **{base_kwargs!r}) cannot be built: {error}"
        ) from None
    except Exception as error:
        if "URL fetch failure" in str(error):
            raise ConnectionError(
                f'weights="imagenet" downloads the ImageNet weights of {name}, which failed: '
                f"{error}. Offline, pass the path of a weights file of "
                f"{name}(include_top=False) as `weights`, or weights=None."
            ) from error
        raise
    if weights not in (None, "imagenet"):
        _load_weights(base, weights, f"keras.applications.{name}(include_top=False, "
                      f"input_shape={input_shape}, **{base_kwargs!r})")
    return base


def check_base_kwargs(name, base_kwargs):
    """Checks the keyword arguments for an application builder."""
    if base_kwargs is None:
        return {}
    if not isinstance(base_kwargs, dict):
        v.fail("base_kwargs", base_kwargs, "a dict or None", error=TypeError)
    import inspect

    accepted = set(inspect.signature(getattr(keras.applications, name)).parameters)
    for key in base_kwargs:
        if key in _RESERVED_KWARGS:
            v.fail("base_kwargs", base_kwargs, f"free of {key!r}",
                   hint="(build_transfer_model sets it; use its own argument where it has one)")
        if key not in accepted:
            choices = sorted(accepted - set(_RESERVED_KWARGS))
            v.fail("base_kwargs", base_kwargs,
                   f"arguments of keras.applications.{name}: "
                   + ", ".join(repr(c) for c in choices),
                   hint=v.did_you_mean(key, {c: c for c in choices}))
    return dict(base_kwargs)


# --- a user's model as the base ------------------------------------------------------------


# Layers of a classifier top besides its Dense layers: what sits between them.
_TOP_EXTRAS = (
    keras.layers.Activation, keras.layers.Softmax, keras.layers.ReLU, keras.layers.LeakyReLU,
    keras.layers.PReLU, keras.layers.ELU, keras.layers.Dropout, keras.layers.AlphaDropout,
    keras.layers.GaussianDropout, keras.layers.GaussianNoise, keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
)


def _auto_feature_tensor(model):
    """The features of a model of yours, or None to use it whole.

    A model ending in a classifier top -- Dense layers on feature vectors, with
    the activation, dropout and normalization layers between them -- loses that
    top, as `include_top=False` does for `keras.applications`; the features are
    what the top received (e.g. the output of a Flatten or global pooling layer).
    When the top reaches back to the input (a network made only of Dense
    layers), only the last Dense layer (and what follows it) goes, as in the
    chapter's "reuse all layers but the output layer".
    """
    chain = []  # (layer, node) from the output backwards
    for tensor, layer, node in _graph_walk.upstream(model.outputs[0]):
        is_top = isinstance(layer, (keras.layers.Dense, *_TOP_EXTRAS))
        if not is_top or len(node.input_tensors) != 1 or len(tensor.shape) != 2:
            break  # `tensor` is what the top received
        chain.append((layer, node))
    dense = [i for i, (layer, _) in enumerate(chain) if isinstance(layer, keras.layers.Dense)]
    if not dense:
        return None
    if isinstance(_graph_walk.producer(tensor)[0], keras.layers.InputLayer):
        # Only Dense layers: keep all but the last Dense layer.
        return chain[dense[0]][1].input_tensors[0]
    return tensor


def user_base(base, input_shape, weights, feature_layer):
    """The feature extractor of a user's model: a copy, cut as `feature_layer` says.

    Returns:
        `(extractor, input_shape)`.
    """
    if not _graph_walk.has_defined_inputs(base):
        v.fail("base", base, "a keras.applications model name or a functional or Sequential "
               "keras.Model with defined inputs",
               hint="(a subclassed model, even built, has no layer graph to take the features "
               "from; rebuild it functionally, from keras.Input through its layers, or call a "
               "Sequential model once on data)",
               error=TypeError)
    if len(base.inputs) != 1 or len(base.outputs) != 1:
        v.fail("base", base.name, "a model with one input and one output",
               hint=f"(it has {len(base.inputs)} inputs and {len(base.outputs)} outputs)")
    # A copy, as the chapter advises: training the transfer model must not
    # change the user's pretrained model.
    clone = keras.models.clone_model(base)
    clone.set_weights(base.get_weights())
    if weights not in (None, "imagenet"):
        _load_weights(clone, weights, f"the model {base.name!r} given as `base`")
    if feature_layer is None:
        features = _auto_feature_tensor(clone)
    else:
        features = _feature_tensor(clone, feature_layer)
    extractor = clone if features is None else keras.Model(clone.inputs[0], features,
                                                           name=clone.name)
    base_shape = tuple(base.inputs[0].shape[1:])
    if input_shape is None:
        return extractor, base_shape
    input_shape = v.check_shape("input_shape", input_shape)
    if len(input_shape) != len(base_shape) or any(
            b is not None and b != d for b, d in zip(base_shape, input_shape)):
        v.fail("input_shape", input_shape, f"the input shape of `base`, {base_shape}",
               hint="(None entries may be anything; or pass input_shape=None)")
    return extractor, input_shape


def _feature_tensor(model, feature_layer):
    names = [layer.name for layer in model.layers]
    if isinstance(feature_layer, str):
        if feature_layer not in names:
            v.fail("feature_layer", feature_layer, f"the name of a layer of {model.name!r}",
                   hint=v.did_you_mean(feature_layer, {n: n for n in names}))
        layer = model.get_layer(feature_layer)
    elif isinstance(feature_layer, int) and not isinstance(feature_layer, bool):
        if not -len(names) <= feature_layer < len(names):
            v.fail("feature_layer", feature_layer,
                   f"a layer index in the range [{-len(names)}, {len(names) - 1}]")
        layer = model.layers[feature_layer]
    else:
        v.fail("feature_layer", feature_layer, "None, a layer name or a layer index",
               error=TypeError)
    if isinstance(layer, keras.layers.InputLayer):
        v.fail("feature_layer", feature_layer, "a layer after the input")
    # The layer's output in this model's graph (a nested model's `output` is
    # the one of its own graph).
    nodes = _graph_walk.inbound_nodes(layer)
    if len(nodes) != 1 or len(nodes[0].output_tensors) != 1:
        v.fail("feature_layer", feature_layer, "a layer called once, with one output")
    return nodes[0].output_tensors[0]


def pooling_layer(pooling, rank):
    """Global pooling for features of `rank` (with the batch axis), or None for vectors."""
    if rank == 2:
        return None
    kinds = {
        ("avg", 3): keras.layers.GlobalAveragePooling1D,
        ("avg", 4): keras.layers.GlobalAveragePooling2D,
        ("avg", 5): keras.layers.GlobalAveragePooling3D,
        ("max", 3): keras.layers.GlobalMaxPooling1D,
        ("max", 4): keras.layers.GlobalMaxPooling2D,
        ("max", 5): keras.layers.GlobalMaxPooling3D,
    }
    if (pooling, rank) not in kinds:
        v.fail("base", f"<model with {rank - 1}-D features>",
               "a model whose features are a vector or a 1-D, 2-D or 3-D feature map")
    return kinds[pooling, rank](name="pooling")
