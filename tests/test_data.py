"""Tests of the SPEC section 2 generator (csood.data)."""

import math
import tracemalloc

import numpy as np
import pytest

from csood.data import SparseDataset, Split, cs_bound, make_dataset

N, K, N_SAMPLES = 60, 4, 3001  # odd n_samples on purpose


@pytest.fixture(scope="module")
def ds():
    return make_dataset(N, K, n_samples=N_SAMPLES, seed=3)


def _rows_contain(split, latent):
    return (split.support == latent).any(axis=1)


def test_types_shapes_and_split_sizes(ds):
    assert isinstance(ds, SparseDataset)
    assert ds.m == min(cs_bound(N, K), N) and ds.A.shape == (ds.m, N) and ds.A.dtype == np.float32
    assert (len(ds.train), len(ds.val), len(ds.ood)) == (1500, 1501, 1500)
    assert ds.n_ood == N // 2
    for name, split in ds.splits().items():
        assert ds[name] is split and isinstance(split, Split)
        assert split.support.shape == (len(split), K) and split.support.dtype == np.int64
        assert split.values.shape == (len(split), K) and split.values.dtype == np.float32
        assert split.Y.shape == (len(split), ds.m) and split.Y.dtype == np.float32
        assert split.Z.shape == (len(split), N) and split.Z.dtype == np.float32
        assert split.labels.shape == (len(split),) and split.labels.dtype == bool
    with pytest.raises(KeyError, match="split"):
        ds["test"]


def test_exactly_k_nonzeros_with_values_in_open_unit_interval(ds):
    for split in ds.splits().values():
        Z = split.Z
        assert ((Z != 0).sum(axis=1) == K).all()
        nz = Z[Z != 0]
        assert nz.min() > 0 and nz.max() < 1
        assert (np.diff(split.support, axis=1) > 0).all()  # distinct, sorted
        assert split.support.min() >= 0 and split.support.max() < N
        np.testing.assert_array_equal(np.take_along_axis(Z, split.support, axis=1), split.values)


def test_id_support_rule(ds):
    ood_lo = N - N // 2
    for split in (ds.train, ds.val):
        has0 = _rows_contain(split, 0)
        has_ood = (split.support >= ood_lo).any(axis=1)
        assert not (has0 & has_ood).any()  # latent 0 never co-occurs with an OOD latent
        assert has_ood.any()  # but OOD-pool latents do appear in ID data (without latent 0)
    has0 = np.concatenate([_rows_contain(ds.train, 0), _rows_contain(ds.val, 0)])
    assert abs(has0.mean() - 0.5) < 0.03  # about half hold the label latent (sd 0.009)
    # every latent can appear in ID data
    counts = ds.train.latent_counts() + ds.val.latent_counts()
    assert (counts > 0).all()


def test_ood_support_rule(ds):
    s = ds.ood.support
    assert (s[:, 0] == 0).all()
    assert (s[:, 1:] >= N - N // 2).all() and (s[:, 1:] < N).all()
    # all OOD-pool latents are used
    assert set(np.unique(s[:, 1:])) == set(range(N - N // 2, N))


def test_labels(ds):
    for split in ds.splits().values():
        np.testing.assert_array_equal(split.labels, split.Z[:, 0] > 0.5)
    assert 0.2 < ds.val.labels.mean() < 0.3  # half hold latent 0, half of those exceed 0.5
    assert 0.45 < ds.ood.labels.mean() < 0.55


def test_mixing_matrix_unit_columns_and_observations(ds):
    np.testing.assert_allclose(np.linalg.norm(ds.A, axis=0), 1.0, atol=1e-6)
    for split in ds.splits().values():
        np.testing.assert_allclose(split.Y, split.Z @ ds.A.T, atol=1e-5)


def test_values_roughly_uniform(ds):
    v = ds.train.values.astype(np.float64).ravel()
    assert abs(v.mean() - 0.5) < 0.02 and abs(v.var() - 1 / 12) < 0.01


def test_uniform_subsets_from_pool():
    """Floyd's sampler: each ID distractor equally likely in label-latent rows."""
    d = make_dataset(20, 4, n_samples=40_000, seed=1)
    rows = d.train.support[d.train.support[:, 0] == 0]
    freq = np.bincount(rows[:, 1:].ravel(), minlength=20)[1:10] / len(rows)
    np.testing.assert_allclose(freq, 3 / 9, atol=0.02)


def test_seed_reproducibility():
    a = make_dataset(40, 3, n_samples=200, seed=7)
    b = make_dataset(40, 3, n_samples=200, seed=7)
    c = make_dataset(40, 3, n_samples=200, seed=8)
    np.testing.assert_array_equal(a.A, b.A)
    for name in ("train", "val", "ood"):
        for attr in ("support", "values", "Y"):
            np.testing.assert_array_equal(getattr(a[name], attr), getattr(b[name], attr))
    assert not np.array_equal(a.A, c.A)
    assert not np.array_equal(a.train.support, c.train.support)
    assert not np.array_equal(a.ood.values, c.ood.values)


def test_explicit_m_and_small_cases():
    d = make_dataset(10, 2, m=3, n_samples=5, seed=0)
    assert d.A.shape == (3, 10) and (len(d.train), len(d.val), len(d.ood)) == (2, 3, 2)
    d = make_dataset(2, 1, n_samples=2)  # smallest valid problem: k = 1, empty ID pool
    assert d.m == 2 and (d.train.support[d.train.support[:, 0] == 0] == 0).all()
    assert (d.ood.support == 0).all()
    d = make_dataset(11, 6, n_samples=10, seed=2)  # largest k the pools allow at n = 11
    assert (d.ood.support[:, 1:] >= 6).all()


@pytest.mark.parametrize("n, k, c, expected", [
    (100, 10, 2.0, 47),       # 20 ln 10 = 46.05
    (10_000, 10, 2.0, 139),   # 20 ln 1000 = 138.16
    (50, 3, 2.0, 17),         # 6 ln(50/3) = 16.88
    (3, 2, 2.0, 3),           # 4 ln 1.5 = 1.62 -> k + 1
    (100, 10, 0.5, 12),       # 5 ln 10 = 11.51
    (1000, 100, 2.0, 461),    # 200 ln 10 = 460.5
])
def test_cs_bound(n, k, c, expected):
    assert cs_bound(n, k, c) == expected
    assert expected == max(k + 1, math.ceil(c * k * math.log(n / k)))


def test_default_m_capped_at_n_latents():
    assert cs_bound(20, 9, c=4.0) == 29
    assert make_dataset(20, 9, n_samples=4, c=4.0).m == 20


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_latents=1, k=1), "n_latents"),
    (dict(n_latents=10.5, k=2), "n_latents"),
    (dict(n_latents=True, k=1), "n_latents"),
    (dict(n_latents=10, k=0), "k must be"),
    (dict(n_latents=10, k=10), "k must be"),
    (dict(n_latents=10, k=2.5), "k must be"),
    (dict(n_latents=10, k=6), "k must be at most 5.*pool"),
    (dict(n_latents=10, k=2, m=0), "m must be"),
    (dict(n_latents=10, k=2, m=11), "m must be"),
    (dict(n_latents=10, k=2, m=False), "m must be"),
    (dict(n_latents=10, k=2, n_samples=1), "n_samples must be"),
    (dict(n_latents=10, k=2, n_samples="5"), "n_samples must be"),
    (dict(n_latents=10, k=2, c=0.0), "c must be"),
    (dict(n_latents=10, k=2, c=float("nan")), "c must be"),
    (dict(n_latents=10, k=2, seed=-1), "seed must be"),
    (dict(n_latents=10, k=2, seed=None), "seed must be"),
])
def test_make_dataset_rejects_bad_arguments(kwargs, match):
    kwargs.setdefault("n_samples", 10)
    with pytest.raises(ValueError, match=match):
        make_dataset(**kwargs)


@pytest.mark.parametrize("args, match", [
    ((1, 1), "n_latents"), ((10, 0), "k must be"), ((10, 10), "k must be"),
    ((10, 2, -1.0), "c must be"), ((10, 2, 0), "c must be"),
])
def test_cs_bound_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        cs_bound(*args)


def test_large_scale_stays_sparse():
    """200,000 samples at n = 10,000 never allocate the dense (8 GB) latent matrix."""
    tracemalloc.start()
    try:
        d = make_dataset(10_000, 10, n_samples=200_000, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 600e6  # sparse storage is ~50 MB here; a dense Z would be 8 GB
    for name, split in d.splits().items():
        assert "Z" not in vars(split)  # the cached dense matrix was never built
        assert (np.diff(split.support, axis=1) > 0).all()
        assert split.support.min() >= 0 and split.support.max() < 10_000
    assert (d.ood.support[:, 0] == 0).all() and (d.ood.support[:, 1:] >= 5000).all()
    has0 = (d.val.support == 0).any(axis=1)
    assert not (has0 & (d.val.support >= 5000).any(axis=1)).any()
    i = np.arange(0, 100_000, 9973)  # spot-check Y against a few densely built rows
    Z = np.zeros((len(i), 10_000), np.float32)
    np.put_along_axis(Z, d.val.support[i], d.val.values[i], axis=1)
    np.testing.assert_allclose(d.val.Y[i], Z @ d.A.T, atol=1e-5)
