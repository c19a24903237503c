"""The Colab notebooks in `notebooks/`: executed top to bottom, in sync, published clean.

Each notebook has a jupytext percent-format source (`notebooks/<name>.py`, the
reviewable source of truth) and the paired `notebooks/<name>.ipynb` that Colab
opens, stored without outputs. The execution tests run every notebook with
nbclient in its fast mode (`KERAS_RECIPES_FAST=1`: small subsets, few epochs,
offline stand-in data, `weights=None`), in a fresh temporary working directory,
and fail on any cell error.
"""

import os
import pathlib
import re
import sys
import time

import pytest

nbformat = pytest.importorskip("nbformat")
jupytext = pytest.importorskip("jupytext")

NOTEBOOKS_DIR = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
NAMES = [
    "01_default_dnn",
    "02_self_normalizing",
    "03_transfer_learning",
    "04_mc_dropout",
    "05_training_doctor",
    "06_your_own_model",
]
REPOSITORY = "keras-recipes/keras-recipes"
# Plain Python (not %pip), so that the jupytext sources also run as scripts.
INSTALL_COMMAND = (
    'subprocess.run([sys.executable, "-m", "pip", "install", "-q", "keras-recipes[cli,tfds] @ "'
)
FAST_SWITCH = 'FAST = os.environ.get("KERAS_RECIPES_FAST") == "1"'
# One notebook in fast mode; the six together are meant to stay under ~4 minutes on 2 cores.
EXECUTION_TIMEOUT_S = 600


def _read_ipynb(name):
    return nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)


def _repository_files():
    """The repository's top level and notebooks/, where a careless notebook would write."""
    root = NOTEBOOKS_DIR.parent
    return sorted(str(p.relative_to(root)) for p in [*root.glob("*"), *NOTEBOOKS_DIR.glob("*")])


def _cells(notebook):
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def test_notebooks_are_exactly_the_six_pairs():
    assert sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")) == NAMES
    assert sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.py")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_ipynb_is_in_sync_with_its_py_source(name):
    source = jupytext.read(NOTEBOOKS_DIR / f"{name}.py")
    published = _read_ipynb(name)
    assert _cells(published) == _cells(source), (
        f"notebooks/{name}.ipynb differs from notebooks/{name}.py; regenerate it with "
        f"`jupytext --sync notebooks/{name}.py`"
    )
    assert [c.metadata.get("tags", []) for c in published.cells] == [
        c.metadata.get("tags", []) for c in source.cells
    ]
    assert published.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", NAMES)
def test_ipynb_is_stored_without_outputs(name):
    nbformat.validate(_read_ipynb(name))
    for cell in _read_ipynb(name).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a code cell has stored outputs"
            assert cell.execution_count is None, f"{name}: a code cell has an execution count"
        assert "attachments" not in cell or not cell.attachments


@pytest.mark.parametrize("name", NAMES)
def test_first_cells_are_the_colab_badge_and_the_install(name):
    cells = _read_ipynb(name).cells
    badge, install = cells[0], cells[1]
    assert badge.cell_type == "markdown"
    url = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/{name}.ipynb"
    assert badge.source.startswith(
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"
    )
    assert install.cell_type == "code"
    assert [c for c in cells if c.cell_type == "code"][0] is install
    lines = [line.strip() for line in install.source.splitlines()]
    assert 'if "google.colab" in sys.modules:' in lines
    assert INSTALL_COMMAND in lines
    # The install runs only on Colab: the pip line is inside the guard.
    guard = lines.index('if "google.colab" in sys.modules:')
    assert lines.index(INSTALL_COMMAND) == guard + 1
    assert install.source.splitlines()[guard + 1].startswith("    ")


@pytest.mark.parametrize("name", NAMES)
def test_py_source_is_a_valid_python_script(name):
    # `python notebooks/<name>.py` runs it (jupytext comments out magics, which left the
    # install cell's `if` without a body).
    source = (NOTEBOOKS_DIR / f"{name}.py").read_text(encoding="utf-8")
    compile(source, f"notebooks/{name}.py", "exec")


@pytest.mark.parametrize("name", NAMES)
def test_fast_mode_is_one_switch_in_the_parameters_cell(name):
    cells = [c for c in _read_ipynb(name).cells if c.cell_type == "code"]
    parameters = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1, f"{name}: expected one cell tagged 'parameters'"
    assert FAST_SWITCH in parameters[0].source
    readers = [c for c in cells if "KERAS_RECIPES_FAST" in c.source]
    assert readers == parameters, f"{name}: only the parameters cell may read the switch"
    assert cells.index(parameters[0]) <= 2, f"{name}: the parameters cell must be near the top"


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_use_only_the_allowed_imports(name):
    allowed = {"keras_recipes", "keras", "numpy", "matplotlib", "tensorflow_datasets",
               "contextlib", "os", "subprocess", "sys", "warnings"}
    source = (NOTEBOOKS_DIR / f"{name}.py").read_text(encoding="utf-8")
    imported = set(re.findall(r"^\s*import (\w+)", source, flags=re.M))
    imported |= set(re.findall(r"^\s*from (\w+)[.\w]* import", source, flags=re.M))
    assert imported <= allowed, f"{name} imports {sorted(imported - allowed)}"


def _keras_recipes_names(source):
    """Every `keras_recipes...` name a notebook uses, as dotted paths."""
    used, aliases = set(), {}
    for module, names in re.findall(r"^\s*from (keras_recipes[.\w]*) import ([\w, ]+)$",
                                    source, flags=re.M):
        for name in (n.strip() for n in names.split(",")):
            used.add(f"{module}.{name}")
            aliases[name] = f"{module}.{name}"
    used |= {f"keras_recipes.{n}" for n in re.findall(r"\bkeras_recipes\.(\w+)", source)}
    for alias, path in aliases.items():
        used |= {f"{path}.{n}" for n in re.findall(rf"(?<![.\w]){alias}\.(\w+)", source)}
    return used


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_use_only_the_public_api(name):
    import importlib
    import types

    import keras_recipes

    source = (NOTEBOOKS_DIR / f"{name}.py").read_text(encoding="utf-8")
    private = []
    for path in sorted(_keras_recipes_names(source)):
        parent, value = keras_recipes, keras_recipes
        for part in path.split(".")[1:]:
            public = getattr(parent, "__all__", None)
            if part.startswith("_") or (public is not None and part not in public):
                private.append(path)
                break
            value = getattr(parent, part, None)
            if value is None:  # a submodule not imported by its package
                value = importlib.import_module(f"{parent.__name__}.{part}")
            if not isinstance(value, types.ModuleType):
                break
            parent = value
    assert private == [], f"{name} uses names outside the public API: {private}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom_in_fast_mode(name, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = _read_ipynb(name)
    # The kernel inherits this environment: fast mode, quiet TensorFlow, a non-interactive
    # matplotlib backend, and this interpreter (jupyter_client swaps "python" for it).
    monkeypatch.setenv("KERAS_RECIPES_FAST", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in [str(NOTEBOOKS_DIR.parent), os.environ.get("PYTHONPATH")] if p))
    before = _repository_files()
    client = nbclient.NotebookClient(
        notebook,
        timeout=EXECUTION_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - started
    print(f"{name}: executed in fast mode in {elapsed:.1f} s", file=sys.stderr)

    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code_cells), "a cell did not run"
    errors = [o for c in code_cells for o in c.outputs if o.output_type == "error"]
    assert errors == []
    images = [o for c in code_cells for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, f"{name} drew no figure"
    assert _repository_files() == before, "the notebook wrote files into the repository"
