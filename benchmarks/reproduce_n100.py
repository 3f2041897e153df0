"""Every method at the reproduction configuration (n = 100, k = 10, 5,000 samples, SPEC defaults).

``python -m benchmarks.reproduce_n100 [--methods a b ...] [--seeds 0 1 2]`` runs the grid through
the resumable runner into ``results/reproduction_n100/`` (finished cells are skipped) and prints
ID/OOD MCC and OOD accuracy in both protocols, with the seconds each method took.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from csood import methods
from csood.runner import make_grid, run_grid
from csood.store import ResultStore

from ._harness import table

ROOT = Path(__file__).resolve().parents[1] / "results" / "reproduction_n100"
DATA = {"n_latents": 100, "k": 10, "n_samples": 5000}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=methods.method_names())
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    cells = make_grid("reproduction_n100", [DATA], args.methods, args.seeds)
    records = run_grid(cells, ResultStore(ROOT), device=args.device)
    rows = [[r["method"], r["seed"], r["metrics"]["mcc_id"], r["metrics"]["mcc_ood"], r["metrics"]["acc_ood"],
             r["metrics_paper"]["mcc_id"], r["metrics_paper"]["acc_ood"], r["seconds"]["method"]]
            for r in records]
    print(table(rows, ["method", "seed", "MCC ID", "MCC OOD", "acc OOD", "MCC ID (paper)",
                       "acc OOD (paper)", "seconds"]))


if __name__ == "__main__":
    main()
