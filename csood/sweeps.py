"""Chapter sweeps: data grids built from chapter parameters, run-or-load through the result store.

The "Phase transition" and "Scaling" chapters are grids of (data configuration x method x seed)
cells (:mod:`csood.runner`). This module turns a chapter's flat parameters into those cells and
runs them with a :class:`csood.store.ResultStore`, or only loads what is stored
(``missing="skip"``): the book is built on a CPU from paper-scale records computed elsewhere,
and says exactly which cells it lacks.

>>> [d["m"] for d in phase_grid([50], [3], [0.5, 1.0, 2.0, 5.0, 6.0], n_samples=100)]
[5, 9, 17, 43, 50]
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from ._validation import check_choice, check_float, check_int, fail
from .runner import Cell, make_grid, run_grid
from .store import ResultStore

__all__ = ["METHODS", "METRICS", "phase_m", "phase_grid", "vary_grid", "method_overrides",
           "seed_list", "repo_root", "results_path", "run_or_load", "missing_by_method", "transition_point",
           "total_seconds", "with_derived", "select", "chapter_grids",
           "chapter_cells", "SWEEP_CHAPTERS", "profile_label", "endpoints"]

#: The methods of the sweeps, in the order the chapters show them.
METHODS = ("fista_oracle", "dl_fista", "softplus_adam", "lista", "sae_relu", "sae_topk",
           "sae_jumprelu", "sae_mp", "linear_probe")
#: Metrics the sweep figures show (protocol "ours" unless prefixed ``metrics_paper.``).
METRICS = ("mcc_id", "mcc_ood", "acc_ood", "auc_ood")


def phase_m(n_latents: int, k: int, c: float) -> int:
    """Measurements of the phase-transition grid (SPEC §5): ``min(n, ceil(c k ln(n/k)))``, at
    least 1. Unlike :func:`csood.data.cs_bound` there is no floor at ``k + 1``: small ``c``
    must be allowed to fail."""
    c = check_float("c", c, low=0.0, low_inclusive=False)
    return int(min(n_latents, max(1, math.ceil(c * k * math.log(n_latents / k)))))


def phase_grid(n_latents: Sequence[int], k: Sequence[int], c: Sequence[float], *,
               n_samples: int) -> list[dict]:
    """Data configs of the phase-transition grid: every valid (n, k) pair, and per pair one
    config per distinct ``m = phase_m(n, k, c)`` (the first ``c`` giving an ``m`` is kept, so
    values capped at ``n`` appear once).

    Pairs with ``k`` too large for ``n`` (see :func:`csood.data.check_data_config`) raise
    ``ValueError`` naming ``k``.

    Returns
    -------
    list of dict
        ``{"n_latents", "k", "m", "c", "n_samples"}`` ordered by n, k, c.
    """
    from .data import check_data_config

    out = []
    for n in n_latents:
        for kk in k:
            check_data_config(n, kk, n_samples=n_samples)
            seen = set()
            for cc in sorted(c):
                m = phase_m(n, kk, cc)
                if m not in seen:
                    seen.add(m)
                    out.append({"n_latents": n, "k": kk, "m": m, "c": float(cc), "n_samples": n_samples})
    return out


def vary_grid(axis: str, values: Sequence, **fixed) -> list[dict]:
    """Data configs varying one of ``n_latents``, ``n_samples`` or ``k`` over ``values`` with
    the other ``make_dataset`` arguments held at ``fixed`` (``m`` from the bound with ``c``)."""
    check_choice("axis", axis, ("n_latents", "n_samples", "k"))
    from .data import check_data_config

    out = []
    for v in values:
        cfg = {**fixed, axis: v}
        check_data_config(cfg["n_latents"], cfg["k"], n_samples=cfg.get("n_samples", 5000),
                          c=cfg.get("c", 2.0))
        out.append(cfg)
    return out


def method_overrides(methods: Iterable[str], *, lam: float, sae_epochs: int, dl_max_rounds: int,
                     dl_schedule: str, lista_epochs: int, softplus_steps: int) -> dict:
    """Per-method parameter overrides from a chapter's flat parameters (only for the methods
    in ``methods``); everything else stays at the SPEC defaults of :mod:`csood.catalog`."""
    table = {
        "fista_oracle": {"lam": lam},
        "dl_fista": {"lam": lam, "max_rounds": dl_max_rounds, "schedule": dl_schedule},
        "softplus_adam": {"lam": lam, "n_steps": softplus_steps},
        "lista": {"lam": lam, "epochs": lista_epochs},
        **{m: {"epochs": sae_epochs} for m in ("sae_relu", "sae_topk", "sae_jumprelu", "sae_mp")},
    }
    return {m: table[m] for m in methods if m in table}


def seed_list(seed: int, n_seeds: int) -> list[int]:
    """The seeds of a chapter: ``seed, seed + 1, ..., seed + n_seeds - 1``."""
    seed, n_seeds = check_int("seed", seed, low=0), check_int("n_seeds", n_seeds, low=1)
    return list(range(seed, seed + n_seeds))


def repo_root() -> Path:
    """The repository root (the directory holding ``_toc.yml`` above this package) for a
    source checkout, else the working directory."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "_toc.yml").exists() else Path.cwd()


def results_path(results_dir: str) -> Path:
    """``results_dir`` as a path: absolute paths as given, relative ones from
    :func:`repo_root`."""
    path = Path(results_dir)
    return path if path.is_absolute() else repo_root() / path


def run_or_load(cells: Sequence[Cell], results_dir: str, *, missing: str = "compute",
                device=None, progress: bool = False) -> tuple[list[dict], list[Cell]]:
    """Records of ``cells`` from the store at ``results_dir``, computing the missing ones
    (``missing="compute"``) or leaving them out (``"skip"``).

    Returns
    -------
    records : list of dict
        Stored and new records (no arrays are saved: the sweeps need none).
    missing_cells : list of Cell
        Cells without a record (always empty with ``"compute"``).
    """
    check_choice("missing", missing, ("compute", "skip"))
    store = ResultStore(results_path(results_dir))
    if missing == "compute":
        return run_grid(cells, store, device=device, progress=progress, save_arrays=False), []
    stored = {c.key: store.has(c.key) for c in cells}
    return (store.records([c.key for c in cells if stored[c.key]]),
            [c for c in cells if not stored[c.key]])


def missing_by_method(cells: Sequence[Cell], missing_cells: Sequence[Cell]) -> dict:
    """``{method: (stored, missing, total)}`` cell counts, methods in order of first appearance."""
    gone = {c.key for c in missing_cells}
    out: dict = {}
    for c in cells:
        s, m, t = out.get(c.method, (0, 0, 0))
        out[c.method] = (s + (c.key not in gone), m + (c.key in gone), t + 1)
    return out


def transition_point(x: Sequence[float], y: Sequence[float], level: float = 0.9) -> float:
    """First ``x`` at which ``y`` reaches ``level``, linearly interpolated between grid points.

    Parameters
    ----------
    x : sequence of float, shape (n_points,)
        Increasing grid (e.g. delta = m / n).
    y : sequence of float, shape (n_points,)
        Values at ``x`` (e.g. mean MCC).
    level : float

    Returns
    -------
    float
        ``x[0]`` if ``y[0] >= level``; NaN if ``y`` never reaches ``level``.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        fail("x, y", "two 1-D sequences of equal non-zero length", f"shapes {x.shape}, {y.shape}")
    if np.any(np.diff(x) <= 0):
        fail("x", "a strictly increasing sequence", x.tolist())
    above = np.flatnonzero(y >= level)
    if above.size == 0:
        return math.nan
    i = int(above[0])
    if i == 0:
        return float(x[0])
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))


def total_seconds(records: Iterable[Mapping]) -> float:
    """Wall time of the records' cells: data generation + method + metrics, summed."""
    return float(sum(sum(r.get("seconds", {}).values()) for r in records))


def with_derived(records: Iterable[Mapping]) -> list[dict]:
    """Copies of ``records`` with derived fields for the figures: ``data.delta`` (m / n) and,
    under ``metrics`` and ``metrics_paper``, ``mcc_gap`` (ID MCC minus OOD MCC)."""
    out = []
    for r in records:
        r = dict(r)
        r["data"] = {**r["data"], "delta": r["data"]["m"] / r["data"]["n_latents"]}
        for part in ("metrics", "metrics_paper"):
            if part in r:
                r[part] = {**r[part], "mcc_gap": r[part]["mcc_id"] - r[part]["mcc_ood"]}
        out.append(r)
    return out


def select(records: Iterable[Mapping], data_grid: Sequence[Mapping]) -> list[dict]:
    """The records whose data config matches one of ``data_grid`` on every key the grid
    entry gives (e.g. one section of a chapter out of all its records)."""
    return [r for r in records
            if any(all(r["data"].get(k) == v for k, v in g.items()) for g in data_grid)]


#: Chapters built from sweeps, with the sections of their data grids.
SWEEP_CHAPTERS = {"phase_transition": ("phase",), "scaling": ("n_latents", "n_samples", "k")}


def chapter_grids(chapter: str, Q: Mapping) -> dict[str, list[dict]]:
    """Data grids of a sweep chapter, by section, from its validated parameters ``Q``
    (:func:`csood.params.validate`): ``{"phase": ...}`` for the phase transition;
    ``{"n_latents", "n_samples", "k"}`` for scaling."""
    check_choice("chapter", chapter, tuple(SWEEP_CHAPTERS))
    if chapter == "phase_transition":
        return {"phase": phase_grid(Q["n_latents"], Q["k"], Q["c"], n_samples=Q["n_samples"])}
    return {"n_latents": vary_grid("n_latents", Q["vary_n"], k=Q["k"], n_samples=Q["vary_n_samples"], c=Q["c"]),
            "n_samples": vary_grid("n_samples", Q["vary_samples"], n_latents=Q["vary_samples_n"], k=Q["k"],
                                   c=Q["c"]),
            "k": vary_grid("k", Q["vary_k"], n_latents=Q["vary_k_n"], n_samples=Q["vary_k_samples"], c=Q["c"])}


def chapter_cells(chapter: str, Q: Mapping, methods: Sequence[str] | None = None):
    """``(grids, cells)`` of a sweep chapter: :func:`chapter_grids` and every (data config,
    method, seed) cell (experiment name = chapter; configurations shared between sections are
    one cell). ``methods`` restricts ``Q["methods"]``."""
    grids = chapter_grids(chapter, Q)
    methods = [m for m in Q["methods"] if methods is None or m in methods]
    if not methods:
        fail("methods", f"a non-empty subset of {Q['methods']}", methods)
    overrides = method_overrides(methods, lam=Q["lam"], sae_epochs=Q["sae_epochs"],
                                 dl_max_rounds=Q["dl_max_rounds"], dl_schedule=Q["dl_schedule"],
                                 lista_epochs=Q["lista_epochs"], softplus_steps=Q["softplus_steps"])
    data = [g for grid in grids.values() for g in grid]
    return grids, make_grid(chapter, data, methods, seed_list(Q["seed"], Q["n_seeds"]), params=overrides)


def profile_label(chapter: str, Q: Mapping, records: Sequence[Mapping] = ()) -> str:
    """Which profile the validated parameters ``Q`` are ("quick profile", "paper profile" or
    "custom parameters"), with the number of seeds in ``records``, for figure titles."""
    from .params import validate
    from .pipeline import PROFILES, load_profile

    name = "custom parameters"
    for profile in PROFILES:
        try:
            if validate(chapter, **load_profile(chapter, profile, root=repo_root())) == dict(Q):
                name = f"{profile} profile"
                break
        except (ValueError, OSError):
            continue
    if not records:
        return name
    per_cell: dict = {}
    for r in records:
        data = {k: v for k, v in r["data"].items() if k != "seed"}
        per_cell.setdefault((r["method"], json.dumps(data, sort_keys=True, default=str)), set()).add(r["seed"])
    lo, hi = min(map(len, per_cell.values())), max(map(len, per_cell.values()))
    seeds = f"{hi}" if lo == hi else f"{lo}–{hi}"
    return f"{name}, {seeds} seed{'s' if hi != 1 else ''} per point"


def endpoints(rows: Sequence[Mapping], method: str, *, x: str, group: str, metric: str) -> dict:
    """``{group value: (mean metric at the smallest x, at the largest x)}`` of one method, from
    :func:`csood.store.aggregate` rows (e.g. a method's OOD MCC at the fewest and the most
    measurements, per (n, k))."""
    out: dict = {}
    for r in sorted((r for r in rows if r["method"] == method), key=lambda r: r[x]):
        lo = out.get(r[group], (r[f"{metric}_mean"], None))[0]
        out[r[group]] = (lo, r[f"{metric}_mean"])
    return out
