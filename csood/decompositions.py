"""Controlled decompositions of the SAE failure (SPEC section 5, chapter 4).

Two stages, both through one :class:`csood.store.ResultStore`:

1. **Cells** (:func:`base_cells`, run by :func:`csood.runner.run_grid` with arrays saved):
   ``fista_oracle`` and, per SAE, ``sae_*``, ``frozen_sae_*``, ``refined_sae_*``
   at every ``n`` and seed. Each SAE's decoder, decoder bias and encoder parameters go to
   ``<key>.npz``, so that :func:`load_sae` rebuilds the trained SAE without retraining it.
2. **Analyses**, one stored record per (SAE cell, analysis parameters) from
   :func:`analyse_sae`, and one per (data, seed) from :func:`analyse_reference`: dictionary
   variants and per-atom distributions, support recovery and least squares on the SAE's
   support, SAE codes as a FISTA warm start, the SAE decoder as a DL-FISTA initialisation,
   learning dynamics, and lambda sweeps. Their keys hash the base cell's key (data, method,
   parameters, versions, seed), :data:`ANALYSIS_VERSION` and the analysis parameters.

Learning dynamics need the training trajectory, which the stored SAE does not hold: the SAE
is retrained once with the same seed and parameters and a history of the matched atom cosine
(CPU training is deterministic; the record keeps the largest difference between the retrained
and the stored decoder as a check). Everything else reuses the stored SAE.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Mapping, Sequence

import numpy as np

from ._validation import check_choice, fail
from .catalog import SAE_METHODS
from .data import make_dataset
from .metrics import dictionary_diagnostics, mcc_id, mcc_ood, support_metrics
from .runner import Cell, make_grid, run_grid
from .solvers import fista, lasso_objective
from .store import ResultStore
from .support import frozen_decoder_codes, ls_on_support, renormalise_columns, with_true_norms

__all__ = ["ANALYSIS_VERSION", "EXPERIMENT", "QUANTILES", "base_cells", "analysis_params",
           "analysis_key", "load_sae", "analyse_reference", "analyse_sae", "run_or_load",
           "dictionary_variants", "warm_start_curve", "dl_curve", "lambda_curve"]

#: Bump when an analysis can change its output: part of every analysis key.
ANALYSIS_VERSION = 1
#: Experiment name of the cells (part of their keys).
EXPERIMENT = "controlled_decompositions"
#: Quantile levels at which per-atom distributions are stored (size independent of n).
QUANTILES = np.linspace(0.0, 1.0, 101)
_EVAL = ("val", "ood")


# --------------------------------------------------------------------------- cells and keys
def base_cells(Q: Mapping) -> list[Cell]:
    """The stage-1 cells of validated chapter parameters ``Q`` (:func:`csood.params.validate`):
    every ``n`` in ``Q["n_latents"]`` x seed x {oracle, each SAE and its frozen and refined
    members}, SAE and Lasso settings from ``Q``. DL-FISTA is not a cell: its random-init run in
    :func:`analyse_reference` (snapshots along the rounds) gives its final scores too."""
    sae_p = {"epochs": Q["sae_epochs"]}
    fam_p = {"lam": Q["lam"], "base": sae_p}
    params = {"fista_oracle": {"lam": Q["lam"]}, **{s: sae_p for s in Q["saes"]}, **{f"{f}_{s}": fam_p for s in Q["saes"] for f in ("frozen", "refined")}}
    data = [{"n_latents": n, "k": Q["k"], "n_samples": Q["n_samples"], "c": Q["c"]} for n in Q["n_latents"]]
    seeds = list(range(Q["seed"], Q["seed"] + Q["n_seeds"]))
    return make_grid(EXPERIMENT, data, list(params), seeds, params=params)


def analysis_params(Q: Mapping) -> dict:
    """The parameters of the stage-2 analyses (sorted grids), part of their keys."""
    return {"lam": float(Q["lam"]), "lam_grid": sorted(map(float, set(Q["lam_grid"]))),
            "iteration_grid": sorted(set(Q["iteration_grid"])), "dl_round_grid": sorted(set(Q["dl_round_grid"])),
            "dl_max_rounds": int(Q["dl_max_rounds"]), "dl_schedule": Q["dl_schedule"], "fista_iter": 100,
            "sae_history_every": int(Q["sae_history_every"])}


def analysis_key(kind: str, cell_key: str, params: Mapping) -> str:
    """Key of an analysis record: 16 hex digits of the sha256 of ``kind`` ("reference" or
    "sae"), the base cell's key, :data:`ANALYSIS_VERSION` and ``params``."""
    check_choice("kind", kind, ("reference", "sae"))
    payload = json.dumps({"kind": kind, "cell": cell_key, "version": ANALYSIS_VERSION, "params": params},
                         sort_keys=True, separators=(",", ":"))
    return "a" + hashlib.sha256(payload.encode()).hexdigest()[:15]


# --------------------------------------------------------------------------- stored SAEs
def load_sae(record: Mapping, arrays: Mapping, *, device="cpu"):
    """Rebuild a trained SAE from its stored record and arrays (no training).

    Parameters
    ----------
    record : dict
        The runner's record of an ``sae_*`` cell (``method``, ``method_params``, ``data``).
    arrays : dict of numpy.ndarray
        Its ``<key>.npz``: ``decoder`` (m, width), ``decoder_bias`` (m,) and ``state_<name>``
        for the other parameters (``state_W_enc_NFM`` (width, m), ``state_b_enc_NF`` (width,),
        ``state_log_theta_NF`` (width,) for JumpReLU).

    Returns
    -------
    csood.saes.SAE
        One model, on ``device``, whose codes equal the stored SAE's.
    """
    import torch

    from .saes import make_sae

    method = record.get("method")
    check_choice("record['method']", method, SAE_METHODS)
    need = {"decoder", "decoder_bias"}
    if not need <= set(arrays):
        fail("arrays", f"the stored arrays of an SAE cell (with {sorted(need)})", sorted(arrays))
    p = dict(record["method_params"])
    width, k = p.pop("width") or record["data"]["n_latents"], p.pop("k") or record["data"]["k"]
    config = {name: v for name, v in p.items() if name not in ("epochs", "batch_size", "lr", "renorm_every")}
    D = np.asarray(arrays["decoder"], dtype=np.float32)
    sae = make_sae(method[len("sae_"):], D.shape[0], width, k=k, **config)
    with torch.no_grad():
        for name, param in sae.named_parameters():
            value = {"W_dec_NMF": D, "b_dec_NM": arrays["decoder_bias"]}.get(name, arrays.get(f"state_{name}"))
            if value is None:
                fail("arrays", f"a 'state_{name}' entry (store SAEs with save_arrays=True)", sorted(arrays))
            param.copy_(torch.as_tensor(np.asarray(value, dtype=np.float32)).reshape(param.shape[1:]))
    return sae.to(device)


# --------------------------------------------------------------------------- pieces
def _mcc(ds, codes: Mapping, seed: int) -> dict:
    return {"mcc_id": float(mcc_id(ds.val.Z, np.asarray(codes["val"]), seed=seed)),
            "mcc_ood": float(mcc_ood(ds.ood.Z, np.asarray(codes["ood"]), seed=seed))}


def _quantiles(x) -> list:
    return np.quantile(np.asarray(x, dtype=np.float64), QUANTILES).round(5).tolist()


def dictionary_variants(ds, D, b, *, lam: float, seed: int, device=None) -> dict:
    """Frozen-decoder FISTA (100 iterations, cold) on variants of a decoder ``D`` (m, n_components)
    with bias ``b`` (m,): ``raw``, ``renormalised`` columns, the SAE's directions with the
    ``true_norms`` of their matched columns, and ``true_directions`` (the true ``A``, no bias:
    oracle FISTA). Returns ``{variant: {"mcc_id", "mcc_ood", "mean_norm"}}``."""
    variants = {"raw": (D, b), "renormalised": (renormalise_columns(D), b),
                "true_norms": (with_true_norms(D, ds.A), b), "true_directions": (ds.A, None)}
    out = {}
    for name, (W, bias) in variants.items():
        codes = {s: frozen_decoder_codes(ds[s].Y, W, bias, lam=lam, device=device) for s in _EVAL}
        out[name] = {**_mcc(ds, codes, seed), "mean_norm": float(np.linalg.norm(W, axis=0).mean())}
    return out


def warm_start_curve(ds, D, b, Z0: Mapping | None, iteration_grid: Sequence[int], *, lam: float,
                     seed: int, device=None) -> list[dict]:
    """MCC and mean OOD Lasso objective of FISTA on ``Y - b`` with dictionary ``D`` (m, n_components)
    after each number of iterations in ``iteration_grid``, started from ``Z0`` (``{"val", "ood"}``
    codes of shape (n_split_samples, n_components)) or from zeros (``Z0=None``)."""
    rows = []
    for it in sorted(iteration_grid):
        codes = {s: frozen_decoder_codes(ds[s].Y, D, b, lam=lam, max_iter=it, device=device,
                                         Z0=None if Z0 is None else Z0[s]) for s in _EVAL}
        Y_ood = ds.ood.Y - (0 if b is None else b)
        objective = float(np.mean(lasso_objective(Y_ood, D, codes["ood"], lam)))
        rows.append({"iterations": int(it), **_mcc(ds, codes, seed), "objective_ood": objective})
    return rows


def lambda_curve(ds, D, b, lam_grid: Sequence[float], *, seed: int, device=None) -> list[dict]:
    """MCC of cold-start FISTA (100 iterations) on ``Y - b`` with ``D`` (m, n_components) per
    penalty in ``lam_grid`` (``b=None``: no bias, e.g. the oracle with ``D = A``)."""
    rows = []
    for lam in sorted(lam_grid):
        codes = {s: frozen_decoder_codes(ds[s].Y, D, b, lam=lam, device=device) for s in _EVAL}
        rows.append({"lam": float(lam), **_mcc(ds, codes, seed)})
    return rows


def dl_curve(ds, D0, P: Mapping, *, seed: int, device=None) -> dict:
    """DL-FISTA on the train split from the initial dictionary ``D0`` (m, n_components), with
    snapshots at the rounds of ``P["dl_round_grid"]`` (and the last round); per snapshot the
    matched mean atom cosine and the val/OOD MCC of FISTA codes on it (``P["fista_iter"]``
    iterations). Returns ``{"n_rounds", "converged", "curve": [{"round", "mean_cosine",
    "mcc_id", "mcc_ood"}, ...]}``."""
    from .dictionary import dl_fista

    D0 = np.asarray(D0, dtype=np.float32)
    grid = set(P["dl_round_grid"])
    snaps = {0: D0 / np.linalg.norm(D0, axis=0)}

    def snapshot(r, D):
        if r in grid:
            snaps[r] = D.detach().cpu().numpy().copy()

    res = dl_fista(ds.train.Y, D0.shape[1], lam=P["lam"], max_rounds=P["dl_max_rounds"],
                   fista_iter=P["fista_iter"], schedule=P["dl_schedule"], D_init=D0, seed=seed,
                   callback=snapshot, device=device)
    snaps[res.n_rounds] = np.asarray(res.dictionary)
    curve = []
    for r in sorted(snaps):
        codes = {s: fista(ds[s].Y, snaps[r], P["lam"], max_iter=P["fista_iter"], device=device) for s in _EVAL}
        curve.append({"round": int(r), "mean_cosine": dictionary_diagnostics(snaps[r], ds.A)["mean_cosine"],
                      **_mcc(ds, codes, seed)})
    return {"n_rounds": int(res.n_rounds), "converged": bool(res.converged), "curve": curve}


# --------------------------------------------------------------------------- analyses
def _random_dictionary(m: int, n: int, seed: int) -> np.ndarray:
    D = np.random.default_rng(seed).standard_normal((m, n)).astype(np.float32)
    return D / np.linalg.norm(D, axis=0)


def analyse_reference(ds, P: Mapping, *, seed: int, device=None) -> dict:
    """Analyses that need no SAE, on dataset ``ds``: oracle FISTA against lambda and against
    iterations, and DL-FISTA from a random Gaussian initialisation (drawn from ``seed``).

    Returns
    -------
    dict
        ``oracle_lambda`` (:func:`lambda_curve`), ``oracle_iterations``
        (:func:`warm_start_curve` from zeros), ``dl_random`` (:func:`dl_curve`), ``seconds``.
    """
    t0 = time.perf_counter()
    out = {"oracle_lambda": lambda_curve(ds, ds.A, None, P["lam_grid"], seed=seed, device=device),
           "oracle_iterations": warm_start_curve(ds, ds.A, None, None, P["iteration_grid"], lam=P["lam"],
                                                 seed=seed, device=device),
           "dl_random": dl_curve(ds, _random_dictionary(ds.m, ds.n_latents, seed), P, seed=seed, device=device)}
    return {**out, "seconds": time.perf_counter() - t0}


def analyse_sae(ds, record: Mapping, arrays: Mapping, P: Mapping, *, device=None) -> dict:
    """Every SAE analysis of the chapter for one stored SAE cell on its dataset ``ds``.

    Parameters
    ----------
    ds : csood.data.SparseDataset
        The cell's dataset (``make_dataset(**record["data"])``).
    record, arrays : dict
        The SAE cell's record and arrays (see :func:`load_sae`).
    P : dict
        :func:`analysis_params`.

    Returns
    -------
    dict
        ``dictionary`` (matched-atom summaries and :data:`QUANTILES` of the per-atom
        ``cosines``, ``angles``, ``norm_ratios``), ``variants`` (:func:`dictionary_variants`),
        ``support`` (``{"sae"|"frozen": {split: support_metrics}}``), ``least_squares``
        (``{"sae"|"ls": MCC}``), ``warm_start`` (``{"zeros"|"sae": curve}``), ``lambda``
        (:func:`lambda_curve`), ``dl_sae`` (:func:`dl_curve` from the decoder), ``dynamics``
        (``epoch``, ``mean_cosine``, ``l0`` lists of the retrained SAE, ``retrain_max_abs_diff``),
        ``seconds``.
    """
    from .saes import sae_codes, sae_decoder, train_sae

    t0, seed, lam = time.perf_counter(), int(record["seed"]), P["lam"]
    sae = load_sae(record, arrays)
    D, b = np.asarray(arrays["decoder"], np.float32), np.asarray(arrays["decoder_bias"], np.float32)
    Z = {s: sae_codes(sae, ds[s].Y) for s in _EVAL}
    frozen = {s: frozen_decoder_codes(ds[s].Y, D, b, lam=lam, device=device) for s in _EVAL}
    diag = dictionary_diagnostics(D, ds.A)
    out = {"dictionary": {**{k: float(diag[k]) for k in ("mean_cosine", "mean_angle", "mean_norm_ratio",
                                                           "frac_aligned")},
                          **{k: _quantiles(diag[k]) for k in ("cosines", "angles", "norm_ratios")}},
           "codes_mcc": _mcc(ds, Z, seed),
           "variants": dictionary_variants(ds, D, b, lam=lam, seed=seed, device=device),
           "support": {name: {s: support_metrics(ds[s].Z, C[s]) for s in _EVAL} for name, C in
                       (("sae", Z), ("frozen", frozen))},
           "least_squares": {"sae": _mcc(ds, Z, seed), "ls": _mcc(ds, {s: ls_on_support(
               ds[s].Y - b, D, Z[s], device=device) for s in _EVAL}, seed)},
           "warm_start": {start: warm_start_curve(ds, D, b, Z0, P["iteration_grid"], lam=lam, seed=seed,
                                                  device=device) for start, Z0 in (("zeros", None), ("sae", Z))},
           "lambda": lambda_curve(ds, D, b, P["lam_grid"], seed=seed, device=device),
           "dl_sae": dl_curve(ds, D, P, seed=seed, device=device)}
    p = dict(record["method_params"])
    width, k = p.pop("width") or ds.n_latents, p.pop("k") or ds.k
    retrained, hist = train_sae(record["method"][len("sae_"):], ds.train.Y, width=width, k=k, seed=seed,
                                history_every=P["sae_history_every"], reference=ds.A, device=device, **p)
    out["dynamics"] = {key: [float(v) for v in hist[key]] for key in ("epoch", "mean_cosine", "l0")}
    out["dynamics"]["retrain_max_abs_diff"] = float(np.abs(sae_decoder(retrained) - D).max())
    return {**out, "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------- the chapter's store
def run_or_load(Q: Mapping, *, missing: str = "compute", device=None) -> tuple[dict, list[dict]]:
    """Stage-1 records and stage-2 analyses of chapter parameters ``Q`` from the store at
    ``Q["results_dir"]``, computing what is missing (``"compute"``) or leaving it out (``"skip"``).

    Returns
    -------
    results : dict
        ``records`` (stage-1 records, list), ``reference`` (``{(n, seed): analysis}``) and
        ``sae`` (``{(n, sae method, seed): analysis}``); every analysis carries ``n_latents``,
        ``seed`` and ``method``.
    missing : list of dict
        One ``{"what": "cell"|"analysis", "method", "n_latents", "seed"}`` per missing cell or
        analysis (always empty with ``"compute"``).
    """
    from .sweeps import results_path

    check_choice("missing", missing, ("compute", "skip"))
    store = ResultStore(results_path(Q["results_dir"]))
    cells = base_cells(Q)
    if missing == "compute":
        records = run_grid(cells, store, device=device, progress=False, save_arrays=True)
    else:
        records = store.records([c.key for c in cells], missing="skip")
    have = {r["key"] for r in records}
    gone = [{"what": "cell", "method": c.method, "n_latents": c.data_config["n_latents"], "seed": c.seed}
            for c in cells if c.key not in have]
    P, results = analysis_params(Q), {"records": records, "reference": {}, "sae": {}}
    for c in cells:
        kind = "reference" if c.method == "fista_oracle" else "sae" if c.method in SAE_METHODS else None
        if kind is None:
            continue
        n, key = c.data_config["n_latents"], analysis_key(kind, c.key, P)
        label = (n, c.seed) if kind == "reference" else (n, c.method, c.seed)
        if store.has(key):
            results[kind][label] = store.get(key)
            continue
        if missing == "skip" or c.key not in have:
            gone.append({"what": "analysis", "method": "reference" if kind == "reference" else c.method,
                         "n_latents": n, "seed": c.seed})
            continue
        ds = make_dataset(**c.data_config)
        rec = analyse_reference(ds, P, seed=c.seed, device=device) if kind == "reference" else \
            analyse_sae(ds, store.get(c.key), store.load_arrays(c.key), P, device=device)
        rec.update(key=key, kind=kind, cell=c.key, n_latents=n, seed=c.seed, method=c.method, params=P,
                   analysis_version=ANALYSIS_VERSION)
        results[kind][label] = store.put(rec)
    return results, gone
