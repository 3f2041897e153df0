"""Figures of the sweep chapters: metrics against a grid axis, one line per method, faceted.

Input rows come from :func:`csood.store.aggregate` (grouped by ``"method"``, the x field and the
facet fields); each line is the mean over seeds with a band from the minimum to the maximum seed.
Functions draw on axes they are given or return a new figure; none calls ``plt.show``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .store import plot_arrays

__all__ = ["METHOD_STYLE", "METRIC_LABELS", "method_label", "plot_metric_lines", "facet_figure",
           "legend_below"]

#: colour, marker and label per method, the same in every figure of the book.
METHOD_STYLE = {
    "fista_oracle": ("#000000", "o", "oracle FISTA"),
    "dl_fista": ("#1f77b4", "s", "DL-FISTA"),
    "softplus_adam": ("#17becf", "v", "Softplus-Adam"),
    "lista": ("#9467bd", "P", "LISTA"),
    "sae_relu": ("#d62728", "^", "SAE ReLU"),
    "sae_topk": ("#ff7f0e", "D", "SAE TopK"),
    "sae_jumprelu": ("#e377c2", "X", "SAE JumpReLU"),
    "sae_mp": ("#8c564b", "*", "SAE MP"),
    "linear_probe": ("#7f7f7f", "h", "linear probe"),
}
#: axis labels of the metrics
METRIC_LABELS = {"mcc_id": "MCC (ID)", "mcc_ood": "MCC (OOD)", "acc_ood": "accuracy (OOD)",
                 "auc_ood": "AUC (OOD)", "acc_val": "accuracy (val)", "auc_val": "AUC (val)",
                 "mcc_gap": "MCC ID - OOD"}


def method_label(method: str) -> str:
    """Display name of a method (the registry name when it has no style)."""
    return METHOD_STYLE.get(method, (None, None, method))[2]


def plot_metric_lines(ax, rows: Sequence[dict], x: str, metric: str, *, methods: Sequence[str],
                      log_x: bool = False, band: bool = True):
    """Mean of ``metric`` against ``x`` per method, with a min-max band over seeds.

    Parameters
    ----------
    ax : matplotlib Axes
    rows : sequence of dict
        :func:`csood.store.aggregate` rows grouped by ``"method"`` and ``x`` (and nothing else
        that varies within these rows).
    x, metric : str
        The x field and a metric given to ``aggregate``.
    methods : sequence of str
        Methods to draw, in legend order; absent ones are skipped.
    """
    lines = plot_arrays(rows, x, metric, series="method")
    for m in methods:
        if m not in lines:
            continue
        a = lines[m]
        color, marker, label = METHOD_STYLE.get(m, (None, "o", m))
        ax.plot(a["x"], a["mean"], marker=marker, color=color, label=label, ms=4, lw=1.3)
        if band and np.any(a["count"] > 1):
            ax.fill_between(a["x"], a["min"], a["max"], color=color, alpha=0.15, lw=0)
    if log_x:
        from matplotlib.ticker import FixedLocator, NullLocator, StrMethodFormatter

        xs = sorted({float(v) for a in lines.values() for v in a["x"]})
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(xs))
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.tick_params(axis="x", labelrotation=45 if len(xs) > 5 else 0, labelsize=8)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.grid(alpha=0.3)
    return ax


def facet_figure(rows: Sequence[dict], x: str, metrics: Sequence[str], *, methods: Sequence[str],
                 facet: str | None = None, facet_label=str, xlabel: str | None = None,
                 log_x: bool = False, panel_size=(3.0, 2.4), title: str | None = None,
                 wrap: int = 4):
    """Grid of panels: one row per metric and one column per value of ``facet``; without a
    facet, the metrics side by side in one row (each panel with its own y axis). With one
    metric and more than ``wrap`` facets, the facets wrap into rows of ``wrap`` panels.

    Returns
    -------
    fig, axes
        ``axes`` of shape (len(metrics), n_facets); (1, len(metrics)) without ``facet``;
        (n_rows, wrap) when wrapped (unused panels hidden). ``title`` (e.g. the profile and
        seed count) goes above the panels.
    """
    import matplotlib.pyplot as plt

    facets = sorted({r[facet] for r in rows}) if facet else [None]
    wrapped = facet is not None and len(metrics) == 1 and len(facets) > wrap
    if wrapped:
        shape = (-(-len(facets) // wrap), wrap)
    else:
        shape = (len(metrics), len(facets)) if facet else (1, len(metrics))
    fig, axes = plt.subplots(*shape, squeeze=False, sharex=False if wrapped else ("col" if facet else "all"),
                             sharey="row" if facet else False,
                             figsize=(panel_size[0] * shape[1] + 0.6, panel_size[1] * shape[0]))
    panels = []
    for j, f in enumerate(facets):
        sub = [r for r in rows if facet is None or r[facet] == f]
        for i, metric in enumerate(metrics):
            if wrapped:
                ax, first_col, bottom = axes.flat[j], j % wrap == 0, True
            elif facet:
                ax, first_col, bottom = axes[i, j], j == 0, i == len(metrics) - 1
            else:
                ax, first_col, bottom = axes[0, i], True, True
            plot_metric_lines(ax, sub, x, metric, methods=methods, log_x=log_x)
            panels.append(ax)
            if not first_col:
                ax.set_ylabel("")
            if facet and (wrapped or i == 0):
                ax.set_title(facet_label(f), fontsize=10)
            if bottom:
                ax.set_xlabel(xlabel or x)
    for ax in axes.flat:
        if ax not in panels:
            ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10, color="0.3")
    legend_below(fig, axes)
    return fig, axes


def legend_below(fig, axes):
    """One legend for the whole figure, below the panels (every method drawn in any panel)."""
    seen = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, h)
    if not seen:
        return
    handles, labels = list(seen.values()), list(seen)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), frameon=False,
               bbox_to_anchor=(0.5, 0.0), fontsize=9)
    rows = (len(labels) + 4) // 5
    fig.tight_layout(rect=(0, (0.1 + 0.22 * rows) / fig.get_figheight(), 1, 1))
