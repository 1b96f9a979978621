"""The ``tracejit`` command: ``tracejit ir FILE.py:FUNCTION --arg TYPE ...``."""
import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tracejit
from tracejit import cli
from tracejit.ir import parse, verify
from tracejit.core import eval_function

ROOT = pathlib.Path(__file__).resolve().parents[1]
MLP = ROOT / "examples" / "mlp.py"
MLP_ARGS = ["--arg", "params.W1=f32[784,300]", "--arg", "params.b1=f32[300]",
            "--arg", "params.W2=f32[300,100]", "--arg", "params.b2=f32[100]",
            "--arg", "params.W3=f32[100,10]", "--arg", "params.b3=f32[10]",
            "--arg", "x=f32[8,784]", "--arg", "y=i32[8]"]


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "user.py"
    path.write_text(textwrap.dedent("""\
        import tracejit.numpy as tnp

        def add(x, y):
            return tnp.sum(x + y)

        def scaled(x, n, mode="sum", lr=0.1):
            r = tnp.sum(x) if mode == "sum" else tnp.max(x)
            return r * n * lr

        def broken(x):
            return undefined_name + x
        """))
    return path


def test_mlp_loss_ir_parses_verifies_and_computes_the_loss(capsys):
    code, out, err = run(capsys, "ir", f"{MLP}:loss", *MLP_ARGS, "--stats")
    assert code == 0, err
    fn = parse(out)   # the --stats lines are comments
    verify(fn)
    assert out.startswith("func @loss(%0: f32[784,300], %1: f32[300,100], %2: f32[100,10], "
                          "%3: f32[300], %4: f32[100], %5: f32[10], %6: f32[8,784], %7: i32[8])"
                          " -> (f32[]) {")
    assert "# 3 dot_general" in " ".join(out.split()) and "instructions" in out
    spec = importlib.util.spec_from_file_location("mlp_for_test", MLP)
    mlp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mlp)
    rng = np.random.default_rng(0)
    params = mlp.init_params(0)
    x = rng.random((8, 784), dtype=np.float32)
    y = rng.integers(0, 10, 8).astype(np.int32)
    leaves = [params[k] for k in ("W1", "W2", "W3", "b1", "b2", "b3")] + [x, y]
    got = eval_function(fn, leaves)[0]
    np.testing.assert_allclose(got, mlp.loss(params, x, y), rtol=1e-6)


def test_positional_scalar_and_static_arguments(capsys, user_file):
    code, out, _ = run(capsys, "ir", f"{user_file}:scaled", "--arg", "f32[2,3]",
                       "--arg", "int", "--static", "mode='max'", "--static", "lr=0.5")
    assert code == 0
    assert out.startswith("func @scaled(%0: f32[2,3], %1: i64[]~) -> (f32[]) {")
    assert "reduce_max[axes=(0, 1)](%0)" in out and "constant[value=0.5]()" in out
    code, out, _ = run(capsys, "ir", f"{user_file}:scaled", "--arg", "x=f32[]",
                       "--arg", "n=float", "--static", "mode=sum")
    assert code == 0 and out.startswith("func @scaled(%0: f32[], %1: f64[]~)")
    assert "reduce_sum[axes=()](%0)" in out


def test_module_target(capsys):
    code, out, _ = run(capsys, "ir", "tracejit.numpy:tanh", "--arg", "f64[4]")
    assert code == 0 and "= tanh(%0)" in out


def test_simplified_stage_prints_a_valid_function(capsys):
    code, out, _ = run(capsys, "ir", f"{MLP}:predict", "--stage", "simplified",
                       *MLP_ARGS[:-2])
    assert code == 0
    verify(parse(out))


@pytest.mark.skipif(not hasattr(tracejit, "value_and_grad"), reason="no value_and_grad yet")
def test_grad_stage(capsys):
    code, out, err = run(capsys, "ir", f"{MLP}:loss", "--stage", "grad", *MLP_ARGS)
    assert code == 0, err
    fn = parse(out)
    verify(fn)
    assert [str(t) for t in fn.out_types] == ["f32[]", "f32[784,300]", "f32[300,100]",
                                              "f32[100,10]", "f32[300]", "f32[100]", "f32[10]"]
    code, out, err = run(capsys, "ir", f"{MLP}:loss", "--stage", "grad-simplified", *MLP_ARGS)
    assert code == 0, err
    simplified = parse(out)
    verify(simplified)
    assert simplified.out_types == fn.out_types
    assert simplified.num_instructions() <= fn.num_instructions()


@pytest.mark.skipif(importlib.util.find_spec("tracejit.transforms.fusion") is None,
                    reason="no fusion pass yet")
def test_fused_stage(capsys):
    # verified by the command itself: 'fusion' is a registered primitive
    code, out, err = run(capsys, "ir", f"{MLP}:loss", "--stage", "fused", *MLP_ARGS)
    assert code == 0, err
    fn = parse(out)
    verify(fn)
    assert str(fn) == out.rstrip("\n")
    kernels = [ins for ins in fn.body if ins.prim == "fusion"]
    assert len(kernels) >= 2
    assert {ins.attrs["kind"] for ins in kernels} <= {"loop", "reduction"}
    assert "body = func @kernel0(" in out


def test_fused_stage_as_a_subprocess():
    """The command line from examples/mlp.py's docstring, at --stage fused."""
    proc = subprocess.run([sys.executable, "-m", "tracejit", "ir", f"{MLP}:loss",
                           "--stage", "fused", *MLP_ARGS], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "fusion[kind='reduction']" in proc.stdout and proc.stderr == ""


def test_errors_in_user_code_show_the_users_line_only(capsys, user_file):
    code, out, err = run(capsys, "ir", f"{user_file}:add", "--arg", "f32[3,4]",
                         "--arg", "f32[5]")
    assert code == 1 and out == ""
    assert f'File "{user_file}", line 4, in add' in err
    assert "ShapeError" in err and "(3, 4)" in err and "(5,)" in err
    assert "tracejit/" not in err.replace(str(user_file), "")
    code, _, err = run(capsys, "ir", f"{user_file}:broken", "--arg", "f32[3]")
    assert code == 1 and 'line 11, in broken' in err and "NameError" in err
    assert "cli.py" not in err and "importlib" not in err
    bad = user_file.with_name("bad.py")
    bad.write_text("def f(x)\n    return x\n")
    code, _, err = run(capsys, "ir", f"{bad}:f", "--arg", "f32[3]")
    assert code == 1 and "line 1" in err and "SyntaxError" in err


@pytest.mark.parametrize("argv, message", [
    (["{f}:nope", "--arg", "f32[3]"], "has no 'nope'; its functions are: add, broken, scaled"),
    (["{f}:add", "--arg", "f32[3]"], "the arguments do not fit add(x, y): missing a required "
                                     "argument: 'y'"),
    (["{f}", "--arg", "f32[3]"], "expected FILE.py:FUNCTION"),
    (["{f}x:add"], "no such file"),
    (["no_such_module_xyz:f"], "no module of that name"),
    (["{f}:add", "--arg", "x=f32[3]", "--arg", "f32[3]"], "positional --arg TYPE must come "
                                                          "before NAME=TYPE"),
    (["{f}:add", "--arg", "x.a=f32[3]", "--arg", "x.a=f32[3]"], "--arg x.a is given twice"),
])
def test_usage_errors(capsys, user_file, argv, message):
    with pytest.raises(SystemExit) as info:
        cli.main(["ir"] + [a.format(f=user_file) for a in argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("spec", ["q32[3]", "f32[3", "f32[]~", "=f32[3]", "f32[a.b]", "f32[-2]"])
def test_bad_argument_types(capsys, user_file, spec):
    with pytest.raises(SystemExit) as info:
        cli.main(["ir", f"{user_file}:add", "--arg", spec])
    assert info.value.code == 2
    assert "argument --arg" in capsys.readouterr().err


def test_parse_arg_values():
    name, value = cli.parse_arg("params.W1=f32[2,3]")
    assert name == "params.W1" and value.dtype == np.float32 and value.shape == (2, 3)
    assert cli.parse_arg("u32[]")[1].shape == ()
    assert cli.parse_arg("bool")[1] is False and cli.parse_arg("n=int") == ("n", 0)
    assert cli.parse_static("shape=(2, 2)") == ("shape", (2, 2))
    assert cli.parse_static("padding=SAME") == ("padding", "SAME")


def test_stage_table_and_commands_are_extension_points(capsys, monkeypatch, user_file):
    monkeypatch.setitem(cli.STAGES, "doubled", cli.Stage(
        "trace", "the traced IR, twice", lambda fun, args: f"{cli.STAGES['traced'].build(fun, args)}\n" * 2))
    code, out, _ = run(capsys, "ir", f"{user_file}:add", "--arg", "f32[3]", "--arg", "f32[3]",
                       "--stage", "doubled")
    assert code == 0 and out.count("func @add") == 2

    def add_hello(sub):
        p = sub.add_parser("hello", help="say hello")
        p.set_defaults(run=lambda args: print("hello") or 0)
    monkeypatch.setattr(cli, "COMMANDS", cli.COMMANDS + [add_hello])
    assert run(capsys, "hello") == (0, "hello\n", "")


def test_python_dash_m_help():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-m", "tracejit", "ir", "--help"], cwd=ROOT,
                         capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0
    for words in ["FILE.py:FUNCTION", "--arg", "--static", "--stage", "params.W1=f32[784,300]",
                  "simplified", "grad", "fused", "float / int / bool"]:
        assert words in res.stdout
    res = subprocess.run([sys.executable, "-m", "tracejit"], cwd=ROOT, capture_output=True,
                         text=True, env=env, timeout=60)
    assert res.returncode == 2 and "ir" in res.stdout
