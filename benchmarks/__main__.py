"""``python -m benchmarks [--quick] [--threads N]``: every benchmark, one after the other.

Each writes its section of ``benchmarks/results/<machine>.json`` and prints its table; run a
single one with ``python -m benchmarks.bench_<name>`` (data, fista, dictionary, metrics, sae).
"""

from __future__ import annotations

import argparse

from . import bench_data, bench_dictionary, bench_fista, bench_metrics, bench_sae


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run of every benchmark")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args(argv)
    shared = (["--quick"] if args.quick else []) + ([f"--threads={args.threads}"] if args.threads else [])
    for bench in (bench_data, bench_fista, bench_dictionary, bench_metrics, bench_sae):
        print(f"\n## {bench.__name__.rsplit('.', 1)[-1]}", flush=True)
        bench.main(shared)


if __name__ == "__main__":
    main()
