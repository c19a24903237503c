"""The Colab notebooks in `notebooks/`: executed top to bottom, in sync, published clean.

Each notebook has a jupytext percent-format source (`notebooks/<name>.py`, the
reviewable source of truth) and the paired `notebooks/<name>.ipynb` that Colab
opens, stored with the outputs of a fast-mode run (`tests/notebook_runner.py`).
The execution tests run every notebook with nbclient in its fast mode
(`KERAS_RECIPES_FAST=1`: small subsets, few epochs, offline stand-in data,
`weights=None`), in a fresh temporary working directory, and fail on any cell
error, on TensorFlow's C++ log lines in a cell, and on stored outputs that a run
no longer produces.
"""

import pathlib
import re
import sys

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
# What TensorFlow's C++ runtime writes at start-up (see notebook_runner.execute), and what
# tfds's mock data logs through absl (silenced in the parameters cell in fast mode).
CPP_LOG_LINE = re.compile(r"absl::InitializeLog|^[IWE]\d{4} \d\d:\d\d:\d\d|^WARNING:absl:",
                          re.M)


def _read_ipynb(name):
    return nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)


def _code_cells(notebook):
    return [c for c in notebook.cells if c.cell_type == "code"]


def _cpp_log_lines(notebook):
    return [o.text for c in _code_cells(notebook) for o in c.outputs
            if o.output_type == "stream" and CPP_LOG_LINE.search(o.text)]


def _shape(notebook):
    """Per code cell, the kinds of output it has (stream name, figure, text result)."""
    def kind(output):
        if output.output_type == "stream":
            return output.name
        return "image/png" if "image/png" in output.get("data", {}) else output.output_type
    return [sorted({kind(o) for o in c.outputs}) for c in _code_cells(notebook)]


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
def test_ipynb_is_stored_with_the_outputs_of_a_fast_mode_run(name):
    notebook = _read_ipynb(name)
    nbformat.validate(notebook)
    cells = _code_cells(notebook)
    regenerate = f"regenerate them with `.venv/bin/python tests/notebook_runner.py {name}`"
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1)), (
        f"{name}: the stored outputs are not those of one run top to bottom; {regenerate}")
    outputs = [o for c in cells for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"], f"{name}: a stored error"
    assert [o for o in outputs if "image/png" in o.get("data", {})], f"{name}: no figure stored"
    parameters = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    assert any("Fast mode" in o.get("text", "") for o in parameters.outputs), (
        f"{name}: the outputs do not say they come from a fast-mode run")
    assert _cpp_log_lines(notebook) == []
    assert all("execution" not in c.metadata for c in cells), f"{name}: timestamps stored"
    for cell in notebook.cells:
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
               "contextlib", "logging", "os", "pathlib", "subprocess", "sys", "tempfile",
               "warnings"}
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
def test_notebook_runs_top_to_bottom_in_fast_mode(name, tmp_path):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    import notebook_runner

    before = _repository_files()
    notebook, elapsed = notebook_runner.execute(name, tmp_path)  # raises on a failing cell
    print(f"{name}: executed in fast mode in {elapsed:.1f} s", file=sys.stderr)

    code_cells = _code_cells(notebook)
    assert all(c.execution_count is not None for c in code_cells), "a cell did not run"
    errors = [o for c in code_cells for o in c.outputs if o.output_type == "error"]
    assert errors == []
    images = [o for c in code_cells for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, f"{name} drew no figure"
    assert _cpp_log_lines(notebook) == []
    assert _repository_files() == before, "the notebook wrote files into the repository"
    # What is published is what a run shows now: every cell has the same kinds of output
    # (printed text, figures, results) as in the stored notebook.
    assert _shape(notebook) == _shape(_read_ipynb(name)), (
        f"notebooks/{name}.ipynb stores the outputs of an older version; regenerate them with "
        f"`.venv/bin/python tests/notebook_runner.py {name}`")
