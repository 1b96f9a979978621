"""tracejit ir --dot: the IR as a Graphviz graph."""
import re

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import cli
from tracejit.ir.dot import to_dot


def mlp(params, x):
    h = tnp.tanh(x @ params["W1"] + params["b1"])
    return tnp.sum(h @ params["W2"])


PARAMS = {"W1": np.zeros((4, 3), np.float32), "b1": np.zeros(3, np.float32),
          "W2": np.zeros((3, 2), np.float32)}
X = np.zeros((5, 4), np.float32)


def edges(dot):
    return re.findall(r'^  "([^"]+)" -> "([^"]+)" \[label="([^"]+)"\];$', dot, re.M)


def test_nodes_edges_and_parameter_scopes():
    fn = tracejit.make_ir(mlp)(PARAMS, X)
    dot = to_dot(fn, param_names=["params/W1", "params/W2", "params/b1", "x"])
    assert dot.startswith('digraph "mlp" {') and dot.endswith("}")
    assert 'subgraph "cluster_params" {' in dot
    assert '"params/W1" [label="W1\\nf32[4,3]", shape=ellipse];' in dot
    assert ("x", "dot_general", "f32[5,4]") in edges(dot)
    assert ("params/W1", "dot_general", "f32[4,3]") in edges(dot)
    # one node per instruction with results, plus parameters and return
    nodes = re.findall(r'^\s+"([^"]+)" \[label=', dot, re.M)
    assert len(nodes) == len(set(nodes)) == len(fn.params) + len(fn.body) + 1
    assert any(dst == "return" for _, dst, _ in edges(dot))


def test_depth_collapses_scopes_into_one_node():
    fn = tracejit.make_ir(mlp)(PARAMS, X)
    dot = to_dot(fn, depth=0, param_names=["params/W1", "params/W2", "params/b1", "x"])
    assert '"scope:params" [label="params\\n(scope)", shape=box3d];' in dot
    assert "cluster_params" not in dot
    assert ("scope:params", "dot_general", "f32[4,3]") in edges(dot)
    with pytest.raises(ValueError):
        to_dot(fn, depth=-1)


def test_cli_dot(tmp_path, capsys):
    path = tmp_path / "net.py"
    path.write_text("import tracejit.numpy as tnp\n\n"
                    "def f(params, x):\n    return tnp.tanh(x @ params['w'])\n")
    argv = ["ir", f"{path}:f", "--arg", "params.w=f32[4,3]", "--arg", "x=f32[2,4]"]
    assert cli.main(argv + ["--dot", "--stage", "fused"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('digraph "f" {') and '"params/w" [label="w\\nf32[4,3]"' in out
    assert '"fusion" [label="fusion[loop]", shape=box];' in out
    assert cli.main(argv + ["--dot", "--dot-depth", "0"]) == 0
    assert '"scope:params"' in capsys.readouterr().out
    for bad in (["--dot-depth", "1"], ["--dot", "--stage", "cpu-source"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv + bad)
        assert info.value.code == 2
    assert "--dot" in capsys.readouterr().err
