"""tracejit.memory_estimate against the arithmetic of Hands-On ML Ch. 13
("Memory Requirements" and exercise 2) and against hand-counted plans."""
import types

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import cli, nn, random

F32 = 4


def spec(*shape):
    return types.SimpleNamespace(shape=shape, dtype=np.float32)


def exercise_cnn():
    # three 3x3 stride-2 SAME convolutions with 100, 200 and 400 maps, 200x300 RGB
    return nn.Sequential([nn.Conv2D(n, 3, 2, "SAME", activation="relu") for n in (100, 200, 400)])


@pytest.fixture(scope="module")
def cnn():
    model = exercise_cnn()
    params = model.init(random.key(0), (200, 300, 3))
    return model, params


def test_inference_needs_two_consecutive_layers(cnn):
    model, params = cnn
    assert nn.count_params(params) == 903_400
    layer = [100 * 150 * 100 * F32, 50 * 75 * 200 * F32, 25 * 38 * 400 * F32]   # 6, 3, 1.52 MB
    est = tracejit.memory_estimate(model.apply, params, spec(1, 200, 300, 3))
    assert est.inputs == 903_400 * F32 + 200 * 300 * 3 * F32
    assert est.outputs == layer[2]
    # the peak: the first layer's output while the second is computed (bias
    # and ReLU are written over the convolution's output)
    assert est.intermediates_at_peak == layer[0] + layer[1]
    assert est.peak == est.inputs + layer[0] + layer[1] == int(est)
    assert est.peak_primitive == "conv_general"
    assert est.all_intermediates == sum(layer)


def test_training_keeps_every_layer(cnn):
    model, params = cnn
    batch = 50
    infer = tracejit.memory_estimate(model.apply, params, spec(batch, 200, 300, 3))

    def loss(p, x):
        return tnp.mean(tnp.square(model.apply(p, x)))
    train = tracejit.memory_estimate(tracejit.value_and_grad(loss), params,
                                     spec(batch, 200, 300, 3))
    every_layer = batch * (100 * 150 * 100 + 50 * 75 * 200 + 25 * 38 * 400) * F32   # 525 MB
    assert train.intermediates_at_peak >= every_layer
    assert train.peak > infer.peak + every_layer / 2
    assert train.outputs == 903_400 * F32 + F32      # the gradients and the loss
    # mode="train": the forward and backward pass of the model itself
    trained = tracejit.memory_estimate(model.apply, params, spec(batch, 200, 300, 3),
                                       mode="train")
    assert trained.intermediates_at_peak >= every_layer
    assert trained.outputs == 903_400 * F32             # the parameters' gradients
    with pytest.raises(ValueError, match="mode"):
        tracejit.memory_estimate(model.apply, params, spec(1, 200, 300, 3), mode="fit")


def test_one_conv_layer_of_a_batch_of_100_is_over_a_gigabyte():
    # 5x5 filters, 200 maps of 150x100, stride 1, SAME, on 150x100 RGB images
    layer = nn.Conv2D(200, 5, 1, "SAME")
    params = layer.init(random.key(0), (150, 100, 3))
    assert nn.count_params(params) == 15_200
    one = tracejit.memory_estimate(layer.apply, params, spec(1, 150, 100, 3))
    assert one.outputs == 200 * 150 * 100 * F32 == 12_000_000       # "about 11.4 MB"
    hundred = tracejit.memory_estimate(layer.apply, params, spec(100, 150, 100, 3))
    assert hundred.peak > 2 ** 30                                    # "over 1 GB"


def test_hand_counted_chain_and_views():
    def f(x, w):
        h = tnp.tanh(x @ w)                  # dot output, tanh over it in place
        return tnp.reshape(h, (-1,)) * 2.0   # reshape is a view
    x = np.zeros((8, 16), np.float32)
    w = np.zeros((16, 32), np.float32)
    est = tracejit.memory_estimate(f, x, w)
    assert est.inputs == x.nbytes + w.nbytes
    assert est.outputs == 8 * 32 * F32
    # the flat result has another type than the dot's output: two buffers
    assert est.peak == est.inputs + 2 * 8 * 32 * F32
    # same shape: the kernel writes tanh(.) * 2 over the dot's output
    same = tracejit.memory_estimate(lambda x, w: tnp.tanh(x @ w) * 2.0, x, w)
    assert same.peak == same.inputs + 8 * 32 * F32 and same.all_intermediates == 8 * 32 * F32


def test_control_flow_and_scalars():
    def f(x):
        return tracejit.fori_loop(0, 3, lambda i, c: tnp.tanh(c) * 2.0, x)
    est = tracejit.memory_estimate(f, np.zeros((64,), np.float32))
    assert est.peak >= est.inputs + est.outputs
    assert tracejit.memory_estimate(lambda a: a * 2, 3.0).outputs <= 8
    assert "peak" in str(est) and est.lines()[0].startswith("# memory: peak")


def test_ir_stats_print_the_estimate(tmp_path, capsys):
    path = tmp_path / "net.py"
    path.write_text("import tracejit.numpy as tnp\n\n"
                    "def f(x, w):\n    return tnp.tanh(x @ w)\n")
    code = cli.main(["ir", f"{path}:f", "--arg", "x=f32[8,16]", "--arg", "w=f32[16,32]",
                     "--stats"])
    out = capsys.readouterr().out
    assert code == 0
    line = [ln for ln in out.splitlines() if ln.startswith("# memory: peak")][0]
    expected = int(tracejit.memory_estimate(lambda x, w: tnp.tanh(x @ w),
                                            np.zeros((8, 16), np.float32),
                                            np.zeros((16, 32), np.float32)))
    assert f"({expected} bytes)" in line
    code = cli.main(["ir", f"{path}:f", "--arg", "x=f32[8,16]", "--arg", "w=f32[16,32]",
                     "--stats", "--stage", "fused"])
    assert f"({expected} bytes)" in capsys.readouterr().out
