"""Figure helpers for the book's chapters: the toy model (:mod:`csood.toy`) and the Theory chapter.

Every function draws on a matplotlib ``Axes`` it is given and returns what a caller may need
(the axes, or the image for a colour bar); none creates figures or calls ``plt.show``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Polygon

from . import toy

__all__ = ["TOY_COLORS", "toy_error_region", "plot_toy_geometry", "plot_latent_square", "plot_accuracy_map",
           "plot_accuracy_slices",
           "plot_projected_halfspace", "plot_singular_values", "plot_recovery", "plot_iterations"]

#: colours of the toy figures: negatives, positives, OOD support, OOD errors, boundaries
TOY_COLORS = {"neg": "#9ecae1", "pos": "#fdae6b", "ood": "#e5e5e5", "err": "#de2d26",
              "id": "black", "right": "#31a354", "learned": "#756bb1"}


def toy_error_region(tau, rho):
    """Vertices ``(z1, z3)``, shape (n_vertices, 2), of the misclassified OOD set
    ``tau < z1 < tau + rho z3`` in the unit square: a triangle in case 1
    (``rho <= 1 - tau``), a quadrilateral holding the far corner (1, 1) in case 2."""
    if rho <= 1 - tau:
        return np.array([[tau, 0.0], [tau + rho, 1.0], [tau, 1.0]])
    return np.array([[tau, 0.0], [1.0, (1 - tau) / rho], [1.0, 1.0], [tau, 1.0]])


def _line(ax, point, direction, **kw):
    t = np.array([-10.0, 10.0])
    ax.plot(point[0] + t * direction[0], point[1] + t * direction[1], **kw)


def _poly(ax, vertices, **kw):
    ax.add_patch(Polygon(np.asarray(vertices, dtype=float), closed=True, **kw))


def plot_toy_geometry(ax, A, tau=0.5, learned=None):
    """Draw the toy model in observation space.

    Shows the two training parallelograms (coloured by label), the OOD parallelogram with its
    misclassified region, the ID-perfect boundary, the correct OOD boundary and, if given, a
    ``learned`` :class:`csood.toy.LinearBoundary`.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    A : array, shape (2, 3)
        Mixing matrix, e.g. from :func:`csood.toy.toy_dictionary`.
    tau : float in (0, 1)
    learned : LinearBoundary, optional
    """
    A, tau, c = toy._dictionary(A), toy._tau(tau), TOY_COLORS
    a1, a2, a3 = A.T
    o = np.zeros(2)
    _poly(ax, [o, tau * a1, tau * a1 + a2, a2], fc=c["neg"], ec="none", label="training, $z_1<\\tau$")
    _poly(ax, [tau * a1, a1, a1 + a2, tau * a1 + a2], fc=c["pos"], ec="none",
          label="training, $z_1>\\tau$")
    _poly(ax, [o, a2, a2 + a3, a3], fc=c["neg"], ec="none")
    _poly(ax, [o, a1, a1 + a3, a3], fc=c["ood"], ec="0.35", ls="--", label="OOD support $\\{1,3\\}$")
    r = (a2[0] * a3[1] - a2[1] * a3[0]) / (a1[0] * a2[1] - a1[1] * a2[0])
    _poly(ax, toy_error_region(tau, r) @ np.array([a1, a3]), fc=c["err"], alpha=0.6, ec="none",
          label="OOD false negatives")
    _line(ax, tau * a1, a2, color=c["id"], lw=2, label="ID-perfect boundary")
    _line(ax, tau * a1, a3, color=c["right"], lw=2, ls="--", label="correct OOD boundary")
    if learned is not None:
        n, off = learned
        _line(ax, off * n, np.array([-n[1], n[0]]), color=c["learned"], lw=1.5, ls=":",
              label="learned (logistic regression)")
    for i, a in enumerate(A.T):
        ax.annotate("", xy=a, xytext=o, arrowprops=dict(arrowstyle="-|>", lw=1.5, color="0.15"))
        tip = a + 0.13 * a / np.linalg.norm(a)
        ax.text(*tip, f"$a_{i + 1}$", ha="center", va="center", fontsize=12)
    ax.plot(*np.array([tau * a1, a1 + a3]).T, "o", color="k", ms=4)
    box = dict(fc="white", ec="none", alpha=0.75, pad=1.0)
    ax.text(tau * a1[0] + 0.06, tau * a1[1] - 0.06, "$\\tau a_1$", ha="left", va="top", fontsize=11,
            bbox=box)
    ax.text(*(a1 + a3 + np.array([0.06, -0.02])), "$a_1+a_3$", ha="left", va="top", fontsize=10,
            bbox=box)
    pts = np.array([o, a1, a2, a3, a1 + a2, a2 + a3, a1 + a3])
    lo, hi = pts.min(axis=0) - 0.3, pts.max(axis=0) + 0.3
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), aspect="equal", xlabel="$y_1$", ylabel="$y_2$")
    return ax


def plot_latent_square(ax, tau, rho):
    """Draw the OOD slice in its own latents ``(z1, z3)`` (the unit square).

    Shows the correct boundary ``z1 = tau``, the ID-perfect one ``z1 = tau + rho z3``, the
    misclassified region between them and the line through the far corner (1, 1) that
    separates case 1 from case 2.
    """
    tau, c = toy._tau(tau), TOY_COLORS
    _poly(ax, [[0, 0], [1, 0], [1, 1], [0, 1]], fc=c["ood"], ec="0.35", ls="--")
    _poly(ax, toy_error_region(tau, rho), fc=c["err"], alpha=0.6, ec="none", label="false negatives")
    z3 = np.array([0.0, min(1.0, (1 - tau) / rho) if rho > 0 else 1.0])
    ax.plot(tau + rho * z3, z3, color=c["id"], lw=2, label="ID-perfect: $z_1=\\tau+\\rho z_3$")
    ax.plot([tau, tau], [0, 1], color=c["right"], lw=2, ls="--", label="correct: $z_1=\\tau$")
    ax.plot([tau, 1], [0, 1], color="0.3", lw=1, ls=":", label="case boundary, $\\rho=1-\\tau$")
    ax.plot(1, 1, "o", color="k", ms=4)
    ax.text(1.0, 1.03, "far corner (1, 1)", ha="right", va="bottom", fontsize=9)
    ax.set(xlim=(-0.05, 1.05), ylim=(-0.05, 1.12), aspect="equal", xlabel="$z_1$", ylabel="$z_3$")
    return ax


def plot_accuracy_map(ax, tau=0.5, norms=(1.0, 1.0, 1.0), n=361, marker=None):
    """Heat map of the closed-form OOD accuracy over ``(alpha, beta)`` in degrees.

    Marks the case boundary ``rho = 1 - tau`` (solid), the identifiability edge
    ``alpha + beta = 180`` (dashed) and, if given, a ``marker = (alpha_deg, beta_deg)``.
    Returns the image (for a colour bar).
    """
    g = np.linspace(0.0, 180.0, n)[1:-1]
    al, be = np.meshgrid(g, g, indexing="xy")
    acc = toy.ood_accuracy_analytic(al, be, tau, norms, degrees=True)
    r = toy.rho(al, be, norms, degrees=True)
    im = ax.pcolormesh(al, be, acc, cmap="viridis", vmin=tau, vmax=1.0, shading="auto",
                       rasterized=True)
    ax.contour(al, be, r, levels=[1 - tau], colors="white", linewidths=1.5)
    ax.plot([0, 180], [180, 0], color="white", ls="--", lw=1)
    for b in (9, 171):
        ax.text(90, b, "case 1", color="k", ha="center", va="center", fontsize=9)
    ax.text(90, 58, "case 2", color="white", ha="center", va="center", fontsize=11)
    ax.text(152, 108, "identifiable\n$\\alpha+\\beta>180°$", color="white", ha="center",
            va="center", fontsize=8)
    ax.text(28, 72, "cones overlap\n$\\alpha+\\beta<180°$", color="white", ha="center",
            va="center", fontsize=8)
    if marker is not None:
        ax.plot(*marker, marker="*", color="#de2d26", ms=12, mec="white")
    ax.set(xlim=(0, 180), ylim=(0, 180), aspect="equal", xlabel="$\\alpha$ (degrees)",
           ylabel="$\\beta$ (degrees)", xticks=range(0, 181, 30), yticks=range(0, 181, 30))
    return im


def plot_accuracy_slices(ax, alphas_deg, betas_deg, mc, tau=0.5, norms=(1.0, 1.0, 1.0)):
    """Closed-form OOD accuracy against ``beta`` (lines) for a few ``alpha``, with Monte-Carlo
    estimates ``mc`` (shape (len(alphas_deg), len(betas_deg))) as markers and the case
    boundaries ``rho = 1 - tau`` as open circles."""
    fine = np.linspace(0.0, 180.0, 721)[1:-1]
    r = toy._norms(norms)
    for i, (a, colour) in enumerate(zip(alphas_deg, ["#1b9e77", "#d95f02", "#7570b3", "#e7298a"])):
        ax.plot(fine, toy.ood_accuracy_analytic(a, fine, tau, norms, degrees=True), color=colour,
                lw=1.8, label=f"$\\alpha={a:g}°$")
        ax.plot(betas_deg, mc[i], "o", color=colour, ms=4.5, mec="white", mew=0.6)
        s = (1 - tau) * r[0] * np.sin(np.deg2rad(a)) / r[2]
        if s < 1:
            b = np.rad2deg(np.arcsin(s))
            ax.plot([b, 180 - b], [(1 + tau) / 2] * 2, "o", mfc="none", mec=colour, ms=9, mew=1.5)
    ax.plot([], [], "o", color="0.3", ms=4.5, label="Monte Carlo")
    ax.plot([], [], "o", mfc="none", mec="0.3", ms=9, mew=1.5, label="case boundary")
    ax.axhline(tau, color="0.5", lw=0.8, ls=":")
    ax.set(xlim=(0, 180), ylim=(tau - 0.03, 1.01), xlabel="$\\beta$ (degrees)",
           ylabel="OOD accuracy", xticks=range(0, 181, 30))
    ax.legend(loc="lower center", ncol=2, fontsize=9, frameon=False)
    return ax


# ----------------------------------------------------------------------------- Theory chapter
POS, NEG = "#e6550d", "#3182bd"



def plot_projected_halfspace(ax, A, tau: float = 0.5, *, n_points: int = 600, seed: int = 0):
    """The half-space ``z_1 > tau`` of 2-sparse latents, seen in the observation plane.

    Draws, for each of the three supports {1,2}, {2,3}, {1,3} of the toy model (``A`` of shape
    (2, 3)), random points ``y = A z`` coloured by the label, and the label boundary inside each
    support cone: parallel to ``a_2`` in the {1,2} cone, parallel to ``a_3`` in the {1,3} cone.
    The two pieces meet at ``tau * a_1`` at an angle — the boundary is not a line.
    """
    rng = np.random.default_rng(seed)
    a = np.asarray(A, dtype=float).T
    for i, j in ((0, 1), (1, 2), (0, 2)):
        z = rng.random((n_points, 2))
        y = z[:, :1] * a[i] + z[:, 1:] * a[j]
        pos = (z[:, 0] > tau) if i == 0 else np.zeros(n_points, bool)
        ax.scatter(*y[~pos].T, s=4, color=NEG, alpha=0.5, lw=0)
        ax.scatter(*y[pos].T, s=4, color=POS, alpha=0.5, lw=0)
    for other, style in ((a[1], "-"), (a[2], "-")):
        seg = np.array([tau * a[0], tau * a[0] + other])
        ax.plot(*seg.T, color="k", lw=2, ls=style)
    for i, v in enumerate(a):
        ax.annotate("", xy=v, xytext=(0, 0), arrowprops=dict(arrowstyle="-|>", lw=1.4, color="0.2"))
        ax.annotate(f"$a_{i + 1}$", xy=v, xytext=v * 1.12, ha="center", va="center", fontsize=12)
    ax.scatter([], [], s=12, color=POS, label=r"$z_1 > \tau$")
    ax.scatter([], [], s=12, color=NEG, label=r"$z_1 \leq \tau$")
    ax.plot([], [], color="k", lw=2, label="label boundary")
    corners = np.vstack([a * 1.25, a[[0, 1]].sum(0), a[[1, 2]].sum(0), a[[0, 2]].sum(0), np.zeros(2)])
    lo, hi = corners.min(axis=0) - 0.1, corners.max(axis=0) + 0.1
    ax.set(aspect="equal", xlabel="$y_1$", ylabel="$y_2$", xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=9, frameon=False)
    return ax


def plot_singular_values(ax, s_min, s_max):
    """Histogram of the squared extreme singular values of sampled ``A_S`` against the band
    ``[1 - delta, 1 + delta]``."""
    s2 = np.concatenate([np.asarray(s_min) ** 2, np.asarray(s_max) ** 2])
    bins = np.linspace(min(0.0, s2.min()), s2.max() * 1.05, 40)
    ax.hist(np.asarray(s_min) ** 2, bins=bins, color=NEG, alpha=0.7, label=r"$\sigma_{\min}^2(A_S)$")
    ax.hist(np.asarray(s_max) ** 2, bins=bins, color=POS, alpha=0.7, label=r"$\sigma_{\max}^2(A_S)$")
    ax.axvline(1.0, color="k", lw=1)
    ax.set(xlabel="squared singular value", ylabel="supports")
    ax.legend(frameon=False, fontsize=9)
    return ax


def plot_recovery(ax, m_values, rates, m_bound: int, k: int, n: int):
    """Recovery rate of non-negative k-sparse vectors against the number of measurements."""
    ax.plot(m_values, rates, "o-", color="k", ms=4, label="FISTA, exact recovery")
    ax.axvline(m_bound, color=POS, ls="--", label=rf"bound $\lceil 2k\ln(n/k)\rceil$ = {m_bound}")
    ax.set(xlabel="measurements $m$", ylabel="fraction recovered", ylim=(-0.03, 1.03),
           title=f"$n$ = {n}, $k$ = {k}")
    ax.legend(frameon=False, fontsize=9, loc="lower right")
    return ax


def plot_iterations(ax, iterations, curves: dict, reference: dict | None = None):
    """Metric against the number of FISTA iterations; ``curves`` maps a label to values and
    ``reference`` maps a label to a horizontal line (e.g. the linear probe)."""
    for (label, values), marker in zip(curves.items(), "os^v"):
        ax.plot(iterations, values, marker=marker, ms=4, label=label)
    for label, value in (reference or {}).items():
        ax.axhline(value, color="0.5", ls=":", lw=1.2)
        ax.annotate(label, xy=(iterations[0], value), xytext=(2, 3), textcoords="offset points",
                    fontsize=9, color="0.35")
    ax.set(xscale="log", xlabel="FISTA iterations", ylim=(0, 1.02))
    ax.legend(frameon=False, fontsize=9, loc="lower right")
    return ax
