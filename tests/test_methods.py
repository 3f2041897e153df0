"""Tests of csood.methods: registry, parameter resolution, families, the built-in methods."""

import numpy as np
import pytest

from csood import methods as M
from csood.data import make_dataset
from csood.metrics import evaluate
from csood.params import Float


@pytest.fixture(scope="module")
def small():
    return make_dataset(20, 3, n_samples=200, seed=0)


@pytest.fixture
def dummy_family():
    """A dummy base method and a dummy family over it; removed again after the test."""
    calls = {"base": 0, "member": 0}

    @M.register("dummy_base", defaults={"width": 4, "scale": 1.0}, version=3)
    def _base(dataset, params, *, seed, device):
        calls["base"] += 1
        rng = np.random.default_rng(seed)
        codes = {s: rng.random((len(dataset[s]), params["width"])) for s in M.SPLITS}
        D = rng.standard_normal((dataset.m, params["width"]))
        return M.MethodOutput(codes, dictionary=D, artifacts={"decoder": D})

    @M.register_family("dummyfam_", defaults={"lam": 0.1}, version=2,
                       bases=("dummy_base", "not_registered"))
    def _member(base_output, dataset, params, *, seed, device):
        calls["member"] += 1
        codes = {s: params["lam"] * c for s, c in base_output.codes.items()}
        return M.MethodOutput(codes, dictionary=base_output.artifacts["decoder"])

    yield calls
    M.unregister("dummy_base")
    M.unregister("dummyfam_")


def test_fista_oracle_recovers_latents_in_and_out_of_distribution():
    ds = make_dataset(100, 10, n_samples=5000, seed=0)
    out = M.run_method("fista_oracle", ds, seed=0, device="cpu")
    assert out.dictionary is None and out.info["n_iter"] == 100
    for s in M.SPLITS:
        assert out.codes[s].shape == (len(ds[s]), 100) and isinstance(out.codes[s], np.ndarray)
        assert out.codes[s].min() >= 0.0  # positive=True by default
    scores = evaluate({s: ds[s].Z for s in ("val", "ood")}, out.codes,
                      {s: ds[s].labels for s in M.SPLITS}, protocol="ours", seed=0)
    assert scores["mcc_id"] >= 0.97 and scores["mcc_ood"] >= 0.97


def test_linear_probe_returns_codes_for_all_splits(small):
    out = M.run_method("linear_probe", small, seed=0)
    assert set(out.codes) == {"train", "val", "ood"}
    for s in M.SPLITS:
        assert out.codes[s].shape == (len(small[s]), small.n_latents)
    assert out.info["alpha"] in M.resolve_params("linear_probe")["alphas"]
    assert out.artifacts["coef"].shape == (small.n_latents, small.m)
    # a linear read-out: the train codes are Y_train @ coef.T
    np.testing.assert_allclose(out.codes["train"], small.train.Y @ out.artifacts["coef"].T, atol=1e-3)


def test_resolve_params_merges_defaults_and_canonicalises():
    assert M.resolve_params("fista_oracle") == {"lam": 0.1, "max_iter": 100, "positive": True}
    p = M.resolve_params("fista_oracle", {"lam": 1, "max_iter": np.int64(5)})
    assert p == {"lam": 1.0, "max_iter": 5, "positive": True}
    assert isinstance(p["lam"], float) and isinstance(p["max_iter"], int)
    assert M.resolve_params("linear_probe", {"alphas": (1, 2)})["alphas"] == [1.0, 2.0]


def test_unknown_method_and_parameter_raise():
    with pytest.raises(ValueError, match=r"method must be one of .*'fista_oracle'.*'linear_probe'.*got 'fista_orcale'"):
        M.run_method("fista_orcale", None)
    with pytest.raises(ValueError, match=r"parameter names of method 'fista_oracle' must be among "
                                         r"'lam', 'max_iter', 'positive'; got 'lambda'"):
        M.resolve_params("fista_oracle", {"lambda": 0.1})
    with pytest.raises(ValueError, match="params\\['lam'\\].* must be a finite number"):
        M.resolve_params("fista_oracle", {"lam": float("nan")})
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1; got 0"):
        M.resolve_params("fista_oracle", {"max_iter": 0})  # built-in checks: fail before running
    with pytest.raises(ValueError, match=r"alphas\[1\] must be a finite number > 0.0; got -1.0"):
        M.resolve_params("linear_probe", {"alphas": [1.0, -1.0]})
    with pytest.raises(ValueError, match="params of 'fista_oracle' must be a dict"):
        M.resolve_params("fista_oracle", [("lam", 0.1)])


def test_registered_checks_and_duplicate_registration():
    @M.register("dummy_checked", defaults={"lr": 0.1}, version=1, checks={"lr": Float(low=0.0, low_inclusive=False)})
    def _fn(dataset, params, *, seed, device):  # pragma: no cover - never run
        raise AssertionError

    try:
        with pytest.raises(ValueError, match="lr must be a finite number > 0.0; got -1.0"):
            M.resolve_params("dummy_checked", {"lr": -1})
        with pytest.raises(ValueError, match="name must be a method name not registered yet"):
            M.register("dummy_checked", defaults={}, version=1)(_fn)
        M.register("dummy_checked", defaults={}, version=2, replace=True)(_fn)
        assert M.get_method("dummy_checked").version == 2
    finally:
        M.unregister("dummy_checked")
    with pytest.raises(ValueError, match="version must be an integer >= 0"):
        M.register("dummy_bad", defaults={}, version=-1)


def test_family_names_parse(dummy_family):
    spec = M.get_method("dummyfam_dummy_base")
    assert (spec.family, spec.base, spec.version) == ("dummyfam_", "dummy_base", "2.3")
    assert "dummyfam_dummy_base" in M.method_names()
    assert "dummyfam_not_registered" not in M.method_names()  # base not registered (yet)
    with pytest.raises(ValueError, match=r"'dummyfam_<base>' with <base> in \{dummy_base, not_registered\}"):
        M.get_method("dummyfam_not_registered")
    with pytest.raises(ValueError, match="got 'dummyfam_sae_nothing'"):
        M.get_method("dummyfam_sae_nothing")
    p = M.resolve_params("dummyfam_dummy_base", {"lam": 0.5, "base": {"width": 6}})
    assert p == {"lam": 0.5, "base": {"width": 6, "scale": 1.0}}
    assert M.resolve_params("dummyfam_dummy_base", p) == p  # resolution is idempotent
    with pytest.raises(ValueError, match="parameter names of method 'dummy_base' must be among 'width', 'scale'; got 'lr'"):
        M.resolve_params("dummyfam_dummy_base", {"base": {"lr": 1.0}})
    with pytest.raises(ValueError, match="must be among 'lam', 'base'; got 'width'"):
        M.resolve_params("dummyfam_dummy_base", {"width": 6})
    with pytest.raises(ValueError, match="defaults must be a dict without the reserved key 'base'"):
        M.register_family("bad_", defaults={"base": 1}, version=1, bases=())


def test_family_runs_base_once_with_cache(dummy_family, small):
    cache = {}
    a = M.run_method("dummyfam_dummy_base", small, params={"lam": 2.0}, seed=1, base_cache=cache)
    b = M.run_method("dummyfam_dummy_base", small, params={"lam": 3.0}, seed=1, base_cache=cache)
    assert dummy_family == {"base": 1, "member": 2}
    assert a.info["base_cached"] is False and b.info["base_cached"] is True
    np.testing.assert_allclose(a.codes["val"] * 1.5, b.codes["val"])
    assert a.dictionary.shape == (small.m, 4)
    M.run_method("dummyfam_dummy_base", small, seed=2, base_cache=cache)  # other seed: new base run
    assert dummy_family["base"] == 2 and len(cache) == 2


def test_method_output_is_checked(small):
    @M.register("dummy_bad_shape", defaults={}, version=1)
    def _fn(dataset, params, *, seed, device):
        return M.MethodOutput({s: np.zeros((3, 2)) for s in M.SPLITS})

    try:
        with pytest.raises(RuntimeError, match=r"codes\['train'\] must have shape \(100, n_components\)"):
            M.run_method("dummy_bad_shape", small)
    finally:
        M.unregister("dummy_bad_shape")
