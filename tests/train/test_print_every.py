"""fit(print_every=N): a CIFAR-10-tutorial style line every N steps."""
import re

import pytest

from tracejit import train

from loop_helpers import MomentumSGD, TinyMLP, digits

LINE = re.compile(r"^step (\d+), loss = (\d+\.\d{3}) \((\d+\.\d) examples/sec; "
                  r"(\d+\.\d{3}) sec/batch\)$")


def test_print_every_prints_step_lines(capsys):
    (x, y), _ = digits(n_train=100, n_test=10)
    train.fit(TinyMLP(), MomentumSGD(0.05), (x, y), epochs=2, batch_size=20,
              print_every=2, verbose=True)   # 5 steps an epoch: steps 2, 4, 6, 8, 10
    lines = capsys.readouterr().out.splitlines()
    steps = [LINE.match(l) for l in lines if l.startswith("step ")]
    assert all(steps), lines
    assert [int(m.group(1)) for m in steps] == [2, 4, 6, 8, 10]
    assert all(float(m.group(2)) > 0 and float(m.group(3)) > 0 for m in steps)
    # the per-epoch summary lines are still there, after their epoch's step lines
    epochs = [i for i, l in enumerate(lines) if l.startswith("epoch ")]
    assert len(epochs) == 2 and lines[epochs[0] - 1].startswith("step 4,")


def test_print_every_off_by_default_and_silent_when_not_verbose(capsys):
    (x, y), _ = digits(n_train=40, n_test=10)
    train.fit(TinyMLP(), MomentumSGD(), (x, y), epochs=1, batch_size=20)
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "sec/batch" not in out
    train.fit(TinyMLP(), MomentumSGD(), (x, y), epochs=1, batch_size=20, print_every=1,
              verbose=False)
    assert capsys.readouterr().out == ""


def test_print_every_must_be_positive():
    with pytest.raises(ValueError, match="print_every"):
        train.fit(TinyMLP(), MomentumSGD(), digits(40, 10)[0], epochs=1, print_every=0)
