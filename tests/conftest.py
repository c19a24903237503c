import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# XLA compiles every new step (always on JAX; on TensorFlow with `jit_compile`), and LLVM's
# optimisation of the compiled machine code is most of that time. The tests' models are tiny,
# so that optimisation never pays for itself; level 0 changes how fast the code runs, not what
# it computes (the child processes the tests start inherit it). Measured on 2 cores,
# tests/test_diagnostics.py on JAX, alternating: 57 and 59 s with level 0, 81 and 87 s without.
# Benchmarks, which time the compiled code, are run outside pytest and keep XLA's default.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join(
        [os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]).strip()

import gc  # noqa: E402

import keras  # noqa: E402
import pytest  # noqa: E402

import keras_recipes  # noqa: E402, F401

# `keras.backend.clear_session()`, before each test, collects garbage; a collection walks
# every object the process holds, TensorFlow's and Keras's millions of module-level objects
# included, and took 1-2 s per test late in the suite. Those objects live as long as the
# process: frozen, later collections leave them out.
gc.freeze()

# The recipes' `jit_compile="auto"` means XLA on TensorFlow, also on a CPU: it costs every
# new model seconds of compilation, which is most of the time of a test that trains a tiny
# network for a few steps (measured: the reliability and 1cycle-span tests ran in 94 s
# instead of 204 s without it). Behaviour that does not depend on XLA is therefore tested
# with `jit_compile="auto"` meaning no XLA; tests marked `real_execution_defaults` (the
# execution-defaults tests) keep the real default, and `KERAS_RECIPES_TEST_XLA=1` runs every
# test with it (`.ci/run` runs the recipe tests that way too).
TEST_WITH_XLA = os.environ.get("KERAS_RECIPES_TEST_XLA") == "1"


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pyproject.toml): two test processes per core, at most 8; `-n logical`: one.

    A TensorFlow test process leaves a core idle much of the time (it waits on its own
    thread pools between the small ops of a tiny model), so one worker per core wastes half
    the machine. Measured side by side on 2 cores, tests/test_recipes.py: 179 s with 2
    workers, 162 s with 3, 147 s with 4, 173 s with 6 (each worker imports TensorFlow).
    """
    cores = os.cpu_count() or 1
    if config.option.numprocesses == "logical":  # `-n logical`: one per core (.ci/run's
        return cores                              # subprocess and XLA steps, see there)
    return min(2 * cores, 8)


@pytest.fixture(autouse=True)
def _fresh_keras_session(request, monkeypatch):
    """Each test starts from a clean Keras graph/name scope, without XLA by default."""
    keras.backend.clear_session()
    if keras.backend.backend() == "jax":
        # JAX's caches of traced and compiled functions grow with every test, and each test's
        # collection (in `clear_session`) walked all of them again: frozen once they have
        # survived a collection, they are left out of the next ones. Measured on 2 cores,
        # test_diagnostics.py + test_uncertainty.py on JAX, alternating: 46 and 47 s against
        # 55 and 61 s (set-up 1 s against 23-25 s), peak memory 1.98 GB against 2.07 GB. On
        # TensorFlow the same moved the time into the tests (same wall time), so it is not done.
        gc.freeze()
    if (keras.backend.backend() == "tensorflow" and not TEST_WITH_XLA
            and not request.node.get_closest_marker("real_execution_defaults")):
        from keras_recipes.recipe import _execution

        resolve_execution = _execution.resolve_execution

        def without_xla(recipe, model=None):
            """`resolve_execution` with `jit_compile="auto"` meaning no XLA."""
            steps_per_execution, jit_compile = resolve_execution(recipe, model)
            return steps_per_execution, False if recipe.jit_compile == "auto" else jit_compile

        monkeypatch.setattr(_execution, "resolve_execution", without_xla)
    yield


@pytest.fixture(scope="session")
def local_tfds_builder(tmp_path_factory):
    """The name of a tfds builder in a package, preparing offline (see local_tfds.py)."""
    pytest.importorskip("tensorflow_datasets")
    import local_tfds

    return local_tfds.install(tmp_path_factory.mktemp("builders"))


@pytest.fixture
def image_folder(tmp_path):
    """A folder of three classes of 20 small PNG images each (see image_folders.py)."""
    import image_folders

    return image_folders.write_image_folder(tmp_path / "images")
