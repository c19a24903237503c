"""The chapter's default deep network: He init + ELU + BatchNorm + Nadam + 1cycle."""

from __future__ import annotations

import keras

from keras_recipes import _validation as v
from keras_recipes.constraints import apply_max_norm
from keras_recipes.models import _factory as factory
from keras_recipes.models import _layer_blocks as layer_blocks
from keras_recipes.models import _task_heads as heads
from keras_recipes.models._graph import dense_input_stem

__all__ = ["build_default_dnn"]


@factory.documented("training_options", "recipe_argument")
def build_default_dnn(
    input_shape, num_classes=None, *, task="auto", num_outputs=1, label_smoothing=0.0,
    # The network:
    num_hidden_layers=3, units=100, activation="elu", normalization="batch",
    normalization_groups="auto", dropout_rate=0.0, l1=0.0, l2=0.0, max_norm=None,
    normalization_data=None, seed=None, name="default_dnn",
    # Deprecated, the former form of `normalization`:
    batch_norm="auto",
    # The training options (keras_recipes.Recipe documents each):
    optimizer="nadam", learning_rate=1e-2, schedule="auto", schedule_kwargs=None, total_steps=None,
    clipnorm=None, optimizer_kwargs=None, early_stopping_patience=10, swa_epochs=None,
    backup_dir=None, distribution=None, steps_per_execution="auto", jit_compile="auto",
    one_cycle="auto", recipe=None,
):
    """Builds and compiles the default deep network of Géron's chapter 11.

    Each hidden block is `Dense(use_bias=False, kernel_initializer="he_normal")
    -> BatchNormalization -> ELU` (BatchNorm before the activation, no bias since
    BatchNorm's offset replaces it), optionally followed by dropout. The
    initializer follows the activation, as in the chapter's table: He for the
    ReLU family, ELU, swish and GELU, LeCun for SELU, Glorot for tanh and the
    logistic sigmoid. `normalization="layer"` or `"group"` puts
    LayerNormalization or GroupNormalization in BatchNorm's place: they
    normalise each sample on its own, so they work with batches too small for
    BatchNorm's statistics (under 8 samples, where the chapter's notes
    recommend them; `diagnose` says so). The output layer and loss follow the
    task. The model
    is compiled with Nadam (or the named optimizer) on a 1cycle over the learning
    rate *and* momentum (`beta_1`), evaluated inside the compiled train step.

    `model.fit(x, y, epochs=E, batch_size=B, validation_data=...)` alone then runs
    the whole recipe: the 1cycle is spread over exactly the steps of that `fit`,
    early stopping on the validation loss restores the best weights, and a NaN
    loss stops training. Your own `callbacks=[...]` run beside them.

    Args:
        input_shape: tuple of ints, the shape of one sample, e.g. `(64,)`.
            Inputs of more than one dimension are flattened.
        num_classes: int >= 2, the number of classes; `None` for regression.
        task: str, `"auto"` (binary for 2 classes, else multi-class),
            `"multiclass"` (softmax + sparse categorical cross-entropy, integer
            labels), `"binary"` (one sigmoid unit + binary cross-entropy) or
            `"regression"` (linear units + MSE). Defaults to `"auto"`.
        num_outputs: int, the number of regression targets. Defaults to `1`.
        label_smoothing: float in [0, 1), for a classification task: the
            true class's target becomes `1 - label_smoothing + label_smoothing /
            num_classes` and every other class's `label_smoothing / num_classes`
            (for integer labels, with `keras_recipes.losses.SparseCategoricalCrossentropy`;
            binary: `keras.losses.BinaryCrossentropy(label_smoothing=...)`).
            Defaults to `0.0`.
        num_hidden_layers: int, the number of hidden blocks. Defaults to `3`.
        units: int, units per hidden layer. Defaults to `100`.
        activation: str, one of `"relu"`, `"leaky_relu"`, `"prelu"`, `"elu"`,
            `"selu"`, `"swish"`, `"silu"`, `"gelu"` (He normal initialization),
            `"tanh"`, `"sigmoid"` (Glorot normal). Defaults to `"elu"`.
        normalization: str or None, the layer between each hidden `Dense` and
            its activation: `"batch"` (BatchNormalization, statistics of each
            batch, moving averages at inference), `"layer"`
            (LayerNormalization over each sample's units), `"group"`
            (GroupNormalization over groups of each sample's units, see
            `normalization_groups`) or None (none, and the Dense layers get
            their bias back). Defaults to `"batch"`.
        normalization_groups: `"auto"` or int, the number of groups of
            `normalization="group"`, a divisor of `units` leaving 2 or more
            units per group. `"auto"` takes the most groups, at most 32
            (Keras's default), of at least 16 units each (Wu & He's 16 channels
            per group: a Dense layer has no spatial positions to add to a
            group's statistics): 5 groups of 20 for 100 units, 16 of 16 for
            256, 1 (LayerNorm's statistics) under 32 units. Must be `"auto"`
            for the other normalizations. Defaults to `"auto"`.
        dropout_rate: float in [0, 1), dropout after each hidden block.
            Defaults to `0.0`.
        l1: float >= 0, L1 penalty on the hidden kernels. Defaults to `0.0`.
        l2: float >= 0, L2 penalty on the hidden kernels. Defaults to `0.0`.
        max_norm: float or None, bound on the norm of each hidden unit's
            incoming weights (`keras_recipes.constraints.apply_max_norm`; the
            output layer is left free). Defaults to `None`.
        {{training_options}}
            Here they default to Nadam on the 1cycle (learning rate and `beta_1`)
            peaking at `learning_rate=1e-2`, stretched over each `fit`, and early
            stopping after 10 epochs without a better `val_loss`;
            `learning_rate="find"` runs the LR range finder on the first `fit`'s
            data.
        {{recipe_argument}}
        normalization_data: array or None, training inputs to adapt a
            `Normalization` layer to, put in front of the network.
            Defaults to `None`.
        seed: int or None, seeds every initializer and dropout layer.
            Defaults to `None`.
        name: str, the model's name. Defaults to `"default_dnn"`.
        batch_norm: deprecated, the former form of `normalization`: `True` is
            `normalization="batch"`, `False` is `normalization=None`; a
            `DeprecationWarning` says so, and it may not contradict
            `normalization`. Defaults to `"auto"` (not given).

    Returns:
        A compiled `keras_recipes.models.RecipeModel` (a functional `keras.Model`).

    Raises:
        ValueError: for out-of-range values or unknown names.
        TypeError: for arguments of the wrong type.

    Example:

    >>> import numpy as np, keras_recipes
    >>> x, y = np.random.rand(256, 64).astype("float32"), np.random.randint(0, 10, 256)
    >>> model = keras_recipes.build_default_dnn((64,), num_classes=10, seed=0)
    >>> history = model.fit(x, y, epochs=2, validation_split=0.2, verbose=0)
    """
    factory.check_architecture(num_hidden_layers=num_hidden_layers, units=units,
                               dropout_rate=dropout_rate, seed=seed)
    recipe = factory.recipe_for(build_default_dnn, locals())
    task = heads.resolve_task(task, num_classes, num_outputs)
    activation = v.check_choice("activation", activation, layer_blocks.ACTIVATION_INITIALIZERS)
    normalization, groups = layer_blocks.check_hidden_normalization(
        _from_batch_norm(batch_norm, normalization), normalization_groups, units)
    v.check_number("l1", l1, low=0)
    v.check_number("l2", l2, low=0)
    v.check_number("max_norm", max_norm, low=0, low_inclusive=False, allow_none=True)
    input_shape = v.check_shape("input_shape", input_shape)
    initializer_name = layer_blocks.ACTIVATION_INITIALIZERS[activation]
    output_layer_args = (task, num_classes, num_outputs)
    loss, metrics = heads.task_loss(task, label_smoothing)
    # Under a tf.distribute strategy each replica would otherwise normalise with
    # the statistics of its own share of the batch (JAX's SPMD sharding already
    # computes them over the global batch).
    synchronized = recipe.distribution is not None and keras.backend.backend() == "tensorflow"

    def graph():
        standardize = layer_blocks.normalization_layer(normalization_data,
                                                       input_shape=input_shape)
        inputs, x = dense_input_stem(input_shape, standardize)
        for i in range(1, num_hidden_layers + 1):
            x = keras.layers.Dense(
                units,
                use_bias=normalization is None,
                kernel_initializer=layer_blocks.seeded_initializer(
                    initializer_name, layer_blocks.layer_seed(seed, i)),
                kernel_regularizer=layer_blocks.kernel_regularizer(l1, l2),
                name=f"hidden_{i}",
            )(x)
            norm = layer_blocks.hidden_normalization_layer(
                normalization, i, groups=groups, synchronized=synchronized)
            if norm is not None:
                x = norm(x)
            x = layer_blocks.activation_layer(activation, layer_name=f"{activation}_{i}")(x)
            if dropout_rate:
                x = keras.layers.Dropout(dropout_rate, seed=layer_blocks.layer_seed(seed, 1000 + i),
                                         name=f"dropout_{i}")(x)
        return inputs, heads.output_layer(*output_layer_args, seed=seed)(x)

    model = factory.assemble(graph, recipe, name=name, loss=loss, metrics=metrics)
    if max_norm:
        # The chapter bounds the hidden layers' incoming weights, not the output layer's.
        apply_max_norm(model, max_norm, exclude=["output"])
    return model


def _from_batch_norm(batch_norm, normalization):
    """`normalization`, or what the deprecated `batch_norm` says instead.

    `batch_norm=False` turns the default BatchNorm off; a `normalization` other than
    the default that `batch_norm` contradicts is refused.
    """
    if isinstance(batch_norm, str) and batch_norm == "auto":
        return normalization
    v.check_bool("batch_norm", batch_norm)
    implied = "batch" if batch_norm else None
    v.warn_deprecated(f"`batch_norm` is deprecated: pass normalization={implied!r} (for "
                      f"batch_norm={batch_norm})")
    given = normalization if normalization is None else v.check_choice(
        "normalization", normalization, layer_blocks.NORMALIZATIONS)
    if given not in ("batch", implied):
        v.fail("batch_norm", batch_norm, f"left out when `normalization={normalization!r}`",
               hint='(`batch_norm` is the deprecated form of `normalization`: True is '
                    'normalization="batch", False is normalization=None)')
    return implied
