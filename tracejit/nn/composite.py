"""Models made of layers: ``Sequential``, ``ResidualUnit`` (ResNet) and
``Inception`` (GoogLeNet).

A composite names its children (``"conv1"``, ``"conv2"``, ``"dense1"``: the
child's ``default_name`` and its index among the children of that kind,
unless the child was given ``name=``) and nests their parameters and state
under those names; children without parameters (or state) take no entry.

``Sequential.split(i)`` and ``Sequential.split_params(params, i)`` cut a
model (and its parameters or state) into its lower and upper layers, e.g.
to cache the outputs of frozen pretrained layers (transfer learning).
"""
from __future__ import annotations

import operator

from .. import numpy as tnp
from ..naming import name_scope, valid_scope_name
from . import functional as F
from .layers import Activation, BatchNorm, Conv2D, Layer, MaxPool2D, split_key

__all__ = ["Sequential", "ResidualUnit", "BottleneckUnit", "Inception"]


def _name_children(layers):
    counts, names = {}, []
    for layer in layers:
        if not isinstance(layer, Layer):
            raise TypeError(f"expected tracejit.nn layers, got {type(layer).__name__}")
        counts[layer.default_name] = counts.get(layer.default_name, 0) + 1
        names.append(layer.name or f"{layer.default_name}{counts[layer.default_name]}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"two layers are named {duplicates[0]!r}; give each a unique name=")
    return list(zip(names, layers))


class Composite(Layer):
    """A layer made of named child layers (see the module docstring)."""

    def __init__(self, layers, name=None):
        super().__init__(name)
        self.children = _name_children(layers)

    @property
    def has_state(self):
        return any(layer.has_state for _, layer in self.children)

    def __getitem__(self, name):
        """The child layer called ``name``."""
        for n, layer in self.children:
            if n == name:
                return layer
        raise KeyError(f"no layer named {name!r}; the layers are {[n for n, _ in self.children]}")

    def _build_children(self, key, input_shapes):
        """``(params, state)`` of the children, each built on its input shape."""
        params, state = {}, {}
        for (name, layer), k, shape in zip(self.children, split_key(key, len(self.children)),
                                           input_shapes):
            p, s = layer.build(k, shape)
            if p:
                params[name] = p
            if s:
                state[name] = s
        return params, state

    @staticmethod
    def _call_child(name, layer, params, state, new_state, x, train, key):
        with name_scope(valid_scope_name(name)):   # the child's values are named "name/..."
            y, s = layer.call(params.get(name, {}), state.get(name, {}), x, train, key)
        if s:
            new_state[name] = s
        return y


class Sequential(Composite):
    """Layers applied one after the other."""

    default_name = "sequential"
    scoped = False

    def __init__(self, layers, *, name=None):
        super().__init__(list(layers), name)

    @property
    def layers(self):
        return [layer for _, layer in self.children]

    def _shapes(self, input_shape):
        shapes = [tuple(input_shape)]
        for _, layer in self.children:
            shapes.append(tuple(layer.output_shape(shapes[-1])))
        return shapes

    def output_shape(self, input_shape):
        return self._shapes(input_shape)[-1]

    def build(self, key, input_shape):
        return self._build_children(key, self._shapes(input_shape)[:-1])

    def call(self, params, state, x, train, key):
        new_state = {}
        for (name, layer), k in zip(self.children, split_key(key, len(self.children))):
            x = self._call_child(name, layer, params, state, new_state, x, train, k)
        return x, new_state

    # --- splitting (transfer learning: cache the frozen lower layers' outputs) ---
    def _index(self, i) -> int:
        """``i`` (an int, negative from the end, or a layer's name) as a split
        point in ``0..len(layers)``: the upper part starts at that layer."""
        n = len(self.children)
        if isinstance(i, str):
            names = [name for name, _ in self.children]
            if i not in names:
                raise KeyError(f"no layer named {i!r}; the layers are {names}")
            return names.index(i)
        try:
            if isinstance(i, bool):
                raise TypeError
            i = operator.index(i)
        except TypeError:
            raise TypeError(f"split point must be an int or a layer name, got {i!r}") from None
        j = i + n if i < 0 else i
        if not 0 <= j <= n:
            raise IndexError(f"split point {i} is out of range for {n} layers")
        return j

    @classmethod
    def _of_children(cls, children, name=None) -> "Sequential":
        """A Sequential of already-named children (their names are kept)."""
        model = cls.__new__(cls)
        Layer.__init__(model, name)
        model.children = list(children)
        return model

    def split(self, i):
        """``(lower, upper)``: two Sequentials of ``layers[:i]`` and
        ``layers[i:]`` (``i`` may be negative, or the name of the first upper
        layer), so that, with ``lower_params, upper_params =
        model.split_params(params, i)``::

            upper.apply(upper_params, lower.apply(lower_params, x)) == model.apply(params, x)

        The layers keep their names in both parts (``"hidden3"`` stays
        ``"hidden3"``), so the parts' parameter dicts are sub-dicts of the
        whole model's and ``{**lower_params, **upper_params}`` is ``params``
        again.  Typical use, transfer learning: run the frozen ``lower``
        layers once over the data, then train only ``upper`` on the cached
        outputs (``upper.init(key, lower.output_shape(input_shape))`` for a
        fresh head, or the pretrained ``upper_params``).

        With ``train=True`` and a ``key``, the parts draw their dropout masks
        from other subkeys than the whole model does (same distribution,
        different values).
        """
        j = self._index(i)
        return (Sequential._of_children(self.children[:j]),
                Sequential._of_children(self.children[j:]))

    def split_params(self, params, i):
        """``(lower_params, upper_params)``: the entries of ``params`` that
        belong to ``layers[:i]`` and to ``layers[i:]`` (see :meth:`split`).
        Works the same for the model's ``state`` (batch-norm moving
        averages)."""
        j = self._index(i)
        names = [name for name, _ in self.children]
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise KeyError(f"params has entries {unknown} that are not layers of this model "
                           f"(its layers are {names})")
        lower = {name: params[name] for name in names[:j] if name in params}
        upper = {name: params[name] for name in names[j:] if name in params}
        return lower, upper


class ResidualUnit(Composite):
    """A ResNet residual unit (Hands-On ML Figure 13-13 and 13-14):
    ``relu(main(x) + shortcut(x))``.

    ``main``: 3x3 conv (``strides``) -> batch norm -> ReLU -> 3x3 conv -> batch
    norm, all SAME, convolutions without bias (batch norm's offset replaces
    it). ``shortcut``: the identity when the unit keeps the shape, else (a
    stride above 1 or a new depth) a 1x1 convolution with ``strides`` and
    ``filters`` maps followed by batch norm, the usual projection shortcut.
    Parameters and state: ``{"main": {"conv1", "batch_norm1", "conv2",
    "batch_norm2"}, "shortcut": {"conv1", "batch_norm1"}}`` (no
    ``"shortcut"`` entry for the identity).
    """

    default_name = "residual_unit"

    def __init__(self, filters, strides=1, *, activation="relu", name=None):
        self.filters, self.strides = int(filters), int(strides)
        main = Sequential([
            Conv2D(filters, 3, strides, "SAME", use_bias=False), BatchNorm(),
            Activation(activation),
            Conv2D(filters, 3, 1, "SAME", use_bias=False), BatchNorm()], name="main")
        shortcut = Sequential([Conv2D(filters, 1, strides, "SAME", use_bias=False), BatchNorm()],
                              name="shortcut")
        super().__init__([main, shortcut], name)
        self.main, self.shortcut = main, shortcut
        self.activation = F.get_activation(activation)

    def projects(self, input_shape) -> bool:
        """Whether the shortcut is a projection for inputs of this (example) shape."""
        return self.strides != 1 or input_shape[-1] != self.filters

    def output_shape(self, input_shape):
        return self.main.output_shape(input_shape)

    def build(self, key, input_shape):
        k_main, k_short = split_key(key, 2)
        params, state = {}, {}
        params["main"], state["main"] = self.main.build(k_main, input_shape)
        if self.projects(input_shape):
            params["shortcut"], state["shortcut"] = self.shortcut.build(k_short, input_shape)
        return params, state

    def call(self, params, state, x, train, key):
        new_state = {}
        y = self._call_child("main", self.main, params, state, new_state, x, train, key)
        if self.projects(tnp.shape(x)[1:]):
            x = self._call_child("shortcut", self.shortcut, params, state, new_state, x,
                                 train, key)
        return self.activation(y + x), new_state


class BottleneckUnit(ResidualUnit):
    """A ResNet-152 residual unit (Hands-On ML Ch. 13): ``relu(main(x) +
    shortcut(x))`` with ``main`` a 1x1 convolution to ``filters`` maps (the
    bottleneck), a 3x3 one (``strides``), and a 1x1 one back to ``4 *
    filters`` maps, each followed by batch norm (ReLU after the first two);
    the shortcut projects (1x1 convolution with ``strides`` to ``4 *
    filters`` maps, batch norm) when the shape changes.  Parameters as
    :class:`ResidualUnit`'s, with ``conv1..3`` and ``batch_norm1..3`` in
    ``main``."""

    default_name = "bottleneck_unit"

    def __init__(self, filters, strides=1, *, activation="relu", name=None):
        self.filters, self.strides = int(filters), int(strides)
        out = 4 * self.filters
        main = Sequential([
            Conv2D(filters, 1, 1, "SAME", use_bias=False), BatchNorm(), Activation(activation),
            Conv2D(filters, 3, strides, "SAME", use_bias=False), BatchNorm(),
            Activation(activation),
            Conv2D(out, 1, 1, "SAME", use_bias=False), BatchNorm()], name="main")
        shortcut = Sequential([Conv2D(out, 1, strides, "SAME", use_bias=False), BatchNorm()],
                              name="shortcut")
        Composite.__init__(self, [main, shortcut], name)
        self.main, self.shortcut = main, shortcut
        self.activation = F.get_activation(activation)

    def projects(self, input_shape) -> bool:
        return self.strides != 1 or input_shape[-1] != 4 * self.filters


class Inception(Composite):
    """A GoogLeNet inception module (Hands-On ML Figure 13-10): four branches
    on the same input, concatenated along the channels in this order:

    - ``branch_1x1``: 1x1 conv with ``filters_1x1`` maps;
    - ``branch_3x3``: 1x1 conv (``filters_3x3_reduce``) -> 3x3 conv (``filters_3x3``);
    - ``branch_5x5``: 1x1 conv (``filters_5x5_reduce``) -> 5x5 conv (``filters_5x5``);
    - ``branch_pool``: 3x3 max pool (stride 1) -> 1x1 conv (``filters_pool_proj``).

    Every convolution has stride 1, SAME padding and ReLU, so the output
    keeps the input's height and width and has
    ``filters_1x1 + filters_3x3 + filters_5x5 + filters_pool_proj`` channels.
    """

    default_name = "inception"

    def __init__(self, filters_1x1, filters_3x3_reduce, filters_3x3, filters_5x5_reduce,
                 filters_5x5, filters_pool_proj, *, name=None):
        def conv(filters, size):
            return Conv2D(filters, size, 1, "SAME", activation="relu")
        branches = [
            Sequential([conv(filters_1x1, 1)], name="branch_1x1"),
            Sequential([conv(filters_3x3_reduce, 1), conv(filters_3x3, 3)], name="branch_3x3"),
            Sequential([conv(filters_5x5_reduce, 1), conv(filters_5x5, 5)], name="branch_5x5"),
            Sequential([MaxPool2D(3, 1, "SAME"), conv(filters_pool_proj, 1)],
                       name="branch_pool")]
        super().__init__(branches, name)

    def output_shape(self, input_shape):
        shapes = [layer.output_shape(input_shape) for _, layer in self.children]
        return tuple(shapes[0][:-1]) + (sum(s[-1] for s in shapes),)

    def build(self, key, input_shape):
        return self._build_children(key, [input_shape] * len(self.children))

    def call(self, params, state, x, train, key):
        new_state = {}
        outputs = [self._call_child(name, layer, params, state, new_state, x, train, k)
                   for (name, layer), k in zip(self.children, split_key(key, len(self.children)))]
        return tnp.concatenate(outputs, axis=-1), new_state
