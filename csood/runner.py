"""Grid runner: experiment cells -> datasets -> methods -> metrics -> one stored record each.

A :class:`Cell` is one (experiment, data config, method, parameters, seed). Its key is the first
16 hex digits of the sha256 of the canonical JSON (sorted keys) of the experiment, the resolved
data config (``m`` filled in), the method, its resolved parameters (defaults included), its
version, the seed and :data:`csood.metrics.METRICS_VERSION`: records of another configuration or version are never taken for current
ones, and keys are the same in every process. Seeds: the cell's ``seed`` drives both the data
and the method unless the data config holds its own ``"seed"``; the MCC noise padding uses it too.

:func:`run_grid` runs each cell at most once: cells already in the store are skipped, so an
interrupted grid resumes where it stopped (losing at most the cell in progress). Cells run
grouped by dataset (each generated once, the last few kept in a memory-bounded cache), plain
methods before family members, so that ``frozen_<sae>`` reuses the ``<sae>`` output of the same
dataset and seed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import platform
import sys
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping

import numpy as np

from . import __version__
from ._validation import check_choice, check_int, fail
from .metrics import METRICS_VERSION
from .data import check_data_config, make_dataset
from .methods import SPLITS, _signature, get_method, resolve_params, run_method
from .store import ResultStore

__all__ = ["DATA_KEYS", "Cell", "grid_product", "make_grid", "order_cells", "run_grid"]

#: Keys a data config may hold (``make_dataset`` arguments).
DATA_KEYS = ("n_latents", "k", "m", "n_samples", "c", "seed")


def _canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def resolve_data(data: Mapping, seed: int) -> dict:
    """Validate a data config with :func:`csood.data.check_data_config`; return it resolved
    (``m`` filled in, ``seed`` defaulting to the cell seed)."""
    if not isinstance(data, Mapping) or "n_latents" not in data or "k" not in data:
        fail("data", "a dict of make_dataset arguments with 'n_latents' and 'k'", data)
    for key in data:
        if key not in DATA_KEYS:
            fail("data keys", "among " + ", ".join(map(repr, DATA_KEYS)), key)
    kw = {k: v for k, v in data.items() if k not in ("n_latents", "k")}
    kw.setdefault("seed", seed)
    n, k, m, n_samples, c, data_seed = check_data_config(data["n_latents"], data["k"], **kw)
    return {"n_latents": n, "k": k, "m": m, "n_samples": n_samples, "c": c, "seed": data_seed}


@dataclass(frozen=True, eq=False)
class Cell:
    """One experiment cell, validated on construction (a bad config fails before anything runs).

    Fields (as given): ``experiment``; ``data``, the ``make_dataset`` arguments (``n_latents``,
    ``k``, optional ``m``, ``n_samples``, ``c``, ``seed`` defaulting to the cell's seed);
    ``method``, a name from :func:`csood.methods.method_names`; ``params``, overrides of its
    defaults; ``seed``, the method seed (and data seed unless ``data["seed"]`` is given).

    Resolved attributes: ``data_config`` (``m`` and ``seed`` filled in), ``method_params``
    (defaults included), ``method_version``, ``key``, and ``data_key`` (canonical JSON of
    ``data_config``: cells with equal ``data_key`` share a dataset).
    """

    experiment: str
    data: Mapping
    method: str
    params: Mapping | None = None
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.experiment, str) or not self.experiment:
            fail("experiment", "a non-empty string", self.experiment)
        seed = check_int("seed", self.seed, low=0)
        spec = get_method(self.method)
        data = resolve_data(self.data, seed)
        params = resolve_params(self.method, self.params)
        payload = {"experiment": self.experiment, "data": data, "method": self.method,
                   "params": params, "method_version": spec.version, "seed": seed,
                   "metrics_version": METRICS_VERSION}
        digest = hashlib.sha256(_canonical_json(payload).encode()).hexdigest()
        for name, value in (("seed", seed), ("data", dict(self.data)),
                            ("params", dict(self.params or {})), ("data_config", data),
                            ("method_params", params), ("method_version", spec.version),
                            ("key", digest[:16]), ("data_key", _canonical_json(data))):
            object.__setattr__(self, name, value)

    def __eq__(self, other):
        return isinstance(other, Cell) and other.key == self.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        d = self.data_config
        return (f"Cell({self.experiment!r}, n={d['n_latents']}, k={d['k']}, m={d['m']}, "
                f"samples={d['n_samples']}, {self.method}, seed={self.seed}, key={self.key})")


def grid_product(**axes) -> list[dict]:
    """Cartesian product of data axes: ``grid_product(n_latents=[50, 100], k=[3, 5],
    n_samples=2000)`` gives four dicts (scalars are held fixed)."""
    names = list(axes)
    lists = [v if isinstance(v, (list, tuple)) else [v] for v in axes.values()]
    return [dict(zip(names, combo)) for combo in itertools.product(*lists)]


def order_cells(cells: Iterable[Cell]) -> list[Cell]:
    """Cells without duplicates (by key), grouped by dataset in order of first appearance;
    within a dataset plain methods come before family members (stable otherwise)."""
    unique = list(OrderedDict((c.key, c) for c in cells).values())
    first: dict[str, int] = {}
    for c in unique:
        first.setdefault(c.data_key, len(first))
    return sorted(unique, key=lambda c: (first[c.data_key], get_method(c.method).family is not None))


def make_grid(experiment: str, data_grid, methods: Iterable[str], seeds: Iterable[int], *,
              params: Mapping | None = None) -> list[Cell]:
    """Cartesian product data configs x seeds x methods (x parameter variants).

    ``data_grid`` is a data config or a list of them (see :class:`Cell`; :func:`grid_product`
    builds products); ``params`` maps a method to overrides, or to a list of overrides (a sweep:
    one cell per dict). Returns the cells without duplicates, ordered by :func:`order_cells`.
    Invalid data configs, unknown methods or parameters raise ``ValueError`` before anything runs.
    """
    data_grid = [data_grid] if isinstance(data_grid, Mapping) else list(data_grid)
    methods = [methods] if isinstance(methods, str) else list(methods)
    seeds = [seeds] if isinstance(seeds, (int, np.integer)) else list(seeds)
    for name, value in (("data_grid", data_grid), ("methods", methods), ("seeds", seeds)):
        if not value:
            fail(name, "a non-empty list", value)
    params = dict(params or {})
    for name in params:
        if name not in methods:
            fail("params keys", "among the grid's methods " + ", ".join(map(repr, methods)), name)
    cells = []
    for data, seed, method in itertools.product(data_grid, seeds, methods):
        variants = params.get(method) or [{}]
        for p in [variants] if isinstance(variants, Mapping) else variants:
            cells.append(Cell(experiment, data, method, p, seed))
    return order_cells(cells)


# --------------------------------------------------------------------------- running
def _device_info(device) -> tuple[str, str]:
    import torch

    from ._device import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        return str(dev), torch.cuda.get_device_name(dev)
    return str(dev), platform.processor() or platform.machine()


def _dataset_nbytes(ds) -> int:
    total = ds.A.nbytes
    for split in ds.splits().values():
        total += split.Y.nbytes + split.support.nbytes + split.values.nbytes
        if "Z" in split.__dict__:  # dense latents materialised (cached_property)
            total += split.__dict__["Z"].nbytes
    return total


class _DatasetCache:
    """LRU of datasets by data key, bounded by count and by bytes (the newest always stays)."""

    def __init__(self, max_items: int, max_bytes: int):
        self.max_items, self.max_bytes = max_items, max_bytes
        self.items: OrderedDict = OrderedDict()

    def get(self, cell: Cell):
        if cell.data_key in self.items:
            self.items.move_to_end(cell.data_key)
            return self.items[cell.data_key], 0.0
        t0 = time.perf_counter()
        ds = self.items[cell.data_key] = make_dataset(**cell.data_config)
        seconds = time.perf_counter() - t0
        while len(self.items) > 1 and (
                len(self.items) > self.max_items
                or sum(map(_dataset_nbytes, self.items.values())) > self.max_bytes):
            self.items.popitem(last=False)
        return ds, seconds


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.size <= 64 else f"<array {obj.shape}>"
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)


def evaluate_cell(cell: Cell, dataset, output, *, dictionary_metrics: bool = True) -> dict:
    """Metrics of one method output: ``metrics`` (protocol "ours"), ``metrics_paper``, and
    ``dictionary_metrics`` when the method has a dictionary; plus ``seconds``."""
    from .metrics import dictionary_diagnostics, evaluate

    Z_true = {s: dataset[s].Z for s in ("val", "ood")}
    labels = {s: dataset[s].labels for s in SPLITS}
    t0 = time.perf_counter()
    out = {"metrics": evaluate(Z_true, output.codes, labels, protocol="ours", seed=cell.seed),
           "metrics_paper": evaluate(Z_true, output.codes, labels, protocol="paper", seed=cell.seed)}
    t1 = time.perf_counter()
    if dictionary_metrics and output.dictionary is not None:
        diag = dictionary_diagnostics(output.dictionary, dataset.A)
        out["dictionary_metrics"] = {k: float(v) for k, v in diag.items() if np.isscalar(v)}
    out["seconds"] = {"evaluate": t1 - t0, "diagnostics": time.perf_counter() - t1}
    return out


class _Progress:
    """One status line on stderr: done / total, skipped, failed, elapsed, estimated time left."""

    def __init__(self, total: int, skipped: int, enabled: bool):
        self.total, self.skipped, self.enabled = total, skipped, enabled
        self.done = self.failed = 0
        self.t0 = time.perf_counter()
        self.tty = enabled and sys.stderr.isatty()

    @staticmethod
    def _fmt(seconds: float) -> str:
        seconds = int(round(seconds))
        h, rest = divmod(seconds, 3600)
        return (f"{h}:" if h else "") + "{:02d}:{:02d}".format(*divmod(rest, 60))

    def update(self, label: str = "") -> None:
        if not self.enabled:
            return
        elapsed, ran = time.perf_counter() - self.t0, self.done + self.failed
        eta = f"~{self._fmt(elapsed / ran * (self.total - self.skipped - ran))} left" if ran else "estimating"
        line = (f"{self.skipped + ran}/{self.total} cells ({self.skipped} skipped, {self.failed} "
                f"failed) | {self._fmt(elapsed)} elapsed | {eta} {label}")
        sys.stderr.write(("\r" + line.ljust(100)) if self.tty else line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def run_grid(cells: Iterable[Cell], store: ResultStore, *, device=None, progress: bool = True,
             on_error: str = "raise", save_arrays: bool = True, dictionary_metrics: bool = True,
             cache_size: int = 2, cache_bytes: int = 2 * 2**30) -> list[dict]:
    """Run every cell not yet in ``store`` and return the records of all cells.

    Parameters
    ----------
    cells : iterable of Cell
        Usually from :func:`make_grid`; duplicates are run once, and cells are reordered by
        dataset (:func:`order_cells`).
    store : ResultStore
    device : str or torch.device, optional
        Passed to the methods; recorded as resolved (``"auto"``/None: CUDA when present).
    progress : bool
        Status line on stderr (``\\r``-updated on a terminal, one line per cell otherwise).
        Pass False in notebooks that must stay reproducible.
    on_error : {"raise", "warn"}
        A method or metric that raises: re-raise (cells finished so far stay stored), or warn
        and go on (the cell is left out of the result and runs again next time).
        ``KeyboardInterrupt`` always stops the grid.
    save_arrays : bool
        Store the learned dictionary (``"dictionary"``) and the method's artifacts in
        ``<key>.npz`` beside the record (float32).
    dictionary_metrics : bool
        Add :func:`csood.metrics.dictionary_diagnostics` (against the true ``A``) to records of
        methods with a dictionary. Not part of the key: records written without it stay.
    cache_size, cache_bytes : int
        At most this many datasets, and this many bytes of them, are kept in memory.

    Returns
    -------
    list of dict
        The record of every cell (stored or new), in the order of ``cells`` (deduplicated),
        except cells that failed with ``on_error="warn"``.
    """
    check_choice("on_error", on_error, ("raise", "warn"))
    cache_size = check_int("cache_size", cache_size, low=1)
    cache_bytes = check_int("cache_bytes", cache_bytes, low=0)
    given = list(OrderedDict((c.key, c) for c in cells).values())
    for c in given:
        if not isinstance(c, Cell):
            fail("cells", "Cell objects (see make_grid)", type(c).__name__)
    device_str, device_name = _device_info(device)
    todo = [c for c in order_cells(given) if not store.has(c.key)]
    bar = _Progress(len(given), len(given) - len(todo), progress)
    datasets = _DatasetCache(cache_size, cache_bytes)
    new, base_cache, base_group, needed = {}, {}, None, _needed_bases(todo)
    try:
        for cell in todo:
            if cell.data_key != base_group:  # base outputs are only reused within one dataset
                base_cache, base_group = {}, cell.data_key
            bar.update(f"| {cell.method} n={cell.data_config['n_latents']} seed={cell.seed}")
            try:
                record, arrays = _run_cell(cell, datasets, base_cache, needed, device,
                                           dictionary_metrics, save_arrays)
            except Exception as exc:
                if on_error == "raise":
                    raise
                bar.failed += 1
                warnings.warn(f"{cell!r} failed: {type(exc).__name__}: {exc}", RuntimeWarning,
                              stacklevel=2)
                continue
            record.update(device=device_str, device_name=device_name)
            new[cell.key] = store.put(record, arrays or None)
            bar.done += 1
        bar.update("| finished")
    finally:
        bar.close()
    return [new[c.key] if c.key in new else store.get(c.key)
            for c in given if c.key in new or store.has(c.key)]


def _needed_bases(cells: list[Cell]) -> set:
    out = set()
    for c in cells:
        spec = get_method(c.method)
        if spec.family is not None:
            out.add((c.data_key, _signature(spec.base, c.method_params["base"], c.seed)))
    return out


def _run_cell(cell, datasets, base_cache, needed, device, dictionary_metrics, save_arrays):
    dataset, data_seconds = datasets.get(cell)
    t0 = time.perf_counter()
    output = run_method(cell.method, dataset, params=cell.method_params, seed=cell.seed, device=device,
                        base_cache=base_cache)
    method_seconds = time.perf_counter() - t0
    sig = _signature(cell.method, cell.method_params, cell.seed)
    if (cell.data_key, sig) in needed:
        base_cache[sig] = output
    ev = evaluate_cell(cell, dataset, output, dictionary_metrics=dictionary_metrics)
    record = {
        "key": cell.key, "experiment": cell.experiment, "data": dict(cell.data_config),
        "method": cell.method, "method_params": cell.method_params, "method_version": cell.method_version,
        "metrics_version": METRICS_VERSION, "seed": cell.seed, **{k: v for k, v in ev.items() if k != "seconds"},
        "info": _jsonable(output.info),
        "seconds": {"data": data_seconds, "method": method_seconds, **ev["seconds"]},
        "csood_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    arrays = {}
    if save_arrays:
        if output.dictionary is not None:
            arrays["dictionary"] = output.dictionary
        arrays.update(output.artifacts)
    return record, arrays
