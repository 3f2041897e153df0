"""Tests of the three-concept toy model (csood.toy) and its chapter's parameters."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from csood import params, toy

ROOT = Path(__file__).resolve().parents[1]
DEG = np.pi / 180


def test_dictionary_geometry():
    A = toy.toy_dictionary(100, 130, norms=(2.0, 1.0, 0.5), degrees=True)
    assert A.shape == (2, 3)
    np.testing.assert_allclose(np.linalg.norm(A, axis=0), [2.0, 1.0, 0.5])
    np.testing.assert_allclose(A[:, 0], [2.0, 0.0], atol=1e-12)
    angles = np.rad2deg(np.arctan2(A[1], A[0])) % 360
    np.testing.assert_allclose(angles, [0.0, 100.0, 230.0])
    np.testing.assert_allclose(toy.toy_dictionary(100 * DEG, 130 * DEG, (2.0, 1.0, 0.5)), A)


def test_analytic_matches_simulation_on_a_grid_with_both_cases():
    grid = np.array([20.0, 45.0, 90.0, 135.0, 170.0])
    al, be = np.meshgrid(grid, grid, indexing="ij")
    for tau, norms in [(0.5, (1.0, 1.0, 1.0)), (0.3, (1.5, 0.7, 0.6))]:
        cases = toy.ood_case(al, be, tau, norms, degrees=True)
        assert set(np.unique(cases)) == {1, 2}, "the grid must cover both cases"
        mc = toy.simulate_ood_accuracy(al, be, tau, n_samples=40_000, seed=1, norms=norms,
                                       degrees=True)
        exact = toy.ood_accuracy_analytic(al, be, tau, norms, degrees=True)
        assert mc.shape == exact.shape == al.shape
        assert np.abs(mc - exact).max() < 0.01


def test_hand_computed_values():
    # case 2: alpha = 90, beta = 135 -> rho = sin 135 = 1/sqrt 2 > 1 - tau = 0.5
    assert toy.rho(90, 135, degrees=True) == pytest.approx(2**-0.5)
    assert toy.ood_case(90, 135, degrees=True) == 2
    assert toy.ood_accuracy_analytic(90, 135, degrees=True) == pytest.approx(0.5 + 0.25 / (2 * 2**-0.5))
    # case 1: |a3| = 1/2 halves rho: 0.5 * sin 150 = 0.25 -> accuracy 1 - 0.25 / 2
    assert toy.ood_case(np.pi / 2, 5 * np.pi / 6, norms=(1, 1, 0.5)) == 1
    assert toy.ood_accuracy_analytic(np.pi / 2, 5 * np.pi / 6, norms=(1, 1, 0.5)) == pytest.approx(0.875)
    # |a2| plays no part
    assert toy.rho(1.0, 2.0, (1, 7, 1)) == pytest.approx(toy.rho(1.0, 2.0))


@pytest.mark.parametrize("tau", [0.1, 0.5, 0.8])
def test_continuity_at_the_case_boundary(tau):
    alpha = 70 * DEG
    beta = np.arcsin((1 - tau) * np.sin(alpha))  # rho = 1 - tau exactly
    eps = 1e-7
    lo, hi = toy.ood_accuracy_analytic(alpha, np.array([beta - eps, beta + eps]), tau)
    assert toy.ood_case(alpha, beta - eps, tau) == 1 and toy.ood_case(alpha, beta + eps, tau) == 2
    assert lo == pytest.approx((1 + tau) / 2, abs=1e-6) and hi == pytest.approx((1 + tau) / 2, abs=1e-6)
    r = 1 - tau
    below, above = toy.accuracy_from_rho(r * (1 - 1e-12), tau), toy.accuracy_from_rho(r * (1 + 1e-12), tau)
    assert below == pytest.approx(above)


def test_limits():
    assert toy.accuracy_from_rho(0.0, 0.3) == 1.0
    assert toy.ood_accuracy_analytic(np.pi / 2, 1e-6) == pytest.approx(1.0, abs=1e-6)  # a3 ~ a2
    assert toy.ood_accuracy_analytic(1e-6, np.pi / 2, tau=0.3) == pytest.approx(0.3, abs=1e-6)  # a2 ~ a1
    r = np.array([1e-3, 0.1, 0.4, 0.6, 2.0, 50.0])
    acc = toy.accuracy_from_rho(r, 0.4)
    assert np.all(np.diff(acc) < 0) and np.all((acc > 0.4) & (acc < 1.0))


def test_symmetry_under_supplementary_angles():
    a, b = 0.7, 2.1
    assert toy.ood_accuracy_analytic(a, b) == pytest.approx(toy.ood_accuracy_analytic(np.pi - a, np.pi - b))


@pytest.mark.parametrize("alpha, beta, tau, norms", [
    (110, 140, 0.5, (1, 1, 1)), (40, 100, 0.2, (1, 1, 1)), (150, 60, 0.8, (0.5, 2.0, 1.5)),
])
def test_id_perfect_boundary_is_perfect_id_and_only_misses_positives_ood(alpha, beta, tau, norms):
    A = toy.toy_dictionary(alpha, beta, norms, degrees=True)
    boundary = toy.id_boundary(A, tau)
    assert toy.boundary_accuracy(A, boundary, tau, "id", n_samples=50_000, seed=3) == 1.0
    just_above, just_below = (tau + 1e-6) * A[:, 0], (tau - 1e-6) * A[:, 0]
    assert boundary.predict(np.array([just_above, just_below])).tolist() == [True, False]
    Z, Y = toy.sample_toy(A, "ood", 50_000, seed=4)
    pred, label = boundary.predict(Y), Z[:, 0] > tau
    assert not np.any(pred & ~label), "OOD errors must all be false negatives"
    assert np.mean(pred == label) < 1.0


def test_learned_classifier_lands_on_the_id_perfect_boundary():
    A = toy.toy_dictionary(110, 140, degrees=True)
    learned, exact = toy.fit_id_classifier(A, 0.5, n_samples=20_000, seed=0), toy.id_boundary(A, 0.5)
    assert np.degrees(np.arccos(min(1.0, learned.normal @ exact.normal))) < 0.5
    acc = toy.boundary_accuracy(A, learned, 0.5, "ood", n_samples=100_000, seed=1)
    assert acc == pytest.approx(toy.ood_accuracy_analytic(110, 140, degrees=True), abs=0.01)


def test_sparse_decoding_is_unique_only_with_disjoint_cones():
    A = toy.toy_dictionary(110, 140, degrees=True)  # alpha + beta > 180
    Z, Y = toy.sample_toy(A, "ood", 5_000, seed=0)
    Z_hat, n_feasible = toy.decode_pairs(A, Y)
    assert np.all(n_feasible == 1)
    np.testing.assert_allclose(Z_hat, Z, atol=1e-9)
    assert toy.decode_pairs(A, 3 * A[:, :1].T)[1][0] == 0, "z1 = 3 is outside the prior's range"
    A = toy.toy_dictionary(70, 40, degrees=True)  # mirror image: same rho, overlapping cones
    _, n_feasible = toy.decode_pairs(A, toy.sample_toy(A, "ood", 5_000, seed=0)[1])
    assert np.mean(n_feasible > 1) > 0.5
    assert toy.rho(70, 40, degrees=True) == pytest.approx(toy.rho(110, 140, degrees=True))


def test_simulation_is_reproducible_and_seeded():
    def sim(seed):
        return toy.simulate_ood_accuracy(80, 120, seed=seed, n_samples=2_000, degrees=True)

    assert sim(5) == sim(5) and sim(5) != sim(6)
    assert isinstance(sim(5), float)
    assert isinstance(toy.ood_case(80, 120, degrees=True), int)


@pytest.mark.parametrize("call, match", [
    (lambda: toy.rho(0.0, 1.0), "alpha must be an angle in \\(0, pi\\) radians; got 0.0"),
    (lambda: toy.rho(1.0, np.pi), "beta must be an angle in \\(0, pi\\) radians"),
    (lambda: toy.rho(np.array([1.0, 4.0]), 1.0), "alpha must be .*; got 4.0"),
    (lambda: toy.ood_accuracy_analytic(90, 180, degrees=True),
     "beta must be an angle in \\(0, 180\\) degrees"),
    (lambda: toy.toy_dictionary("a", 1.0), "alpha must be an angle"),
    (lambda: toy.ood_accuracy_analytic(1.0, 1.0, tau=1.0), "tau must be"),
    (lambda: toy.ood_case(1.0, 1.0, tau=0), "tau must be"),
    (lambda: toy.rho(1.0, 1.0, norms=(1, -1, 1)), "norms must be three positive"),
    (lambda: toy.rho(1.0, 1.0, norms=(1, 1)), "norms must be three positive"),
    (lambda: toy.simulate_ood_accuracy(1.0, 1.0, n_samples=0), "n_samples must be"),
    (lambda: toy.simulate_ood_accuracy(1.0, 1.0, seed=-1), "seed must be"),
    (lambda: toy.simulate_ood_accuracy(1.0, 1.0, seed=1.5), "seed must be"),
    (lambda: toy.sample_toy(np.eye(2), "ood", 10), "A must be a finite array of shape \\(2, 3\\)"),
    (lambda: toy.sample_toy(np.ones((2, 3)), "test", 10), "split must be one of"),
    (lambda: toy.accuracy_from_rho(-0.1), "rho must be"),
    (lambda: toy.fit_id_classifier(np.ones((2, 3)), C=0.0), "C must be"),
    (lambda: toy.decode_pairs(np.ones((2, 3)), np.ones((4, 3))), "Y must be"),
])
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_profiles_are_valid_parameters(profile):
    values = yaml.safe_load((ROOT / "params" / profile / "toy_derivation.yaml").read_text())
    P = params.validate("toy_derivation", **{**values, "device": "cpu"})
    assert P["alpha_deg"] + P["beta_deg"] > 180, "the chapter's configuration should be identifiable"
    with pytest.raises(ValueError, match="alpha_deg must be"):
        params.validate("toy_derivation", **{**values, "device": "cpu", "alpha_deg": 180.0})
