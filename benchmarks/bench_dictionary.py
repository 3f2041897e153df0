"""DL-FISTA speed: the paper's round schedule against ``schedule="fast"``.

Problem: k = 10, m = ``cs_bound(n, 10)``, the 2,500 training samples of
``make_dataset(n, 10, n_samples=5000, seed=0)``. Both schedules run in the same process, on the
same inputs, right after each other (``paper`` first).

* ``round_n{n}_{schedule}`` (n = 100, 1000): seconds per DL-FISTA round. One run of
  :func:`csood.dictionary.dl_fista` with ``tol = 0``; the round times are the intervals between
  its per-round callbacks; the first ``warmup`` rounds are dropped and the median / min / max of
  the rest reported. A paper round is 100 FISTA iterations (+ Lanczos Lipschitz constant and
  least-squares update); an early fast round is 10 (the fast schedule's later rounds grow to
  100 iterations, as costly as a paper round).
* ``to_cos95_n100_{schedule}``: a full run (``tol = 1e-5``, at most 1,000 rounds) at n = 100
  from the same random start: first round whose matched mean |cosine| to ``A`` reaches 0.95
  and the seconds spent until then (the cosine computation itself is excluded), the rounds,
  seconds and cosine at the end of the run, and the ID MCC (:func:`csood.metrics.mcc_id`) of
  the val codes: FISTA, 100 iterations, cold start, on the learned dictionary.
* ``speedup_to_cos95_n100``: paper seconds to 0.95 / fast seconds to 0.95, and the final
  cosine and MCC differences (fast - paper).

``python -m benchmarks.bench_dictionary`` (``--quick`` for a smoke run that writes nothing:
at most 40 rounds, so the "final" numbers are not at convergence; ``--threads`` sets torch's
intra-op threads, ``--device`` the device).
"""

from __future__ import annotations

import statistics
import time


from benchmarks._harness import cli, machine, machine_name, parse, sync, table, write_results
from csood._device import resolve_device
from csood.data import cs_bound, make_dataset
from csood.dictionary import dl_fista
from csood.metrics import dictionary_diagnostics, mcc_id
from csood.solvers import fista

K = 10
SCHEDULES = ("paper", "fast")


def seconds_per_round(Y, n: int, *, schedule: str, warmup: int, repeats: int, device) -> dict:
    """Median (min, max) of ``repeats`` round times after ``warmup`` rounds of one run."""
    stamps = []

    def tick(r, D):
        sync(device)
        stamps.append(time.perf_counter())

    sync(device)
    t0 = time.perf_counter()
    res = dl_fista(Y, n, max_rounds=warmup + repeats, tol=0.0, seed=0, callback=tick,
                   device=device, schedule=schedule)
    times = [b - a for a, b in zip([t0] + stamps[:-1], stamps)][warmup:]
    iters = res.history.get("fista_iter", [0] + [100] * res.n_rounds)[1 + warmup:]
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "repeats": len(times), "warmup": warmup, "fista_iter": sorted(set(iters))}


def rounds_to_cosine(ds, n: int, *, schedule: str, target: float, max_rounds: int,
                     device) -> dict:
    """Run one schedule; time and round at which the matched cosine first hits ``target``."""
    A = ds.A
    state = {"first": None, "excluded": 0.0, "cos": float("nan")}
    sync(device)
    t0 = time.perf_counter()

    def check(r, D):
        sync(device)
        t = time.perf_counter()
        state["cos"] = dictionary_diagnostics(D.cpu().numpy(), A)["mean_cosine"]
        if state["first"] is None and state["cos"] >= target:
            state["first"] = (r, t - t0 - state["excluded"])
        state["excluded"] += time.perf_counter() - t

    res = dl_fista(ds.train.Y, n, max_rounds=max_rounds, seed=0, callback=check, device=device,
                   schedule=schedule)
    sync(device)
    total = time.perf_counter() - t0 - state["excluded"]
    first = state["first"]
    Z_val = fista(ds.val.Y, res.dictionary, 0.1, max_iter=100, device=device)
    return {"schedule": schedule, "target": target,
            "rounds_to_target": first[0] if first else None,
            "seconds_to_target": first[1] if first else None, "n_rounds": res.n_rounds,
            "converged": res.converged, "seconds_total": total, "final_cosine": state["cos"],
            "final_mcc_id": mcc_id(ds.val.Z, Z_val), "max_rounds": max_rounds,
            "fista_iter_total": int(sum(res.history.get("fista_iter", [100] * res.n_rounds)))}


def main(argv=None) -> None:
    parser = cli(__doc__, "smoke run: fewer rounds, no file")
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'auto'")
    args = parse(parser, argv)
    device = str(resolve_device(args.device))
    warmup, repeats = (1, 2) if args.quick else (2, 5)
    max_rounds = 40 if args.quick else 1000

    cases, rows = {}, []
    for n in (100, 1000):
        ds = make_dataset(n, K, n_samples=5000, seed=0)
        m = cs_bound(n, K)
        assert ds.train.Y.shape == (2500, m)
        for schedule in SCHEDULES:
            t = seconds_per_round(ds.train.Y, n, schedule=schedule, warmup=warmup,
                                  repeats=repeats, device=device)
            name = f"round_n{n}_{schedule}"
            cases[name] = {"n": n, "m": m, "k": K, "n_train": 2500, "schedule": schedule,
                           "seconds_per_round": t}
            rows.append([name, n, m, t["median"], t["min"], t["max"], "", "", ""])
            print(f"{name}: {t['median']:.4f} s/round (min {t['min']:.4f}, max {t['max']:.4f};"
                  f" FISTA iterations {t['fista_iter']})", flush=True)
        if n != 100:
            continue
        runs = {}
        for schedule in SCHEDULES:
            c = rounds_to_cosine(ds, n, schedule=schedule, target=0.95, max_rounds=max_rounds,
                                 device=device)
            runs[schedule] = c
            name = f"to_cos95_n100_{schedule}"
            cases[name] = {"n": n, "m": m, "k": K, "n_train": 2500, **c}
            end = (f"{c['n_rounds']} rounds{' (converged)' if c['converged'] else ''}, "
                   f"{c['seconds_total']:.1f} s, cos {c['final_cosine']:.4f}")
            rows.append([name, n, m, c["seconds_to_target"] or float("nan"), "", "",
                         c["rounds_to_target"], end, f"{c['final_mcc_id']:.4f}"])
            print(f"{name}: {c}", flush=True)
        p, f = runs["paper"], runs["fast"]
        if p["seconds_to_target"] and f["seconds_to_target"]:
            s = {"speedup": p["seconds_to_target"] / f["seconds_to_target"],
                 "rounds_ratio": p["rounds_to_target"] / f["rounds_to_target"],
                 "final_cosine_diff": f["final_cosine"] - p["final_cosine"],
                 "final_mcc_id_diff": f["final_mcc_id"] - p["final_mcc_id"]}
            cases["speedup_to_cos95_n100"] = s
            rows.append(["speedup_to_cos95_n100", n, m, s["speedup"], "", "",
                         f"{s['rounds_ratio']:.2f}x fewer",
                         f"cos diff {s['final_cosine_diff']:+.4f}",
                         f"{s['final_mcc_id_diff']:+.4f}"])
    if not args.quick:
        write_results(machine_name(device), "dl_fista", cases, machine(device))
    print(table(rows, ["case", "n", "m", "seconds (median) / speedup", "min", "max",
                       "rounds to 0.95", "end of run", "val ID MCC"]))


if __name__ == "__main__":
    main()
