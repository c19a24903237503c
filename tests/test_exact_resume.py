"""A run killed with SIGKILL and started again ends as the run that was not killed: the same
weights (to float tolerance), the same epochs, the same history, the same choice of kept
weights; for every schedule and for `fine_tune`'s two phases. Each run is a child process
(`resumable_run.py`): the kill is a real `kill -9`, mid-epoch or while the backup is
written, after the best epoch."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pytest
import resumable_run

HERE = pathlib.Path(__file__).parent
SCRIPT = HERE / "resumable_run.py"


def _run(tmp_path, name, schedule, backup, *extra):
    result = str(tmp_path / f"{name}.npz")
    process = subprocess.run(
        [sys.executable, str(SCRIPT), schedule, str(backup), result, *extra],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])})
    return process, result


def _outcome(result):
    with np.load(result) as arrays:
        weights = [arrays[key] for key in arrays.files]
    with open(result + ".json") as file:
        return weights, json.load(file)


@pytest.mark.slow  # two child processes (TensorFlow starts in each) per case: ~30 s
@pytest.mark.parametrize("schedule, fine_tune", [
    ("constant", False), ("plateau", False), ("one_cycle", False), ("one_cycle", True)],
    ids=["constant", "plateau", "one_cycle", "fine_tune"])
def test_a_run_killed_after_its_best_epoch_resumes_to_the_same_end(tmp_path, schedule,
                                                                  fine_tune):
    extra = ["--fine-tune"] if fine_tune else []
    # One child runs it uninterrupted, then again killed just after that run's best epoch.
    backup = tmp_path / "backup"
    killed, result = _run(tmp_path, "straight", schedule, tmp_path / "straight_backup",
                          "--then-kill-after-best", backup, *extra)
    assert os.path.isfile(result), killed.stderr[-3000:]  # the uninterrupted run ended
    weights, record = _outcome(result)
    epochs_run = len(record["epoch"])
    if fine_tune:  # killed in phase 2, after its best epoch
        assert record["kept"]["phase_2_epoch"] is not None and record["kept"]["phase"] == 2
    else:
        assert record["kept"]["stopped_epoch"] > 0  # early stopping acted
    kill_epoch = resumable_run.kill_epoch(record, fine_tune)
    assert kill_epoch < epochs_run - 1, record  # a kill after the best, before the end

    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert backup.is_dir() and any(backup.rglob("*.weights.h5"))  # something to resume
    resumed, result = _run(tmp_path, "resumed", schedule, backup, *extra)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got, got_record = _outcome(result)

    assert got_record["epoch"] == record["epoch"]  # the same epochs run
    for key, value in record["kept"].items():  # early stopping's or the guard's choice
        expected = pytest.approx(value, rel=1e-5) if isinstance(value, float) else value
        assert got_record["kept"][key] == expected, key
    for key, values in record["history"].items():
        np.testing.assert_allclose(got_record["history"][key], values, rtol=1e-5, atol=1e-6,
                                   err_msg=key)
    for got_weight, weight in zip(got, weights, strict=True):
        np.testing.assert_allclose(got_weight, weight, rtol=1e-5, atol=1e-5)
    assert not backup.exists()  # a completed run leaves nothing behind
