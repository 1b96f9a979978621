"""`mpiexec -n 2 tracejit train mlp --distributed` prints one report."""
import re

from mpi_helpers import mpirun, needs_mpi


@needs_mpi
def test_train_mlp_distributed_prints_one_report(tmp_path):
    proc = mpirun(2, ["-m", "tracejit", "train", "mlp", "--distributed", "--epochs", "4",
                      "--logdir", str(tmp_path / "run")], timeout=300, cwd=str(tmp_path))
    out = proc.stdout
    assert out.count("data-parallel on 2 processes (2 x 16 examples per step)") == 1
    assert out.count("epoch 4/30") == 0 and out.count("epoch 4/4") == 1
    reports = re.findall(r"test accuracy (\d\.\d+)", out)
    assert len(reports) == 1, out
    assert float(reports[0]) >= 0.9, out
