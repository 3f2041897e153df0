"""Result store: one JSON record per experiment cell, plus aggregation for the chapters.

A :class:`ResultStore` is a directory (e.g. ``results/<experiment>/``) holding ``<key>.json``
for every finished cell and, optionally, ``<key>.npz`` beside it with compact arrays (a trained
dictionary, a decoder). Both are written atomically: a temporary file in the same directory
(``.<key>.<random>.tmp``) is written, flushed, fsynced and moved over the target with
``os.replace``, so a reader sees either the old file or the new one, never a partial one. The
arrays are written *before* the record, so a record's presence implies its arrays are complete.

Record schema (written by :func:`csood.runner.run_grid`)::

    key             str    cell key (16 hex digits, see csood.runner.Cell)
    experiment      str
    data            dict   resolved data config: n_latents, k, m, n_samples, c, seed
    method          str
    method_params   dict   fully resolved (defaults included)
    method_version  int    (str "F.B" for family members)
    seed            int    method seed (also the data seed unless data["seed"] says otherwise)
    metrics         dict   protocol "ours": mcc_id, mcc_ood, acc_val, acc_ood, auc_val, auc_ood
    metrics_paper   dict   the same under protocol "paper"
    dictionary_metrics dict  (only for methods with a dictionary) mean_cosine, mean_angle, ...
    info            dict   the method's own scalars (n_iter, n_rounds, alpha, ...)
    seconds         dict   data (0 when cached), method, evaluate, diagnostics
    device          str    e.g. "cpu", "cuda"
    device_name     str    GPU name or CPU description
    csood_version   str
    created         str    ISO 8601 time, UTC
    arrays          list   names of the arrays in <key>.npz (empty when none)
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ._validation import check_int, fail

__all__ = ["ResultStore", "atomic_write_bytes", "get_field", "aggregate", "plot_arrays"]


def _check_key(key) -> str:
    if not isinstance(key, str) or not key or not all(ch.isalnum() or ch in "-_" for ch in key):
        fail("key", "a non-empty string of letters, digits, '-' and '_'", key)
    return key


def atomic_write_bytes(path: str | os.PathLike, write) -> None:
    """Write ``path`` atomically: ``write(fileobj)`` fills a temp file in the same directory,
    which is fsynced and moved over ``path`` with ``os.replace``. On any failure (including
    ``KeyboardInterrupt``) the temp file is removed and ``path`` is left as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class ResultStore:
    """A directory of cell records (``<key>.json``) and optional arrays (``<key>.npz``).

    Parameters
    ----------
    root : path
        Directory; created (with parents) if missing.

    Examples
    --------
    >>> store = ResultStore(tmp_path / "scaling")               # doctest: +SKIP
    >>> store.put({"key": "ab12", "metrics": {"mcc_id": 0.9}})  # doctest: +SKIP
    >>> store.get("ab12")["metrics"]["mcc_id"]                  # doctest: +SKIP
    0.9
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"ResultStore({str(self.root)!r}, {len(self)} records)"

    def path(self, key: str) -> Path:
        """Path of the record ``<root>/<key>.json``."""
        return self.root / f"{_check_key(key)}.json"

    def array_path(self, key: str) -> Path:
        """Path of the arrays ``<root>/<key>.npz``."""
        return self.root / f"{_check_key(key)}.npz"

    def has(self, key: str) -> bool:
        """Whether a record for ``key`` exists."""
        return self.path(key).is_file()

    __contains__ = has

    def keys(self) -> list[str]:
        """Keys of all stored records, sorted."""
        return sorted(p.stem for p in self.root.glob("*.json") if not p.name.startswith("."))

    def __len__(self) -> int:
        return len(self.keys())

    def get(self, key: str) -> dict:
        """The record of ``key``; ``KeyError`` when there is none."""
        path = self.path(key)
        if not path.is_file():
            raise KeyError(f"no record {key!r} in {self.root}")
        return json.loads(path.read_text())

    def put(self, record: dict, arrays: dict[str, Any] | None = None) -> dict:
        """Store ``record`` (a JSON-able dict with a ``"key"``) and, optionally, ``arrays``.

        Floating arrays are stored as float32 (compact); others as they are. Arrays are
        written first, so that a record never points at missing arrays. Replaces an existing
        record with the same key. Returns the stored record (a copy with ``"arrays"``, the
        sorted names of the stored arrays).
        """
        if not isinstance(record, dict) or "key" not in record:
            fail("record", "a dict with a 'key' entry", type(record).__name__)
        key = _check_key(record["key"])
        record = dict(record)
        if arrays:
            arrs = {}
            for name, value in arrays.items():
                a = np.asarray(value)
                arrs[name] = a.astype(np.float32) if np.issubdtype(a.dtype, np.floating) else a
            atomic_write_bytes(self.array_path(key), lambda fh: np.savez(fh, **arrs))
            record["arrays"] = sorted(arrs)
        else:
            record.setdefault("arrays", [])
        text = json.dumps(record, indent=1, sort_keys=True)
        atomic_write_bytes(self.path(key), lambda fh: fh.write(text.encode()))
        return record

    def load_arrays(self, key: str) -> dict[str, np.ndarray]:
        """The arrays stored with ``key``; ``KeyError`` when there are none."""
        path = self.array_path(key)
        if not path.is_file():
            raise KeyError(f"no arrays for {key!r} in {self.root}")
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}

    def records(self, keys: Iterable[str] | None = None, *, missing: str = "raise") -> list[dict]:
        """Records of ``keys`` (in that order), or of every stored record (sorted by key).

        ``missing="raise"`` raises ``KeyError`` naming how many keys have no record;
        ``missing="skip"`` leaves them out.
        """
        if keys is None:
            return [self.get(k) for k in self.keys()]
        if missing not in ("raise", "skip"):
            fail("missing", "one of 'raise', 'skip'", missing)
        keys = list(keys)
        absent = [k for k in keys if not self.has(k)]
        if absent and missing == "raise":
            raise KeyError(f"{len(absent)} of {len(keys)} keys have no record in {self.root} "
                           f"(first: {absent[0]!r}); run the grid first or pass missing='skip'.")
        return [self.get(k) for k in keys if k not in absent]

    def temp_files(self) -> list[Path]:
        """Leftover temporary files (only a killed process leaves them; safe to delete when no
        other process writes to this store)."""
        return sorted(self.root.glob(".*.tmp"))


# --------------------------------------------------------------------------- aggregation

def get_field(record: dict, path: str, default: Any = None) -> Any:
    """Value at dotted ``path`` (``"data.n_latents"``, ``"method_params.base.lam"``), or
    ``default`` where a step is missing."""
    value = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


def _metric_path(name: str) -> str:
    return name if "." in name else f"metrics.{name}"


def _sort_key(values: tuple) -> tuple:
    out = []
    for v in values:
        if isinstance(v, bool):
            out.append((1, "", str(v)))
        elif isinstance(v, (int, float)):
            out.append((0, v, ""))
        elif isinstance(v, str):
            out.append((1, 0, v))
        elif v is None:
            out.append((3, 0, ""))
        else:
            out.append((2, 0, json.dumps(v, sort_keys=True)))
    return tuple(out)


def _hashable(v):
    return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v


def aggregate(records: Sequence[dict], by: Sequence[str], metrics: Sequence[str], *,
              ddof: int = 0) -> list[dict]:
    """Group records and summarise metrics over the seeds (records) of each group.

    Parameters
    ----------
    records : sequence of dict
        Records as written by the runner (or hand-made with the same layout).
    by : list of str
        Dotted paths into the record that define a group: ``"method"``, ``"data.n_latents"``,
        ``"method_params.lam"``. A path missing from a record groups as None.
    metrics : list of str
        Dotted paths of the values to summarise; a bare name (no dot) means
        ``"metrics.<name>"``, e.g. ``"mcc_id"``; ``"metrics_paper.mcc_id"``,
        ``"seconds.method"`` address other fields.
    ddof : int, default 0
        Delta degrees of freedom of the std: 0 is the population std of the seeds that were
        run (defined for a single seed); 1 the sample std.

    Returns
    -------
    list of dict
        One row per group, sorted by the ``by`` values (numbers numerically, None last): the
        ``by`` paths as keys, ``count`` (records in the group), ``seeds`` (sorted), and for
        each metric ``<metric>_mean``, ``_std``, ``_min``, ``_max``, ``_count`` (records
        holding the metric; missing values are left out, NaN values propagate).
    """
    by, metrics = list(by), list(metrics)
    ddof = check_int("ddof", ddof, low=0)
    groups: dict[tuple, list[dict]] = {}
    raw: dict[tuple, tuple] = {}
    for rec in records:
        values = tuple(get_field(rec, p) for p in by)
        hkey = tuple(_hashable(v) for v in values)
        groups.setdefault(hkey, []).append(rec)
        raw.setdefault(hkey, values)
    rows = []
    for hkey in sorted(groups, key=lambda h: _sort_key(raw[h])):
        recs = groups[hkey]
        row = dict(zip(by, raw[hkey]))
        row["count"] = len(recs)
        row["seeds"] = sorted((r.get("seed") for r in recs), key=lambda s: (s is None, s or 0))
        for name in metrics:
            path = _metric_path(name)
            vals = [get_field(r, path) for r in recs]
            vals = np.array([float(v) for v in vals if v is not None], dtype=np.float64)
            n = vals.size
            row[f"{name}_mean"] = float(vals.mean()) if n else math.nan
            row[f"{name}_std"] = float(vals.std(ddof=ddof)) if n > ddof else math.nan
            row[f"{name}_min"] = float(vals.min()) if n else math.nan
            row[f"{name}_max"] = float(vals.max()) if n else math.nan
            row[f"{name}_count"] = n
        rows.append(row)
    return rows


def plot_arrays(rows: Sequence[dict], x: str, metric: str, *, series: str | None = None) -> dict:
    """Plot-ready arrays from :func:`aggregate` rows.

    Parameters
    ----------
    rows : sequence of dict
        Output of :func:`aggregate` (grouped at least by ``x`` and ``series``).
    x : str
        The ``by`` path on the x axis, e.g. ``"data.n_latents"``.
    metric : str
        A metric name given to :func:`aggregate`.
    series : str, optional
        A ``by`` path splitting lines, e.g. ``"method"``.

    Returns
    -------
    dict
        ``{series_value: {"x", "mean", "std", "min", "max", "count"}}`` of 1-D numpy arrays,
        sorted by x (key None without ``series``). Raises ``ValueError`` if two rows of one
        series share an x (group by every field that varies).
    """
    out: dict = {}
    for row in rows:
        if x not in row or f"{metric}_mean" not in row:
            fail("rows", f"aggregate() rows with {x!r} and metric {metric!r}", sorted(row))
        s = row.get(series) if series is not None else None
        out.setdefault(_hashable(s), []).append(row)
    result = {}
    for s, rs in out.items():
        rs = sorted(rs, key=lambda r: _sort_key((r[x],)))
        xs = [r[x] for r in rs]
        if len(set(map(_hashable, xs))) != len(xs):
            fail("rows", f"one row per ({series}, {x}); group by every varying field", f"duplicate {x} values {xs}")
        arr = {"x": np.array(xs)}
        for stat in ("mean", "std", "min", "max", "count"):
            arr[stat] = np.array([r[f"{metric}_{stat}"] for r in rs])
        result[s] = arr
    return result
