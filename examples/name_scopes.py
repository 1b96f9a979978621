"""Name scopes and the graph in TensorBoard (Hands-On ML Ch. 9-10): the book's
MNIST DNN written with ``tracejit.name_scope`` and ``name=``, so its IR and its
TensorBoard graph read like the chapter's figures.

Print the IR with its scoped names (``%dnn/hidden1/linear = dot_general ...``)::

    tracejit ir examples/name_scopes.py:loss \\
        --arg params.hidden1.kernel=f32[784,300] --arg params.hidden1.bias=f32[300] \\
        --arg params.hidden2.kernel=f32[300,100] --arg params.hidden2.bias=f32[100] \\
        --arg params.outputs.kernel=f32[100,10] --arg params.outputs.bias=f32[10] \\
        --arg x=f32[50,784] --arg y=i32[50] --stage simplified

(``python examples/name_scopes.py --print-ir`` prints it for you), draw it
with ``tracejit ir ... --dot | dot -Tsvg -o graph.svg``, or run this file to
write the graph of one training step to ``--logdir`` and open it with::

    tensorboard --logdir runs/name_scopes      # then the Graphs tab
"""
import argparse
import sys

import numpy as np

import tracejit
import tracejit.numpy as tnp
from tracejit import nn
from tracejit.train import SummaryWriter

SIZES = {"hidden1": (784, 300), "hidden2": (300, 100), "outputs": (100, 10)}


def init_params(seed=0):
    rng = np.random.default_rng(seed)
    return {name: {"kernel": (rng.standard_normal(shape) * np.sqrt(2 / shape[0])
                              ).astype(np.float32),
                   "bias": np.zeros(shape[1], np.float32)}
            for name, shape in SIZES.items()}


def neuron_layer(x, params, name, activation=None):
    """The book's ``neuron_layer``: one name scope per layer."""
    with tracejit.name_scope(name):
        z = tnp.add(tnp.dot(x, params["kernel"], name="linear"), params["bias"], name="z")
        return activation(z, name="act") if activation else z


def loss(params, x, y):
    with tracejit.name_scope("dnn"):
        h1 = neuron_layer(x, params["hidden1"], "hidden1", nn.relu)
        h2 = neuron_layer(h1, params["hidden2"], "hidden2", nn.relu)
        logits = neuron_layer(h2, params["outputs"], "outputs")
    with tracejit.name_scope("loss"):
        xentropy = nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        return tnp.mean(xentropy, name="loss")


def train_step(params, x, y, learning_rate=0.01):
    value, grads = tracejit.value_and_grad(loss)(params, x, y)   # grads: "gradients/..."
    with tracejit.name_scope("train"):
        params = tracejit.tree_map(lambda p, g: p - learning_rate * g, params, grads)
    return params, value


def main(argv=None):
    parser = argparse.ArgumentParser(prog="name_scopes.py", description=__doc__.split("\n")[0])
    parser.add_argument("--logdir", default="runs/name_scopes",
                        help="where the TensorBoard graph goes (default runs/name_scopes)")
    parser.add_argument("--print-ir", action="store_true",
                        help="print the simplified IR of one training step")
    args = parser.parse_args(argv)
    params = init_params()
    x = np.zeros((50, 784), np.float32)
    y = np.zeros(50, np.int32)
    with SummaryWriter(args.logdir) as writer:
        fn = writer.add_graph(train_step, params, x, y)
    named = sorted({v.name.split("/")[0] for ins in fn.body for v in ins.results if v.name})
    print(f"wrote the graph of one training step ({len(fn.body)} instructions; top-level "
          f"scopes {', '.join(named)}) to {args.logdir}; open it with: "
          f"tensorboard --logdir {args.logdir}")
    if args.print_ir:
        print(fn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
