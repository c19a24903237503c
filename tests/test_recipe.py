"""`keras_recipes.Recipe`: the training options as one validated, serializable value."""

import inspect
import re

import keras
import numpy as np
import pytest

import keras_recipes
from keras_recipes import Recipe
from keras_recipes import _validation as validation
from keras_recipes.callbacks import ResumableEarlyStopping, ResumableReduceLROnPlateau
from keras_recipes.optimizers import learning_rate_schedule
from keras_recipes.recipe import TRAINING_OPTIONS, RecipeState
from keras_recipes.schedules import OneCycle, OneCycleMomentum

# A value of `steps_per_execution` other than the default: Keras's PyTorch trainer runs one
# batch per call, so the recipe refuses more there.
SEVERAL_PER_CALL = 1 if keras.backend.backend() == "torch" else 4


def _data(n=64, features=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype("float32"), np.arange(n) % 3


def _net(features=4):
    inputs = keras.Input((features,))
    x = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


# --- values ----------------------------------------------------------------------------------


def test_defaults_and_what_they_mean():
    recipe = Recipe()
    assert (recipe.optimizer, recipe.learning_rate, recipe.schedule) == ("nadam", 1e-3,
                                                                         "one_cycle")
    assert recipe.early_stopping_patience == 10 and recipe.optimizer_kwargs == {}
    assert recipe.stretches_one_cycle and not recipe.finds_learning_rate
    assert not Recipe(total_steps=100).stretches_one_cycle
    assert Recipe(learning_rate="find").finds_learning_rate
    assert Recipe(optimizer="SGD").optimizer == "sgd"  # names are case-insensitive


@pytest.mark.parametrize("optimizer, schedule, expected", [
    ("adam", "auto", "one_cycle"), ("adam", "plateau", "plateau"),
    ("adam", "constant", "constant"), (keras.optimizers.Adam(), "auto", "constant"),
    (keras.optimizers.Adam(), "plateau", "plateau")])
def test_auto_schedule_is_resolved_once(optimizer, schedule, expected):
    assert Recipe(optimizer=optimizer, schedule=schedule).schedule == expected


def test_make_optimizer_attaches_the_1cycle_over_rate_and_momentum():
    optimizer = Recipe(optimizer="nadam", learning_rate=0.02, clipnorm=1.0).make_optimizer()
    assert isinstance(optimizer, keras_recipes.optimizers.Nadam)
    schedule = learning_rate_schedule(optimizer)
    assert isinstance(schedule, OneCycle) and schedule.max_learning_rate == 0.02
    assert optimizer.clipnorm == 1.0
    momentum = Recipe(optimizer="momentum", schedule="one_cycle").make_optimizer()
    assert isinstance(keras_recipes.optimizers.scheduled.raw_hyperparameter(momentum, "momentum"),
                      OneCycleMomentum)
    constant = Recipe(optimizer="momentum", schedule="constant", learning_rate=0.1)
    constant = constant.make_optimizer()
    assert learning_rate_schedule(constant) is None and constant.momentum == 0.9
    assert float(keras.ops.convert_to_numpy(constant.learning_rate)) == pytest.approx(0.1)
    # A new optimizer each time, so that one recipe can train several models.
    recipe = Recipe()
    assert recipe.make_optimizer() is not recipe.make_optimizer()
    mine = keras.optimizers.SGD(0.1)
    assert Recipe(optimizer=mine).make_optimizer() is mine  # an instance is used as given


def test_replace_makes_a_new_checked_recipe():
    recipe = Recipe(clipnorm=1.0)
    lower = recipe.replace(learning_rate=1e-4)
    assert (lower.learning_rate, lower.clipnorm, recipe.learning_rate) == (1e-4, 1.0, 1e-3)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `learning_rate` must be a number > 0 or \"find\". Received: "
            "learning_rate='fast'")):
        recipe.replace(learning_rate="fast")
    with pytest.raises(TypeError, match=re.escape(
            "Argument `learning_rat` must be one of the recipe's options (optimizer, "
            "learning_rate, schedule, schedule_kwargs, total_steps, clipnorm, optimizer_kwargs, "
            "early_stopping_patience, swa_epochs, backup_dir, distribution, "
            "steps_per_execution, jit_compile). Received: learning_rat=0.1. Did you mean "
            "'learning_rate'?")):
        recipe.replace(learning_rat=0.1)
    with pytest.raises(Exception, match="cannot assign"):
        recipe.clipnorm = 2.0  # a value: it never changes


# --- saving ----------------------------------------------------------------------------------


def test_config_round_trip_without_the_runs_own_settings(tmp_path):
    recipe = Recipe(optimizer="adamw", learning_rate=3e-3, schedule="plateau", clipnorm=0.5,
                    optimizer_kwargs={"weight_decay": 1e-4}, early_stopping_patience=3,
                    steps_per_execution=SEVERAL_PER_CALL, jit_compile=False,
                    backup_dir=str(tmp_path))
    config = recipe.get_config()
    assert "backup_dir" not in config and "distribution" not in config
    again = Recipe.from_config(config)
    assert again == recipe.replace(backup_dir=None)
    serialized = keras.saving.serialize_keras_object(recipe)
    assert keras.saving.deserialize_keras_object(serialized) == again
    with_instance = Recipe(optimizer=keras.optimizers.SGD(0.05, momentum=0.5))
    loaded = Recipe.from_config(with_instance.get_config())
    assert isinstance(loaded.optimizer, keras.optimizers.SGD)
    assert loaded.optimizer.get_config() == with_instance.optimizer.get_config()


def test_a_model_saves_its_recipe(tmp_path):
    recipe = Recipe(optimizer="adam", learning_rate=5e-3, clipnorm=2.0,
                    early_stopping_patience=4)
    model = keras_recipes.compile_recipe(_net(), recipe=recipe,
                                         loss="sparse_categorical_crossentropy")
    assert model.recipe is recipe
    model.save(tmp_path / "m.keras")
    assert keras.models.load_model(tmp_path / "m.keras").recipe == recipe


# --- one recipe, several entry points --------------------------------------------------------


@pytest.mark.train
def test_one_recipe_compiles_several_models_each_with_its_own_optimizer():
    recipe = Recipe(optimizer="adam", learning_rate=1e-2, early_stopping_patience=None)
    first = keras_recipes.compile_recipe(_net(), recipe=recipe,
                                         loss="sparse_categorical_crossentropy")
    second = keras_recipes.build_default_dnn((4,), 3, num_hidden_layers=1, recipe=recipe)
    assert first.optimizer is not second.optimizer
    for model in (first, second):
        assert model.recipe is recipe
        assert learning_rate_schedule(model.optimizer).max_learning_rate == 1e-2
        assert not any(isinstance(c, keras.callbacks.EarlyStopping)
                       for c in model.recipe_callbacks(has_validation=True))
    x, y = _data()
    first.fit(x, y, epochs=1, verbose=0)
    second.fit(x, y, epochs=1, verbose=0)


@pytest.mark.parametrize("entry", ["build_default_dnn", "build_self_normalizing_dnn",
                                   "build_plain_dnn", "compile_recipe"])
def test_the_recipe_and_the_same_keyword_arguments_give_the_same_model(entry):
    options = dict(optimizer="adam", learning_rate=2e-3, clipnorm=1.0, schedule="constant",
                   early_stopping_patience=3)
    if entry == "build_plain_dnn":
        options.pop("optimizer")
        options.pop("clipnorm")

    def build(**kwargs):
        if entry == "compile_recipe":
            return keras_recipes.compile_recipe(_net(), loss="sparse_categorical_crossentropy",
                                                **kwargs)
        return getattr(keras_recipes, entry)((4,), 3, num_hidden_layers=1, seed=0, **kwargs)

    by_arguments = build(**options)
    by_recipe = build(recipe=Recipe(**({"optimizer": "adam"} | options)))
    assert by_arguments.recipe == by_recipe.recipe
    assert type(by_arguments.optimizer) is type(by_recipe.optimizer)


def test_a_recipe_beside_a_changed_training_argument_is_refused():
    with pytest.raises(ValueError, match=re.escape(
            "Argument `learning_rate` must be left out when `recipe` is given. Received: "
            "learning_rate=0.1 (the recipe holds it: pass recipe.replace(learning_rate=...))")):
        keras_recipes.build_default_dnn((4,), 3, recipe=Recipe(), learning_rate=0.1)
    with pytest.raises(TypeError, match=re.escape(
            "Argument `recipe` must be a keras_recipes.Recipe or None. Received: "
            "recipe={'learning_rate': 0.1}")):
        keras_recipes.compile_recipe(_net(), loss="mse", recipe={"learning_rate": 0.1})


# --- validated once, taken by few ------------------------------------------------------------


@pytest.fixture
def checks(monkeypatch):
    """The recipes made, and the argument checks of `_validation` (by argument name) made
    while one is checked."""
    made, seen = [], []
    post_init = Recipe.__post_init__

    def counting_post_init(self, one_cycle):
        made.append(self)
        seen.append("<recipe>")
        post_init(self, one_cycle)
        seen.append("</recipe>")

    monkeypatch.setattr(Recipe, "__post_init__", counting_post_init)
    for name in ("check_bool", "check_choice", "check_int", "check_number", "check_seed"):
        original = getattr(validation, name)

        def counting(*args, _original=original, _name=name, **kwargs):
            argument = kwargs.get("name") or (args[0] if _name != "check_seed" else "seed")
            seen.append(argument)
            return _original(*args, **kwargs)

        monkeypatch.setattr(validation, name, counting)
    return made, seen


@pytest.mark.parametrize("entry", ["build_default_dnn", "build_self_normalizing_dnn",
                                   "compile_recipe", "build_transfer_model"])
def test_each_training_option_is_checked_once_per_call(entry, checks):
    made, seen = checks
    options = dict(optimizer="adam", learning_rate=1e-2, total_steps=50, clipnorm=1.0,
                   early_stopping_patience=3, steps_per_execution=SEVERAL_PER_CALL)
    if entry == "compile_recipe":
        keras_recipes.compile_recipe(_net(), loss="mse", **options)
    elif entry == "build_transfer_model":
        inputs = keras.Input((8, 8, 3))
        base = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
        keras_recipes.build_transfer_model(base, 3, weights=None, **options)
    else:
        getattr(keras_recipes, entry)((4,), 3, num_hidden_layers=1, **options)
    assert len(made) == 1  # one recipe, made (and checked) once
    inside = seen[seen.index("<recipe>") + 1:seen.index("</recipe>")]
    for option in ("schedule", "optimizer", "learning_rate", "total_steps", "clipnorm",
                   "early_stopping_patience", "steps_per_execution"):
        assert inside.count(option) == 1, (option, inside)
    outside = seen[:seen.index("<recipe>")] + seen[seen.index("</recipe>") + 1:]
    # What else is checked is the architecture, or the 1cycle schedules the recipe creates
    # validating their own spans -- never the recipe's options again.
    assert not set(outside) & {"schedule", "optimizer", "clipnorm", "early_stopping_patience",
                               "steps_per_execution", "learning_rate"}, outside


def _functions(module, seen):
    for name, value in vars(module).items():
        if getattr(value, "__module__", "") != module.__name__ or id(value) in seen:
            continue
        seen.add(id(value))
        if inspect.isfunction(value):
            yield f"{module.__name__}.{name}", value
        elif inspect.isclass(value):
            for attribute, member in vars(value).items():
                if inspect.isfunction(member):
                    yield f"{module.__name__}.{name}.{attribute}", member


def test_few_functions_take_the_training_options_as_separate_parameters():
    """Only the public entry points (and the recipe) list the training options; everything
    inside takes the recipe. A parameter list with three or more of the options' names counts
    (the functions this replaced took 6 to 12; a helper about an optimizer and its learning
    rate, or a schedule and its length, takes two)."""
    import importlib
    import pkgutil

    takers, seen = set(), set()
    for info in pkgutil.walk_packages(keras_recipes.__path__, "keras_recipes."):
        if info.name.endswith(("cli", "__main__")):
            continue
        module = importlib.import_module(info.name)
        for name, function in _functions(module, seen):
            parameters = set(inspect.signature(function).parameters)
            if len(parameters & set(TRAINING_OPTIONS)) >= 3:
                takers.add(name)
    assert takers == {
        "keras_recipes.recipe._recipe.Recipe.__init__",  # the recipe itself
        "keras_recipes.models.default_dnn.build_default_dnn",
        "keras_recipes.models.self_normalizing.build_self_normalizing_dnn",
        "keras_recipes.models.plain_dnn.build_plain_dnn",
        "keras_recipes.models.compile_recipe.compile_recipe",
        "keras_recipes.models.transfer.build.build_transfer_model",
    }


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(optimizer="lion"), ValueError,
     "Argument `optimizer` must be one of 'sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop', "
     "'adam', 'adamax', 'nadam', 'adamw'. Received: optimizer='lion'"),
    (dict(optimizer=3), TypeError,
     "Argument `optimizer` must be an optimizer name ('sgd', 'momentum', 'nesterov', 'adagrad', "
     "'rmsprop', 'adam', 'adamax', 'nadam', 'adamw') or a keras.optimizers.Optimizer instance. "
     "Received: optimizer=3"),
    (dict(learning_rate=0), ValueError,
     "Argument `learning_rate` must be a number > 0. Received: learning_rate=0.0"),
    (dict(schedule="cosin"), ValueError,
     "Argument `schedule` must be one of 'auto', 'one_cycle', 'cosine', 'exponential', "
     "'power', 'piecewise', 'plateau', 'constant'. Received: schedule='cosin'. Did you mean "
     "'cosine'?"),
    (dict(total_steps=0), ValueError,
     "Argument `total_steps` must be a positive integer or None. Received: total_steps=0"),
    (dict(clipnorm=-1), ValueError,
     "Argument `clipnorm` must be a number > 0 or None. Received: clipnorm=-1.0"),
    (dict(optimizer_kwargs={"beta_1": 0.5}), ValueError,
     "Argument `optimizer_kwargs` must be free of `beta_1`. Received: "
     "optimizer_kwargs={'beta_1': 0.5} (the recipe sets it: the 1cycle cycles momentum and "
     "beta_1, and optimizer=\"momentum\" or \"nesterov\" is SGD with momentum 0.9)"),
    (dict(early_stopping_patience=-1), ValueError,
     "Argument `early_stopping_patience` must be a non-negative integer or None. Received: "
     "early_stopping_patience=-1"),
    (dict(backup_dir=3), TypeError,
     "Argument `backup_dir` must be None or a folder path. Received: backup_dir=3"),
    (dict(distribution="mirrored"), TypeError,
     "Argument `distribution` must be None, a tf.distribute.Strategy (TensorFlow) or a "
     "keras.distribution distribution (JAX). Received: distribution='mirrored'"),
    (dict(jit_compile="yes"), ValueError,
     "Argument `jit_compile` must be True, False or \"auto\". Received: jit_compile='yes'"),
    (dict(optimizer=keras.optimizers.Adam(), schedule="one_cycle"), ValueError,
     "Argument `schedule` must be \"constant\", \"plateau\" or \"auto\" when `optimizer` is "
     "an instance. Received: schedule='one_cycle'. Pass an optimizer name to get the "
     "recipe's 1cycle"),
])
def test_bad_options_are_refused_naming_the_option(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Recipe(**kwargs)


# --- the state it owns -----------------------------------------------------------------------


def test_the_callbacks_of_a_fit_end_with_the_owner_of_their_state(tmp_path):
    model = keras_recipes.build_default_dnn((4,), 3, num_hidden_layers=1, schedule="plateau",
                                            backup_dir=str(tmp_path / "b"))
    mine = keras.callbacks.History()
    callbacks = model.recipe_callbacks([mine], has_validation=True, epochs=4)
    assert callbacks[0] is mine
    kinds = [type(c) for c in callbacks[1:]]
    assert kinds == [ResumableReduceLROnPlateau, ResumableEarlyStopping,
                     keras_recipes.callbacks.StopOnNaN, RecipeState]
    state = callbacks[-1]
    assert list(state.parts) == ["ResumableReduceLROnPlateau", "ResumableEarlyStopping",
                                 "history", "random"]
    assert state.backup.folder == str(tmp_path / "b")


def test_the_state_owner_gives_each_part_its_state_back():
    stopping = ResumableEarlyStopping(patience=2, restore_best_weights=True)
    plateau = ResumableReduceLROnPlateau(patience=3)
    owner = RecipeState([stopping, plateau])
    stopping.wait, stopping.best, stopping.best_epoch = 1, 0.25, 3
    stopping.best_weights = [np.ones(2)]
    plateau.wait, plateau.best, plateau.cooldown_counter = 2, 0.5, 1
    saved = owner.get_state()
    fresh = RecipeState([ResumableEarlyStopping(patience=2), ResumableReduceLROnPlateau()])
    fresh.set_state(saved)
    assert fresh.get_state()["ResumableEarlyStopping"]["best_epoch"] == 3
    np.testing.assert_array_equal(fresh.parts["ResumableEarlyStopping"].best_weights[0],
                                  np.ones(2))
    assert fresh.get_state()["ResumableReduceLROnPlateau"] == {
        "wait": 2, "best": 0.5, "cooldown_counter": 1}
