"""Names and scopes of IR values (TensorFlow's name_scope and name=): the
printed IR, uniqueness, the parser, simplification and fusion, gradients,
layers, variable scopes and the graphs."""
import re

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import nn, random
from tracejit.ir import parse, verify
from tracejit.ir.dot import to_dot
from tracejit.stages import simplify as optimize
from tracejit.transforms.fusion import fuse

X = np.ones((4, 3), np.float32)
W = np.ones((3, 2), np.float32)


def defined(fn):
    """The printed names of the values fn's body defines, in order."""
    return re.findall(r"^  (%[^:]+):", str(fn), re.M)


def test_a_named_value_prints_with_its_scoped_name():
    def f(x, w):
        with tracejit.name_scope("hidden1"):
            z = tnp.dot(x, w, name="linear")
            h = nn.relu(z)
        return h
    fn = tracejit.make_ir(f)(X, W)
    text = str(fn)
    assert re.search(r"^  %hidden1/linear: f32\[4,2\] = dot_general", text, re.M)
    assert all(n.startswith("%hidden1/") for n in defined(fn))   # everything in the scope
    verify(fn)
    again = parse(text)                                           # the parser reads it back
    assert str(again) == text
    assert [getattr(v, "name", None) for i in again.body for v in i.results][0] == "hidden1/linear"


def test_names_are_made_unique_as_tensorflow_does():
    def f(x):
        outs = []
        for _ in range(3):
            with tracejit.name_scope("relu"):
                outs.append(tnp.maximum(x, 0.0, name="max"))
        return nn.add_n(outs, name="output")
    names = defined(tracejit.make_ir(f)(X))
    assert "%relu/max" in names and "%relu_1/max" in names and "%relu_2/max" in names
    assert names[-1] == "%output"
    with tracejit.name_scope("a"):               # eager: no trace, nothing recorded
        assert float(tnp.sum(tnp.dot(X, W, name="d"))) == 24.0


def test_nested_scopes_and_repeated_names():
    def f(x):
        with tracejit.name_scope("layer"):
            with tracejit.name_scope("inner") as inner:
                a = tnp.exp(x, name="act")
                b = tnp.exp(a, name="act")
        assert inner == "layer/inner"          # the scope's full name
        return a + b
    fn = tracejit.make_ir(f)(X)
    names = defined(fn)
    assert "%layer/inner/act" in names and "%layer/inner/act_1" in names
    assert str(parse(str(fn))) == str(fn)


def test_names_survive_simplification_and_fusion():
    def f(x, w):
        with tracejit.name_scope("hidden1"):
            z = tnp.dot(x, w, name="linear")
        return tnp.tanh(z, name="act") * 2.0
    simplified = optimize(tracejit.make_ir(f)(X, W))
    assert "%hidden1/linear" in defined(simplified)
    fused = fuse(simplified)
    assert "%hidden1/linear" in defined(fused)
    assert str(parse(str(fused))) == str(fused)


def test_gradient_values_are_named_under_gradients():
    def loss(w, x):
        with tracejit.name_scope("loss"):
            return tnp.sum(tnp.square(tnp.dot(x, w, name="logits")))
    fn = tracejit.make_ir(tracejit.grad(loss))(W, X)
    names = defined(fn)
    assert any(n.startswith("%loss/") for n in names)            # the forward pass keeps its names
    assert any(n.startswith("%gradients/") for n in names)
    np.testing.assert_allclose(tracejit.jit(tracejit.grad(loss))(W, X),
                               tracejit.grad(loss)(W, X), rtol=1e-6)


def test_layers_name_their_values():
    model = nn.mlp((5,))
    params = model.init(random.key(0), (3,))
    fn = tracejit.make_ir(model.apply)(params, X)
    names = defined(fn)
    assert "%hidden1/linear" in names and "%outputs/linear" in names
    assert all(n.startswith(("%hidden1/", "%outputs/")) or n[1:].isdigit() for n in names)


def test_variable_scopes_open_name_scopes():
    def relu(x):
        threshold = nn.get_variable("threshold", shape=(),
                                    initializer=nn.initializers.constant(0.0))
        return tnp.maximum(x, threshold, name="max")

    def five(x):
        outs = []
        for i in range(5):
            with nn.variable_scope("relu", reuse=i >= 1):
                outs.append(relu(x))
        return nn.add_n(outs, name="output")
    net = nn.transform(five)
    params = net.init(random.key(0), X)
    assert list(params) == ["relu/threshold"]
    names = defined(tracejit.make_ir(net.apply)(params, X))
    assert ["%relu/max", "%relu_1/max", "%relu_2/max", "%relu_3/max", "%relu_4/max"] == \
        [n for n in names if n.endswith("/max")]


def test_dot_clusters_follow_the_scopes():
    model = nn.mlp((5,))
    params = model.init(random.key(0), (3,))
    fn = tracejit.make_ir(model.apply)(params, X)
    dot = to_dot(fn)
    assert 'subgraph "cluster_hidden1" {' in dot and 'subgraph "cluster_outputs" {' in dot
    assert '"hidden1/linear" [label="linear\\ndot_general", shape=box];' in dot
    collapsed = to_dot(fn, depth=0)
    assert '"scope:hidden1"' in collapsed and "cluster_hidden1" not in collapsed


def test_bad_names():
    with pytest.raises(ValueError, match="not a valid name"):
        with tracejit.name_scope("1abc"):
            pass
    with pytest.raises(ValueError, match="not a valid name"):
        tracejit.make_ir(lambda x: tnp.exp(x, name="a b"))(X)


def test_layer_names_that_are_not_scope_names_still_work():
    model = nn.Sequential([nn.Dense(2, name="1st layer"), nn.Dense(1, name="out")])
    params = model.init(random.key(0), (3,))
    names = defined(tracejit.make_ir(model.apply)(params, X))
    assert "%_1st_layer/linear" in names and "%out/linear" in names
    np.testing.assert_allclose(tracejit.jit(model.apply)(params, X), model.apply(params, X),
                               rtol=1e-6)


def test_vmap_keeps_the_names_of_the_values_it_batches():
    def f(x, w):
        with tracejit.name_scope("dense"):
            return tnp.tanh(tnp.dot(x, w, name="linear"), name="act")
    for axes, w in [((0, None), np.ones((3, 2))), ((0, 0), np.ones((5, 3, 2)))]:
        fn = tracejit.make_ir(tracejit.vmap(f, in_axes=axes))(np.ones((5, 3)), w)
        names = [r.name for ins in fn.body for r in ins.results]
        assert "dense/linear" in names and "dense/act" in names
