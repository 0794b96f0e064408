"""The project's one confusion-matrix figure: the app's Models tab shows it, ``tsnet report`` saves it as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["confusion_figure"]


def confusion_figure(matrix: Sequence[Sequence[float]] | None, labels: Sequence[str], title: str) -> Figure | None:
    """True rows, predicted columns, shaded by row share (a colour bar gives the scale) with counts in the cells;
    ``None`` for an empty matrix. A plain ``Figure`` (no pyplot): safe in server threads, ``savefig`` writes it."""
    if matrix is None or len(matrix) == 0:
        return None
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure = Figure(figsize=(6, 5), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(labels))
    axes.set_xticks(ticks, labels, rotation=45, ha="right")
    axes.set_yticks(ticks, labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    for row in range(counts.shape[0]):
        for column in range(counts.shape[1]):
            colour = "white" if shares[row, column] > 0.5 else "black"
            axes.text(column, row, f"{counts[row, column]:.0f}", ha="center", va="center", color=colour, fontsize=8)
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the true class")
    return figure
