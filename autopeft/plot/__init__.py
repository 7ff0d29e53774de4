"""``autopeft plot``: a study's trials against trainable parameters or peak memory.

:func:`plot_data` prepares what is drawn (points, the front's step line, error bars, the
strip of trials without a metric); :func:`write_plot` draws it with matplotlib (PNG/SVG) or
plotly (HTML). Importing this package loads numpy only.
"""

from __future__ import annotations

from autopeft.plot.data import X_AXES, PlotData, Point, plot_data, step_line, study_plot_data
from autopeft.plot.render import SUFFIXES, write_plot

__all__ = ["SUFFIXES", "X_AXES", "PlotData", "Point", "plot_data", "step_line", "study_plot_data",
           "write_plot"]
