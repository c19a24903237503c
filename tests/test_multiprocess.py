"""Data-parallel training on two processes (JAX, on this machine over 127.0.0.1): the same
training as one process with the same global batch; a run with one process killed and all
started again completes with every epoch recorded once. Through the API and the CLI.

Each test starts its processes with `subprocess`, on a free port, with bounded timeouts;
`.ci/run` runs this file in a step of its own (it needs the JAX backend).
"""

import contextlib
import csv
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax",
                                reason="Keras trains across processes with JAX")

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent
RUN = HERE / "multiprocess_run.py"
TIMEOUT = 300
# After one process is killed, the others stay blocked in their next collective (measured:
# still blocked 20 s later), as on a cluster, whose manager then stops them. They get a few
# seconds for anything they would write on the way out.
SURVIVORS_TIMEOUT = 3


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(process_id=None, processes=2, port=None):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]))
    for name in ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                 "KERAS_DISTRIBUTION_PROCESS_ID"):
        env.pop(name, None)
    # One device per process: the XLA flags the tests set (tests/conftest.py), without the
    # two host devices of the data-parallel step.
    env["XLA_FLAGS"] = " ".join(flag for flag in env.get("XLA_FLAGS", "").split()
                                if not flag.startswith("--xla_force_host_platform_device_count"))
    if process_id is not None:
        env.update(KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
                   KERAS_DISTRIBUTION_NUM_PROCESSES=str(processes),
                   KERAS_DISTRIBUTION_PROCESS_ID=str(process_id))
    return env


def _start(command, logs, name, env):
    """Starts one process of `command`, its output in `logs`; (process, open log)."""
    log = open(logs / f"{name}-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env=env), log


def _start_all(command, logs, processes=2, kill=None):
    """Starts `processes` processes of `command`; `kill` = (process id, extra arguments)."""
    port = _free_port()
    return [_start([*command, *(kill[1] if kill and kill[0] == process_id else [])], logs,
                   f"process-{process_id}", _environment(process_id, processes, port))
            for process_id in range(processes)]


def _wait(started, timeout=TIMEOUT, first=None, survivors_timeout=SURVIVORS_TIMEOUT):
    """Waits for every process (killing what is left at the deadline); their exit codes.
    `first`: the index of a process that dies (SIGKILL); the others then get
    `survivors_timeout` seconds before they are killed (they wait for it in a collective)."""
    deadline = time.monotonic() + timeout
    if first is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            started[first][0].wait(timeout=timeout)
        deadline = min(deadline, time.monotonic() + survivors_timeout)
    codes = []
    for process, log in started:
        try:
            codes.append(process.wait(timeout=max(1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(process.wait())
        log.close()
    return codes


def _logs(folder):
    return "\n".join(path.read_text()[-2000:] for path in sorted(folder.glob("*.log")))


def _outcome(result):
    with np.load(result) as arrays:
        weights = [arrays[key] for key in arrays.files]
    return weights, json.loads(pathlib.Path(result + ".json").read_text())


def _start_one(command, logs):
    """Starts the one-process reference run (no distribution), to run beside a pair."""
    return [_start(command, logs, "reference", _environment())]


def _api_command(tmp_path, name, backup, kind):
    result = str(tmp_path / f"{name}.npz")
    return result, [sys.executable, str(RUN), result, str(backup), "--kind", kind]


def _api(tmp_path, name, backup, kill=None, kind="default"):
    """Runs the API script on two processes; its result file and their exit codes."""
    result, command = _api_command(tmp_path, name, backup, kind)
    return result, _wait(_start_all(command, tmp_path, kill=kill),
                         first=kill[0] if kill else None)


@pytest.mark.slow  # three JAX processes at once: the pair, and the reference beside it
@pytest.mark.parametrize("kind", ["default", "compile_recipe", "fine_tune"])
def test_two_processes_train_as_one_with_the_same_global_batch(tmp_path, kind):
    one, command = _api_command(tmp_path, "one", tmp_path / "backup_one", kind)
    reference = _start_one(command, tmp_path)
    two, codes = _api(tmp_path, "two", tmp_path / "backup_two", kind=kind)
    assert _wait(reference) == [0], _logs(tmp_path)
    assert codes == [0, 0], _logs(tmp_path)
    weights, record = _outcome(two)
    expected, expected_record = _outcome(one)
    assert record["processes"] == 2 and expected_record["processes"] == 1
    assert record["epoch"] == expected_record["epoch"]
    for got, want in zip(weights, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(record["history"]["val_loss"],
                               expected_record["history"]["val_loss"], rtol=1e-5)
    assert record["test"]["accuracy"] == pytest.approx(expected_record["test"]["accuracy"])
    assert not (tmp_path / "backup_two").exists()  # the first process removed its backup


@pytest.mark.slow  # six JAX processes start
def test_a_run_with_one_process_killed_resumes_when_all_start_again(tmp_path):
    straight, codes = _api(tmp_path, "straight", tmp_path / "straight_backup")
    assert codes == [0, 0], _logs(tmp_path)
    backup = tmp_path / "backup"
    _, codes = _api(tmp_path, "killed", backup, kill=(1, ["--kill-in-epoch", "3"]),
                    )
    assert codes[1] == -signal.SIGKILL  # the other one fails or is stopped at the deadline
    assert (backup / "training_metadata.json").is_file()
    resumed, codes = _api(tmp_path, "resumed", backup)
    assert codes == [0, 0], _logs(tmp_path)
    weights, record = _outcome(resumed)
    expected, expected_record = _outcome(straight)
    assert record["epoch"] == expected_record["epoch"] == list(range(6))  # each epoch once
    for got, want in zip(weights, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(record["history"]["loss"], expected_record["history"]["loss"],
                               rtol=1e-5)


def _cli(output, *settings):
    return [sys.executable, "-m", "keras_recipes.cli", "train", "--output", str(output),
            "--set", "fit.epochs=8", "--set", "fit.batch_size=64", *settings]


@pytest.mark.slow  # three CLI processes at once: the pair, and the reference beside it
def test_the_cli_trains_on_two_processes_as_on_one(tmp_path):
    one = tmp_path / "one"
    reference = _start_one(_cli(one), tmp_path)
    two = tmp_path / "two"
    codes = _wait(_start_all(_cli(two), tmp_path))
    assert _wait(reference) == [0], _logs(tmp_path)
    assert codes == [0, 0], _logs(tmp_path)
    metrics = json.loads((two / "metrics.json").read_text())
    expected = json.loads((one / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["devices"] == 2
    assert abs(metrics["test_accuracy"] - expected["test_accuracy"]) <= 0.005
    assert metrics["epochs_run"] == expected["epochs_run"]
    assert "2 processes, 2 devices; this is process 0" in _logs(tmp_path)


@pytest.mark.slow  # four CLI processes, in two pairs
def test_a_cli_run_with_one_process_killed_resumes_with_every_epoch_once(tmp_path):
    output = tmp_path / "run"
    command = _cli(output, "--set", "model.backup_dir=backup",
                   "--set", "model.early_stopping_patience=null")
    started = _start_all(command, tmp_path)
    deadline = time.monotonic() + TIMEOUT
    history = output / "history.csv"
    while not (history.is_file() and len(history.read_text().splitlines()) >= 4):
        assert time.monotonic() < deadline and started[0][0].poll() is None, _logs(tmp_path)
        time.sleep(0.01)
    os.kill(started[1][0].pid, signal.SIGKILL)  # one process dies; all are started again
    _wait(started, first=1)
    assert not (output / "metrics.json").exists()
    codes = _wait(_start_all(command, tmp_path))
    assert codes == [0, 0], _logs(tmp_path)
    rows = list(csv.DictReader(history.open()))
    assert [row["epoch"] for row in rows] == [str(epoch) for epoch in range(1, 9)]
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 8
    assert metrics["resumed_at_epoch"] >= 3
