"""A run's folders are its own: the CLI never overwrites a finished run, never shares a folder
with a live run, and resumes a backup only with the settings it was made with; the backup
folder of `fit` never holds, or loses, a file of yours."""

import json
import re

import keras
import numpy as np
import pytest
import yaml

import keras_recipes
from keras_recipes import cli
from keras_recipes.commands._run_folder import RunFolder, default_name


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(96, 6)).astype("float32"), np.arange(96) % 3


def _model(backup_dir):
    return keras_recipes.build_default_dnn((6,), 3, num_hidden_layers=1, units=8, seed=0,
                                           backup_dir=str(backup_dir))


# --- the backup folder of fit ------------------------------------------------------------


def test_a_backup_dir_holding_your_files_is_refused_and_they_are_left_alone(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "pretrained.weights.h5").write_bytes(b"yours")
    (folder / "notes.txt").write_text("yours")
    x, y = _data()
    with pytest.raises(ValueError, match=re.escape(
            "Argument `backup_dir` must be a folder of the backup's own (missing, empty or "
            f"holding a keras-recipes backup). Received: backup_dir='{folder}' (it holds "
            "notes.txt, pretrained.weights.h5, which the backup would mix with its files; give "
            "the backup a folder of its own)")):
        _model(folder).fit(x, y, epochs=1, verbose=0)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "pretrained.weights.h5"]
    assert (folder / "pretrained.weights.h5").read_bytes() == b"yours"


class _Crash(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("induced crash")


@pytest.mark.train
def test_a_rerun_with_other_settings_is_refused_naming_the_setting(tmp_path):
    x, y = _data()
    backup = tmp_path / "backup"
    with pytest.raises(RuntimeError, match="induced crash"):
        _model(backup).fit(x, y, epochs=3, verbose=0, callbacks=[_Crash()])
    with pytest.raises(ValueError, match=re.escape(
            f"Argument `backup_dir` must be the backup of this same run to resume it. "
            f"Received: backup_dir='{backup}' (its run had epochs=3, this one has epochs=5; "
            "start it with the same settings to resume, or delete the folder to start "
            "afresh)")):
        _model(backup).fit(x, y, epochs=5, verbose=0)
    with pytest.raises(ValueError, match=r"its run had data\.x\.crc32=\d+, this one has "):
        _model(backup).fit(x + 1, y, epochs=3, verbose=0)
    other = keras_recipes.build_default_dnn((6,), 3, num_hidden_layers=2, units=8,
                                            backup_dir=str(backup))
    with pytest.raises(ValueError, match=r"its run had model\.weights="):
        other.fit(x, y, epochs=3, verbose=0)
    history = _model(backup).fit(x, y, epochs=3, verbose=0)  # the same run: resumes
    assert history.epoch == [0, 1, 2] and not backup.exists()


# --- the run folder of the command line ---------------------------------------------------


def test_default_run_folders_never_collide(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = RunFolder(default_name("default_dnn"), chosen=False)
    second = RunFolder(default_name("default_dnn"), chosen=False)
    paths = [first.claim(), second.claim()]  # within the same second, or not
    assert paths[0] != paths[1] and all(path.is_dir() for path in paths)


def test_a_finished_run_is_never_overwritten(tmp_path, capsys):
    output = tmp_path / "run"
    output.mkdir()
    (output / "metrics.json").write_text(json.dumps({"status": "completed"}))
    (output / "model.keras").write_bytes(b"the finished run's")
    assert cli.main(["train", "--output", str(output)]) == 2
    assert f"--output {output}: it holds a finished run (metrics.json: status completed)" in \
        capsys.readouterr().err
    assert (output / "model.keras").read_bytes() == b"the finished run's"
    assert sorted(p.name for p in output.iterdir()) == ["metrics.json", "model.keras"]


def test_a_folder_another_live_run_writes_to_is_refused(tmp_path, capsys):
    output = tmp_path / "run"
    live = RunFolder(output, chosen=True)
    live.claim()  # this process holds the lock, as a live run would
    try:
        assert cli.main(["train", "--output", str(output)]) == 2
        assert "another keras-recipes run is writing to it" in capsys.readouterr().err
    finally:
        live.release()
    assert not (output / ".keras_recipes.lock").exists()


def test_the_output_folder_itself_is_refused_as_the_backup_folder(tmp_path, capsys):
    assert cli.main(["train", "--output", str(tmp_path / "run"), "--set",
                     "model.backup_dir=."]) == 2
    assert ("model.backup_dir: '.' is the output folder itself" in capsys.readouterr().err)


def test_a_changed_rerun_of_a_killed_run_is_refused_naming_the_setting(tmp_path, capsys):
    output = tmp_path / "run"
    backup = output / "backup"
    backup.mkdir(parents=True)
    (backup / "training_metadata.json").write_text('{"epoch": 1}')  # a backup to resume
    from keras_recipes.config import load_config

    resolved = load_config("default_dnn", ["fit.epochs=2", "model.units=16",
                                           f"model.backup_dir={backup}"]).to_dict()
    resolved["model"]["backup_dir"] = str(backup.resolve())
    # The record of the killed run, as `train` writes it before training.
    (output / "config.yaml").write_text(yaml.safe_dump(resolved))
    code = cli.main(["train", "--output", str(output), "--seed", "1", "--set", "fit.epochs=2",
                     "--set", "model.units=16", "--set", "model.backup_dir=backup"])
    assert code == 2
    error = capsys.readouterr().err
    assert (f"{backup.resolve()} holds the backup of a run with seed=0; this run has seed=1. "
            "Start it with the same settings to resume, or delete") in error
    assert (backup / "training_metadata.json").is_file()  # nothing of it was touched
