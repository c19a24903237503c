"""`build_transfer_model`: a pretrained base, frozen, with a new head, compiled."""

from __future__ import annotations

import keras

from keras_recipes import _validation as v
from keras_recipes.models import _factory as factory
from keras_recipes.models import _layer_blocks as layer_blocks
from keras_recipes.models import _task_heads as heads
from keras_recipes.models.transfer import base as tb
from keras_recipes.models.transfer.preprocessing import preprocessing_layer

__all__ = ["POOLINGS", "build_transfer_model"]

POOLINGS = ("avg", "max")


@factory.documented("training_options", "recipe_argument")
def build_transfer_model(
    base, num_classes=None, input_shape=None, weights="imagenet", *, task="auto",
    num_outputs=1, label_smoothing=0.0,
    # The base and the head:
    base_kwargs=None, feature_layer=None, preprocessing="auto", pooling="avg",
    dropout_rate=0.2, num_hidden_layers=0, units=128, activation="relu", seed=None,
    name="transfer_model",
    # The training options (keras_recipes.Recipe documents each):
    optimizer="adam", learning_rate=1e-2, schedule="auto", schedule_kwargs=None, total_steps=None,
    clipnorm=None, optimizer_kwargs=None, early_stopping_patience=5, swa_epochs=None,
    backup_dir=None, distribution=None, steps_per_execution="auto", jit_compile="auto",
    one_cycle="auto", recipe=None,
):
    """Builds and compiles a pretrained base with a new head, the base frozen.

    The graph is `inputs -> preprocessing -> base(x, training=False) ->
    pooling -> dropout -> [Dense -> activation -> dropout] * num_hidden_layers
    -> output`:

    - the **base** is a `keras.applications` model built with
      `include_top=False`, or a copy of a model of yours. It is frozen
      (`trainable=False`) and called with `training=False`. Its
      BatchNormalization layers stay in inference mode, using the statistics
      of the pretrained data (which a few hundred new images must not
      overwrite), also once `fine_tune` unfreezes the rest: it keeps them
      frozen, and a frozen BatchNormalization layer always runs in inference
      mode in Keras 3. (Keras 3.15 passes `fit`'s `training=True` over the
      `training=False` given when the graph was built, a bug fixed upstream in
      keras-team/keras#23364; BatchNormalization is unaffected, for the reason
      above, but other layers of the base that act only in training -- Dropout,
      EfficientNet's stochastic depth -- are active during `fit`, as they were
      during pretraining. Keras 3.16 keeps the `training=False` (checked on the
      nightly 3.16.0.dev2026102704): there those layers are inactive during `fit`.);
    - the application's own **`preprocess_input`** is in the graph (as an
      `ApplicationPreprocessing` layer, which reloads in Keras's safe mode
      where a `Lambda` would not), so the model takes raw images with pixel
      values in [0, 255]. Images must already have the model's input size;
    - the **head** is global average (or max) pooling, dropout, optional
      hidden Dense layers (initializer matched to the activation), and an
      output layer and loss chosen from the task.

    The model is compiled with Adam on a 1cycle learning rate (and `beta_1`)
    that `fit` spreads over its own steps, early stopping on the validation
    loss (with the best weights restored) and a stop on NaN, as the other
    recipes. Train it with `keras_recipes.fine_tune`, which trains the head
    and then fine-tunes the top of the base at a lower learning rate.

    A model of yours as `base` (for example one trained on a related task with
    more data) must be functional or `Sequential`, with one input and one
    output. It is copied, so training the transfer model leaves yours
    unchanged. Its features are taken as follows, with `feature_layer=None`:

    - a model that ends in a classifier top -- Dense layers on feature
      vectors, with the activation, dropout and normalization layers between
      them -- loses that top, as `include_top=False` does for an application;
      the features are what the top received (say the output of its
      `Flatten` or global pooling layer). The upper Dense layers hold the
      features most specific to the old task: on the MNIST benchmark (digits
      0-4 -> 5-9, 100 images) a head on the Flatten output reached 90% test
      accuracy against 67-72% on the last hidden Dense layer;
    - a model made only of Dense layers loses its last Dense layer (the
      output), as in the chapter's "reuse all layers but the output layer";
    - any other model is used whole: a model whose output is a feature map
      or a feature vector is the base as it is.

    A feature map is pooled; a feature vector goes to the head directly. Pass
    `feature_layer` (a layer name or index) to cut elsewhere.

    Args:
        base: str or `keras.Model`. The name of a `keras.applications` model
            (`"MobileNetV2"`, `"ResNet50"`, `"EfficientNetB0"`, ...,
            case-insensitive), or a model of yours.
        num_classes: int >= 2, the number of classes; `None` for regression.
        input_shape: tuple of ints or None, the shape of one image, e.g.
            `(224, 224, 3)`. `None` takes, for an application, the size its
            ImageNet weights were trained at (224 for most, 299 for
            Inception and Xception, ...) and, for a model of yours, its input
            shape. Defaults to `None`.
        weights: `"imagenet"`, `None` or the path of a weights file. For an
            application: `"imagenet"` downloads the pretrained weights (needs
            the internet once; Keras caches them in `~/.keras/models`), `None`
            initialises randomly, a path loads a file holding the weights of
            the application built with `include_top=False` (offline use). For a
            model of yours nothing is downloaded: `"imagenet"` and `None` keep
            its own weights, a path loads a file of its weights into the copy.
            Defaults to `"imagenet"`.
        task: str, `"auto"` (binary for 2 classes, else multi-class),
            `"multiclass"`, `"binary"` or `"regression"`. Defaults to `"auto"`.
        num_outputs: int, the number of regression targets. Defaults to `1`.
        label_smoothing: float in [0, 1), for a classification task, as in
            `build_default_dnn`. Defaults to `0.0`.
        base_kwargs: dict or None, more arguments of the application builder,
            e.g. `{"alpha": 0.35}` for MobileNetV2. Defaults to `None`.
        feature_layer: str, int or None, for a model of yours: the name or
            index (in `base.layers`) of the layer whose output is the
            features; `None` decides as described above. Defaults to `None`.
        preprocessing: `"auto"`, None, str or a `keras.layers.Layer`.
            `"auto"` puts the application's `preprocess_input` in front of the
            base (nothing for a model of yours); a `keras.applications`
            module or model name (`"resnet"`, `"ResNet50"`) selects another
            family's; a layer (e.g. `keras.layers.Rescaling(1 / 255)`, to
            match what your model was trained on) is used as given.
            Defaults to `"auto"`.
        pooling: str, `"avg"` or `"max"` global pooling of a feature map
            (not used for feature vectors). Defaults to `"avg"`.
        dropout_rate: float in [0, 1), dropout on the features and after each
            hidden layer. Defaults to `0.2`.
        num_hidden_layers: int >= 0, hidden Dense layers in the head.
            Defaults to `0`.
        units: int, units per hidden layer. Defaults to `128`.
        activation: str, the activation of the hidden layers, with its
            initializer as in `build_default_dnn` (He for the ReLU family,
            LeCun for `"selu"`, Glorot for `"tanh"` and `"sigmoid"`).
            Defaults to `"relu"`.
        {{training_options}}
            Here they default to Adam on the 1cycle peaking at
            `learning_rate=1e-2` for the head -- higher than Keras's usual 1e-3:
            the head is a small model on fixed features and a few hundred
            images give few steps (on the MNIST transfer benchmark, 10 head
            epochs at 1e-3 left the head at 32% test accuracy, at 1e-2 at 74%)
            -- and early stopping after 5 epochs without a better `val_loss`.
            `fine_tune` trains both phases with the recipe, phase 2 at a lower
            rate; the base, the head and the optimizers are created in
            `distribution`'s scope.
        {{recipe_argument}}
        seed: int or None, seeds the head's initializers and dropout (the
            base of `weights=None` is seeded only by
            `keras.utils.set_random_seed`). Defaults to `None`.
        name: str, the model's name. Defaults to `"transfer_model"`.

    Returns:
        A compiled `keras_recipes.models.RecipeModel` whose one nested model
        is the frozen base.

    Raises:
        ValueError: for an unknown application (with the closest name), an
            input shape the base cannot take, a weights file that does not
            fit, and out-of-range values.
        TypeError: for arguments of the wrong type.
        ConnectionError: when `weights="imagenet"` cannot be downloaded.

    Example:

    >>> import numpy as np, keras_recipes
    >>> model = keras_recipes.build_transfer_model(
    ...     "MobileNetV2", num_classes=5, input_shape=(96, 96, 3), weights=None,
    ...     base_kwargs={"alpha": 0.35}, seed=0)
    >>> images = np.random.randint(0, 256, (8, 96, 96, 3)).astype("float32")
    >>> model.predict(images, verbose=0).shape
    (8, 5)
    """
    factory.check_architecture(num_hidden_layers=num_hidden_layers, units=units,
                               dropout_rate=dropout_rate, seed=seed, min_hidden_layers=0)
    # Made (and so checked) before the base is built: the base's variables belong to the
    # distribution as much as the head's.
    recipe = factory.recipe_for(build_transfer_model, locals())
    task = heads.resolve_task(task, num_classes, num_outputs)
    loss, metrics = heads.task_loss(task, label_smoothing)
    activation = v.check_choice("activation", activation, layer_blocks.ACTIVATION_INITIALIZERS)
    pooling = v.check_choice("pooling", pooling, POOLINGS)
    weights = tb.check_weights(weights)

    if isinstance(base, str):
        application = v.check_choice("base", base, tb.application_names())
        base_kwargs = tb.check_base_kwargs(application, base_kwargs)
        if feature_layer is not None:
            v.fail("feature_layer", feature_layer, "None for a keras.applications base",
                   hint="(it is built with include_top=False and used whole)")
        input_shape = (tb.default_input_shape(application) if input_shape is None
                       else v.check_shape("input_shape", input_shape))
        preprocess = preprocessing_layer(preprocessing, application)
        with recipe.scope():
            base_model = tb.build_application(application, input_shape, weights, base_kwargs)
    elif isinstance(base, keras.Model):
        if base_kwargs:
            v.fail("base_kwargs", base_kwargs, "None when `base` is a model",
                   hint="(it configures keras.applications builders)")
        preprocess = preprocessing_layer(preprocessing, None)
        with recipe.scope():  # the copy of your model is made in the distribution's scope
            base_model, input_shape = tb.user_base(base, input_shape, weights, feature_layer)
    else:
        v.fail("base", base, "a keras.applications model name (e.g. 'MobileNetV2') or a "
               "keras.Model", error=TypeError)

    base_model.trainable = False

    def graph():
        inputs = keras.Input(shape=input_shape, name="inputs")
        x = inputs if preprocess is None else preprocess(inputs)
        try:
            x = base_model(x, training=False)
        except ValueError as error:
            v.fail("input_shape", input_shape, f"a shape the base {base_model.name!r} accepts",
                   hint=f"(calling it failed: {error})")
        pool = tb.pooling_layer(pooling, len(x.shape))
        if pool is not None:
            x = pool(x)
        if dropout_rate:
            x = keras.layers.Dropout(dropout_rate, seed=layer_blocks.layer_seed(seed, 1000),
                                     name="dropout")(x)
        initializer_name = layer_blocks.ACTIVATION_INITIALIZERS[activation]
        for i in range(1, num_hidden_layers + 1):
            x = keras.layers.Dense(
                units,
                kernel_initializer=layer_blocks.seeded_initializer(initializer_name,
                                                             layer_blocks.layer_seed(seed, i)),
                name=f"hidden_{i}",
            )(x)
            x = layer_blocks.activation_layer(activation, layer_name=f"{activation}_{i}")(x)
            if dropout_rate:
                x = keras.layers.Dropout(dropout_rate, seed=layer_blocks.layer_seed(seed, 1000 + i),
                                         name=f"dropout_{i}")(x)
        return inputs, heads.output_layer(task, num_classes, num_outputs, seed=seed)(x)

    return factory.assemble(graph, recipe, name=name, loss=loss, metrics=metrics)
