"""Runs the notebooks in fast mode: for the test suite, and to store their outputs.

    .venv/bin/python tests/notebook_runner.py            # every notebook: outputs stored
    .venv/bin/python tests/notebook_runner.py 04_mc_dropout

The published `.ipynb` files carry the outputs of a fast-mode run (`KERAS_RECIPES_FAST=1`:
small subsets, few epochs, random stand-in images: nothing is downloaded), so that a reader on
GitHub sees every figure the notebook draws. Each notebook's parameters cell prints that these
are fast-mode outputs, not results. Rerun this after editing a notebook's source (and
`jupytext --sync`); tests/test_notebooks.py checks that the outputs are there and current.
"""

import os
import pathlib
import sys
import tempfile
import time

import nbformat

NOTEBOOKS_DIR = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
# One notebook in fast mode; the six together are meant to stay under ~4 minutes on 2 cores.
EXECUTION_TIMEOUT_S = 600


def read(name):
    return nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)


def execute(name, workdir):
    """The notebook `name` run top to bottom in fast mode in `workdir`; returns (it, seconds).

    Raises `nbclient.exceptions.CellExecutionError` on the first failing cell.
    """
    import nbclient

    notebook = read(name)
    # The kernel inherits this environment: fast mode, a non-interactive matplotlib backend,
    # the checkout's package, and this interpreter (jupyter_client swaps "python" for it).
    saved = dict(os.environ)
    os.environ.update(
        KERAS_RECIPES_FAST="1", TF_CPP_MIN_LOG_LEVEL="2",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYTHONPATH=os.pathsep.join(p for p in [str(NOTEBOOKS_DIR.parent),
                                               saved.get("PYTHONPATH")] if p))
    try:
        client = nbclient.NotebookClient(
            notebook, timeout=EXECUTION_TIMEOUT_S, kernel_name="python3",
            resources={"metadata": {"path": str(workdir)}},  # the kernel's working directory
            # TensorFlow's C++ runtime writes start-up lines straight to file descriptor 2
            # ("All log messages before absl::InitializeLog() ...", oneDNN, CUDA), which no
            # environment variable silences in TF 2.21; by default ipykernel copies that
            # descriptor into the cells. Left out, they go to the kernel's own stderr, as in a
            # terminal; Python's warnings and prints still reach the cells.
            extra_arguments=["--IPKernelApp.capture_fd_output=False"],
        )
        started = time.perf_counter()
        client.execute()
        return notebook, time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)


def store(name):
    """Runs `name` in fast mode and writes its `.ipynb` with the outputs."""
    with tempfile.TemporaryDirectory() as workdir:
        notebook, seconds = execute(name, workdir)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # timestamps: a diff on every run
    nbformat.write(notebook, NOTEBOOKS_DIR / f"{name}.ipynb")
    print(f"{name}: ran in {seconds:.0f} s, outputs stored")


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb"))
    for each in names:
        store(each)
