from mpi_helpers import mpirun, needs_mpi


@needs_mpi
def test_two_rank_step_equals_one_process_step_on_the_whole_batch():
    out = mpirun(2, ["sync_step.py"], timeout=240).stdout
    assert "rank 0: OK" in out and "rank 1: OK" in out
