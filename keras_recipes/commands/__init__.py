"""The commands of `keras-recipes` (`keras_recipes.cli` parses the command line and calls
them, importing each only when it runs):

- `_setup`: the config of a run, its data and model, its folders, the exit codes;
- `train`, `evaluate`, `lr_find`, `show`: one command each;
- `summary`: the figures of a finished run and the summary printed at its end.
"""

__all__ = []
