"""The input preprocessing of a transfer model: each `keras.applications` family's
`preprocess_input` as a saveable layer, and the choice of that layer."""

from __future__ import annotations

import keras
from keras import ops

from keras_recipes import _validation as v
from keras_recipes.models.transfer.base import application_family, application_names

__all__ = ["FAMILY_MODES", "ApplicationPreprocessing", "preprocessing_layer"]

_PACKAGE = "keras_recipes"

# Each `keras.applications` module with what its `preprocess_input` does
# (keras/src/applications/imagenet_utils.py): "caffe" = RGB->BGR, minus the
# ImageNet mean pixel; "tf" = scale to [-1, 1]; "torch" = scale to [0, 1], then
# standardise each channel; "identity" = nothing (the model has its own
# rescaling layers inside).
FAMILY_MODES = {
    "convnext": "identity",
    "densenet": "torch",
    "efficientnet": "identity",
    "efficientnet_v2": "identity",
    "inception_resnet_v2": "tf",
    "inception_v3": "tf",
    "mobilenet": "tf",
    "mobilenet_v2": "tf",
    "mobilenet_v3": "identity",
    "nasnet": "tf",
    "resnet": "caffe",
    "resnet50": "caffe",
    "resnet_v2": "tf",
    "vgg16": "caffe",
    "vgg19": "caffe",
    "xception": "tf",
}

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ApplicationPreprocessing(keras.layers.Layer):
    """The `preprocess_input` of a `keras.applications` family, as a layer.

    Puts an application's input preprocessing inside the model graph, so the
    model takes raw images (pixel values in [0, 255]) and a saved model needs
    no preprocessing code beside it. Equal to
    `keras.applications.<family>.preprocess_input`:

    - `"caffe"` families (`vgg16`, `vgg19`, `resnet`, `resnet50`): RGB to BGR,
      then minus the ImageNet mean pixel, no scaling;
    - `"tf"` families (`mobilenet`, `mobilenet_v2`, `resnet_v2`,
      `inception_v3`, `inception_resnet_v2`, `xception`, `nasnet`):
      `x / 127.5 - 1`;
    - `"torch"` family (`densenet`): `x / 255`, then each channel standardised
      with the ImageNet mean and std;
    - `"identity"` families (`efficientnet`, `efficientnet_v2`, `convnext`,
      `mobilenet_v3`): unchanged, since those models rescale inside.

    Written here because a `Lambda(preprocess_input)` layer does not reload
    with `safe_mode=True` (Keras's default), while this layer does.

    Args:
        family: str, the name of a `keras.applications` module, e.g.
            `"mobilenet_v2"` or `"resnet"`.
        data_format: str or None, `"channels_last"` or `"channels_first"`;
            `None` takes `keras.config.image_data_format()`.
            Defaults to `None`.
        **kwargs: base `keras.layers.Layer` arguments, e.g. `name`.

    Raises:
        ValueError: for an unknown family or data format.

    Example:

    >>> import numpy as np
    >>> from keras_recipes.models.transfer import ApplicationPreprocessing
    >>> layer = ApplicationPreprocessing("mobilenet_v2")
    >>> [round(float(v), 4) for v in layer(np.array([[[[0.0, 127.5, 255.0]]]]))[0, 0, 0]]
    [-1.0, 0.0, 1.0]
    """

    def __init__(self, family, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.family = v.check_choice("family", family, FAMILY_MODES)
        if data_format is None:
            data_format = keras.config.image_data_format()
        self.data_format = v.check_choice("data_format", data_format,
                                          ("channels_last", "channels_first"))
        self.mode = FAMILY_MODES[self.family]

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "identity":
            return x
        if self.mode == "tf":
            return x / 127.5 - 1.0
        channel_axis = -1 if self.data_format == "channels_last" else -3
        if self.mode == "torch":
            x = x / 255.0
            mean, std = _TORCH_MEAN, _TORCH_STD
        else:  # caffe
            x = ops.flip(x, axis=channel_axis)
            mean, std = _CAFFE_MEAN_BGR, None
        shape = [1] * len(x.shape)
        shape[channel_axis] = 3
        x = x - ops.reshape(ops.convert_to_tensor(mean, dtype=x.dtype), shape)
        if std is not None:
            x = x / ops.reshape(ops.convert_to_tensor(std, dtype=x.dtype), shape)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(family=self.family, data_format=self.data_format)
        return config


def preprocessing_layer(preprocessing, application):
    """The layer `build_transfer_model(preprocessing=...)` puts in front of the base, or None.

    Args:
        preprocessing: `"auto"`, None, a `keras.applications` module or model name, or a
            `keras.layers.Layer`, as in `build_transfer_model`.
        application: str or None, the application's name; None for a model of yours.
    """
    if preprocessing == "auto":
        if application is None:
            return None
        return ApplicationPreprocessing(application_family(application), name="preprocessing")
    if preprocessing is None:
        return None
    if isinstance(preprocessing, keras.layers.Layer):
        return preprocessing
    families = {**{f: f for f in FAMILY_MODES},
                **{n: application_family(n) for n in application_names()}}
    if not isinstance(preprocessing, str):
        v.fail("preprocessing", preprocessing,
               '"auto", None, a keras.applications module or model name, or a keras Layer',
               error=TypeError)
    key = v.check_choice("preprocessing", preprocessing, families)
    return ApplicationPreprocessing(families[key], name="preprocessing")
