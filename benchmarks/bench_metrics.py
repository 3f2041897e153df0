"""Metric speed at scale: csood.metrics vs the straightforward dense computation.

Inputs: ``make_dataset(n, 10, n_samples=5000, seed=0)`` (n = 10,000, m = 139; ``--quick``:
n = 1,000) with two kinds of codes for every split:

* ``fista``: oracle FISTA codes (``csood.solvers.fista(Y, A, 0.1)``), sparse (~0.1 % non-zero);
* ``probe``: the linear probe's predictions (:class:`csood.probes.LinearProbe` fitted on train),
  dense: the worst case for the correlation step.

Per metric (ID MCC ``ours`` and ``paper``, OOD MCC, AUC ``ours`` and ``paper``, dictionary
diagnostics of a noisy copy of ``A`` against ``A``) the library call is timed and compared with a
baseline written here: full |Pearson| matrix of all columns (dense, float64) and
``scipy.optimize.linear_sum_assignment`` on it; ``scipy.stats.rankdata`` over every column for
AUC. The two values must agree (to 1e-10); the ratio baseline / library is reported.

``python -m benchmarks.bench_metrics`` (``--quick``: n = 1,000, one repeat, no file).
"""

from __future__ import annotations


import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata

from benchmarks._harness import cli, machine, machine_name, measure, parse, table, write_results
from csood import metrics
from csood.data import make_dataset
from csood.probes import LinearProbe
from csood.solvers import fista

SPLITS = ("train", "val", "ood")


# --------------------------------------------------------------------------- dense baseline
def dense_abs_corr(X, Y):
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    nx, ny = np.linalg.norm(Xc, axis=0), np.linalg.norm(Yc, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        C = np.abs((Xc.T @ Yc) / np.outer(nx, ny))
    return np.minimum(np.nan_to_num(C, nan=0.0, posinf=0.0), 1.0)


def _lsa_sum(C):
    r, c = linear_sum_assignment(C, maximize=True)
    return C[r, c].sum()


def dense_mcc_id(T, K, protocol, seed=0):
    Ta = T[:, T.max(0) != T.min(0)]
    p, q = Ta.shape[1], K.shape[1]
    if protocol == "ours":
        return _lsa_sum(dense_abs_corr(Ta, K)) / p
    rng = np.random.default_rng(seed)
    if q < p:
        K = np.hstack([K, rng.standard_normal((K.shape[0], p - q))])
    elif p < q:
        Ta = np.hstack([Ta, rng.standard_normal((T.shape[0], q - p))])
    return _lsa_sum(dense_abs_corr(Ta, K)) / max(p, q)


def dense_mcc_ood(T, K, seed=0):
    Ta = T[:, T.max(0) != T.min(0)]
    p = Ta.shape[1]
    Kt = K[:, np.argsort(-K.var(0), kind="stable")[:p]]
    if Kt.shape[1] < p:
        Kt = np.hstack([Kt, np.random.default_rng(seed).standard_normal((K.shape[0], p - Kt.shape[1]))])
    return _lsa_sum(dense_abs_corr(Ta, Kt)) / p


def dense_auc(codes, labels, protocol):
    pick = "train" if protocol == "ours" else "val"

    def col_auc(X, y):
        ranks = rankdata(X, axis=0)
        n_pos = y.sum()
        a = (ranks[y].sum(0) - n_pos * (n_pos + 1) / 2) / (n_pos * (y.size - n_pos))
        a = np.maximum(a, 1 - a)
        a[X.max(0) == X.min(0)] = 0.5
        return a

    f = int(np.argmax(col_auc(codes[pick], labels[pick])))
    return {s: float(col_auc(codes[s][:, [f]], labels[s])[0]) for s in ("val", "ood")} | {"feature": f}


def dense_dictionary(D, A):
    Dn, An = D / np.linalg.norm(D, axis=0), A / np.linalg.norm(A, axis=0)
    C = np.minimum(np.abs(An.T @ Dn), 1.0)
    r, c = linear_sum_assignment(C, maximize=True)
    return float(C[r, c].mean())


# --------------------------------------------------------------------------- inputs
def inputs(n):
    ds = make_dataset(n, 10, n_samples=5000, seed=0)
    Z = {s: ds[s].Z.astype(np.float64) for s in SPLITS}
    labels = {s: ds[s].labels for s in SPLITS}
    probe = LinearProbe().fit(ds.train.Y, ds.train.Z)
    codes = {"fista": {s: np.asarray(fista(ds[s].Y, ds.A, 0.1), dtype=np.float64) for s in SPLITS},
             "probe": {s: np.asarray(probe.transform(ds[s].Y), dtype=np.float64) for s in SPLITS}}
    rng = np.random.default_rng(1)
    D = ds.A + 0.3 * rng.standard_normal(ds.A.shape) / np.sqrt(ds.m)  # a "learned" dictionary
    return ds, Z, labels, codes, D.astype(np.float64)


def main(argv=None) -> None:
    parser = cli(__doc__, "smoke run: n = 1,000, no file")
    parser.add_argument("--no-baseline", action="store_true", help="time the library only")
    args = parse(parser, argv)
    n = 1000 if args.quick else 10_000
    repeats = 1 if args.quick else 3
    ds, Z, labels, codes, D = inputs(n)
    print(f"n={n}, m={ds.m}: inputs ready", flush=True)

    cases, rows = {}, []
    for kind, C in codes.items():
        tasks = {
            "mcc_id_ours": (lambda: metrics.mcc_id(Z["val"], C["val"]),
                            lambda: dense_mcc_id(Z["val"], C["val"], "ours")),
            "mcc_id_paper": (lambda: metrics.mcc_id(Z["val"], C["val"], protocol="paper"),
                             lambda: dense_mcc_id(Z["val"], C["val"], "paper")),
            "mcc_ood": (lambda: metrics.mcc_ood(Z["ood"], C["ood"]),
                        lambda: dense_mcc_ood(Z["ood"], C["ood"])),
            "auc_ours": (lambda: metrics.auc(C, labels), lambda: dense_auc(C, labels, "ours")),
            "auc_paper": (lambda: metrics.auc(C, labels, protocol="paper"),
                          lambda: dense_auc(C, labels, "paper")),
        }
        if kind == "fista":
            tasks["dictionary"] = (lambda: metrics.dictionary_diagnostics(D, ds.A)["mean_cosine"],
                                   lambda: dense_dictionary(D, ds.A.astype(np.float64)))
        total = 0.0
        for name, (fast, slow) in tasks.items():
            value = fast()
            t = measure(fast, repeats=repeats, warmup=0)
            total += t["median"]
            case = {"n": n, "codes": kind, "seconds": t, "value": value}
            ratio = ""
            if not args.no_baseline:
                ref = slow()
                tb = measure(slow, repeats=1, warmup=0)
                a, b = (value["val"], ref["val"]) if isinstance(value, dict) else (value, ref)
                assert abs(a - b) < 1e-10, (name, kind, value, ref)
                ratio = tb["median"] / t["median"]
                case |= {"baseline_seconds": tb, "baseline_value": ref, "ratio": ratio}
            cases[f"{name}_{kind}"] = case
            rows.append([f"{name}_{kind}", n, t["median"], t["min"], t["max"],
                         case.get("baseline_seconds", {}).get("median", ""), ratio])
            print(f"{name} ({kind}): {t['median']:.3f} s, value {value}"
                  + (f", baseline {tb['median']:.2f} s, ratio {ratio:.1f}" if ratio != "" else ""),
                  flush=True)
        cases[f"total_{kind}"] = {"n": n, "seconds": total}
        rows.append([f"total_{kind}", n, total, "", "", "", ""])
    if not args.quick:
        write_results(machine_name(), "metrics", cases, machine())
    print(table(rows, ["case", "n", "seconds (median)", "min", "max", "dense baseline s",
                       "ratio"]))


if __name__ == "__main__":
    main()
