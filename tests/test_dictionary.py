"""Tests of dictionary learning: DL-FISTA and Softplus-Adam (csood.dictionary)."""

import numpy as np
import pytest
import torch

import csood.dictionary as dictionary
from csood.data import make_dataset
from csood.dictionary import DLFISTA, FastSchedule, dl_fista
from csood.softplus_adam import softplus_adam, softplus_adam_codes
from csood.metrics import dictionary_diagnostics, mcc_id
from csood.solvers import fista, lasso_objective


@pytest.fixture(scope="module")
def ds():
    return make_dataset(50, 3, n_samples=2000, seed=0)


@pytest.fixture(scope="module")
def fitted(ds, _single_thread):
    """DL-FISTA with the paper's defaults on the train split of n = 50, k = 3."""
    return dl_fista(ds.train.Y, 50, seed=0, reference=ds.A, device="cpu")


# --------------------------------------------------------------------------- DL-FISTA
def test_recovers_the_dictionary(ds, fitted):
    D = fitted.dictionary
    assert isinstance(D, np.ndarray) and D.shape == (ds.m, 50) and D.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, atol=1e-5)
    diag = dictionary_diagnostics(D, ds.A)
    # 0.952 with seed 0. Other init seeds give 0.934-0.956 (a few atoms stuck between two true
    # columns: local minima of alternating minimisation, as in the paper's 0.93-0.96).
    assert diag["mean_cosine"] > 0.95
    assert diag["frac_aligned"] > 0.9
    assert fitted.history["mean_cosine"][-1] == pytest.approx(diag["mean_cosine"])
    assert fitted.history["mean_cosine"][0] < 0.7  # a random start is far from A


def test_objective_decreases_nearly_monotonically(fitted):
    obj = np.asarray(fitted.history["objective"])
    assert obj[-1] < 0.5 * obj[0]
    rel_increase = np.diff(obj) / obj[:-1]
    assert rel_increase.max() < 1e-5  # increases are float32 noise only


def test_early_stopping_fires(fitted):
    assert fitted.converged and fitted.n_rounds < 1000
    h = fitted.history
    assert h["round"][0] == 0 and h["round"][-1] == fitted.n_rounds
    assert len(h["round"]) == len(h["rel_change"]) == len(h["objective"]) == fitted.n_rounds + 1
    assert h["rel_change"][-1] < 1e-5 <= h["rel_change"][-2]


def test_runs_max_rounds_without_tol(ds):
    res = dl_fista(ds.train.Y, 50, max_rounds=3, tol=0.0, history_every=2, device="cpu")
    assert res.n_rounds == 3 and not res.converged
    assert res.history["round"] == [0, 2, 3] and "mean_cosine" not in res.history


def test_codes_are_fista_codes_on_the_final_dictionary(ds, fitted):
    Z = fitted.codes
    assert Z.shape == (ds.train.Y.shape[0], 50) and (Z >= 0).all()
    Z_ref = fista(ds.train.Y, fitted.dictionary, 0.1, max_iter=500, device="cpu")
    f, f_ref = (lasso_objective(ds.train.Y, fitted.dictionary, X, 0.1) for X in (Z, Z_ref))
    assert np.mean(f - f_ref) < 1e-3 * np.mean(f_ref)


def test_true_init_stays_near_the_truth(ds):
    res = dl_fista(ds.train.Y, 50, D_init=ds.A, max_rounds=30, device="cpu")
    assert dictionary_diagnostics(res.dictionary, ds.A)["mean_cosine"] > 0.99


def test_estimator_transforms_val_once_with_the_final_dictionary(ds, monkeypatch):
    calls = []
    real = dictionary.fista

    def counting(Y, D, *a, **kw):
        calls.append(Y.shape[0])
        return real(Y, D, *a, **kw)

    monkeypatch.setattr(dictionary, "fista", counting)
    est = DLFISTA(50, max_rounds=5, tol=0.0, device="cpu").fit(ds.train.Y[:600])
    assert set(calls) == {600} and len(calls) == 6  # 5 rounds + final train codes: train only
    calls.clear()
    Z_val = est.transform(ds.val.Y)
    assert calls == [ds.val.Y.shape[0]]
    np.testing.assert_allclose(Z_val, real(ds.val.Y, est.dictionary_, 0.1, max_iter=100,
                                           device="cpu"), atol=1e-6)
    assert est.n_rounds_ == 5 and not est.converged_ and est.codes_.shape == (600, 50)


def test_transform_before_fit_raises():
    with pytest.raises(RuntimeError, match="not fitted"):
        DLFISTA(5).transform(np.zeros((2, 3)))


def test_torch_in_torch_out(ds):
    Y = torch.as_tensor(ds.train.Y[:200])
    res = dl_fista(Y, 10, max_rounds=2, device="cpu")
    assert isinstance(res.dictionary, torch.Tensor) and isinstance(res.codes, torch.Tensor)
    assert res.dictionary.shape == (ds.m, 10) and res.codes.shape == (200, 10)


def test_seed_is_reproducible(ds):
    a = dl_fista(ds.train.Y[:200], 10, max_rounds=3, seed=4, device="cpu")
    b = dl_fista(ds.train.Y[:200], 10, max_rounds=3, seed=4, device="cpu")
    c = dl_fista(ds.train.Y[:200], 10, max_rounds=3, seed=5, device="cpu")
    np.testing.assert_array_equal(a.dictionary, b.dictionary)
    assert not np.allclose(a.dictionary, c.dictionary)


def test_dead_atoms_resample_or_keep(ds):
    Y = ds.train.Y[:100]
    D0 = np.random.default_rng(0).standard_normal((ds.m, 4)).astype(np.float32)
    D0 /= np.linalg.norm(D0, axis=0)
    # lam so large that every code is zero: every atom is dead after the first coding step
    kept = dl_fista(Y, 4, lam=1e3, D_init=D0, max_rounds=5, dead_atoms="keep", device="cpu")
    np.testing.assert_allclose(kept.dictionary, D0, atol=1e-6)
    assert kept.converged and kept.n_rounds == 1
    redrawn = dl_fista(Y, 4, lam=1e3, D_init=D0, max_rounds=1, device="cpu")
    Yn = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    cos = Yn @ redrawn.dictionary  # each atom is a normalised training sample
    np.testing.assert_allclose(cos.max(axis=0), 1.0, atol=1e-5)


def test_callback_sees_every_round(ds):
    seen = []
    dl_fista(ds.train.Y[:100], 5, max_rounds=4, tol=0.0, device="cpu",
             callback=lambda r, D: seen.append((r, tuple(D.shape))))
    assert seen == [(r, (ds.m, 5)) for r in range(1, 5)]


@pytest.mark.parametrize("kwargs, match", [
    ({"lam": -0.1}, "lam must be"),
    ({"n_components": 0}, "n_components must be"),
    ({"tol": -1.0}, "tol must be"),
    ({"max_rounds": 0}, "max_rounds must be"),
    ({"fista_iter": 0}, "fista_iter must be"),
    ({"eps": -1.0}, "eps must be"),
    ({"D_init": np.ones((3, 4))}, r"D_init must be of shape \(m, n_components\)"),
    ({"D_init": np.zeros((17, 5))}, "D_init must be a matrix with non-zero columns"),
    ({"reference": np.ones((3, 4))}, "reference must be"),
    ({"dead_atoms": "drop"}, "dead_atoms must be one of"),
    ({"history_every": 0}, "history_every must be"),
    ({"seed": -1}, "seed must be"),
])
def test_bad_arguments(kwargs, match):
    Y = np.random.default_rng(0).standard_normal((20, 17))
    args = {"n_components": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        dl_fista(Y, **args)


def test_nan_input_rejected():
    Y = np.ones((4, 3))
    Y[1, 1] = np.nan
    with pytest.raises(ValueError, match="Y must be finite"):
        dl_fista(Y, 2)
    with pytest.raises(ValueError, match="Y_train must be finite"):
        softplus_adam(Y, 2)


# --------------------------------------------------------------------------- schedules
def test_default_schedule_is_unchanged(ds):
    """Stored from the code before the schedules existed (same call, one torch thread)."""
    res = dl_fista(ds.train.Y[:300], 20, max_rounds=4, tol=0.0, seed=3, device="cpu")
    D = res.dictionary.astype(np.float64)
    np.testing.assert_allclose(D[:2, :4], [[0.159195483, 0.088905632, -0.471117556, 0.016270667],
                                           [-0.012833218, -0.085784353, 0.107532389, -0.342004001]],
                               atol=2e-6)
    np.testing.assert_allclose(D[-1, -3:], [-0.352903932, -0.09346953, -0.06211115], atol=2e-6)
    assert np.abs(D).sum() == pytest.approx(67.66556741070235, rel=1e-6)
    assert res.codes.astype(np.float64).sum() == pytest.approx(407.2487058714032, rel=1e-5)
    np.testing.assert_allclose(res.history["objective"], [0.4836455790201823, 0.3616795539855957,
                               0.25216302275657654, 0.2307131439447403, 0.22165346145629883],
                               rtol=1e-5)
    assert "fista_iter" not in res.history
    paper = dl_fista(ds.train.Y[:300], 20, max_rounds=4, tol=0.0, seed=3, device="cpu",
                     schedule="paper")
    np.testing.assert_array_equal(paper.dictionary, res.dictionary)


@pytest.fixture(scope="module")
def fitted_fast(ds, _single_thread):
    return dl_fista(ds.train.Y, 50, seed=0, reference=ds.A, device="cpu", schedule="fast")


def test_fast_schedule_matches_the_paper_schedule(ds, fitted, fitted_fast):
    fast = fitted_fast
    h = fast.history
    assert fast.converged and h["fista_iter"][1] == 10 and h["fista_iter"][-1] == 100
    assert h["fista_iter"] == sorted(h["fista_iter"])  # the inner iterations only grow
    # far less coding work to a good dictionary (cosine 0.94; at n = 50, k = 3 the paper
    # schedule ends at 0.952, so 0.95 lies in both schedules' slow final plateau)
    first = lambda hist: next(r for r, c in zip(hist["round"], hist["mean_cosine"]) if c > 0.94)
    assert sum(h["fista_iter"][:first(h) + 1]) < 0.25 * 100 * first(fitted.history)
    cos = dictionary_diagnostics(fast.dictionary, ds.A)["mean_cosine"]
    cos_paper = dictionary_diagnostics(fitted.dictionary, ds.A)["mean_cosine"]
    assert cos > 0.95 and cos > cos_paper - 0.005
    mcc = [mcc_id(ds.val.Z, fista(ds.val.Y, D, 0.1, max_iter=100, device="cpu"))
           for D in (fast.dictionary, fitted.dictionary)]
    assert mcc[0] > mcc[1] - 0.01


def test_fast_end_point_is_a_fixed_point_of_the_paper_schedule(ds, fitted_fast):
    D = fitted_fast.dictionary
    again = dl_fista(ds.train.Y, 50, D_init=D, max_rounds=3, tol=0.0, device="cpu")
    assert np.linalg.norm(again.dictionary - D) / np.linalg.norm(D) < 1e-3


def test_fast_schedule_estimator_and_custom_schedule(ds):
    est = DLFISTA(10, max_rounds=3, tol=0.0, device="cpu", schedule="fast").fit(ds.train.Y[:200])
    assert est.get_params()["schedule"] == "fast" and est.history_["fista_iter"] == [0, 10, 10, 10]
    res = dl_fista(ds.train.Y[:200], 10, max_rounds=3, tol=0.0, fista_iter=4, device="cpu",
                   schedule=FastSchedule(start_iter=2, grow_below=1.0, extrapolation=0.0))
    assert res.history["fista_iter"] == [0, 2, 4, 4]  # grows every round, capped at fista_iter


@pytest.mark.parametrize("schedule, match", [
    ("slow", "schedule must be one of"),
    (None, "schedule must be one of"),
])
def test_bad_schedule(schedule, match):
    with pytest.raises(ValueError, match=match):
        dl_fista(np.ones((4, 3)), 2, schedule=schedule)


@pytest.mark.parametrize("kwargs, match", [
    ({"start_iter": 0}, "start_iter must be"),
    ({"growth": 1.0}, "growth must be"),
    ({"grow_below": -1.0}, "grow_below must be"),
    ({"extrapolation": 2.0}, "extrapolation must be"),
])
def test_bad_fast_schedule(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FastSchedule(**kwargs)


# --------------------------------------------------------------------------- Softplus-Adam
def test_softplus_adam_reduces_its_loss(ds):
    Y = ds.train.Y[:300]
    D, Z, losses = softplus_adam(Y, 50, n_steps=400, lr=1e-2, return_losses=True, device="cpu")
    assert D.shape == (ds.m, 50) and Z.shape == (300, 50)
    assert (Z >= 0).all()
    assert losses[0][0] == 0 and losses[-1][0] == 400
    assert losses[-1][1] < 0.5 * losses[0][1]


def test_softplus_adam_codes_keep_the_dictionary_frozen(ds):
    D = ds.A.copy()
    Z, losses = softplus_adam_codes(ds.val.Y[:200], D, n_steps=400, lr=5e-2, return_losses=True,
                                    device="cpu")
    np.testing.assert_array_equal(D, ds.A)
    assert Z.shape == (200, 50) and (Z >= 0).all()
    assert losses[-1][1] < 0.5 * losses[0][1]
    Zt = softplus_adam_codes(torch.as_tensor(ds.val.Y[:5]), torch.as_tensor(D), n_steps=2,
                             device="cpu")
    assert isinstance(Zt, torch.Tensor) and Zt.shape == (5, 50)


def test_softplus_adam_starts_from_tiny_codes(ds):
    _, Z = softplus_adam(ds.train.Y[:50], 8, n_steps=0, device="cpu")
    assert Z.max() < 1e-3  # softplus(N(0, 1) - 10)


@pytest.mark.parametrize("kwargs, match", [
    ({"lam": -1.0}, "lam must be"),
    ({"n_steps": -1}, "n_steps must be"),
    ({"lr": 0.0}, "lr must be"),
    ({"n_components": 0}, "n_components must be"),
    ({"D_init": np.ones((2, 2))}, "D_init must be of shape"),
])
def test_softplus_adam_bad_arguments(kwargs, match):
    args = {"n_components": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        softplus_adam(np.ones((4, 5)), **args)


def test_softplus_adam_codes_shape_mismatch():
    with pytest.raises(ValueError, match=r"Y must be of shape \(n_samples, 4\)"):
        softplus_adam_codes(np.ones((3, 5)), np.ones((4, 2)))


# --------------------------------------------------------------------------- CUDA
@pytest.mark.cuda
def test_cuda_matches_cpu(ds):
    Y = ds.train.Y[:300]
    cpu = dl_fista(Y, 50, max_rounds=3, tol=0.0, device="cpu")
    gpu = dl_fista(torch.as_tensor(Y, device="cuda"), 50, max_rounds=3, tol=0.0, device="cuda")
    assert gpu.dictionary.device.type == "cuda"
    np.testing.assert_allclose(gpu.dictionary.cpu().numpy(), cpu.dictionary, atol=1e-3)
    D, Z = softplus_adam(Y, 50, n_steps=5, device="cuda")
    assert isinstance(D, np.ndarray) and (Z >= 0).all()
