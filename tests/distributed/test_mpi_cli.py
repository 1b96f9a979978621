"""`mpiexec -n 2 tracejit train mlp --distributed` prints one report;
`--ensemble` under mpiexec reports its members and their average."""
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


@needs_mpi
def test_ensemble_under_mpiexec_reports_members_and_the_average():
    proc = mpirun(2, ["-m", "tracejit", "train", "mlp", "--ensemble", "3", "--epochs", "3",
                      "--limit", "500"], timeout=300)
    members = re.findall(r"member (\d) \(seed \d, \d+ steps\): test accuracy (\d\.\d+)",
                         proc.stdout)
    assert sorted(m[0] for m in members) == ["0", "1", "2"]
    ensemble = re.findall(r"ensemble of 3: test accuracy (\d\.\d+)", proc.stdout)
    assert len(ensemble) == 1
    assert float(ensemble[0]) >= min(float(a) for _, a in members) - 0.05
