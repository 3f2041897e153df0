"""End-to-end checks of the book's central contrast, at the configurations the issue names."""

import pytest

from csood import data, metrics, probes, solvers


@pytest.fixture(scope="module")
def ds100():
    return data.make_dataset(100, 10, n_samples=5000, seed=0)


def test_oracle_fista_recovers_latents_in_and_out_of_distribution(ds100):
    """n = 100, k = 10, m from the bound, 5,000 samples, seed 0: ID and OOD MCC >= 0.97."""
    assert ds100.m == data.cs_bound(100, 10)
    codes = {s: solvers.fista(ds100[s].Y, ds100.A, 0.1, max_iter=100, device="cpu") for s in ("val", "ood")}
    assert metrics.mcc_id(ds100.val.Z, codes["val"]) >= 0.97
    assert metrics.mcc_ood(ds100.ood.Z, codes["ood"]) >= 0.97


def test_linear_probe_fails_out_of_distribution_at_n_1000():
    """The supervised linear probe at n = 1000 has OOD MCC <= 0.3."""
    ds = data.make_dataset(1000, 10, n_samples=5000, seed=0)
    probe = probes.LinearProbe().fit(ds.train.Y, ds.train.Z)
    assert metrics.mcc_ood(ds.ood.Z, probe.transform(ds.ood.Y)) <= 0.3


def test_probe_is_perfect_without_superposition():
    """The same probe is exact when m = n: the failure above is superposition, not the probe."""
    ds = data.make_dataset(20, 3, m=20, n_samples=400, seed=1)
    probe = probes.LinearProbe().fit(ds.train.Y, ds.train.Z)
    assert metrics.mcc_ood(ds.ood.Z, probe.transform(ds.ood.Y)) > 0.999
