"""fit(distributed=True) under mpiexec -n 2: only rank 0 writes and prints,
a killed rank stops the run, resume (same and other process count), and a
rank that raises ends every rank with its message."""
import os
import shutil
import subprocess
import sys

import numpy as np
from mpi_helpers import PROGRAMS, REPO, mpirun, needs_mpi


def params(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@needs_mpi
def test_fit_two_ranks_killed_rank_and_resume(tmp_path):
    out = str(tmp_path)
    full = mpirun(2, ["fit_run.py", out, "full"], timeout=240)
    assert full.stdout.count("epoch 1/2") == 1 and full.stdout.count("epoch 2/2") == 1
    assert "rank 1: step 24" in full.stdout and "rank 0: step 24" in full.stdout
    # Only rank 0 wrote checkpoints and TensorBoard events.
    assert os.listdir(tmp_path / "r0" / "ckpt") and os.listdir(tmp_path / "r0" / "logs")
    assert not os.path.exists(tmp_path / "r1")
    a, b = params(tmp_path / "full-0.npz"), params(tmp_path / "full-1.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])

    shutil.rmtree(tmp_path / "r0")
    killed = mpirun(2, ["fit_run.py", out, "killed", "--kill-at", "13"], timeout=240,
                    check=False)
    assert killed.returncode != 0
    assert not os.path.exists(tmp_path / "killed-0.npz")
    saved = sorted(os.listdir(tmp_path / "r0" / "ckpt"))
    assert any("10" in name for name in saved)
    backup = tmp_path / "ckpt-at-10"
    shutil.copytree(tmp_path / "r0" / "ckpt", backup)

    resumed = mpirun(2, ["fit_run.py", out, "resumed", "--resume"], timeout=240)
    assert "resumed from" in resumed.stdout and resumed.stdout.count("resumed from") == 1
    r = params(tmp_path / "resumed-0.npz")
    for k in a:                                  # same process count: bit for bit
        np.testing.assert_array_equal(r[k], a[k], err_msg=k)

    # One process resumes the two-process checkpoint: the same examples per
    # global batch, so the same run up to the rounding of the sums.
    shutil.rmtree(tmp_path / "r0")
    shutil.copytree(backup, tmp_path / "r0" / "ckpt")
    env = dict(os.environ, PYTHONPATH=REPO, TRACEJIT_BACKEND="cpu")
    one = subprocess.run([sys.executable, os.path.join(PROGRAMS, "fit_run.py"), out, "one",
                          "--resume"], capture_output=True, text=True, timeout=240, env=env)
    assert one.returncode == 0, one.stderr
    o = params(tmp_path / "one-0.npz")
    for k in a:
        np.testing.assert_allclose(o[k], a[k], rtol=1e-4, atol=1e-5, err_msg=k)


@needs_mpi
def test_a_rank_that_raises_ends_every_rank_with_its_message():
    proc = mpirun(2, ["raise_on_rank.py"], timeout=60, check=False)
    assert proc.returncode != 0
    assert "rank one failed on purpose" in proc.stderr
    assert "[rank 1]" in proc.stderr
    assert "should not have" not in proc.stdout
