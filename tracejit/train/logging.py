"""Training logs: TensorBoard event files, PNG learning curves, a progress bar.

* :class:`SummaryWriter` writes scalars and histograms through
  ``tensorboardX.SummaryWriter`` (so the event files are what TensorBoard
  reads), keeps the scalars in memory, and can draw them to a PNG with
  matplotlib's Agg canvas (no pyplot, no global backend switch).
* :class:`ProgressBar` is a small tqdm wrapper showing loss, accuracy and
  examples/s; it turns itself off when stderr is not a terminal or when
  ``disable=True``.

This module deliberately imports nothing else from :mod:`tracejit`.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections import defaultdict
from typing import IO, Iterable, Mapping

import numpy as np

__all__ = ["SummaryWriter", "ProgressBar", "tag_group"]


def tag_group(tag: str) -> str:
    """The plot group of a scalar tag: ``"loss"``, ``"accuracy"``, ``"learning rate"``,
    or else the tag's first ``/``-separated component.

    ``"train/loss"``, ``"loss/valid"`` and ``"xent_loss"`` all go to ``"loss"``.
    """
    words = [w for w in re.split(r"[/_.\s-]+", tag.lower()) if w]
    if any("loss" in w for w in words):
        return "loss"
    if any(w.startswith("acc") for w in words):
        return "accuracy"
    if "lr" in words or "learning" in words:
        return "learning rate"
    return tag.split("/", 1)[0]


class SummaryWriter:
    """Scalar/histogram logger on top of ``tensorboardX.SummaryWriter``.

    >>> w = SummaryWriter("runs/mnist")
    >>> w.scalar("train/loss", 0.31, step=100)
    >>> w.histogram("params/dense1/kernel", kernel, step=100)
    >>> w.plot("runs/mnist/curves.png"); w.close()

    ``history[tag]`` is the list of ``(step, value)`` pairs logged so far.
    """

    def __init__(self, logdir: str, *, flush_secs: int = 10, **kwargs):
        from tensorboardX import SummaryWriter as _TBXWriter

        self.logdir = str(logdir)
        self._writer = _TBXWriter(logdir=self.logdir, flush_secs=flush_secs, **kwargs)
        self.history: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self._closed = False

    def scalar(self, tag: str, value, step: int) -> None:
        value = float(np.asarray(value))
        step = int(step)
        self._writer.add_scalar(tag, value, global_step=step)
        self.history[tag].append((step, value))

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        """Log several scalars at one step: ``w.scalars({"loss": l, "lr": lr}, step)``."""
        for tag, value in values.items():
            self.scalar(tag, value, step)

    def histogram(self, tag: str, values, step: int, bins: str = "tensorflow") -> None:
        """Log a histogram of ``values``; non-finite entries are dropped (a
        diverging run should not crash its own logging)."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        arr = arr[np.isfinite(arr)]
        if arr.size == 0:
            return
        self._writer.add_histogram(tag, arr, global_step=int(step), bins=bins)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        if not self._closed:
            self._writer.close()
            self._closed = True

    def __enter__(self) -> "SummaryWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def plot(
        self,
        path: str,
        tags: Iterable[str] | None = None,
        *,
        title: str | None = None,
    ) -> str:
        """Draw the logged scalars to a PNG at ``path``: one subplot per tag
        group (see :func:`tag_group`), one line per tag.  Returns ``path``."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        selected = list(tags) if tags is not None else sorted(self.history)
        grouped: dict[str, list[str]] = {}
        for tag in selected:
            grouped.setdefault(tag_group(tag), []).append(tag)
        order = {"loss": 0, "accuracy": 1, "learning rate": 2}
        groups = dict(sorted(grouped.items(), key=lambda kv: (order.get(kv[0], 3), kv[0])))
        n = max(len(groups), 1)
        fig = Figure(figsize=(6.0, 2.6 * n))
        FigureCanvasAgg(fig)
        axes = fig.subplots(n, 1, squeeze=False)[:, 0]
        for ax, (group, group_tags) in zip(axes, groups.items()):
            positive = True
            for tag in group_tags:
                points = self.history.get(tag, [])
                if not points:
                    continue
                steps, values = zip(*points)
                ax.plot(steps, values, label=tag)
                positive = positive and all(v > 0 and math.isfinite(v) for v in values)
            ax.set_ylabel(group)
            ax.grid(True, alpha=0.3)
            if group == "learning rate" and positive:
                ax.set_yscale("log")
            if ax.lines:
                ax.legend(fontsize="small")
        if not groups:
            axes[0].text(0.5, 0.5, "no scalars logged", ha="center", va="center")
        axes[-1].set_xlabel("step")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
        return path


class ProgressBar:
    """tqdm progress bar over examples, showing loss/accuracy and examples/s.

    >>> bar = ProgressBar(total=60000, desc="epoch 1")
    >>> bar.update(batch_size, loss=0.3, accuracy=0.91)
    >>> bar.close()

    ``disable=None`` (default) disables the bar when writing to a stderr that
    is not a terminal (CI logs, redirected output); an explicit ``file`` stream
    is always written to unless ``disable=True``.  Metrics and the example count
    are tracked either way (``bar.n``, ``bar.metrics``, ``bar.rate``).
    """

    def __init__(
        self,
        total: int | None,
        desc: str | None = None,
        *,
        file: IO[str] | None = None,
        disable: bool | None = None,
        leave: bool = True,
        mininterval: float = 0.1,
    ):
        from tqdm import tqdm

        if disable is None:
            stream = sys.stderr if file is None else None
            disable = stream is not None and not _isatty(stream)
        self.disabled = bool(disable)
        self.metrics: dict[str, float] = {}
        self._bar = tqdm(
            total=total,
            desc=desc,
            file=file,
            disable=self.disabled,
            leave=leave,
            mininterval=mininterval,
            unit="ex",
            unit_scale=True,
            dynamic_ncols=file is None,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]",
        )
        self._n = 0
        self._start = time.perf_counter()

    @property
    def n(self) -> int:
        """Examples seen so far."""
        return self._n

    @property
    def rate(self) -> float:
        """Average examples per second since the bar was created."""
        elapsed = time.perf_counter() - self._start
        return self._n / elapsed if elapsed > 0 else 0.0

    def update(self, n_examples: int, **metrics) -> None:
        self._n += int(n_examples)
        for k, v in metrics.items():
            self.metrics[k] = float(np.asarray(v))
        if self.disabled:
            return
        parts = [f"{k}={v:.4g}" for k, v in self.metrics.items()]
        parts.append(f"{_fmt_rate(self.rate)} examples/s")
        self._bar.set_postfix_str(", ".join(parts), refresh=False)
        self._bar.update(int(n_examples))

    def close(self) -> None:
        if not self.disabled and self.metrics:
            # Final refresh so the closing line shows the final metrics and rate.
            parts = [f"{k}={v:.4g}" for k, v in self.metrics.items()]
            parts.append(f"{_fmt_rate(self.rate)} examples/s")
            self._bar.set_postfix_str(", ".join(parts), refresh=False)
        self._bar.close()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _fmt_rate(rate: float) -> str:
    if rate >= 1e6:
        return f"{rate / 1e6:.2f}M"
    if rate >= 1e4:
        return f"{rate / 1e3:.1f}k"
    return f"{rate:.1f}"
