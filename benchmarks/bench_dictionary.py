"""DL-FISTA speed: seconds per round, and rounds / seconds to a good dictionary.

* ``round_n{n}``: seconds per DL-FISTA round (Lipschitz constant, 100 warm-started FISTA
  iterations on all training samples, least-squares update) at n = 100 and n = 1000
  (k = 10, m = ``cs_bound(n, 10)``, the 2,500 training samples of
  ``make_dataset(n, 10, n_samples=5000, seed=0)``). One run of :func:`csood.dictionary.dl_fista`
  with ``tol = 0``; the round times are the intervals between its per-round callbacks; the
  first ``warmup`` rounds are dropped and the median / min / max of the rest reported.
* ``to_cos95_n100``: the default schedule (``tol = 1e-5``, at most 1,000 rounds) at n = 100
  from a random start: first round whose matched mean |cosine| to ``A`` reaches 0.95 and the
  seconds spent until then (the cosine computation itself is excluded), plus the rounds,
  seconds and cosine at the end of the run.

``python -m benchmarks.bench_dictionary`` (``--quick`` for a smoke run that writes nothing;
``--threads`` sets torch's intra-op threads, ``--device`` the device).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks._harness import machine, machine_name, sync, table, write_results
from csood._device import resolve_device
from csood.data import cs_bound, make_dataset
from csood.dictionary import dl_fista
from csood.metrics import dictionary_diagnostics

K = 10


def seconds_per_round(Y, n: int, *, warmup: int, repeats: int, device) -> dict:
    """Median (min, max) of ``repeats`` round times after ``warmup`` rounds of one run."""
    stamps = []

    def tick(r, D):
        sync(device)
        stamps.append(time.perf_counter())

    sync(device)
    t0 = time.perf_counter()
    dl_fista(Y, n, max_rounds=warmup + repeats, tol=0.0, seed=0, callback=tick, device=device)
    times = [b - a for a, b in zip([t0] + stamps[:-1], stamps)][warmup:]
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "repeats": len(times), "warmup": warmup}


def rounds_to_cosine(Y, A, n: int, *, target: float, max_rounds: int, device) -> dict:
    """Run the default schedule; time and round at which the matched cosine first hits target."""
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

    res = dl_fista(Y, n, max_rounds=max_rounds, seed=0, callback=check, device=device)
    sync(device)
    total = time.perf_counter() - t0 - state["excluded"]
    first = state["first"]
    return {"target": target, "rounds_to_target": first[0] if first else None,
            "seconds_to_target": first[1] if first else None, "n_rounds": res.n_rounds,
            "converged": res.converged, "seconds_total": total, "final_cosine": state["cos"],
            "max_rounds": max_rounds}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer rounds, no file")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'auto'")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    warmup, repeats = (1, 2) if args.quick else (2, 5)
    max_rounds = 40 if args.quick else 1000

    cases, rows = {}, []
    for n in (100, 1000):
        ds = make_dataset(n, K, n_samples=5000, seed=0)
        m = cs_bound(n, K)
        assert ds.train.Y.shape == (2500, m)
        t = seconds_per_round(ds.train.Y, n, warmup=warmup, repeats=repeats, device=device)
        cases[f"round_n{n}"] = {"n": n, "m": m, "k": K, "n_train": 2500, "fista_iter": 100,
                                "seconds_per_round": t}
        rows.append([f"round_n{n}", n, m, t["median"], t["min"], t["max"], "", ""])
        print(f"n={n}: {t['median']:.4f} s/round (min {t['min']:.4f}, max {t['max']:.4f})",
              flush=True)
        if n == 100:
            c = rounds_to_cosine(ds.train.Y, ds.A, n, target=0.95, max_rounds=max_rounds,
                                 device=device)
            cases["to_cos95_n100"] = {"n": n, "m": m, "k": K, "n_train": 2500, **c}
            end = (f"{c['n_rounds']} rounds, {c['seconds_total']:.1f} s, "
                   f"cos {c['final_cosine']:.3f}")
            rows.append(["to_cos95_n100", n, m, c["seconds_to_target"] or float("nan"), "", "",
                         c["rounds_to_target"], end])
            print(f"n=100 to cosine 0.95: {c}", flush=True)
    if not args.quick:
        write_results(machine_name(device), "dl_fista", cases, machine(device))
    print(table(rows, ["case", "n", "m", "seconds (median)", "min", "max", "rounds to 0.95",
                       "end of run"]))


if __name__ == "__main__":
    main()
