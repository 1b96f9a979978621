"""The pipeline's stages are named once (tracejit.stages): jit logs them in
that order, and ``tracejit ir --stage`` lists its stages in that order."""
import numpy as np
import pytest

import tracejit
from tracejit import cli, stages


def test_order():
    assert stages.ORDER == ("trace", "simplify", "fuse", "codegen", "compile")


def test_cli_stages_follow_the_pipeline_order():
    for chain in ([n for n in cli.STAGES if not n.startswith("grad")],
                  [n for n in cli.STAGES if n.startswith("grad")]):
        positions = [stages.ORDER.index(cli.STAGES[n].after) for n in chain]
        assert positions == sorted(positions), chain
    assert {s.after for s in cli.STAGES.values()} == {"trace", "simplify", "fuse", "codegen"}


def test_jit_logs_its_stages_in_order(monkeypatch, capsys):
    monkeypatch.setenv("TRACEJIT_LOG", "compile")

    @tracejit.jit
    def step(x):
        return tracejit.numpy.tanh(x) * 2.0

    step(np.ones(3, np.float32))
    err = capsys.readouterr().err
    named = [s for line in err.splitlines() if line.startswith("[tracejit:compile] step: ")
             for s in stages.ORDER if line.split("step: ", 1)[1].startswith(s + ":")
             or line.split("step: ", 1)[1].startswith(s + " for")]
    assert named == ["trace", "simplify", "compile"]


def test_unknown_stage_is_an_error():
    with pytest.raises(ValueError, match="unknown stage 'optimize'"):
        stages.timed("optimize", "f")
