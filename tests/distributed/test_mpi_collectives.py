from mpi_helpers import mpirun, needs_mpi


@needs_mpi
def test_collectives_on_pytrees_two_ranks():
    out = mpirun(2, ["collectives.py"]).stdout
    assert "rank 0: OK" in out and "rank 1: OK" in out


def test_one_process_world_without_mpiexec():
    import numpy as np
    import tracejit.distributed as dist
    world = dist.init()
    assert (world.rank, world.size, dist.rank(), dist.size()) == (0, 1, 0, 1)
    tree = {"a": np.arange(3.0), "b": (np.int32(4),)}
    assert np.array_equal(dist.allreduce(tree, "sum")["a"], tree["a"])
    assert dist.allreduce({"a": np.float32(2)})["a"] == 2
    assert dist.allgather(tree)["a"].shape == (1, 3)
    assert int(dist.broadcast(tree)["b"][0]) == 4
    assert dist.allgather_object("x") == ["x"]
    dist.barrier()


def _world_in_subprocess(code_before, env):
    import os
    import subprocess
    import sys
    from mpi_helpers import REPO
    code = code_before + "import tracejit.distributed as d; print(d.init())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONPATH=REPO, **env))
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_without_mpi4py_a_launched_process_gets_a_one_process_world():
    out = _world_in_subprocess("import sys; sys.modules['mpi4py'] = None; ",
                               {"PMI_RANK": "0", "PMI_SIZE": "1"})
    assert "World(rank=0, size=1, one process)" in out


def test_tracejit_distributed_0_forces_a_one_process_world():
    out = _world_in_subprocess("", {"PMI_RANK": "0", "TRACEJIT_DISTRIBUTED": "0"})
    assert "World(rank=0, size=1, one process)" in out
