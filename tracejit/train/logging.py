"""Training logs: TensorBoard event files, PNG learning curves, a progress bar.

* :class:`SummaryWriter` writes scalars, histograms and images through
  ``tensorboardX.SummaryWriter`` (so the event files are what TensorBoard
  reads), keeps the scalars in memory, and can draw them to a PNG with
  matplotlib's Agg canvas (no pyplot, no global backend switch).
* :func:`image_grid`, :func:`filter_grid` and :func:`feature_map_grid` tile
  a batch of images, a convolution kernel's filters, or one example's
  feature maps into one image (each tile scaled to its own range), what
  ``SummaryWriter.filters`` / ``feature_maps`` log.
* :class:`ProgressBar` is a small tqdm wrapper showing loss, accuracy and
  examples/s; it turns itself off when stderr is not a terminal or when
  ``disable=True``.

* ``SummaryWriter.add_graph(f, *example_args)`` writes ``f``'s IR as the
  TensorBoard graph (:mod:`.graph`, the only tracejit module this one uses).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import sys
import time
from collections import defaultdict
from typing import IO, Iterable, Mapping

import numpy as np

from .graph import graph_def, trace_graph

__all__ = ["SummaryWriter", "ProgressBar", "tag_group", "image_grid", "filter_grid",
           "feature_map_grid", "to_uint8"]


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


def to_uint8(image) -> np.ndarray:
    """An image as uint8: uint8 stays; bool gives 0/255; numbers are scaled
    from their own [min, max] to [0, 255] (a constant image gives 0; NaN
    and inf give 0), so filters and activations of any range show."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.any():
        return np.zeros(arr.shape, np.uint8)
    lo, hi = arr[finite].min(), arr[finite].max()
    scaled = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    return np.where(finite, np.round(scaled * 255), 0).astype(np.uint8)


def image_grid(images, *, columns: int | None = None, padding: int = 1) -> np.ndarray:
    """Tile ``images`` (``[n, h, w]`` or ``[n, h, w, c]`` with c = 1 or 3) into
    one uint8 ``[H, W, c]`` image, ``columns`` per row (default: a square-ish
    grid), with ``padding`` black pixels between tiles; each tile is scaled
    to its own range (:func:`to_uint8`)."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3) or arr.shape[0] == 0:
        raise ValueError(f"image_grid expects [n, h, w] or [n, h, w, 1 or 3] with n >= 1, "
                         f"got shape {np.shape(images)}")
    n, h, w, c = arr.shape
    columns = int(columns) if columns else math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.zeros((rows * (h + padding) - padding, columns * (w + padding) - padding, c),
                    np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        grid[r * (h + padding):r * (h + padding) + h,
             col * (w + padding):col * (w + padding) + w] = to_uint8(arr[i])
    return grid


def filter_grid(kernel, *, padding: int = 1) -> np.ndarray:
    """A convolution kernel ``[kh, kw, in, out]`` (HWIO, TensorFlow's layout) as
    one image: with 1 or 3 input channels, one tile per filter (grey or RGB:
    what a first layer learned); otherwise a grey tile per (filter, input
    channel) pair, one row per filter."""
    k = np.asarray(kernel)
    if k.ndim != 4:
        raise ValueError(f"filter_grid expects a conv2d kernel [height, width, in, out], "
                         f"got shape {k.shape}")
    kh, kw, cin, cout = k.shape
    if cin in (1, 3):
        return image_grid(np.transpose(k, (3, 0, 1, 2)), padding=padding)
    tiles = np.transpose(k, (3, 2, 0, 1)).reshape(cout * cin, kh, kw)
    return image_grid(tiles, columns=cin, padding=padding)


def feature_map_grid(maps, *, padding: int = 1) -> np.ndarray:
    """One example's feature maps ``[h, w, channels]`` (or a batch's first
    example, ``[1, h, w, channels]``) as a grid of grey tiles, one per channel."""
    m = np.asarray(maps)
    if m.ndim == 4 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 3:
        raise ValueError(f"feature_map_grid expects one example's maps [height, width, "
                         f"channels], got shape {np.shape(maps)}")
    return image_grid(np.transpose(m, (2, 0, 1)), padding=padding)


_WRITER_COUNT = itertools.count()


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
        # tensorboardX names an event file by the second and the host only, so a
        # second writer opened in the same second (a quick resume) would truncate
        # the first one's file: the process id and a count keep names unique.
        kwargs.setdefault("filename_suffix", f".{os.getpid()}.{next(_WRITER_COUNT)}")
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

    def image(self, tag: str, image, step: int) -> None:
        """Log one image, ``[h, w]`` or ``[h, w, 1 | 3 | 4]`` (uint8 as is, other
        types scaled to their range, see :func:`to_uint8`)."""
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
            raise ValueError(f"image {tag!r}: expected [height, width] or [height, width, "
                             f"1, 3 or 4 channels], got shape {np.shape(image)}")
        self._writer.add_image(tag, to_uint8(arr), global_step=int(step), dataformats="HWC")

    def images(self, tag: str, images, step: int, max_images: int = 3) -> None:
        """Log the first ``max_images`` of a batch ``[n, h, w, c]`` as
        ``tag/image/0``, ``tag/image/1``, ... (``tf.summary.image``'s names and
        default ``max_outputs=3``)."""
        arr = np.asarray(images)
        if arr.ndim != 4:
            raise ValueError(f"images {tag!r}: expected a batch [n, height, width, channels], "
                             f"got shape {arr.shape}")
        for i in range(min(int(max_images), arr.shape[0])):
            self.image(f"{tag}/image/{i}", arr[i], step)

    def filters(self, tag: str, kernel, step: int) -> None:
        """Log a conv2d kernel's filters as one image (:func:`filter_grid`)."""
        self.image(tag, filter_grid(kernel), step)

    def feature_maps(self, tag: str, maps, step: int) -> None:
        """Log one example's feature maps as one image (:func:`feature_map_grid`)."""
        self.image(tag, feature_map_grid(maps), step)

    def add_graph(self, f, *example_args, **example_kwargs):
        """Write the IR of ``f`` traced on the example arguments (arrays, or
        anything ``jit`` takes) as the run's TensorBoard graph (the Graphs
        tab: scopes as collapsible boxes, shapes on the edges).  Returns the
        traced Function."""
        fn, names = trace_graph(f, *example_args, **example_kwargs)
        self.add_graph_def(graph_def(fn, names))
        return fn

    def add_graph_def(self, graph) -> None:
        """Write a ``GraphDef`` protocol buffer (:func:`.graph.graph_def`)."""
        self._writer._get_file_writer().add_onnx_graph(graph)

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
