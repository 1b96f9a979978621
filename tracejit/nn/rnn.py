"""Recurrent cells with TensorFlow 1.x's equations and variable names,
:func:`dynamic_rnn` over a sequence, and the :class:`RNN` layer.

A cell is driven one time step at a time, so it also fits a hand-written
``tracejit.scan``::

    cell = nn.LSTMCell(64)
    params = cell.init(key, (n_features,))
    state = cell.initial_state(batch_size)
    state, output = cell.apply(params, state, x_t)          # x_t: [batch, n_features]
    outputs, final_state = nn.dynamic_rnn(cell, params, x)  # x: [batch, time, n_features]

- ``BasicRNNCell(num_units, activation=tanh)``: ``h = act([x, h] @ kernel + bias)``.
- ``LSTMCell(num_units, use_peepholes=False, forget_bias=1.0)``: one kernel
  ``[inputs + units, 4 units]`` for the gates in TensorFlow's order
  ``i, j, f, o`` (input, candidate, forget, output); ``forget_bias`` is added
  to the forget gate's pre-activation (the bias variable starts at zero);
  peepholes ``w_i_diag``, ``w_f_diag``, ``w_o_diag`` (Gers and Schmidhuber)
  add ``w * c`` to the gates, the output gate seeing the *new* cell. The
  state is ``LSTMStateTuple(c, h)``.
- ``GRUCell(num_units)``: ``gates/kernel`` gives the reset and update gates
  ``r, u`` (bias starting at 1.0, as TensorFlow), ``candidate/kernel`` the
  candidate ``act([x, r * h] @ W + b)``; ``h = u * h + (1 - u) * candidate``.

Kernels start Glorot-uniform and biases at zero, TensorFlow's defaults.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import numpy as tnp
from ..control import scan
from ..errors import ShapeError
from ..ir.dims import Dim
from ..tree import tree_map
from . import functional as F
from .layers import Layer, init_param, split_key

__all__ = ["RNNCell", "BasicRNNCell", "LSTMCell", "GRUCell", "LSTMStateTuple",
           "dynamic_rnn", "RNN"]

LSTMStateTuple = namedtuple("LSTMStateTuple", ["c", "h"])


class RNNCell:
    """A recurrent cell: ``init(key, input_shape) -> params``,
    ``initial_state(batch_size) -> state`` (zeros) and
    ``apply(params, state, x) -> (new_state, output)`` for one time step."""

    def __init__(self, num_units, activation="tanh", kernel_initializer="glorot_uniform",
                 dtype=np.float32):
        self.num_units = int(num_units)
        self.activation = F.get_activation(activation)
        self.kernel_initializer = kernel_initializer
        self.dtype = dtype

    @property
    def output_size(self):
        return self.num_units

    def initial_state(self, batch_size, dtype=None):
        if not isinstance(batch_size, Dim):   # a symbolic batch size stays symbolic
            batch_size = int(batch_size)
        return tnp.zeros((batch_size, self.num_units), dtype or self.dtype)

    def _input_size(self, input_shape):
        if isinstance(input_shape, (int, np.integer)):
            return int(input_shape)
        if not input_shape:
            raise ShapeError("a cell's input_shape needs a feature dimension, got ()")
        return int(input_shape[-1])

    def _kernel(self, key, rows, cols):
        return init_param(self.kernel_initializer, key, (rows, cols), self.dtype)


class BasicRNNCell(RNNCell):
    def init(self, key, input_shape):
        n = self.num_units
        return {"kernel": self._kernel(key, self._input_size(input_shape) + n, n),
                "bias": tnp.zeros((n,), self.dtype)}

    def apply(self, params, state, x):
        h = self.activation(tnp.concatenate([x, state], axis=1) @ params["kernel"]
                            + params["bias"])
        return h, h


class LSTMCell(RNNCell):
    def __init__(self, num_units, use_peepholes=False, forget_bias=1.0, activation="tanh",
                 kernel_initializer="glorot_uniform", dtype=np.float32):
        super().__init__(num_units, activation, kernel_initializer, dtype)
        self.use_peepholes = use_peepholes
        self.forget_bias = forget_bias

    def initial_state(self, batch_size, dtype=None):
        zeros = super().initial_state(batch_size, dtype)
        return LSTMStateTuple(zeros, zeros)

    def init(self, key, input_shape):
        n = self.num_units
        keys = split_key(key, 4)
        params = {"kernel": self._kernel(keys[0], self._input_size(input_shape) + n, 4 * n),
                  "bias": tnp.zeros((4 * n,), self.dtype)}
        if self.use_peepholes:
            for k, name in zip(keys[1:], ("w_f_diag", "w_i_diag", "w_o_diag")):
                params[name] = init_param(self.kernel_initializer, k, (n,), self.dtype)
        return params

    def apply(self, params, state, x):
        c_prev, h_prev = state
        z = tnp.concatenate([x, h_prev], axis=1) @ params["kernel"] + params["bias"]
        i, j, f, o = tnp.split(z, 4, axis=1)
        f = f + self.forget_bias
        if self.use_peepholes:
            i = i + params["w_i_diag"] * c_prev
            f = f + params["w_f_diag"] * c_prev
        c = F.sigmoid(f) * c_prev + F.sigmoid(i) * self.activation(j)
        if self.use_peepholes:
            o = o + params["w_o_diag"] * c
        h = F.sigmoid(o) * self.activation(c)
        return LSTMStateTuple(c, h), h


class GRUCell(RNNCell):
    def init(self, key, input_shape):
        n = self.num_units
        rows = self._input_size(input_shape) + n
        k1, k2 = split_key(key, 2)
        return {"gates": {"kernel": self._kernel(k1, rows, 2 * n),
                          "bias": tnp.ones((2 * n,), self.dtype)},
                "candidate": {"kernel": self._kernel(k2, rows, n),
                              "bias": tnp.zeros((n,), self.dtype)}}

    def apply(self, params, state, x):
        gates = params["gates"]
        rz = F.sigmoid(tnp.concatenate([x, state], axis=1) @ gates["kernel"] + gates["bias"])
        r, u = tnp.split(rz, 2, axis=1)
        cand = params["candidate"]
        c = self.activation(tnp.concatenate([x, r * state], axis=1) @ cand["kernel"]
                            + cand["bias"])
        h = u * state + (1 - u) * c
        return h, h


def dynamic_rnn(cell, params, inputs, initial_state=None, sequence_length=None,
                time_major=False):
    """Run ``cell`` over a sequence with one ``tracejit.scan`` (no unrolling).

    ``inputs``: ``[batch, time, features]`` (``[time, batch, features]`` with
    ``time_major``). Returns ``(outputs, final_state)``, outputs in the same
    layout as the inputs. With ``sequence_length`` (``[batch]`` ints), as in
    TensorFlow, example ``b``'s outputs from step ``sequence_length[b]`` on
    are zero and its state stops updating there, so ``final_state`` is the
    state after its last valid step.
    """
    xs = inputs if time_major else tnp.swapaxes(inputs, 0, 1)
    if tnp.ndim(xs) != 3:
        raise ShapeError(f"dynamic_rnn: inputs must be [batch, time, features], got shape "
                         f"{tnp.shape(inputs)}")
    steps, batch = tnp.shape(xs)[:2]
    if initial_state is None:
        initial_state = cell.initial_state(batch, tnp.result_type_of(xs))

    if sequence_length is None:
        def step(state, x):
            return cell.apply(params, state, x)
        final_state, outputs = scan(step, initial_state, xs)
    else:
        lengths = tnp.asarray(sequence_length)
        if tnp.shape(lengths) != (batch,):
            raise ShapeError(f"dynamic_rnn: sequence_length must have shape ({batch},), got "
                             f"{tnp.shape(lengths)}")

        def step(state, t_x):
            t, x = t_x
            new_state, output = cell.apply(params, state, x)
            valid = tnp.expand_dims(t < lengths, 1)
            state = tree_map(lambda new, old: tnp.where(valid, new, old), new_state, state)
            return state, tnp.where(valid, output, 0)
        final_state, outputs = scan(step, initial_state, (tnp.arange(steps), xs))
    return (outputs if time_major else tnp.swapaxes(outputs, 0, 1)), final_state


class RNN(Layer):
    """A cell over ``[batch, time, features]`` inputs as a layer: the last
    output ``[batch, units]``, or every output with ``return_sequences``.
    Its parameters are the cell's."""

    default_name = "rnn"

    def __init__(self, cell, return_sequences=False, *, name=None):
        super().__init__(name)
        self.cell, self.return_sequences = cell, return_sequences

    def output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ShapeError(f"RNN expects examples of shape (time, features), got "
                             f"{tuple(input_shape)}")
        units = self.cell.output_size
        return (input_shape[0], units) if self.return_sequences else (units,)

    def build(self, key, input_shape):
        return self.cell.init(key, input_shape), {}

    def call(self, params, state, x, train, key):
        outputs, _ = dynamic_rnn(self.cell, params, x)
        return (outputs if self.return_sequences else outputs[:, -1]), state
