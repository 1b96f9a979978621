"""Every example script runs to completion with tiny settings, and has --help."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, argv, expect", [
    ("train_mnist_dnn", ["--epochs", "1", "--limit", "200"], "test accuracy"),
    ("train_lstm_digits", ["--epochs", "1", "--limit", "200", "--units", "16"], "test accuracy"),
    ("train_cifar10_cnn", ["--epochs", "1", "--limit", "64", "--width", "0.25",
                           "--batch-size", "16"], "test accuracy"),
])
def test_training_examples_run(tmp_path, capsys, name, argv, expect):
    assert _load(name).main(argv + ["--logdir", str(tmp_path)]) == 0
    assert expect in capsys.readouterr().out
    assert list((tmp_path / "checkpoints").glob("ckpt-*.json"))


def test_transfer_learning_runs_and_reuses_its_checkpoint(tmp_path, capsys):
    example = _load("transfer_learning")
    argv = ["--epochs", "2", "--head-epochs", "3", "--per-class", "20",
            "--workdir", str(tmp_path)]
    assert example.main(argv) == 0
    out = capsys.readouterr().out
    assert "frozen hidden layers" in out and "cached frozen outputs" in out
    assert example.main(argv + ["--pretrained", str(tmp_path / "pretrain")]) == 0
    assert "loaded the pretrained network" in capsys.readouterr().out


@pytest.mark.parametrize("name, argv, expect", [
    ("per_example_gradients", ["--steps", "20"], "per-example gradient norms"),
    ("ensemble", ["--steps", "20", "--models", "3"], "test accuracy of the ensemble"),
])
def test_vmap_examples_run(capsys, name, argv, expect):
    """They also assert that the batched results equal a per-example loop."""
    assert _load(name).main(argv) == 0
    assert expect in capsys.readouterr().out


def test_name_scopes_example_writes_the_graph(tmp_path, capsys):
    assert _load("name_scopes").main(["--logdir", str(tmp_path), "--print-ir"]) == 0
    out = capsys.readouterr().out
    assert "top-level scopes dnn, gradients, loss, train" in out
    assert "%dnn/hidden1/linear: f32[50,300] = dot_general" in out
    assert list(tmp_path.glob("events.out.tfevents.*"))


@pytest.mark.parametrize("name", ["train_mnist_dnn", "train_cifar10_cnn",
                                  "train_lstm_digits", "transfer_learning",
                                  "per_example_gradients", "ensemble", "name_scopes"])
def test_examples_have_help(name):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(EXAMPLES.parent)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--help"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_mixed_precision_trains(capsys, dtype):
    """float32 master weights, 16-bit compute (loss scaling for float16):
    the loss falls and the classifier learns."""
    assert _load("mixed_precision").main(["--dtype", dtype, "--steps", "120"]) == 0
    out = capsys.readouterr().out
    first, last = (float(v) for v in out.split("loss ")[1].split(",")[0].split(" -> "))
    accuracy = float(out.split("test accuracy ")[1].split(",")[0])
    assert last < first / 4 and accuracy > 0.8, out
