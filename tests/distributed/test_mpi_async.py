"""The parameter-server mode converges on the digits and bounds staleness."""
from mpi_helpers import mpirun, needs_mpi


@needs_mpi
def test_parameter_server_converges_and_drops_stale_gradients():
    out = mpirun(3, ["async_run.py"], timeout=240).stdout
    assert out.count("OK") == 3
    assert out.count("parameter server:") == 1      # logged once, by the server
    assert "staleness_mean" in out


def test_one_process_runs_the_same_loop_without_staleness():
    from tracejit import nn, optim
    from tracejit.data import load_digits
    from tracejit.train.parameter_server import fit_async
    (x, y), (xt, yt) = load_digits()
    result = fit_async(nn.Sequential([nn.Dense(32, "relu"), nn.Dense(10)]), optim.adam(3e-3),
                       (x[:640], y[:640]), epochs=2, batch_size=32,
                       validation_data=(xt, yt), verbose=False)
    assert result.applied == 40 and result.staleness == {0: 40}
    assert result.history["val_accuracy"][-1] > 0.5
