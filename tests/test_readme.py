"""Every Python snippet and shell command of README.md runs, as a new user would run it.

The snippets run in order in one namespace (later ones use `data` and `model` from earlier
ones); the commands run through the `keras-recipes` launcher in-process, in a temporary
working directory. Offline substitutions, each asserted to match the README so that an edit
there cannot silently skip code: `tfds` data comes from `tfds.testing.mock_data`,
`weights="imagenet"` becomes `None`, epochs and image sizes shrink. A statement followed by a
`# SomeError: message` comment must raise that error with that message. Lines that need
hardware this machine lacks (a TPU, a cluster, JAX's devices) are listed in `NOT_RUN`.
"""

import contextlib
import os
import pathlib
import re
import shlex

import keras
import numpy as np
import pytest
from test_recipes import conv_base

import keras_recipes_cli

README = pathlib.Path(__file__).parents[1] / "README.md"
FENCE = re.compile(r"^```(python|bash)\n(.*?)^```\n", re.S | re.M)

# Offline, small and fast, per snippet (found by how it begins): (README text, run instead).
PYTHON_SUBSTITUTIONS = {
    "import keras\nimport keras_recipes\n\ncnn = ": [("epochs=15", "epochs=2"),
                                                   ("epochs=20", "epochs=2")],
    "import keras_recipes": [("epochs=30", "epochs=2")],
    "from keras_recipes.callbacks import TrainingMonitor": [
        ("epochs=20", "epochs=2")],
    "from keras_recipes.callbacks import EpochTensorBoard": [("epochs=30", "epochs=2")],
    "model = keras_recipes.build_default_dnn(data.input_shape, data.num_classes, dropout": [
        ("epochs=30", "epochs=2"), ("num_samples=100", "num_samples=10")],
    # tf_flowers (a download) and MobileNetV2's ImageNet weights
    "import keras\nimport tensorflow_datasets": [
        ("(224, 224)", "(32, 32)"),
        ('weights="imagenet"', 'weights=None, input_shape=(32, 32, 3), '
                               'base_kwargs={"alpha": 0.35}'),
        ("head_epochs=5, epochs=10", "head_epochs=1, epochs=1")],
    "spec = keras_recipes.get_recipe_spec": [
        ("(160, 160, 3), 5, seed=0)", '(32, 32, 3), 5, seed=0, weights=None, '
                                      'base_kwargs={"alpha": 0.35})'),
        ("head_epochs=5, epochs=10", "head_epochs=1, epochs=1")],
}
# What the snippets take from the reader's own session.
PYTHON_PREAMBLES = {
    "import keras\nimport keras_recipes\n\ncnn = ": """
rng = np.random.default_rng(0)
x_train, y_train = rng.normal(size=(64, 28, 28, 1)).astype("float32"), np.arange(64) % 10
x_val, y_val = x_train[:16], y_train[:16]
series, targets = rng.normal(size=(40, 12, 8)).astype("float32"), rng.normal(size=(40, 1))
""",
    "model = keras_recipes.build_transfer_model(base": """
import tensorflow as tf
base = conv_base((16, 16, 3))
strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
images = np.random.default_rng(0).integers(0, 256, (64, 16, 16, 3)).astype("float32")
labels = np.arange(64) % 3
""",
    "spec = keras_recipes.get_recipe_spec": """
rng = np.random.default_rng(0)
x, y = rng.integers(0, 256, (40, 32, 32, 3)).astype("float32"), np.arange(40) % 5
x_val, y_val = x[:10], y[:10]
""",
}
# A snippet runs up to the line starting with this; what follows needs what this machine lacks.
RUN_UNTIL = {
    "import tensorflow as tf": ("resolver = ", "a TPU, workers with TF_CONFIG, the JAX backend"),
}
SLOW_SNIPPETS = ("import keras\nimport tensorflow_datasets",  # MobileNetV2
                 "spec = keras_recipes.get_recipe_spec")


def _blocks(language):
    return [body for lang, body in FENCE.findall(README.read_text()) if lang == language]


def _substitute(text, substitutions):
    for old, new in substitutions:
        assert old in text, f"README changed: {old!r} not found in\n{text}"
        text = text.replace(old, new)
    return text


def _expect_errors(code):
    """`statement` + `# XError: message ...` comment lines -> a check that it raises so."""
    pattern = re.compile(r"^(?P<stmt>\S.*)\n# (?P<kind>\w+Error): (?P<msg>.*(?:\n# .*)*)", re.M)

    def check(match):
        message = " ".join(line.lstrip("# ") for line in match["msg"].splitlines())
        message = message.split("...")[0].strip()
        return (f"with pytest.raises({match['kind']}) as _raised:\n    {match['stmt']}\n"
                f"assert str(_raised.value).startswith({message!r}), str(_raised.value)\n")

    return pattern.sub(check, code)


def _cut(code):
    for start, (stop, _why) in RUN_UNTIL.items():
        if code.startswith(start):
            code = code[:code.index(f"\n{stop}")] + "\n"
    return code


def _python_snippets(slow):
    for code in _blocks("python"):
        first = code.splitlines()[0]
        key = next((k for k in PYTHON_SUBSTITUTIONS if code.startswith(k)), None)
        pre = next((v for k, v in PYTHON_PREAMBLES.items() if code.startswith(k)), "")
        if (key in SLOW_SNIPPETS) != slow:
            continue
        yield first, pre + _expect_errors(_cut(_substitute(
            code, PYTHON_SUBSTITUTIONS.get(key, []))))


@contextlib.contextmanager
def _in(folder):
    cwd = pathlib.Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(cwd)


@pytest.fixture
def mock_tfds():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=48):
        yield


@pytest.fixture(autouse=True)
def _no_windows(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")  # result.plot() in a test


def _run_python(tmp_path, slow):
    import keras_recipes  # the README's first snippet imports it; the slow ones run alone

    namespace = {"np": np, "pytest": pytest, "conv_base": conv_base,
                 "keras_recipes": keras_recipes}
    ran = []
    with _in(tmp_path):
        for first, code in _python_snippets(slow):
            exec(compile(code, f"README.md: {first}", "exec"), namespace)
            ran.append(first)
    return ran, namespace


@pytest.mark.slow  # five small trainings, the LR finder, diagnose, MC Dropout: ~2 min here
def test_python_snippets_run(tmp_path):
    ran, namespace = _run_python(tmp_path, slow=False)
    assert len(ran) == len(_blocks("python")) - len(SLOW_SNIPPETS)
    assert (tmp_path / "digits.keras").is_file()
    assert list((tmp_path / "logs" / "default_dnn" / "validation").glob("events.out.*"))
    assert namespace["history"].history["phase"] == [1, 1, 2, 2, 2]


@pytest.mark.slow  # MobileNetV2 (random weights, 32x32) in two phases, twice: a minute
def test_python_snippets_with_mobilenet_run(tmp_path, mock_tfds):
    ran, namespace = _run_python(tmp_path, slow=True)
    assert len(ran) == len(SLOW_SNIPPETS)
    assert namespace["history"].history["phase"] == [1, 2]


# --- the shell commands -----------------------------------------------------------------

MY_RECIPE = "recipe: default_dnn\nfit: {epochs: 1}\n"
COMMAND_SUBSTITUTIONS = [  # (README command, arguments added or replaced), offline and small
    ("train self_normalizing", [("fit.epochs=40", "fit.epochs=1")]),
    ("train transfer_learning --dataset", [("my_images.npz", "my_images.npz --set "
                                            "fit.head_epochs=1 --set fit.epochs=1")]),
    ("train transfer_learning", [("train transfer_learning", "train transfer_learning "
                                  "--set model.weights=null "
                                  "--set 'model.base_kwargs={alpha: 0.35}' "
                                  "--set dataset.image_size=[32,32] --set fit.head_epochs=1 "
                                  "--set fit.epochs=1 --output runs/old")]),
    ("train my_recipe.yaml", []),
    ("train", [("train", "train --set fit.epochs=1")]),
    ("lr-find", [("lr-find default_dnn", "lr-find default_dnn --num-steps 20")]),
]
SLOW_COMMANDS = ("train transfer_learning",)


def _commands():
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line:
                yield line


def _cli_argv(command):
    """The arguments of a `keras-recipes ...` command as it runs here."""
    command = re.sub(r"^(\.venv/bin/)?keras-recipes ", "", command)
    for start, substitutions in COMMAND_SUBSTITUTIONS:
        if command.startswith(start):
            return shlex.split(_substitute(command, substitutions))
    return shlex.split(command)


def test_the_install_commands_name_existing_extras():
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    installs = [c for c in _commands() if c.startswith("python3 -m venv")]
    assert len(installs) == 2
    for command in installs:
        for named in re.findall(r'"\.\[([\w,]+)\]"', command):
            assert set(named.split(",")) <= set(extras), command
    assert installs[1].endswith(".venv/bin/python -m pytest")  # this suite, as CI runs it


def _run_commands(tmp_path, slow):
    ran = []
    with _in(tmp_path):
        (tmp_path / "my_recipe.yaml").write_text(MY_RECIPE)
        rng = np.random.default_rng(0)
        np.savez("my_images.npz", x=rng.integers(0, 256, (60, 32, 32, 3)).astype("uint8"),
                 y=np.arange(60) % 3)
        for command in _commands():
            if command.startswith("python3 -m venv"):  # the quick start: run its `train`
                command = command.split("&&")[-1].strip()
                if "keras-recipes" not in command:
                    continue  # `python -m pytest`: this suite
            argv = _cli_argv(command)
            if " ".join(argv).startswith(SLOW_COMMANDS) != slow:
                continue
            keras.backend.clear_session()
            assert keras_recipes_cli.main(argv) == 0, command
            ran.append(command)
    return ran


@pytest.mark.slow  # nine CLI runs, each building and compiling a model: ~2.5 min here
def test_shell_commands_run(tmp_path, mock_tfds):
    ran = _run_commands(tmp_path, slow=False)
    assert len(ran) == 10, ran  # the quick start's train, and the CLI section but transfer
    assert (tmp_path / "runs" / "fashion" / "report.md").is_file()
    assert list((tmp_path / "runs" / "tb" / "tensorboard" / "train").glob("events.out.*"))


@pytest.mark.slow  # MobileNetV2 (random weights) in two phases, then that model as a base
def test_transfer_shell_commands_run(tmp_path, mock_tfds):
    ran = _run_commands(tmp_path, slow=True)
    assert len(ran) == 2, ran
    import yaml

    (second,) = (tmp_path / "runs").glob("transfer_learning-*")  # the default output
    recorded = yaml.safe_load((second / "config.yaml").read_text())
    assert recorded["dataset"]["image_size"] == [32, 32]  # my_images.npz's, not [160, 160]
    assert recorded["fit"]["unfreeze"] == 0.3  # the default works for this small base
