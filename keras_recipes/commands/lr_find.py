"""`keras-recipes lr-find`: the learning-rate range test on a recipe."""

from __future__ import annotations

import json

from keras_recipes import _backend_choice as _backend
from keras_recipes.commands._run_folder import RunFolder, default_name
from keras_recipes.commands._setup import EXIT_OK, build, fit_data, run_config, usage_error

__all__ = ["lr_find"]


def lr_find(args):
    """`keras-recipes lr-find`: builds the recipe, runs the range test, writes the curve."""
    import keras

    from keras_recipes import _io, _validation
    from keras_recipes.lr_finder import SUGGESTION_METHODS, find_learning_rate
    from keras_recipes.report import _figure, _save_figure

    try:
        _validation.check_int("num_steps", args.num_steps, min_value=2)
    except ValueError as error:
        return usage_error(error)
    config = run_config(args)
    keras.utils.set_random_seed(config.seed)
    data, model = build(config)
    train, _ = fit_data(data)
    x, y = train if isinstance(train, tuple) else (train, None)  # arrays, or the stream
    # The rule `learning_rate="find"` would train at (the 1cycle's peak under the 1cycle).
    result = find_learning_rate(model, x, y, batch_size=config.fit["batch_size"],
                                num_steps=args.num_steps, seed=config.seed,
                                method=model.recipe.finder_method)
    print(f"Learning-rate range test of {config.recipe} on {data.name} "
          f"({len(result.learning_rates)} steps); "
          + _backend.describe(keras.backend.backend(), config.backend))
    for name in SUGGESTION_METHODS:
        print(f"  {name:<9} {getattr(result, name):.3g}")
    print(f"Suggested learning rate: {result.suggestion:.3g} ({result.method}); use it with "
          f"--set model.learning_rate={result.suggestion:.3g}")
    output = RunFolder(args.output or default_name(f"lr-find-{config.recipe}"),
                       chosen=bool(args.output)).claim()
    figure = _figure()
    result.plot(ax=figure.subplots())
    _save_figure(figure, output / "lr_finder.png")
    _io.write_text(output / "lr_finder.json", json.dumps(result.to_dict(), indent=2) + "\n")
    print(f"Wrote lr_finder.png and lr_finder.json to {output}")
    return EXIT_OK
