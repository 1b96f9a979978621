"""Bad data files and bad command lines: an error naming the file or the
option, one line, a non-zero exit status; never a traceback, never a run that
trains on nonsense."""
import numpy as np
import pytest

from tracejit import cli
from tracejit.data.datasets import (
    CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES,
    MNIST_FILES,
    DatasetError,
    load_cifar10,
    load_mnist,
    write_cifar10_batch,
    write_idx,
)
from tracejit.train.checkpoint import save_checkpoint


def mnist(directory, n_train=20, n_test=10, labels=None, label_dtype=np.uint8, images=None):
    rng = np.random.default_rng(0)
    train_x = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8) if images is None else images
    write_idx(directory / MNIST_FILES["train_images"], train_x)
    train_y = (np.arange(n_train) % 10).astype(label_dtype) if labels is None else labels
    write_idx(directory / MNIST_FILES["train_labels"], train_y)
    write_idx(directory / MNIST_FILES["test_images"],
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    write_idx(directory / MNIST_FILES["test_labels"], (np.arange(n_test) % 10).astype(np.uint8))
    return directory


def test_mnist_that_is_fine_loads(tmp_path):
    (x, y), _ = load_mnist(mnist(tmp_path))
    assert x.shape == (20, 784) and y.max() == 9


@pytest.mark.parametrize(("case", "match"), [
    ({"labels": np.array([0, 1, 10] + [0] * 17, np.uint8)}, r"label 10 \(example 2\) is out of range 0..9"),
    ({"labels": np.full(20, 255, np.uint8)}, "out of range"),
    ({"n_train": 0}, "holds no images"),
    ({"label_dtype": np.int32}, "expected uint8 labels"),
    ({"labels": np.zeros(19, np.uint8)}, "19 labels but"),
    ({"images": np.zeros((20, 0, 28), np.uint8)}, "are empty"),
    ({"images": np.zeros((20, 784), np.uint8)}, "expected a 3-D image array"),
])
def test_bad_mnist_files_are_refused(tmp_path, case, match):
    mnist(tmp_path, **case)
    with pytest.raises(DatasetError, match=match) as e:
        load_mnist(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_truncated_and_garbled_idx_files_are_refused(tmp_path):
    mnist(tmp_path)
    path = tmp_path / MNIST_FILES["train_labels"]
    data = path.read_bytes()
    for bad, match in ((data[:-1], "truncated"), (data + b"\0", "trailing"),
                       (data[:6], "truncated"), (b"\1" + data[1:], "magic"),
                       (data[:2] + b"\x07" + data[3:], "dtype code"), (b"", "not an IDX")):
        path.write_bytes(bad)
        with pytest.raises(DatasetError, match=match):
            load_mnist(tmp_path)


def cifar(directory, labels_test=None, n=4):
    images = np.zeros((n, 32, 32, 3), np.uint8)
    for name in CIFAR10_TRAIN_FILES:
        write_cifar10_batch(directory / name, images, np.arange(n) % 10)
    write_cifar10_batch(directory / CIFAR10_TEST_FILE, images,
                        np.arange(n) % 10 if labels_test is None else labels_test)
    return directory


def test_bad_cifar_files_are_refused(tmp_path):
    cifar(tmp_path, labels_test=np.array([0, 1, 2, 42]))
    with pytest.raises(DatasetError, match=r"label value 42 \(record 3\) out of range"):
        load_cifar10(tmp_path)
    path = tmp_path / CIFAR10_TEST_FILE
    for bad in (b"", path.read_bytes()[:-1]):
        path.write_bytes(bad)
        with pytest.raises(DatasetError, match=CIFAR10_TEST_FILE):
            load_cifar10(tmp_path)


def run_cli(argv, capsys):
    """``tracejit ARGV``: (exit status, stderr)."""
    try:
        status = cli.main(argv)
    except SystemExit as e:
        status = e.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize("option", [
    "--limit 0", "--epochs 0", "--batch-size -5", "--hidden1 0", "--hidden2 -1",
    "--learning-rate nan", "--learning-rate inf", "--learning-rate 0", "--learning-rate -1e-3",
    "--checkpoint-every 0", "--seed -1", "--patience 0", "--dropout 1.5", "--epochs 1.5",
])
def test_nonsense_options_are_refused(option, capsys):
    status, err = run_cli(["train", "mlp", *option.split()], capsys)
    assert status == 2
    flag = option.split()[0]
    assert f"argument {flag}:" in err and "Traceback" not in err


@pytest.mark.parametrize("option", ["--width 0", "--ema-decay 1", "--decay-epochs nan",
                                    "--synthetic-examples 0"])
def test_nonsense_cnn_options_are_refused(option, capsys):
    status, err = run_cli(["train", "cnn", *option.split()], capsys)
    assert status == 2 and "Traceback" not in err


def test_logdir_under_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    status, err = run_cli(["train", "mlp", "--epochs", "1", "--limit", "50", "--quiet",
                           "--logdir", str(blocker / "runs")], capsys)
    assert status == 2
    assert err.strip().count("\n") == 0 and "--logdir" in err and "Traceback" not in err


def test_checkpoint_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    status, err = run_cli(["train", "mlp", "--epochs", "1", "--limit", "50", "--quiet",
                           "--logdir", str(tmp_path / "runs"), "--checkpoint-dir", str(blocker)],
                          capsys)
    assert status == 2 and "--checkpoint-dir" in err and "not a directory" in err


def test_bad_data_files_through_the_cli(tmp_path, capsys):
    mnist(tmp_path, labels=np.full(20, 12, np.uint8))
    status, err = run_cli(["train", "mlp", "--data", str(tmp_path), "--epochs", "1",
                           "--logdir", str(tmp_path / "runs")], capsys)
    assert status == 1
    assert "out of range 0..9" in err and str(tmp_path) in err and "Traceback" not in err


def test_damaged_checkpoint_through_eval(tmp_path, capsys):
    path = save_checkpoint(tmp_path, 3, {"w": np.zeros(2)}, metadata={"model": "mlp"})
    with open(path, "r+b") as f:
        f.seek(10)
        f.write(b"X")
    status, err = run_cli(["eval", str(tmp_path)], capsys)
    assert status == 1 and str(path) in err and "Traceback" not in err


def test_ir_negative_dimension_is_a_clear_message(tmp_path, capsys):
    source = tmp_path / "prog.py"
    source.write_text("def f(x):\n    return x * 2\n")
    status, err = run_cli(["ir", f"{source}:f", "--arg", "f32[-1]"], capsys)
    assert status == 2
    assert "negative dimensions are not allowed" in err and "invalid parse_arg" not in err


def test_cli_resume_with_another_learning_rate_needs_override(tmp_path, capsys):
    base = ["train", "mlp", "--epochs", "1", "--limit", "64", "--batch-size", "32", "--quiet",
            "--logdir", str(tmp_path / "runs")]
    assert run_cli(base, capsys)[0] == 0
    status, err = run_cli([*base, "--epochs", "2", "--resume", "--learning-rate", "0.5"],
                          capsys)
    assert status == 1 and "learning_rate: checkpoint" in err and "now 0.5" in err
    assert err.strip().count("\n") == 0
    status, _ = run_cli([*base, "--epochs", "2", "--resume", "--learning-rate", "0.5",
                         "--override"], capsys)
    assert status == 0


@pytest.mark.parametrize("argv", [["tune", "mlp", "--trials", "0"], ["tune", "mlp", "--parallel", "0"],
                                  ["tune", "mlp", "--epochs", "-1"],
                                  ["ir", "x.py:f", "--dot-depth", "-2"]])
def test_other_commands_refuse_nonsense(argv, capsys):
    status, err = run_cli(argv, capsys)
    assert status == 2 and "argument --" in err and ("positive" in err or "0 or more" in err)
    assert "Traceback" not in err
