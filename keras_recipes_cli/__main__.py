"""`python -m keras_recipes_cli`: the `keras-recipes` command."""

import sys

from keras_recipes_cli import main

sys.exit(main())
