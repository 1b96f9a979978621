"""Resume faults: a resume killed at any point (while cleaning up, after
loading, in its first save) resumes again to the same bits as a run that
was never interrupted; a resume with other settings is refused unless
overridden."""
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from resume_run import Crash, run

from tracejit.train import CheckpointError, latest_checkpoint
from tracejit.tree import tree_flatten_with_path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SOAK = os.environ.get("TRACEJIT_SOAK") == "1"

# (what the child dies in, which call)
KILL_POINTS = [("remove_stale_files", 1), ("restore_train_state", 1), ("replace", 2)]
if SOAK:
    KILL_POINTS += [("save_train_state", 1), ("replace", 1), ("fsync", 1), ("fsync", 4),
                    ("unlink", 1), ("save_train_state", 2)]


def same_bits(a, b):
    for (name, x), (_, y) in zip(tree_flatten_with_path(a), tree_flatten_with_path(b)):
        assert x.dtype == y.dtype and np.array_equal(x, y), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return run(tmp_path_factory.mktemp("straight"))


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    """A run that crashed at step 7 (after the step-6 checkpoint)."""
    directory = tmp_path_factory.mktemp("crashed")
    with pytest.raises(Crash):
        run(directory, crash_at=7)
    return directory


def test_sigkill_during_resume(reference, crashed, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), str(HERE), os.environ.get("PYTHONPATH", "")]))
    for target, nth in KILL_POINTS:
        directory = tmp_path / f"{target}-{nth}"
        shutil.copytree(crashed, directory)
        (directory / ".ckpt-00000009.safetensors.dead.tmp").write_bytes(b"\0" * 8)
        proc = subprocess.run([sys.executable, str(HERE / "resume_run.py"), str(directory),
                               target, str(nth)], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert proc.returncode == -signal.SIGKILL, (target, nth, proc.stderr[-2000:])
        resumed = run(directory, resume=True)
        assert int(resumed.state.step) == int(reference.state.step)
        same_bits(reference.state, resumed.state)
        assert not [n for n in os.listdir(directory) if n.endswith(".tmp")]


def test_resume_with_other_settings_is_refused(crashed, tmp_path):
    directory = tmp_path / "c"
    shutil.copytree(crashed, directory)
    with pytest.raises(CheckpointError, match="seed: checkpoint 11, now 12"):
        run(directory, resume=True, seed=12)
    with pytest.raises(CheckpointError, match="learning_rate: checkpoint 0.05, now 0.1"):
        run(directory, resume=True, learning_rate=0.1)
    assert latest_checkpoint(directory).endswith("ckpt-00000006.json")   # nothing written
    result = run(directory, resume=True, seed=12, override=True)
    assert int(result.state.step) == 16


def test_resume_to_train_longer_is_allowed(reference, tmp_path):
    directory = tmp_path / "longer"
    run(directory, epochs=1)
    result = run(directory, resume=True, epochs=2)
    same_bits(reference.state, result.state)
