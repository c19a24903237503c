import keras
import numpy as np
import pytest

import keras_recipes
from keras_recipes import plots, report
from keras_recipes.optimizers import learning_rate_schedule

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402


def test_learning_curves_plot_train_and_validation():
    ax = Figure().subplots()
    plots.plot_learning_curves({"loss": [1.0, 0.5, 0.2], "val_loss": [1.1, 0.7, 0.6]}, ax=ax)
    lines = ax.get_lines()
    assert [list(line.get_ydata()) for line in lines] == [[1.0, 0.5, 0.2], [1.1, 0.7, 0.6]]
    with pytest.raises(ValueError, match="Argument `metric` must be one of"):
        plots.plot_learning_curves({"loss": [1.0]}, metric="accuracy", ax=ax)


@pytest.mark.train
def test_applied_schedule_is_what_the_optimizer_used():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5)).astype("float32"), rng.integers(0, 3, 64)
    model = keras_recipes.build_default_dnn((5,), 3, num_hidden_layers=1)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    values = plots.applied_schedule(model.optimizer)
    assert len(values["steps"]) == 12
    schedule = learning_rate_schedule(model.optimizer)
    expected = keras.ops.convert_to_numpy(schedule(keras.ops.arange(12)))
    np.testing.assert_allclose(values["learning_rate"], expected)
    assert values["momentum"][0] == pytest.approx(0.95) and values["momentum"].min() < 0.9
    ax = Figure().subplots()
    plots.plot_schedule(model.optimizer, ax=ax)
    assert len(ax.get_lines()) == 1 and len(ax.figure.axes) == 2  # momentum on a twin axis


def test_applied_schedule_of_a_plain_optimizer_is_flat():
    optimizer = keras.optimizers.SGD(0.1, momentum=0.5)
    values = plots.applied_schedule(optimizer, num_steps=5)
    np.testing.assert_allclose(values["learning_rate"], 0.1)
    np.testing.assert_allclose(values["momentum"], 0.5)


def test_write_run_report_renders_every_file(tmp_path):
    history = {"loss": [1.0, 0.4], "val_loss": [1.2, 0.9], "accuracy": [0.5, 0.8],
               "val_accuracy": [0.4, 0.7]}
    drawn = []
    path = report.write_run_report(
        tmp_path, model=None, history=history, metrics={"test_accuracy": 0.75},
        settings={"recipe": "demo"},
        extra_figures=[("extra.png", "Extra", lambda ax: drawn.append(ax.plot([1, 2])))])
    assert path.read_text().startswith("# Run report: demo")
    assert "![Extra](extra.png)" in path.read_text()
    assert drawn
    import matplotlib.image

    assert matplotlib.image.imread(tmp_path / "learning_curves.png").shape[1] >= 900
    assert (tmp_path / "extra.png").stat().st_size > 1000


def test_learning_curves_mark_the_kept_epoch():
    ax = Figure().subplots()
    plots.plot_learning_curves({"loss": [1.0, 0.5, 0.2], "val_loss": [1.1, 0.7, 0.8]}, ax=ax,
                               kept_epoch=2)
    *_, kept = ax.get_lines()
    assert list(kept.get_xdata()) == [2, 2] and kept.get_label() == "weights kept (epoch 2)"
    with pytest.raises(ValueError, match=r"Argument `kept_epoch` must be an integer in the "
                       r"range \[1, 3\] or None. Received: kept_epoch=4"):
        plots.plot_learning_curves({"loss": [1.0, 0.5, 0.2]}, ax=ax, kept_epoch=4)


def test_history_csv_reads_back_what_it_wrote():
    history = {"loss": [1.0, 0.1 + 0.2, float("nan")], "val_loss": [None, 0.5, 0.25],
               "phase": [1, 1, 2]}
    text = report.history_csv(history)
    read = report.history_from_csv(text)
    assert read["phase"] == [1, 1, 2] and read["val_loss"] == [None, 0.5, 0.25]
    assert read["loss"][:2] == [1.0, 0.1 + 0.2] and np.isnan(read["loss"][2])
    assert report.history_from_csv("epoch,loss\n1,0.5\n3,0.4\n") is None  # a gap: not ours
    assert report.history_from_csv("a,b\n1,2\n") is None and report.history_from_csv("") is None


@pytest.mark.train
def test_run_report_says_which_weights_were_kept_and_where_the_run_resumed(tmp_path):
    history = {"loss": [1.0, 0.5, 0.4, 0.3], "val_loss": [0.9, 0.2, 0.6, 0.5]}
    metrics = {"status": "completed", "epochs_run": 4, "resumed_at_epoch": 3, "kept_epoch": 4,
               "kept_by": "early_stopping", "kept_loss": 0.3, "kept_val_loss": 0.5,
               "lowest_val_loss_epoch": 2, "lowest_val_loss": 0.2}
    text = report.write_run_report(tmp_path, model=None, history=history, metrics=metrics,
                                   settings={"recipe": "demo"}).read_text()
    assert "The saved model holds the weights of epoch 4 (restored by early stopping, the " \
        "epoch with the lowest `val_loss` it watched): loss 0.3000, val_loss 0.5000." in text
    assert "The lowest `val_loss` of the run, 0.2000, was at epoch 2; those weights were not " \
        "kept." in text
    assert "This run was interrupted and resumed at epoch 3 from its backup: epochs 1-2 come " \
        "from the run before the interruption." in text
