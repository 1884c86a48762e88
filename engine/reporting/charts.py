"""The canvas every PNG chart is drawn on (budget, campaign and programme reports): matplotlib, no screen."""

from __future__ import annotations

import io

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
#: the colours of plan, approved and actual, the same on every chart
PLAN = "#4c72b0"
APPROVED = "#8c8c8c"
ACTUAL = "#dd8452"


def new_figure(width: float = 8.0, height: float = 4.0) -> tuple[Figure, Axes]:
    """A figure with one set of axes, drawn by Agg (no display needed)."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def png_bytes(figure: Figure, *, legend: bool = True, legend_columns: int = 3) -> bytes:
    """The figure as PNG bytes (no timestamp, so the same chart gives the same bytes), legend below."""
    if legend and figure.axes and figure.axes[0].get_legend_handles_labels()[0]:
        figure.legend(loc="outside lower center", ncols=legend_columns, frameon=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def empty_chart(axis: Axes, title: str, note: str) -> None:
    """A chart with nothing to show: its title and why."""
    axis.set_title(title)
    axis.text(0.5, 0.5, note, ha="center", va="center", transform=axis.transAxes, color="#555555")
    axis.set_xticks([])
    axis.set_yticks([])
