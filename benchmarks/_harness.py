"""Timing harness shared by every benchmark.

A benchmark case is timed after a warm-up, several times, and reported as the median and
the spread (min, max) of the repeats. Comparisons are ratios of two cases timed in the same
process, right after each other, on the same inputs: never against a number from elsewhere.
Results go to ``benchmarks/results/<machine>.json`` (merged by case name, written atomically).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"


def sync(device) -> None:
    """Wait for queued GPU work, so that a timer reads the real end of a computation."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def measure(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1, device="cpu") -> dict:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed ones.

    Returns
    -------
    dict
        ``median``, ``min``, ``max`` (seconds) and ``repeats``.
    """
    for _ in range(warmup):
        fn()
        sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "repeats": repeats}


def matmul_peak_gflops(device="cpu", size: int = 2048, repeats: int = 5) -> float:
    """Measured float32 matmul throughput (GFLOP/s) of a ``size``-square product."""
    import torch

    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    t = measure(lambda: a @ b, repeats=repeats, warmup=2, device=device)
    return 2 * size**3 / t["median"] / 1e9


def machine(device="cpu") -> dict:
    """Description of the machine and library versions the numbers were taken on."""
    import numpy
    import scipy
    import sklearn
    import torch

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "versions": {"torch": torch.__version__, "numpy": numpy.__version__,
                     "scipy": scipy.__version__, "scikit-learn": sklearn.__version__},
        "device": str(device),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def machine_name(device="cpu") -> str:
    """File stem for the results of this machine, e.g. ``cpu-2core`` or ``cuda-nvidia-h100``."""
    import torch

    if torch.device(device).type == "cuda":
        return "cuda-" + torch.cuda.get_device_name(torch.device(device)).lower().replace(" ", "-")
    return f"cpu-{os.cpu_count()}core"


def write_results(name: str, section: str, cases: dict, meta: dict) -> Path:
    """Merge ``cases`` under ``section`` into ``results/<name>.json`` atomically."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("sections", {})[section] = {"machine": meta, "cases": cases,
                                                "date": time.strftime("%Y-%m-%d")}
    fd, tmp = tempfile.mkstemp(dir=RESULTS, suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return path


def table(rows: list[list], headers: list[str]) -> str:
    """A plain-text (Markdown) table."""
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    cells = [[fmt(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells])


def cli(doc: str, quick_help: str):
    """The argument parser every benchmark shares: ``--quick`` (smoke run) and ``--threads N``
    (torch intra-op threads); a benchmark adds its own options, then calls :func:`parse`."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    return parser


def parse(parser, argv=None):
    """Parse ``argv`` and apply ``--threads`` before anything is timed."""
    import torch

    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args
