"""Optimizers, schedules, gradient clipping, penalties, constraints and moving
averages, as pure functions that compile into the training step.

    opt = optim.adam(1e-3)                    # or sgd, momentum, adagrad, rmsprop
    opt_state = opt.init(params)
    params, opt_state = opt.update(grads, opt_state, params)

- Optimizers (:mod:`.optimizers`): ``sgd(learning_rate)``,
  ``momentum(learning_rate, momentum=0.9, use_nesterov=False)``,
  ``adagrad(learning_rate, initial_accumulator_value=0.1, epsilon=1e-10)``,
  ``rmsprop(learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10)``,
  ``adam(learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8)``;
  ``Optimizer`` to write another. The state holds the step count.
- Schedules (:mod:`.schedules`), usable as learning rates:
  ``piecewise_constant``, ``exponential_decay``, ``inverse_time_decay``
  (power scheduling); ``ReduceLROnPlateau`` (performance scheduling, host side).
- Gradients and constraints (:mod:`.clipping`): ``clip_by_value``,
  ``clip_by_global_norm``, ``global_norm``, ``clip_by_norm``, ``max_norm``.
- Penalties (:mod:`.penalties`): ``l1_penalty``, ``l2_penalty``.
- Moving averages (:mod:`.ema`): ``ExponentialMovingAverage``.
- Composition (:mod:`.wrappers`): ``chain`` (gradient transforms, optimizer,
  constraints), ``masked`` / ``freeze`` (train a subset chosen by name);
  ``select`` and ``matcher`` (:mod:`.names`) pick parameters by name.
"""
from .optimizers import Optimizer, sgd, momentum, adagrad, rmsprop, adam  # noqa: F401
from .schedules import (  # noqa: F401
    piecewise_constant, exponential_decay, inverse_time_decay, ReduceLROnPlateau)
from .clipping import (  # noqa: F401
    clip_by_value, global_norm, clip_by_global_norm, clip_by_norm, max_norm)
from .penalties import l1_penalty, l2_penalty  # noqa: F401
from .ema import ExponentialMovingAverage  # noqa: F401
from .wrappers import chain, masked, freeze  # noqa: F401
from .names import matcher, select  # noqa: F401
