"""`tracejit train` and `tracejit eval` through tracejit.cli.main."""
import re

import pytest

from tracejit import cli, train


def _accuracy(text):
    return float(re.findall(r"test accuracy (\d\.\d+)", text)[-1])


def test_train_mlp_defaults_reach_97_percent_and_eval_agrees(tmp_path, capsys):
    """The README's main job: `tracejit train mlp` on the bundled digits."""
    logdir = tmp_path / "mlp"
    assert cli.main(["train", "mlp", "--logdir", str(logdir)]) == 0
    out = capsys.readouterr().out
    assert "DNN 300-100" in out and "epoch 1/30" in out
    trained = _accuracy(out)
    assert trained >= 0.97
    assert (logdir / "curves.png").exists() and list(logdir.glob("events.out.tfevents.*"))

    assert cli.main(["eval", str(logdir)]) == 0
    assert _accuracy(capsys.readouterr().out) == trained

    # The checkpoint names its model and config, which is how eval rebuilt it.
    _, _, meta = train.load_checkpoint(logdir / "checkpoints")
    assert meta["model"] == "mlp" and meta["config"]["hidden1"] == 300


def test_train_one_epoch_then_resume(tmp_path, capsys):
    args = ["train", "rnn", "--logdir", str(tmp_path), "--limit", "200", "--units", "16",
            "--batch-size", "20"]
    assert cli.main(args + ["--epochs", "1"]) == 0
    assert "epoch 1/1" in capsys.readouterr().out
    assert cli.main(args + ["--epochs", "2", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "epoch 2/2" in out and "epoch 1/2" not in out
    assert "18 steps" in out   # 180 training examples / 20 per batch, two epochs
    # the graph went to the logdir once (the resumed run did not write it again)
    loader = pytest.importorskip("tensorboard.backend.event_processing.event_file_loader")
    graphs = [event for path in tmp_path.rglob("events.out.tfevents.*")
              for event in loader.EventFileLoader(str(path)).Load()
              if event.HasField("graph_def")]
    assert len(graphs) == 1


def test_eval_errors_are_clear(tmp_path, capsys):
    assert cli.main(["eval", str(tmp_path / "missing")]) == 1
    assert "no such checkpoint file or directory" in capsys.readouterr().err
    train.save_checkpoint(tmp_path, 1, {"w": [1.0]}, metadata={"model": "mine"})
    assert cli.main(["eval", str(tmp_path)]) == 1
    assert "does not name a model" in capsys.readouterr().err


def test_train_help_lists_the_models(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in ("mlp", "cnn", "rnn"))
