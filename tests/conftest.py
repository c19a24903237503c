import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Each test starts from a clean Keras graph/name scope."""
    keras.backend.clear_session()
    yield


@pytest.fixture(scope="session")
def local_tfds_builder(tmp_path_factory):
    """The name of a tfds builder in a package, preparing offline (see local_tfds.py)."""
    pytest.importorskip("tensorflow_datasets")
    import local_tfds

    return local_tfds.install(tmp_path_factory.mktemp("builders"))
