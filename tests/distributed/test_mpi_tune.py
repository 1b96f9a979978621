"""`tracejit tune` (process pool) appends results and resumes after a kill;
under mpiexec each rank runs trials of the one study."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from mpi_helpers import REPO, mpirun, needs_mpi

optuna = pytest.importorskip("optuna", reason="tracejit tune needs Optuna "
                                              "(pip install 'tracejit[tune]')")

TUNE = [sys.executable, "-m", "tracejit", "tune", "mlp", "--epochs", "2", "--limit", "300"]
ENV = dict(os.environ, PYTHONPATH=REPO, TRACEJIT_BACKEND="cpu")


def lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_search_appends_results_and_resumes_after_a_kill(tmp_path):
    results = str(tmp_path / "r.jsonl")
    command = TUNE + ["--trials", "4", "--parallel", "2", "--results", results]
    # The whole search (the pool's processes too) is killed after its first result.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    while (not os.path.exists(results) or not lines(results)) and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert 1 <= len(lines(results)) < 4

    again = subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)
    assert again.returncode == 0, again.stderr
    assert "resuming after" in again.stdout
    finished = lines(results)
    assert len(finished) == 4
    assert sorted({r["state"] for r in finished}) <= ["COMPLETE", "PRUNED"]
    params = [json.dumps(r["params"], sort_keys=True) for r in finished]
    assert len(set(params)) == len(params)       # a resumed search draws new points
    assert re.search(r"best: trial \d, validation accuracy", again.stdout)
    assert "learning_rate" in again.stdout and "hidden1" in again.stdout


@needs_mpi
def test_search_under_mpiexec_runs_one_study(tmp_path):
    results = str(tmp_path / "r.jsonl")
    proc = mpirun(2, ["-m", "tracejit", "tune", "mlp", "--trials", "2", "--epochs", "1",
                      "--limit", "300", "--results", results], timeout=300)
    assert proc.stdout.count("best: trial") == 1
    assert proc.stdout.count("2 trials, 2 at a time") == 1
    assert sorted(r["trial"] for r in lines(results)) == [0, 1]
