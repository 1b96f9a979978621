"""Optimizers with TensorFlow 1.x's names and defaults and the update
equations of Hands-On ML, Chapter 11.

An optimizer is a pair of pure functions, so its update compiles into the
training step::

    opt = optim.adam(1e-3)
    opt_state = opt.init(params)                    # {"step": 0, "m": ..., "v": ...}
    params, opt_state = opt.update(grads, opt_state, params)

The state is a dict: the number of updates done (``"step"``, int32) and one
accumulator tree per slot, shaped like the parameters. ``learning_rate`` is
a number or a schedule (a function of the step, see :mod:`.schedules`),
evaluated at the state's step inside the compiled step; ``update(...,
learning_rate=lr)`` overrides it with a value passed into the step (a traced
scalar: performance scheduling changes it without recompiling).

Below ``g`` is the gradient, ``lr`` the learning rate, ``T`` the number of
the update (1 for the first).
"""
from __future__ import annotations

from .. import numpy as tnp
from ..tree import tree_flatten, tree_unflatten

__all__ = ["Optimizer", "sgd", "momentum", "adagrad", "rmsprop", "adam"]


class Optimizer:
    """``init(params) -> state`` and ``update(grads, state, params) -> (params, state)``
    from a per-array update rule.

    ``slots`` maps each accumulator's name to its initial value;
    ``rule(g, p, slots, lr, T) -> (new_p, new_slots)`` updates one array
    (``slots``: a dict of that array's accumulators, ``T``: the int32 number
    of this update, 1 for the first).
    """

    def __init__(self, name, learning_rate, slots, rule, **hyperparameters):
        self.name = name
        self.learning_rate = learning_rate
        self.slots = dict(slots)
        self.rule = rule
        self.hyperparameters = hyperparameters

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in
                         {"learning_rate": self.learning_rate, **self.hyperparameters}.items())
        return f"{self.name}({args})"

    def init(self, params):
        state = {"step": tnp.zeros((), "int32")}
        leaves, treedef = tree_flatten(params)
        for slot, value in self.slots.items():
            state[slot] = tree_unflatten(treedef, [
                tnp.full(tnp.shape(p), value, tnp.result_type_of(p)) for p in leaves])
        return state

    def learning_rate_at(self, step):
        """The learning rate of the update that follows ``step`` updates."""
        return self.learning_rate(step) if callable(self.learning_rate) else self.learning_rate

    def update(self, grads, state, params, *, learning_rate=None):
        leaves, treedef = tree_flatten(params)
        g_leaves, g_def = tree_flatten(grads)
        if g_def != treedef:
            raise ValueError(f"{self.name}.update: the gradients' structure {g_def} differs "
                             f"from the parameters' {treedef}")
        step = state["step"]
        lr = self.learning_rate_at(step) if learning_rate is None else learning_rate
        slots = {name: tree_flatten(state[name])[0] for name in self.slots}
        new_leaves, new_slots = [], {name: [] for name in self.slots}
        for i, (p, g) in enumerate(zip(leaves, g_leaves)):
            p_new, s_new = self.rule(g, p, {name: s[i] for name, s in slots.items()}, lr,
                                     step + 1)
            dtype = tnp.result_type_of(p)
            new_leaves.append(tnp.astype(p_new, dtype))
            for name in self.slots:
                new_slots[name].append(tnp.astype(s_new[name], dtype))
        new_state = {"step": step + 1}
        for name, values in new_slots.items():
            new_state[name] = tree_unflatten(treedef, values)
        return tree_unflatten(treedef, new_leaves), new_state


def sgd(learning_rate):
    """Gradient descent: ``p <- p - lr * g``."""
    return Optimizer("sgd", learning_rate, {}, lambda g, p, s, lr, t: (p - lr * g, {}))


def momentum(learning_rate, momentum=0.9, use_nesterov=False):
    """Momentum optimization (Equation 11-4), slot ``"momentum"`` (m, from 0)::

        m <- momentum * m + lr * g
        p <- p - m

    With a constant learning rate this is TensorFlow's MomentumOptimizer
    (whose accumulator is ``m / lr``); under a schedule, each gradient
    keeps the learning rate of its own step.

    ``use_nesterov``: Nesterov accelerated gradient (Equation 11-5) in the
    form that needs no second forward pass (TensorFlow's): the parameters
    held are the look-ahead point ``theta - momentum * m`` at which the
    gradient is taken, and then the update is::

        m <- momentum * m + lr * g
        p <- p - momentum * m - lr * g

    (With the book's sign convention, ``theta <- theta - m``, the look-ahead
    point is ``theta - momentum * m``; Equation 11-5's ``theta + beta m``
    belongs to the convention ``theta <- theta + m`` of its second edition.)
    """
    beta = momentum

    def rule(g, p, s, lr, t):
        m = beta * s["momentum"] + lr * g
        step = beta * m + lr * g if use_nesterov else m
        return p - step, {"momentum": m}
    return Optimizer("momentum", learning_rate, {"momentum": 0.0}, rule,
                     momentum=momentum, use_nesterov=use_nesterov)


def adagrad(learning_rate, initial_accumulator_value=0.1, epsilon=1e-10):
    """AdaGrad (Equation 11-6), slot ``"accumulator"`` (s, from
    ``initial_accumulator_value`` as TensorFlow)::

        s <- s + g * g
        p <- p - lr * g / sqrt(s + epsilon)
    """
    def rule(g, p, s, lr, t):
        acc = s["accumulator"] + g * g
        return p - lr * g / tnp.sqrt(acc + epsilon), {"accumulator": acc}
    return Optimizer("adagrad", learning_rate, {"accumulator": initial_accumulator_value}, rule,
                     initial_accumulator_value=initial_accumulator_value, epsilon=epsilon)


def rmsprop(learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10):
    """RMSProp (Equation 11-7), slot ``"rms"`` (s, from 0)::

        s <- decay * s + (1 - decay) * g * g
        p <- p - lr * g / sqrt(s + epsilon)

    With ``momentum`` > 0 the step goes through a momentum slot
    ``"momentum"`` as in TensorFlow: ``m <- momentum * m + lr * g / sqrt(s +
    epsilon); p <- p - m``.

    TensorFlow 1.x starts ``s`` at 1, which damps the first steps; we start
    it at 0, as the book's equation and Keras do, so the first step is
    about ``lr / sqrt(1 - decay)`` in each coordinate.
    """
    slots = {"rms": 0.0}
    if momentum:
        slots["momentum"] = 0.0

    def rule(g, p, s, lr, t):
        rms = decay * s["rms"] + (1 - decay) * g * g
        step = lr * g / tnp.sqrt(rms + epsilon)
        if not momentum:
            return p - step, {"rms": rms}
        m = momentum * s["momentum"] + step
        return p - m, {"rms": rms, "momentum": m}
    return Optimizer("rmsprop", learning_rate, slots, rule, decay=decay, momentum=momentum,
                     epsilon=epsilon)


def adam(learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """Adam (Equation 11-8), slots ``"m"`` and ``"v"`` (from 0)::

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g * g
        p <- p - lr * m_hat / (sqrt(v_hat) + epsilon)
             with m_hat = m / (1 - beta1**T), v_hat = v / (1 - beta2**T)

    ``epsilon`` is outside the square root, as in the Adam paper (the book's
    equation writes ``sqrt(v_hat + epsilon)``, which with epsilon = 1e-8
    floors the denominator at 1e-4); so the first step is
    ``-lr * g / (|g| + epsilon)``, about ``-lr * sign(g)``. TensorFlow adds
    epsilon to ``sqrt(v)`` before the bias correction, which differs by a
    factor ``sqrt(1 - beta2**T)`` on epsilon only.
    """
    def rule(g, p, s, lr, t):
        m = beta1 * s["m"] + (1 - beta1) * g
        v = beta2 * s["v"] + (1 - beta2) * g * g
        t = tnp.astype(t, tnp.result_type_of(p))
        m_hat = m / (1 - tnp.power(beta1, t))
        v_hat = v / (1 - tnp.power(beta2, t))
        return p - lr * m_hat / (tnp.sqrt(v_hat) + epsilon), {"m": m, "v": v}
    return Optimizer("adam", learning_rate, {"m": 0.0, "v": 0.0}, rule,
                     beta1=beta1, beta2=beta2, epsilon=epsilon)
