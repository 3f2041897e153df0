"""Tests of csood.runner: keys, grids, resumable runs, dataset reuse, progress."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from csood.metrics import METRICS_VERSION

import csood.runner as R
from csood import methods as M
from csood.runner import Cell, grid_product, make_grid, order_cells, run_grid
from csood.store import ResultStore

DATA = grid_product(n_latents=[20, 24], k=3, n_samples=120)


@pytest.fixture
def dummy():
    """A cheap registered method that counts its calls and fails on demand, plus a family."""
    state = {"calls": [], "fail_at": None, "exc": RuntimeError, "base_calls": 0}

    @M.register("dummy_noisy", defaults={"noise": 0.05}, version=1)
    def _noisy(dataset, params, *, seed, device):
        state["calls"].append((dataset.n_latents, seed))
        if state["fail_at"] is not None and len(state["calls"]) == state["fail_at"]:
            raise state["exc"]("injected failure")
        rng = np.random.default_rng(seed)
        codes = {s: dataset[s].Z + params["noise"] * rng.random(dataset[s].Z.shape) for s in M.SPLITS}
        D = dataset.A + 0.01 * rng.standard_normal(dataset.A.shape)
        return M.MethodOutput(codes, dictionary=D, info={"n_rounds": np.int64(7)},
                              artifacts={"decoder": D})

    @M.register_family("dummywarm_", defaults={"scale": 2.0}, version=1, bases=("dummy_noisy",))
    def _warm(base_output, dataset, params, *, seed, device):
        state["base_calls"] += 1
        return M.MethodOutput({s: params["scale"] * c for s, c in base_output.codes.items()})

    yield state
    M.unregister("dummy_noisy")
    M.unregister("dummywarm_")


def stored_files(path):
    return sorted(p.name for p in path.iterdir())


def test_cell_key_resolves_defaults_and_is_sensitive(dummy):
    a = Cell("exp", {"n_latents": 20, "k": 3, "n_samples": 120}, "dummy_noisy", {}, 0)
    b = Cell("exp", {"n_latents": 20, "k": 3, "n_samples": 120, "m": a.data_config["m"], "seed": 0},
             "dummy_noisy", {"noise": 0.05}, 0)
    assert a.key == b.key and a == b and len({a, b}) == 1 and len(a.key) == 16
    assert a.data_config == {"n_latents": 20, "k": 3, "m": 12, "n_samples": 120, "c": 2.0, "seed": 0}
    assert a.method_params == {"noise": 0.05} and a.method_version == 1
    others = [Cell("exp", a.data, "dummy_noisy", {"noise": 0.1}, 0),
              Cell("exp", a.data, "dummy_noisy", {}, 1),
              Cell("exp2", a.data, "dummy_noisy", {}, 0),
              Cell("exp", {**a.data, "m": 11}, "dummy_noisy", {}, 0),
              Cell("exp", {**a.data, "seed": 5}, "dummy_noisy", {}, 0),
              Cell("exp", a.data, "dummywarm_dummy_noisy", {}, 0)]
    assert len({c.key for c in others} | {a.key}) == 7
    M.register("dummy_noisy", defaults={"noise": 0.05}, version=2, replace=True)(M.METHODS["dummy_noisy"].fn)
    assert Cell("exp", a.data, "dummy_noisy", {}, 0).key != a.key  # version is in the key


def test_golden_key_and_same_keys_in_a_new_process():
    """sha256 of canonical JSON: stable across processes and hash seeds (PYTHONHASHSEED)."""
    cells = make_grid("scaling", grid_product(n_latents=[50, 100], k=[5, 10], n_samples=500),
                      ["fista_oracle", "linear_probe"], [0, 1], params={"fista_oracle": [{}, {"lam": 0.01}]})
    code = ("from csood.runner import make_grid, grid_product; import json; print(json.dumps([c.key for c in "
            "make_grid('scaling', grid_product(n_latents=[50, 100], k=[5, 10], n_samples=500), "
            "['fista_oracle', 'linear_probe'], [0, 1], params={'fista_oracle': [{}, {'lam': 0.01}]})]))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # this process: a random hash seed
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [c.key for c in cells]
    assert len(cells) == 4 * 2 * 3
    payload = {"data": {"c": 2.0, "k": 5, "m": 24, "n_latents": 50, "n_samples": 500, "seed": 0},
               "experiment": "scaling", "method": "fista_oracle", "method_version": 1,
               "params": {"lam": 0.1, "max_iter": 100, "positive": True}, "seed": 0,
               "metrics_version": METRICS_VERSION}
    import hashlib
    expected = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert cells[0].key == expected


def test_make_grid_validates_before_running(dummy):
    with pytest.raises(ValueError, match="k must be an integer with 0 < k < n_latents \\(= 10\\); got 10"):
        make_grid("e", [{"n_latents": 20, "k": 3}, {"n_latents": 10, "k": 10}], ["dummy_noisy"], [0])
    with pytest.raises(ValueError, match="data keys must be among .*; got 'n'"):
        make_grid("e", {"n_latents": 20, "k": 3, "n": 20}, ["dummy_noisy"], [0])
    with pytest.raises(ValueError, match="data must be a dict of make_dataset arguments with 'n_latents' and 'k'"):
        make_grid("e", {"n": 20, "k": 3}, ["dummy_noisy"], [0])
    with pytest.raises(ValueError, match="method must be one of"):
        make_grid("e", DATA, ["dummy_nosy"], [0])
    with pytest.raises(ValueError, match="params keys must be among the grid's methods 'dummy_noisy'; got 'fista_oracle'"):
        make_grid("e", DATA, ["dummy_noisy"], [0], params={"fista_oracle": {"lam": 1.0}})
    with pytest.raises(ValueError, match="parameter names of method 'dummy_noisy' must be among 'noise'; got 'lam'"):
        make_grid("e", DATA, ["dummy_noisy"], [0], params={"dummy_noisy": {"lam": 1.0}})
    with pytest.raises(ValueError, match="seeds must be a non-empty list"):
        make_grid("e", DATA, ["dummy_noisy"], [])


def test_make_grid_dedupes_and_groups_by_dataset(dummy):
    data = DATA + [{"n_latents": 20, "k": 3, "n_samples": 120, "m": 12}]  # duplicate of DATA[0] once resolved
    cells = make_grid("e", data, ["dummywarm_dummy_noisy", "dummy_noisy"], [0, 1],
                      params={"dummy_noisy": [{}, {"noise": 0.0}]})
    assert len(cells) == 2 * 2 * 3 and len({c.key for c in cells}) == len(cells)
    groups = [c.data_key for c in cells]
    assert all(groups.count(g) == 3 for g in groups)
    assert [groups[i] for i in range(0, 12, 3)] == list(dict.fromkeys(groups))  # contiguous blocks
    for i in range(0, 12, 3):  # plain methods before the family member within a dataset
        assert [c.method for c in cells[i:i + 3]] == ["dummy_noisy", "dummy_noisy", "dummywarm_dummy_noisy"]
    shuffled = cells[::-1]
    assert [c.data_key for c in order_cells(shuffled)] == [c.data_key for c in order_cells(shuffled + shuffled)]


def test_interrupted_grid_resumes_and_stores_every_cell_once(dummy, tmp_path):
    store = ResultStore(tmp_path / "exp")
    cells = make_grid("exp", DATA, ["dummy_noisy"], [0, 1, 2])
    dummy["fail_at"] = 4
    with pytest.raises(RuntimeError, match="injected failure"):
        run_grid(cells, store, device="cpu", progress=False)
    assert len(store) == 3 and store.temp_files() == []
    dummy["fail_at"], dummy["exc"], dummy["calls"] = 2, KeyboardInterrupt, []  # interrupted again, by the user
    with pytest.raises(KeyboardInterrupt):
        run_grid(cells, store, device="cpu", progress=False)
    assert len(store) == 4
    dummy["fail_at"], dummy["calls"] = None, []
    records = run_grid(cells, store, device="cpu", progress=False)
    assert len(dummy["calls"]) == 2  # only the cells not stored yet
    assert sorted(store.keys()) == sorted(c.key for c in cells)
    assert [r["key"] for r in records] == [c.key for c in cells]
    assert stored_files(tmp_path / "exp") == sorted([f"{c.key}.json" for c in cells] + [f"{c.key}.npz" for c in cells])
    dummy["calls"] = []
    again = run_grid(cells, store, device="cpu", progress=False)
    assert dummy["calls"] == [] and again == store.records([c.key for c in cells])


def test_record_schema(dummy, tmp_path):
    store = ResultStore(tmp_path)
    (cell,) = make_grid("exp", DATA[0], ["dummy_noisy"], [1])
    (r,) = run_grid([cell], store, device="cpu", progress=False)
    assert r == store.get(cell.key)
    assert set(r) >= {"key", "experiment", "data", "method", "method_params", "method_version", "seed",
                      "metrics", "metrics_paper", "dictionary_metrics", "info", "seconds", "device",
                      "device_name", "csood_version", "created", "arrays"}
    assert r["data"] == {"n_latents": 20, "k": 3, "m": 12, "n_samples": 120, "c": 2.0, "seed": 1}
    assert (r["method"], r["method_params"], r["method_version"], r["seed"]) == ("dummy_noisy", {"noise": 0.05}, 1, 1)
    assert set(r["metrics"]) == {"mcc_id", "mcc_ood", "acc_val", "acc_ood", "auc_val", "auc_ood"}
    assert set(r["metrics_paper"]) == set(r["metrics"])
    assert r["metrics"]["mcc_id"] > 0.9  # codes are the true latents plus a little noise
    assert r["dictionary_metrics"]["mean_cosine"] > 0.9
    assert r["info"] == {"n_rounds": 7} and r["device"] == "cpu"
    assert set(r["seconds"]) == {"data", "method", "evaluate", "diagnostics"}
    assert r["arrays"] == ["decoder", "dictionary"]
    assert store.load_arrays(cell.key)["dictionary"].shape == (12, 20)


def test_dataset_generated_once_per_config_and_base_reused(dummy, tmp_path, monkeypatch):
    made = []
    real = R.make_dataset
    monkeypatch.setattr(R, "make_dataset", lambda **kw: made.append(kw) or real(**kw))
    cells = make_grid("e", DATA, ["dummywarm_dummy_noisy", "dummy_noisy"], [0],
                      params={"dummywarm_dummy_noisy": [{}, {"scale": 3.0}]})
    records = run_grid(cells[::-1], ResultStore(tmp_path), device="cpu", progress=False, cache_size=1)
    assert len(made) == 2 and len({json.dumps(kw, sort_keys=True) for kw in made}) == 2
    assert len(dummy["calls"]) == 2 and dummy["base_calls"] == 4  # the SAE-like base ran once per dataset
    warm = [r for r in records if r["method"] == "dummywarm_dummy_noisy"]
    assert all(r["info"]["base_cached"] for r in warm) and len(warm) == 4
    assert warm[0]["method_version"] == "1.1" and warm[0]["method_params"]["base"] == {"noise": 0.05}


def test_on_error_warn_continues(dummy, tmp_path):
    store = ResultStore(tmp_path)
    cells = make_grid("e", DATA[0], ["dummy_noisy"], [0, 1, 2])
    dummy["fail_at"] = 2
    with pytest.warns(RuntimeWarning, match="failed: RuntimeError: injected failure"):
        records = run_grid(cells, store, device="cpu", progress=False, on_error="warn")
    assert len(records) == 2 and len(store) == 2 and store.temp_files() == []
    with pytest.raises(ValueError, match="on_error must be one of 'raise', 'warn'"):
        run_grid(cells, store, on_error="ignore")


def test_progress_line(dummy, tmp_path, capsys):
    store = ResultStore(tmp_path)
    cells = make_grid("e", DATA[0], ["dummy_noisy"], [0, 1])
    run_grid(cells[:1], store, device="cpu", progress=False)
    assert capsys.readouterr().err == ""
    run_grid(cells, store, device="cpu", progress=True)
    err = capsys.readouterr().err
    assert "2/2 cells (1 skipped, 0 failed)" in err and "elapsed" in err and "left" in err
