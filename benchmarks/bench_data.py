"""Data generation speed and memory (SPEC section 2): vectorised generator vs a per-sample loop.

* ``gen_1e6_n10000``: :func:`csood.data.make_dataset` with ``n_samples = 10**6`` at
  ``n_latents = 10,000``, k = 10 (1.5 million samples in all splits: 10**6 ID + 5 * 10**5 OOD);
  seconds, peak traced memory (``tracemalloc``: numpy and the Python heap), bytes per sample,
  and a check that no split built its dense ``Z`` (``4 * 10**4`` bytes per sample).
* ``gen_paper_n{100,10000}``: the paper's size, 5,000 ID (2,500 train + 2,500 val) and 2,500
  OOD samples.
* ``loop_baseline``: the straightforward generator written sample by sample
  (``rng.choice(pool, k, replace=False)`` per sample, a dense ``z`` row and ``A @ z``), timed on
  ``n_loop`` samples and **scaled linearly** to the vectorised case's sample count; the speed-up
  is reported against that extrapolation.

``python -m benchmarks.bench_data`` (``--quick``: 10**5 samples, fewer repeats, no file).
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

from benchmarks._harness import cli, machine, machine_name, measure, parse, table, write_results
from csood.data import make_dataset

K = 10


def loop_generate(n_latents: int, k: int, n_samples: int, m: int, seed: int = 0):
    """Baseline: one Python iteration per sample (ID rule of SPEC section 2, dense rows)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n_latents)).astype(np.float32)
    A /= np.linalg.norm(A, axis=0, keepdims=True)
    n_ood = n_latents // 2
    id_pool = np.arange(1, n_latents - n_ood)
    any_pool = np.arange(1, n_latents)
    Y = np.empty((n_samples, m), dtype=np.float32)
    support = np.empty((n_samples, k), dtype=np.int64)
    for i in range(n_samples):
        if rng.random() < 0.5:
            s = np.concatenate([[0], rng.choice(id_pool, k - 1, replace=False)])
        else:
            s = rng.choice(any_pool, k, replace=False)
        z = np.zeros(n_latents, dtype=np.float32)
        z[s] = rng.random(k)
        support[i] = np.sort(s)
        Y[i] = A @ z
    return support, Y


def generate_with_memory(n_latents: int, n_samples: int) -> dict:
    """One traced run: seconds, peak traced bytes, and whether any dense Z was built."""
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        ds = make_dataset(n_latents, K, n_samples=n_samples, seed=0)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    total = sum(len(s) for s in ds.splits().values())
    stored = sum(s.support.nbytes + s.values.nbytes + s.Y.nbytes for s in ds.splits().values())
    return {"seconds_traced": seconds, "peak_bytes": peak, "peak_bytes_per_sample": peak / total,
            "stored_bytes_per_sample": stored / total, "n_total_samples": total, "m": ds.m,
            "dense_Z_built": any("Z" in vars(s) for s in ds.splits().values()),
            "dense_Z_bytes_per_sample": 4 * n_latents}


def main(argv=None) -> None:
    parser = cli(__doc__, "smoke run: 10**5 samples, no file")
    args = parse(parser, argv)
    big = 10**5 if args.quick else 10**6
    repeats = 1 if args.quick else 5
    n_loop = 500 if args.quick else 5000

    cases, rows = {}, []
    sizes = [(f"gen_{'1e5' if args.quick else '1e6'}_n10000", 10_000, big),
             ("gen_paper_n100", 100, 5000), ("gen_paper_n10000", 10_000, 5000)]
    for name, n, n_samples in sizes:
        t = measure(lambda: make_dataset(n, K, n_samples=n_samples, seed=0), repeats=repeats)
        mem = generate_with_memory(n, n_samples)
        assert not mem["dense_Z_built"]
        total = mem["n_total_samples"]
        cases[name] = {"n": n, "k": K, "n_samples": n_samples, "seconds": t, **mem}
        rows.append([name, n, total, t["median"], t["min"], t["max"],
                     mem["peak_bytes_per_sample"], mem["dense_Z_bytes_per_sample"]])
        print(f"{name}: {t['median']:.3f} s for {total} samples, peak "
              f"{mem['peak_bytes'] / 1e6:.1f} MB ({mem['peak_bytes_per_sample']:.0f} B/sample; "
              f"dense Z would be {mem['dense_Z_bytes_per_sample']} B/sample)", flush=True)

    # baseline on n_loop samples, scaled linearly to the big case's total sample count
    name, n, n_samples = sizes[0]
    m = cases[name]["m"]
    tb = measure(lambda: loop_generate(n, K, n_loop, m), repeats=1 if args.quick else 3)
    total = cases[name]["n_total_samples"]
    scaled = tb["median"] * total / n_loop
    speedup = scaled / cases[name]["seconds"]["median"]
    cases["loop_baseline"] = {"n": n, "k": K, "n_loop_samples": n_loop, "seconds": tb,
                              "scaled_to_samples": total, "scaled_seconds": scaled,
                              "speedup_vs_vectorised": speedup,
                              "note": "per-sample Python loop timed on n_loop samples, scaled linearly"}
    rows.append([f"loop_baseline (x{total // n_loop} scaled)", n, total, scaled, "", "", "", ""])
    print(f"loop baseline: {tb['median']:.3f} s for {n_loop} samples -> {scaled:.1f} s scaled to "
          f"{total}; vectorised speed-up {speedup:.0f}x", flush=True)
    if not args.quick:
        write_results(machine_name(), "data", cases, machine())
    print(table(rows, ["case", "n", "samples (all splits)", "seconds (median)", "min", "max",
                       "peak B/sample", "dense Z B/sample"]))


if __name__ == "__main__":
    main()
