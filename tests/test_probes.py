"""Tests of csood.probes (SPEC §3 linear probe)."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from csood.probes import DEFAULT_ALPHAS, LinearProbe, fit_linear_probe


def make_data(rng, n_samples, n_latents, m, noise=0.0):
    Z = np.where(rng.random((n_samples, n_latents)) < 0.3, rng.random((n_samples, n_latents)), 0.0)
    A = rng.standard_normal((m, n_latents))
    A /= np.linalg.norm(A, axis=0)
    Y = Z @ A.T + noise * rng.standard_normal((n_samples, m))
    return Y, Z, A


def brute_force_loo_alpha(Y, Z, alphas):
    """Leave-one-out ridge (no intercept) by refitting n times; mean squared error over all targets."""
    errors = []
    for alpha in alphas:
        se = 0.0
        for i in range(Y.shape[0]):
            keep = np.arange(Y.shape[0]) != i
            W = np.linalg.solve(Y[keep].T @ Y[keep] + alpha * np.eye(Y.shape[1]), Y[keep].T @ Z[keep])
            se += np.sum((Y[i] @ W - Z[i]) ** 2)
        errors.append(se)
    return alphas[int(np.argmin(errors))]


@pytest.mark.parametrize("m", [10, 14])
def test_probe_recovers_latents_when_complete_and_noiseless(m):
    rng = np.random.default_rng(0)
    Y, Z, A = make_data(rng, 300, 10, m)
    probe = LinearProbe().fit(Y, Z)
    assert probe.alpha_ in DEFAULT_ALPHAS
    assert probe.alpha_ == 1e-6  # no noise: the least shrinkage wins
    assert probe.coef_.shape == (10, m)
    np.testing.assert_allclose(probe.transform(Y), Z, atol=1e-4)
    Y_new, Z_new = Z[:50] @ A.T, Z[:50]
    np.testing.assert_allclose(probe.predict(Y_new), Z_new, atol=1e-4)


def test_probe_cannot_recover_latents_in_superposition():
    rng = np.random.default_rng(1)
    Y, Z, _ = make_data(rng, 400, 40, 10)
    codes = LinearProbe().fit_transform(Y, Z)
    assert codes.shape == Z.shape
    assert np.abs(codes - Z).max() > 0.3  # m < n: no linear map inverts the mixing


def test_probe_alpha_matches_brute_force_leave_one_out():
    rng = np.random.default_rng(2)
    alphas = (1e-3, 0.1, 1.0, 10.0, 100.0)
    Y, Z, _ = make_data(rng, 25, 6, 8, noise=0.5)
    probe = fit_linear_probe(Y, Z, alphas=alphas)
    expected = brute_force_loo_alpha(Y, Z, alphas)
    assert probe.alpha_ == expected
    assert probe.alpha_ > alphas[0]  # noisy, few samples: some shrinkage is chosen
    W = np.linalg.solve(Y.T @ Y + probe.alpha_ * np.eye(8), Y.T @ Z)
    np.testing.assert_allclose(probe.coef_, W.T, atol=1e-10)


def test_function_form_and_torch_inputs_agree():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    Y, Z, _ = make_data(rng, 80, 5, 7, noise=0.05)
    a = fit_linear_probe(Y, Z)
    b = LinearProbe().fit(torch.tensor(Y), torch.tensor(Z))
    assert a.alpha_ == b.alpha_
    np.testing.assert_allclose(a.transform(Y), b.transform(torch.tensor(Y)), atol=1e-12)
    assert LinearProbe(alphas=[0.5]).get_params() == {"alphas": [0.5]}


def test_probe_bad_arguments_raise():
    rng = np.random.default_rng(4)
    Y, Z, _ = make_data(rng, 30, 4, 5)
    for alphas in ((1.0, 0.0), (-1.0,), (), (1.0, np.nan), ("a",)):
        with pytest.raises(ValueError, match="alphas must be a non-empty sequence of finite numbers > 0"):
            LinearProbe(alphas=alphas).fit(Y, Z)
    bad = Y.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Y must be finite"):
        fit_linear_probe(bad, Z)
    with pytest.raises(ValueError, match=r"Z must be an array with as many rows as Y \(30\)"):
        fit_linear_probe(Y, Z[:-1])
    with pytest.raises(ValueError, match="Z must be an array with 2 dimension"):
        fit_linear_probe(Y, Z[:, 0])
    with pytest.raises(NotFittedError):
        LinearProbe().transform(Y)
    probe = fit_linear_probe(Y, Z)
    with pytest.raises(ValueError, match="Y must be an array with 5 columns"):
        probe.transform(Y[:, :4])
