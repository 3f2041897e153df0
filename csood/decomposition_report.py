"""Tables, verdicts and figures of the "Controlled decompositions" chapter.

Everything reads the ``results`` of :func:`csood.decompositions.run_or_load` and averages over
the stored seeds. Verdict functions return words chosen by comparing numbers against the
thresholds below, so the chapter's prose stays true when it is re-run with other parameters.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from .sweep_plots import METHOD_STYLE, method_label

__all__ = ["BARELY", "SAME", "by_n_sae", "by_n", "curve_mean", "frozen_rows", "n_list", "join_ns", "where", "missing_table",
           "rounds_to", "plot_frozen", "plot_dictionary", "plot_support", "plot_curves", "plot_lambda",
           "plot_dynamics"]

#: The frozen decoder "barely helps" when it closes less than this fraction of the OOD MCC gap
#: between the SAE encoder and oracle FISTA.
BARELY = 0.15
#: Two MCCs are "the same" when they differ by less than this.
SAME = 0.01


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


def n_list(results: Mapping) -> list[int]:
    """The ``n`` values with any stored analysis, sorted."""
    return sorted({k[0] for part in ("reference", "sae") for k in results[part]})


def by_n_sae(results: Mapping, fn: Callable[[dict], dict]) -> dict:
    """``{(n, sae method): {name: mean over seeds}}`` of ``fn(analysis)`` (a dict of floats)."""
    groups: dict = {}
    for (n, method, _seed), a in results["sae"].items():
        groups.setdefault((n, method), []).append(fn(a))
    return {key: {name: _mean([v[name] for v in vals]) for name in vals[0]} for key, vals in sorted(groups.items())}


def by_n(results: Mapping, fn: Callable[[dict], dict]) -> dict:
    """``{n: {name: mean over seeds}}`` of ``fn(reference analysis)``."""
    groups: dict = {}
    for (n, _seed), a in results["reference"].items():
        groups.setdefault(n, []).append(fn(a))
    return {n: {name: _mean([v[name] for v in vals]) for name in vals[0]} for n, vals in sorted(groups.items())}


def curve_mean(curves: Sequence[Sequence[dict]], x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds of curves (lists of dicts) at the union of their ``x`` values; a curve
    that stopped early (DL-FISTA converged) keeps its last value. Returns ``(xs, ys)``."""
    xs = sorted({p[x] for c in curves for p in c})
    ys = []
    for xv in xs:
        vals = []
        for c in curves:
            before = [p[y] for p in c if p[x] <= xv]
            vals.append(before[-1] if before else np.nan)
        ys.append(np.nanmean(vals))
    return np.array(xs, dtype=float), np.array(ys, dtype=float)


def join_ns(ns: Sequence[int], none: str = "no n of this build") -> str:
    """``"n = 50"``, ``"n = 50 and 100"``, ``"n = 50, 100 and 500"``; ``none`` when empty."""
    ns = [str(n) for n in sorted(ns)]
    if not ns:
        return none
    return "n = " + (ns[0] if len(ns) == 1 else ", ".join(ns[:-1]) + " and " + ns[-1])


def where(holds: Sequence[int], all_ns: Sequence[int]) -> str:
    """Where a verdict holds, as a clause: ``"at every n of this build (n = 50 and 100)"``,
    ``"at n = 50, but not at n = 100"`` or ``"at no n of this build (n = 50 and 100)"``."""
    holds, fails = sorted(set(holds)), sorted(set(all_ns) - set(holds))
    if not fails:
        return f"at every n of this build ({join_ns(holds)})"
    if not holds:
        return f"at no n of this build ({join_ns(fails)})"
    return f"at {join_ns(holds)}, but not at {join_ns(fails)}"


def missing_table(missing: Sequence[Mapping]) -> list[list]:
    """Rows ``[what, method, n values, count]`` counting missing cells and analyses."""
    groups: dict = {}
    for m in missing:
        groups.setdefault((m["what"], m["method"]), []).append(m["n_latents"])
    return [[what, method_label(method), ", ".join(map(str, sorted(set(ns)))), len(ns)]
            for (what, method), ns in groups.items()]


def rounds_to(xs, ys, level: float) -> float:
    """First ``x`` at which ``y >= level`` (NaN if never)."""
    hit = np.flatnonzero(np.asarray(ys) >= level)
    return float(np.asarray(xs)[hit[0]]) if hit.size else float("nan")


def frozen_rows(results: Mapping) -> dict:
    """``{(n, sae): {...}}`` with the MCC of the SAE encoder, frozen and refined decoders, oracle
    FISTA and DL-FISTA (random init, final round), and ``closed``: the fraction of the OOD gap
    from the encoder to the oracle that the frozen decoder closes."""
    recs: dict = {}
    for r in results["records"]:
        recs.setdefault((r["data"]["n_latents"], r["method"]), []).append(r["metrics"])
    mean = {key: {m: _mean([v[m] for v in vals]) for m in ("mcc_id", "mcc_ood")} for key, vals in recs.items()}
    ref = by_n(results, lambda a: {"dl_id": a["dl_random"]["curve"][-1]["mcc_id"],
                                   "dl_ood": a["dl_random"]["curve"][-1]["mcc_ood"]})
    out = {}
    for n, sae in sorted({(k[0], k[1]) for k in mean if k[1].startswith("sae_")}):
        row = {"n": n, "sae": sae}
        for name, method in (("enc", sae), ("frozen", f"frozen_{sae}"), ("refined", f"refined_{sae}"),
                             ("oracle", "fista_oracle")):
            for m, short in (("mcc_id", "id"), ("mcc_ood", "ood")):
                row[f"{name}_{short}"] = mean.get((n, method), {}).get(m, float("nan"))
        row.update(ref.get(n, {"dl_id": float("nan"), "dl_ood": float("nan")}))
        gap = row["oracle_ood"] - row["enc_ood"]
        row["closed"] = (row["frozen_ood"] - row["enc_ood"]) / gap if gap > 0 else float("nan")
        out[(n, sae)] = row
    return out


# --------------------------------------------------------------------------- figures
def _style(method):
    color, marker, label = METHOD_STYLE.get(method, ("0.3", "o", method))
    return {"color": color, "marker": marker, "label": label}


def _axes(n_rows: int, n_cols: int, size=(2.6, 2.2), sharey=True):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size[0] * n_cols, size[1] * n_rows), squeeze=False,
                             sharey=sharey, constrained_layout=True)
    return fig, axes


def _legend(fig, axes):
    handles, labels = {}, []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    fig.legend([handles[lab] for lab in labels], labels, loc="outside lower center", ncol=min(5, len(labels)),
               fontsize=8, frameon=False)


def plot_frozen(rows: Mapping, saes: Sequence[str]):
    """Encoder, frozen and refined MCC against n per SAE (columns), ID and OOD (rows), with
    oracle FISTA and DL-FISTA as references."""
    fig, axes = _axes(2, len(saes))
    for j, sae in enumerate(saes):
        rs = [r for (n, s), r in sorted(rows.items()) if s == sae]
        ns = [r["n"] for r in rs]
        for i, split in enumerate(("id", "ood")):
            ax = axes[i, j]
            for name, ls, label in (("enc", "-", "SAE encoder"), ("frozen", "--", "frozen decoder"),
                                    ("refined", ":", "refined (warm start)")):
                ax.plot(ns, [r[f"{name}_{split}"] for r in rs], ls=ls, marker=_style(sae)["marker"],
                        color=_style(sae)["color"], label=label, ms=4)
            ax.plot(ns, [r[f"oracle_{split}"] for r in rs], **_style("fista_oracle"), ms=3, lw=1)
            ax.plot(ns, [r[f"dl_{split}"] for r in rs], **_style("dl_fista"), ms=3, lw=1)
            ax.set_xscale("log")
            ax.set_xticks(ns, [str(n) for n in ns])
            ax.minorticks_off()
            ax.set_title(f"{method_label(sae)}" if i == 0 else "", fontsize=9)
            ax.set_ylabel(f"MCC ({split.upper()})" if j == 0 else "")
            ax.set_xlabel("n" if i == 1 else "")
    _legend(fig, axes)
    return fig, axes


def plot_dictionary(results: Mapping, saes: Sequence[str]):
    """Per-atom |cosine| and norm ratio to the matched true column (violins of the stored
    quantiles, one per (n, SAE)), and OOD MCC of frozen FISTA per decoder variant."""
    fig, axes = _axes(1, 3, size=(3.4, 2.6), sharey=False)
    ns = n_list(results)
    variants = ("raw", "renormalised", "true_norms", "true_directions")
    for ax, key, label in ((axes[0, 0], "cosines", "|cos| to matched true column"),
                           (axes[0, 1], "norm_ratios", "norm ratio ||d|| / ||a||")):
        pos, data, colors = [], [], []
        for i, n in enumerate(ns):
            for j, sae in enumerate(saes):
                qs = [a["dictionary"][key] for (nn, s, _), a in results["sae"].items() if nn == n and s == sae]
                if qs:
                    pos.append(i * (len(saes) + 1) + j)
                    data.append(np.concatenate(qs))
                    colors.append(_style(sae)["color"])
        if data:
            parts = ax.violinplot(data, positions=pos, widths=0.9, showmedians=True)
            for body, col in zip(parts["bodies"], colors):
                body.set_facecolor(col)
                body.set_alpha(0.6)
        ax.set_xticks([i * (len(saes) + 1) + (len(saes) - 1) / 2 for i in range(len(ns))], [f"n = {n}" for n in ns])
        ax.set_ylabel(label, fontsize=8)
    axes[0, 0].axhline(0.9, color="0.4", ls=":", lw=1)
    mcc = by_n_sae(results, lambda a: {v: a["variants"][v]["mcc_ood"] for v in variants})
    ax, width = axes[0, 2], 0.8 / len(variants)
    for v_i, v in enumerate(variants):
        xs = [i * (len(saes) + 1) + j + (v_i - 1.5) * width for i, n in enumerate(ns) for j, s in enumerate(saes)
              if (n, s) in mcc]
        ys = [mcc[(n, s)][v] for n in ns for s in saes if (n, s) in mcc]
        ax.bar(xs, ys, width=width, label=v.replace("_", " "), color=("#d62728", "#ff9896", "#2ca02c", "#000000")[v_i])
    ax.set_xticks([i * (len(saes) + 1) + j for i in range(len(ns)) for j in range(len(saes))],
                  [f"{method_label(s).replace('SAE ', '')}\n{n}" for n in ns for s in saes], fontsize=6)
    ax.set_ylabel("MCC (OOD), frozen FISTA", fontsize=8)
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2)
    for s in saes:
        axes[0, 0].plot([], [], color=_style(s)["color"], lw=6, alpha=0.6, label=method_label(s))
    axes[0, 0].legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    return fig, axes


def plot_support(rows: Mapping, saes: Sequence[str]):
    """Support precision / recall / F1 (OOD) per (n, SAE), predicted vs true L0, and OOD MCC of
    least squares on the SAE's support vs the raw SAE codes."""
    fig, axes = _axes(1, 3, size=(3.2, 2.5), sharey=False)
    keys = sorted(rows)
    x = np.arange(len(keys))
    for i, (m, col) in enumerate((("precision", "#1f77b4"), ("recall", "#ff7f0e"), ("f1", "#2ca02c"))):
        axes[0, 0].bar(x + (i - 1) * 0.27, [rows[k][m] for k in keys], width=0.27, color=col, label=m)
    axes[0, 0].set_xticks(x, [f"{method_label(s).replace('SAE ', '')}\n{n}" for n, s in keys], fontsize=6)
    axes[0, 0].legend(fontsize=7, frameon=False)
    axes[0, 0].set_ylabel("support score (OOD)", fontsize=8)
    for (n, s) in keys:
        st = _style(s)
        axes[0, 1].scatter(rows[(n, s)]["l0_true"], rows[(n, s)]["l0_pred"], color=st["color"], marker=st["marker"])
        axes[0, 2].scatter(rows[(n, s)]["sae_ood"], rows[(n, s)]["ls_ood"], color=st["color"], marker=st["marker"],
                           label=st["label"] if n == keys[0][0] else None)
    hi = max([rows[k]["l0_pred"] for k in keys] + [rows[k]["l0_true"] for k in keys] + [1])
    axes[0, 1].plot([0, hi], [0, hi], color="0.5", lw=0.8, ls=":")
    axes[0, 1].set_xlabel("true L0", fontsize=8)
    axes[0, 1].set_ylabel("predicted L0 (SAE)", fontsize=8)
    axes[0, 2].plot([0, 1], [0, 1], color="0.5", lw=0.8, ls=":")
    axes[0, 2].set_xlabel("MCC (OOD), SAE codes", fontsize=8)
    axes[0, 2].set_ylabel("MCC (OOD), LS on SAE support", fontsize=8)
    axes[0, 2].legend(fontsize=7, frameon=False)
    return fig, axes


def plot_curves(results: Mapping, saes: Sequence[str], *, part: str, x: str, y: str = "mcc_ood",
                xlabel: str, ylabel: str = "MCC (OOD)", log_x: bool = True):
    """One panel per n: mean curves of each SAE analysis (``part``: "dl_sae", "warm_start") and
    of the reference (random-init DL-FISTA, or oracle FISTA from zeros)."""
    ns = n_list(results)
    fig, axes = _axes(1, len(ns))
    for ax, n in zip(axes[0], ns):
        for sae in saes:
            a = [v for (nn, s, _), v in results["sae"].items() if nn == n and s == sae]
            if not a:
                continue
            st = _style(sae)
            if part == "dl_sae":
                ax.plot(*curve_mean([v[part]["curve"] for v in a], x, y), color=st["color"], marker=st["marker"],
                        ms=3, label=f"init: {st['label']} decoder")
            else:
                ax.plot(*curve_mean([v[part]["sae"] for v in a], x, y), color=st["color"], marker=st["marker"],
                        ms=3, label=f"start: {st['label']} codes")
                ax.plot(*curve_mean([v[part]["zeros"] for v in a], x, y), color=st["color"], ls="--", lw=1,
                        label="start: zeros (same decoder)")
        ref = [v for (nn, _), v in results["reference"].items() if nn == n]
        if ref:
            curves, label = ([v["dl_random"]["curve"] for v in ref], "init: random") if part == "dl_sae" else \
                ([v["oracle_iterations"] for v in ref], "oracle FISTA (zeros)")
            ax.plot(*curve_mean(curves, x, y), color="k", lw=1.5, label=label)
        ax.set_xscale("symlog", linthresh=1) if log_x else None
        ax.set_title(f"n = {n}", fontsize=9)
        ax.set_xlabel(xlabel)
    axes[0, 0].set_ylabel(ylabel)
    _legend(fig, axes)
    return fig, axes


def plot_dynamics(results: Mapping, saes: Sequence[str]):
    """Matched mean atom cosine against SAE epoch (top) and DL-FISTA round (bottom), per n."""
    ns = n_list(results)
    fig, axes = _axes(2, len(ns))
    for j, n in enumerate(ns):
        for sae in saes:
            a = [v["dynamics"] for (nn, s, _), v in results["sae"].items() if nn == n and s == sae]
            if a:
                pts = [[{"epoch": e, "c": c} for e, c in zip(d["epoch"], d["mean_cosine"])] for d in a]
                axes[0, j].plot(*curve_mean(pts, "epoch", "c"), **{**_style(sae), "marker": None})
        for key, label, col in (("dl_random", "DL-FISTA, random init", "k"), ):
            ref = [v[key]["curve"] for (nn, _), v in results["reference"].items() if nn == n]
            if ref:
                axes[1, j].plot(*curve_mean(ref, "round", "mean_cosine"), color=col, marker="s", ms=3, label=label)
        for sae in saes:
            a = [v["dl_sae"]["curve"] for (nn, s, _), v in results["sae"].items() if nn == n and s == sae]
            if a:
                axes[1, j].plot(*curve_mean(a, "round", "mean_cosine"), color=_style(sae)["color"], ls="--", lw=1,
                                label=f"DL-FISTA, {method_label(sae)} init")
        axes[1, j].set_xscale("symlog", linthresh=1)
        axes[0, j].set_title(f"n = {n}", fontsize=9)
        axes[0, j].set_xlabel("SAE epoch")
        axes[1, j].set_xlabel("DL-FISTA round")
    axes[0, 0].set_ylabel("mean matched |cos|")
    axes[1, 0].set_ylabel("mean matched |cos|")
    _legend(fig, axes)
    return fig, axes


def plot_lambda(results: Mapping, saes: Sequence[str]):
    """OOD MCC against lambda per n: frozen-decoder FISTA per SAE and oracle FISTA; the SAE
    encoder (no lambda) as a horizontal dashed line."""
    ns = n_list(results)
    fig, axes = _axes(1, len(ns))
    for ax, n in zip(axes[0], ns):
        for sae in saes:
            a = [v for (nn, s, _), v in results["sae"].items() if nn == n and s == sae]
            if a:
                st = _style(sae)
                ax.plot(*curve_mean([v["lambda"] for v in a], "lam", "mcc_ood"), color=st["color"],
                        marker=st["marker"], ms=3, label=f"frozen {st['label']}")
                ax.axhline(_mean([v["codes_mcc"]["mcc_ood"] for v in a]), color=st["color"], ls="--", lw=0.9)
        ref = [v["oracle_lambda"] for (nn, _), v in results["reference"].items() if nn == n]
        if ref:
            ax.plot(*curve_mean(ref, "lam", "mcc_ood"), **_style("fista_oracle"), ms=3)
        ax.set_xscale("log")
        ax.set_title(f"n = {n}", fontsize=9)
        ax.set_xlabel("λ")
    axes[0, 0].set_ylabel("MCC (OOD)")
    _legend(fig, axes)
    return fig, axes
