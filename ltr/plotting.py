"""Figures drawn with matplotlib's Agg canvas (no display, no pyplot global state),
written atomically as PNG. Every report in ltr draws through these two functions."""

from __future__ import annotations

from pathlib import Path

from ltr.io import atomic_path


def new_figure(width: float = 7.0, height: float = 4.2):
    """A matplotlib ``Figure`` attached to an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | Path) -> Path:
    """Lay out ``fig`` and write it as PNG to ``path`` atomically."""
    path = Path(path)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
