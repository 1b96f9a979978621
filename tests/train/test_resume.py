"""Exact resume after a crash between checkpoints; refusing damaged checkpoints.

The bitwise comparison runs on the default backend (see the report for which
one that is): resuming must not change a single bit of the final parameters.
"""
import os

import numpy as np
import pytest

from tracejit.tree import tree_flatten_with_path
from tracejit import train
from tracejit.data import Pipeline

from loop_helpers import MomentumSGD, TinyMLP, digits


class Crash(Exception):
    pass


def _noisy(x, y, seed):
    """A seeded augmentation, so the resumed pipeline must replay its seeds too."""
    return x + np.random.default_rng(seed).normal(0, 0.05, x.shape).astype(x.dtype), y


def _run(directory, crash_at=None, resume=False, epochs=3):
    (x, y), valid = digits(n_train=300, n_test=90)
    pipe = Pipeline((x, y)).shuffle(7).batch(25, drop_remainder=True).map(_noisy, with_seed=True)
    callbacks = []
    if crash_at is not None:
        def crash(run, logs):
            if logs["step"] == crash_at:
                raise Crash
        callbacks.append(train.LambdaCallback(on_step_end=crash))
    return train.fit(TinyMLP(), MomentumSGD(0.05), pipe, epochs=epochs, seed=11,
                     validation_data=valid, early_stopping=train.EarlyStopping(patience=5),
                     checkpoint_dir=directory, checkpoint_every=5, keep_checkpoints=3,
                     callbacks=callbacks, resume=resume, verbose=False,
                     metadata={"model": "tiny"})


def _leaves(state):
    return tree_flatten_with_path(state)


def test_resume_after_a_crash_is_bitwise_identical(tmp_path):
    reference = _run(tmp_path / "straight")
    # 12 steps per epoch; crash at step 17 (second epoch), after the step-15 checkpoint.
    with pytest.raises(Crash):
        _run(tmp_path / "crashed", crash_at=17)
    assert train.latest_checkpoint(tmp_path / "crashed").endswith("ckpt-00000015.json")
    resumed = _run(tmp_path / "crashed", resume=True)

    assert int(resumed.state.step) == int(reference.state.step) == 36
    for (name, a), (_, b) in zip(_leaves(reference.state), _leaves(resumed.state)):
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert resumed.history == reference.history
    # Resuming a finished run trains no further.
    again = _run(tmp_path / "crashed", resume=True)
    for (name, a), (_, b) in zip(_leaves(reference.state), _leaves(again.state)):
        assert np.array_equal(a, b), name
    assert len(train.list_checkpoints(tmp_path / "crashed")) == 3


def test_checkpoint_holds_the_pipeline_position_and_model(tmp_path):
    with pytest.raises(Crash):
        _run(tmp_path, crash_at=17)
    _, _, meta = train.load_checkpoint(tmp_path)
    assert meta["model"] == "tiny"
    assert (meta["pipeline"]["epoch"], meta["pipeline"]["batch_index"]) == (1, 3)
    assert meta["fit"] == {"epochs": 3, "batch_size": 25, "seed": 7}


def _damage(path, how):
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        flipped = bytearray(data)
        flipped[-3] ^= 0xFF
        path.write_bytes(bytes(flipped))


@pytest.mark.parametrize("how", ["truncate", "alter"])
def test_damaged_latest_checkpoint_is_refused_and_the_previous_one_survives(tmp_path, how):
    with pytest.raises(Crash):
        _run(tmp_path, crash_at=11)   # checkpoints at steps 5 and 10
    latest = tmp_path / "ckpt-00000010.safetensors"
    _damage(latest, how)
    with pytest.raises(train.CheckpointError) as err:
        _run(tmp_path, resume=True)
    message = str(err.value)
    assert "ckpt-00000010" in message and "ckpt-00000005" in message
    assert ("truncated" in message) if how == "truncate" else ("sha256" in message)
    # The earlier checkpoint is untouched, still loads, and a run resumes from it.
    step, _, meta = train.load_checkpoint(tmp_path / "ckpt-00000005.json")
    assert step == 5 and meta["pipeline"]["batch_index"] == 5
    assert latest.exists()
    resumed = _run(tmp_path, resume=tmp_path / "ckpt-00000005.json", epochs=1)
    assert int(resumed.state.step) == 12


def test_checkpoint_of_another_model_is_refused(tmp_path):
    (x, y), _ = digits(n_train=100)
    train.fit(TinyMLP(hidden=8), MomentumSGD(), (x, y), epochs=1, batch_size=50,
              checkpoint_dir=tmp_path, verbose=False)
    with pytest.raises(train.CheckpointError, match=r"dense1/kernel: checkpoint has float32\[64,8\], "
                                                    r"expected float32\[64,16\]"):
        train.fit(TinyMLP(hidden=16), MomentumSGD(), (x, y), epochs=2, batch_size=50,
                  checkpoint_dir=tmp_path, resume=True, verbose=False)


def test_resume_without_checkpoints_starts_fresh(tmp_path, capsys):
    (x, y), _ = digits(n_train=100)
    result = train.fit(TinyMLP(), MomentumSGD(), (x, y), epochs=1, batch_size=50,
                       checkpoint_dir=tmp_path / "new", resume=True)
    assert "starting from step 0" in capsys.readouterr().out
    assert int(result.state.step) == 2
    assert os.path.basename(result.checkpoint) == "ckpt-00000002.json"
