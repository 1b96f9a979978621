import io
import sys

import numpy as np
import pytest

from tracejit.train.logging import ProgressBar, SummaryWriter, tag_group

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _accumulator(logdir):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    acc = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0}
    )
    acc.Reload()
    return acc


def test_scalars_and_histograms_round_trip_through_tensorboard(tmp_path):
    rng = np.random.default_rng(0)
    losses = [2.3, 1.1, 0.7, 0.52]
    with SummaryWriter(tmp_path) as w:
        for i, loss in enumerate(losses):
            step = 100 * i
            w.scalar("train/loss", loss, step)
            w.scalar("train/accuracy", np.float32(0.2 * i), step)
            w.scalars({"lr": 0.01 / (i + 1)}, step)
            w.histogram("params/dense1/kernel", rng.standard_normal((20, 5)), step)
        w.histogram("params/nan_only", np.array([np.nan, np.inf]), 0)  # skipped, no crash
        w.flush()
    assert list(tmp_path.glob("events.out.tfevents.*"))

    acc = _accumulator(tmp_path)
    tags = acc.Tags()
    assert {"train/loss", "train/accuracy", "lr"} <= set(tags["scalars"])
    events = acc.Scalars("train/loss")
    assert [e.step for e in events] == [0, 100, 200, 300]
    np.testing.assert_allclose([e.value for e in events], losses, rtol=1e-6)
    np.testing.assert_allclose(
        [e.value for e in acc.Scalars("train/accuracy")], [0.0, 0.2, 0.4, 0.6], rtol=1e-6
    )
    assert "params/dense1/kernel" in tags["histograms"]
    hists = acc.Histograms("params/dense1/kernel")
    assert [h.step for h in hists] == [0, 100, 200, 300]
    assert hists[0].histogram_value.num == 100
    assert "params/nan_only" not in tags["histograms"]

    # In-memory history mirrors what was logged.
    assert w.history["train/loss"] == [(100 * i, l) for i, l in enumerate(losses)]


def test_plot_writes_png(tmp_path):
    w = SummaryWriter(tmp_path / "run")
    for step in range(10):
        w.scalar("train/loss", 1.0 / (step + 1), step)
        w.scalar("valid/loss", 1.2 / (step + 1), step)
        w.scalar("valid/accuracy", step / 10, step)
        w.scalar("lr", 0.1 * 0.9**step, step)
    w.close()
    w.close()  # idempotent
    out = w.plot(str(tmp_path / "curves.png"), title="mnist")
    data = open(out, "rb").read()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    # An empty writer still produces a valid (placeholder) image.
    empty = SummaryWriter(tmp_path / "empty")
    empty.plot(str(tmp_path / "empty.png"))
    empty.close()
    assert (tmp_path / "empty.png").read_bytes().startswith(PNG_SIGNATURE)


def test_tag_groups():
    assert tag_group("train/loss") == tag_group("loss/valid") == tag_group("xent_loss") == "loss"
    assert tag_group("valid/accuracy") == tag_group("train_acc") == "accuracy"
    assert tag_group("lr") == tag_group("optimizer/learning_rate") == "learning rate"
    assert tag_group("grad/norm") == "grad"


def test_progress_bar_disabled_explicitly(capsys):
    bar = ProgressBar(1000, "epoch 1", disable=True)
    for _ in range(10):
        bar.update(100, loss=0.5, accuracy=0.9)
    bar.close()
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    assert bar.disabled and bar.n == 1000
    assert bar.metrics == {"loss": 0.5, "accuracy": 0.9}


def test_progress_bar_disables_itself_off_terminal(monkeypatch):
    fake_stderr = io.StringIO()  # isatty() is False, like a CI log
    monkeypatch.setattr(sys, "stderr", fake_stderr)
    with ProgressBar(100, "train") as bar:
        bar.update(50, loss=np.float32(0.25))
    assert bar.disabled
    assert fake_stderr.getvalue() == ""


def test_progress_bar_writes_to_file_stream():
    stream = io.StringIO()
    with ProgressBar(600, "epoch 3", file=stream, mininterval=0) as bar:
        for i in range(6):
            bar.update(100, loss=1.0 / (i + 1), accuracy=0.1 * i)
    text = stream.getvalue()
    assert not bar.disabled
    assert "epoch 3" in text
    assert "loss=0.1667" in text and "accuracy=0.5" in text
    assert "examples/s" in text
    assert "600/600" in text
    assert bar.rate > 0


def test_image_summaries_of_filters_and_feature_maps(tmp_path):
    from tracejit.train.logging import feature_map_grid, filter_grid, image_grid, to_uint8

    rng = np.random.default_rng(0)
    rgb_kernel = rng.standard_normal((5, 5, 3, 8)).astype(np.float32)
    grid = filter_grid(rgb_kernel)
    assert grid.dtype == np.uint8 and grid.shape == (3 * 6 - 1, 3 * 6 - 1, 3)
    # each tile is scaled to its own range: min 0, max 255
    tile = grid[:5, :5]
    assert tile.min() == 0 and tile.max() == 255
    np.testing.assert_array_equal(tile, to_uint8(rgb_kernel[..., 0]))
    deep = filter_grid(rng.standard_normal((3, 3, 4, 2)))
    assert deep.shape == (2 * 4 - 1, 4 * 4 - 1, 1)     # a row per filter, a column per input
    maps = rng.random((1, 6, 7, 5))
    assert feature_map_grid(maps).shape == (2 * 7 - 1, 3 * 8 - 1, 1)
    assert image_grid(np.zeros((2, 3, 3)), columns=2, padding=0).shape == (3, 6, 1)
    np.testing.assert_array_equal(to_uint8(np.array([np.nan, 1.0, 3.0])), [0, 0, 255])
    with pytest.raises(ValueError):
        filter_grid(np.zeros((3, 3, 4)))
    with pytest.raises(ValueError):
        image_grid(np.zeros((0, 3, 3)))

    with SummaryWriter(tmp_path) as w:
        w.filters("conv1/kernel", rgb_kernel, step=5)
        w.feature_maps("conv1/activations", maps, step=5)
        w.images("input", rng.random((4, 8, 8, 3)), step=5)
        with pytest.raises(ValueError):
            w.image("bad", np.zeros((2, 2, 2)), step=0)
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    acc.Reload()
    tags = set(acc.Tags()["images"])
    assert {"conv1/kernel", "conv1/activations", "input/image/0", "input/image/2"} <= tags
    assert "input/image/3" not in tags
    image = acc.Images("conv1/kernel")[0]
    assert image.step == 5 and (image.height, image.width) == grid.shape[:2]
    assert image.encoded_image_string.startswith(PNG_SIGNATURE)


def test_add_graph_writes_a_graphdef(tmp_path):
    import tracejit.numpy as tnp
    from tracejit import nn, random
    from tracejit.train.graph import graph_def, trace_graph

    model = nn.mlp((5,))
    params = model.init(random.key(0), (4,))

    def loss(params, x, y):
        return tnp.mean(nn.sparse_softmax_cross_entropy_with_logits(y, model.apply(params, x)))
    x, y = np.zeros((3, 4), np.float32), np.zeros(3, np.int32)
    fn, names = trace_graph(loss, params, x, y)
    assert names == ["params/hidden1/bias", "params/hidden1/kernel", "params/outputs/bias",
                     "params/outputs/kernel", "x", "y"]
    g = graph_def(fn, names)
    nodes = {n.name: n for n in g.node}
    assert len(nodes) == len(g.node) == len(fn.params) + sum(1 for i in fn.body if i.results)
    assert nodes["x"].op == "Placeholder"
    assert [d.size for d in nodes["x"].attr["shape"].shape.dim] == [3, 4]
    dot = nodes["hidden1/linear"]            # the layer names its values
    assert dot.op == "dot_general" and list(dot.input) == ["x", "params/hidden1/kernel"]
    assert [d.size for d in dot.attr["_output_shapes"].list.shape[0].dim] == [3, 5]
    for node in g.node:               # every input names a node (or node:k)
        for inp in node.input:
            assert inp.split(":")[0] in nodes

    with SummaryWriter(tmp_path) as w:
        w.add_graph(loss, params, x, y)
    acc = _accumulator(tmp_path)
    written = acc.Graph()
    assert sorted(n.name for n in written.node) == sorted(nodes)


def test_two_writers_in_one_second_keep_both_event_files(tmp_path):
    """tensorboardX names event files by the second: a quick resume used to
    truncate the first run's file (its graph and curves were lost)."""
    for step in (1, 2):
        with SummaryWriter(str(tmp_path)) as w:
            w.scalar("loss", float(step), step)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
