"""Figures and tables people read: the public plotting and writing helpers of labsched.

``pyplot()`` gives ``matplotlib.pyplot`` on the non-interactive Agg backend (matplotlib is
optional: ``pip install 'labsched[plot]'``); ``save_figure(fig, path)`` lays a figure out, writes
and closes it; ``write_csv`` and ``markdown_table`` write result rows.
"""

from __future__ import annotations

from labsched.envs._lib.reporting import markdown_table, pyplot, save_figure, write_csv

__all__ = ["markdown_table", "pyplot", "save_figure", "write_csv"]
