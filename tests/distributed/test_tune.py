"""`tracejit tune` (process pool) appends results and resumes after a kill."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from mpi_helpers import REPO

optuna = pytest.importorskip("optuna", reason="tracejit tune needs Optuna "
                                              "(pip install 'tracejit[tune]')")

TUNE = [sys.executable, "-m", "tracejit", "tune", "mlp", "--epochs", "2", "--limit", "300"]
ENV = dict(os.environ, PYTHONPATH=REPO, TRACEJIT_BACKEND="cpu")


def lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_search_appends_results_and_resumes_after_a_kill(tmp_path):
    results = str(tmp_path / "r.jsonl")
    done = subprocess.run(TUNE + ["--trials", "2", "--parallel", "2", "--results", results],
                          capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stderr
    assert len(lines(results)) == 2
    assert re.search(r"best: trial \d, validation accuracy", done.stdout)
    assert "learning_rate" in done.stdout and "hidden1" in done.stdout

    proc = subprocess.Popen(TUNE + ["--trials", "5", "--parallel", "1", "--results", results],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    deadline = time.monotonic() + 240
    while len(lines(results)) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert 3 <= len(lines(results)) < 5

    again = subprocess.run(TUNE + ["--trials", "5", "--parallel", "1", "--results", results],
                           capture_output=True, text=True, timeout=300, env=ENV)
    assert again.returncode == 0, again.stderr
    assert "resuming after" in again.stdout
    finished = lines(results)
    assert len(finished) == 5
    assert sorted({r["state"] for r in finished}) <= ["COMPLETE", "PRUNED"]
    params = [json.dumps(r["params"], sort_keys=True) for r in finished]
    assert len(set(params)) == len(params)       # a resumed search draws new points
