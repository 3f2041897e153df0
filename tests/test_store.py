"""Tests of csood.store: atomic records and arrays, aggregation over seeds, plot arrays."""

import math

import numpy as np
import pytest

import csood.store as S
from csood.store import ResultStore, aggregate, get_field, plot_arrays


def rec(key, method, n, seed, mcc, lam=None, seconds=1.0):
    r = {"key": key, "method": method, "data": {"n_latents": n, "k": 3}, "seed": seed,
         "metrics": {"mcc_id": mcc}, "seconds": {"method": seconds}, "method_params": {}}
    if lam is not None:
        r["method_params"]["lam"] = lam
    return r


def test_put_get_round_trip(tmp_path):
    store = ResultStore(tmp_path / "exp")
    r = {"key": "abc123", "metrics": {"mcc_id": 0.25, "mcc_ood": float("nan")}, "data": {"m": 7},
         "method_params": {"alphas": [1e-6, 1.0]}}
    assert not store.has("abc123") and "abc123" not in store
    out = store.put(r)
    assert store.has("abc123") and len(store) == 1 and store.keys() == ["abc123"]
    got = store.get("abc123")
    assert got["arrays"] == out["arrays"] == [] and got["data"] == {"m": 7}
    assert got["method_params"] == {"alphas": [1e-6, 1.0]}
    assert got["metrics"]["mcc_id"] == 0.25 and math.isnan(got["metrics"]["mcc_ood"])
    store.put({**r, "metrics": {"mcc_id": 0.5}})  # replaces
    assert store.get("abc123")["metrics"] == {"mcc_id": 0.5} and len(store) == 1
    with pytest.raises(KeyError, match="no record 'zzz'"):
        store.get("zzz")
    with pytest.raises(ValueError, match="key must be a non-empty string of letters"):
        store.put({"key": "../evil"})
    with pytest.raises(ValueError, match="record must be a dict with a 'key' entry"):
        store.put({"metrics": {}})
    assert store.temp_files() == []


def test_records_order_and_missing(tmp_path):
    store = ResultStore(tmp_path)
    for key in ("b", "a", "c"):
        store.put({"key": key})
    assert [r["key"] for r in store.records()] == ["a", "b", "c"]
    assert [r["key"] for r in store.records(["c", "a"])] == ["c", "a"]
    with pytest.raises(KeyError, match="1 of 2 keys have no record"):
        store.records(["a", "x"])
    assert [r["key"] for r in store.records(["x", "b"], missing="skip")] == ["b"]


def test_arrays_round_trip(tmp_path):
    store = ResultStore(tmp_path)
    D = np.random.default_rng(0).standard_normal((5, 8))
    idx = np.arange(4, dtype=np.int64)
    out = store.put({"key": "k1"}, arrays={"dictionary": D, "index": idx})
    assert out["arrays"] == ["dictionary", "index"] and store.get("k1")["arrays"] == ["dictionary", "index"]
    arrays = store.load_arrays("k1")
    assert arrays["dictionary"].dtype == np.float32  # compact
    np.testing.assert_allclose(arrays["dictionary"], D, rtol=1e-6)
    np.testing.assert_array_equal(arrays["index"], idx)
    assert arrays["index"].dtype == np.int64
    with pytest.raises(KeyError, match="no arrays for 'k2'"):
        store.load_arrays("k2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k1.json", "k1.npz"]


def test_failed_replace_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    store.put({"key": "k", "metrics": {"mcc_id": 0.1}}, arrays={"D": np.ones(3)})

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(S.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.put({"key": "k", "metrics": {"mcc_id": 0.9}}, arrays={"D": np.zeros(3)})
    monkeypatch.undo()
    assert store.get("k")["metrics"]["mcc_id"] == 0.1
    np.testing.assert_array_equal(store.load_arrays("k")["D"], np.ones(3))
    assert store.temp_files() == [] and sorted(p.name for p in tmp_path.iterdir()) == ["k.json", "k.npz"]


def test_interrupted_write_leaves_no_temp(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("old")

    def write(fh):
        fh.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        S.atomic_write_bytes(target, write)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_get_field_nested():
    r = {"data": {"n_latents": 5}, "method_params": {"base": {"lr": 0.1}}}
    assert get_field(r, "data.n_latents") == 5
    assert get_field(r, "method_params.base.lr") == 0.1
    assert get_field(r, "method_params.lam") is None and get_field(r, "x.y", 3) == 3


def test_aggregate_hand_computed():
    records = [
        rec("1", "fista", 100, 0, 0.9, seconds=2.0), rec("2", "fista", 100, 1, 0.7, seconds=4.0),
        rec("3", "fista", 100, 2, 0.8, seconds=6.0),
        rec("4", "fista", 50, 0, 0.5), rec("5", "sae", 100, 0, 0.2), rec("6", "sae", 100, 1, 0.4),
    ]
    rows = aggregate(records, by=["method", "data.n_latents"], metrics=["mcc_id", "seconds.method"])
    assert [(r["method"], r["data.n_latents"]) for r in rows] == [("fista", 50), ("fista", 100), ("sae", 100)]
    f100 = rows[1]
    assert f100["count"] == 3 and f100["seeds"] == [0, 1, 2]
    assert f100["mcc_id_mean"] == pytest.approx(0.8)
    assert f100["mcc_id_std"] == pytest.approx(math.sqrt((0.01 + 0.01 + 0.0) / 3))  # ddof=0
    assert (f100["mcc_id_min"], f100["mcc_id_max"], f100["mcc_id_count"]) == (0.7, 0.9, 3)
    assert f100["seconds.method_mean"] == pytest.approx(4.0)
    assert f100["seconds.method_std"] == pytest.approx(math.sqrt(8 / 3))
    sae = rows[2]
    assert sae["mcc_id_mean"] == pytest.approx(0.3) and sae["mcc_id_std"] == pytest.approx(0.1)
    single = rows[0]
    assert single["count"] == 1 and single["mcc_id_std"] == 0.0
    rows1 = aggregate(records, by=["method", "data.n_latents"], metrics=["mcc_id"], ddof=1)
    assert rows1[1]["mcc_id_std"] == pytest.approx(0.1) and math.isnan(rows1[0]["mcc_id_std"])
    assert rows1[2]["mcc_id_std"] == pytest.approx(math.sqrt(0.02))


def test_aggregate_nested_params_missing_values_and_order():
    records = [rec("a", "fista", 10, 0, 0.6, lam=1.0), rec("b", "fista", 10, 0, 0.9, lam=0.01),
               rec("c", "fista", 10, 1, 0.7, lam=0.01), rec("d", "probe", 10, 0, 0.3)]
    records[3]["metrics"] = {}  # a missing metric is left out, not counted as 0
    rows = aggregate(records, by=["method_params.lam"], metrics=["mcc_id"])
    assert [r["method_params.lam"] for r in rows] == [0.01, 1.0, None]  # numeric order, None last
    assert rows[0]["mcc_id_mean"] == pytest.approx(0.8) and rows[0]["count"] == 2
    assert rows[2]["count"] == 1 and rows[2]["mcc_id_count"] == 0 and math.isnan(rows[2]["mcc_id_mean"])
    with pytest.raises(ValueError, match="ddof must be an integer >= 0"):
        aggregate(records, by=["method"], metrics=["mcc_id"], ddof=-1)


def test_plot_arrays():
    records = [rec("1", "fista", 100, 0, 0.9), rec("2", "fista", 100, 1, 0.7), rec("3", "fista", 10, 0, 0.5),
               rec("4", "sae", 100, 0, 0.2), rec("5", "sae", 1000, 0, 0.1)]
    rows = aggregate(records, by=["method", "data.n_latents"], metrics=["mcc_id"])
    arr = plot_arrays(rows, "data.n_latents", "mcc_id", series="method")
    assert set(arr) == {"fista", "sae"}
    np.testing.assert_array_equal(arr["fista"]["x"], [10, 100])
    np.testing.assert_allclose(arr["fista"]["mean"], [0.5, 0.8])
    np.testing.assert_allclose(arr["fista"]["std"], [0.0, 0.1])
    np.testing.assert_array_equal(arr["fista"]["count"], [1, 2])
    np.testing.assert_array_equal(arr["sae"]["x"], [100, 1000])
    with pytest.raises(ValueError, match="one row per \\(None, data.n_latents\\)"):
        plot_arrays(rows, "data.n_latents", "mcc_id")  # two methods share x without series
    with pytest.raises(ValueError, match="rows must be aggregate\\(\\) rows with 'data.k'"):
        plot_arrays(rows, "data.k", "mcc_id")
