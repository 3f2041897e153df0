"""Synthetic sparse data under compositional shift (SPEC section 2).

Latents ``z`` in ``R^n`` are exactly ``k``-sparse with active values in ``(0, 1)``; the
observations are ``y = A z`` with a random mixing matrix ``A`` of shape ``(m, n)`` whose
columns have unit norm. Latent 0 is the *label latent* (``label = z_0 > 0.5``).

Index pools, with ``n_ood = n_latents // 2``:

* ID distractors: ``{1, ..., n_latents - n_ood - 1}``;
* OOD distractors: ``{n_latents - n_ood, ..., n_latents - 1}``.

An in-distribution sample holds, with probability 1/2, latent 0 plus ``k - 1`` distinct ID
distractors, and otherwise ``k`` distinct latents from ``{1, ..., n_latents - 1}``. An OOD
sample holds latent 0 plus ``k - 1`` distinct OOD distractors: familiar concepts in a
combination never seen in training.

Samples are stored sparsely (support indices and values, shape ``(n_samples, k)``); the dense
latent matrix is only built when :attr:`Split.Z` is read. Generation is vectorised over
samples (memory ``O(n_samples * (k + m))``), so ``10**6`` samples at ``n_latents = 10**4`` take
about a second.

>>> ds = make_dataset(100, 5, n_samples=10, seed=0)
>>> ds.m, ds.train.Y.shape, ds.val.Z.shape, len(ds.ood)
(30, (5, 30), (5, 100), 5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from ._validation import check_float, check_int, fail

__all__ = ["cs_bound", "check_data_config", "make_dataset", "Split", "SparseDataset"]

_VALUE_BITS = 24  # active values are j / 2**24, j in [1, 2**24 - 1]: exact in float32


def cs_bound(n_latents: int, k: int, c: float = 2.0) -> int:
    """Compressed-sensing number of measurements ``max(k + 1, ceil(c k ln(n_latents / k)))``.

    The value is not capped at ``n_latents``; :func:`make_dataset` caps its default ``m``.

    Parameters
    ----------
    n_latents : int
        Number of latents ``n`` (>= 2).
    k : int
        Sparsity, ``0 < k < n_latents``.
    c : float, default 2.0
        Constant of the bound, > 0.

    Returns
    -------
    int

    Examples
    --------
    >>> cs_bound(100, 10), cs_bound(10_000, 10), cs_bound(3, 2)
    (47, 139, 3)
    """
    n_latents = check_int("n_latents", n_latents, low=2)
    k = _check_k(k, n_latents)
    c = check_float("c", c, low=0.0, low_inclusive=False)
    return max(k + 1, math.ceil(c * k * math.log(n_latents / k)))


def _check_k(k, n_latents: int) -> int:
    return check_int("k", k, low=1, high=n_latents - 1,
                     allowed=f"an integer with 0 < k < n_latents (= {n_latents})")


@dataclass(eq=False)
class Split:
    """One split of a :class:`SparseDataset`, stored sparsely.

    Attributes
    ----------
    support : numpy.ndarray of int64, shape (n_samples, k)
        Indices of the active latents of each sample, sorted increasingly along each row
        (so latent 0, when active, is in column 0).
    values : numpy.ndarray of float32, shape (n_samples, k)
        Values of the active latents, strictly inside ``(0, 1)``; ``values[i, j]`` belongs to
        latent ``support[i, j]``.
    Y : numpy.ndarray of float32, shape (n_samples, m)
        Observations ``Y = Z @ A.T``.
    n_latents : int
        Number of latents ``n``.
    """

    support: np.ndarray
    values: np.ndarray
    Y: np.ndarray
    n_latents: int

    def __len__(self) -> int:
        return self.support.shape[0]

    @property
    def n_samples(self) -> int:
        """Number of samples in the split."""
        return self.support.shape[0]

    @cached_property
    def Z(self) -> np.ndarray:
        """Dense latents, float32 of shape ``(n_samples, n_latents)``; built once, then cached.

        Memory is ``4 * n_samples * n_latents`` bytes: prefer ``support``/``values`` at scale.
        """
        Z = np.zeros((self.n_samples, self.n_latents), dtype=np.float32)
        np.put_along_axis(Z, self.support, self.values, axis=1)
        return Z

    @cached_property
    def labels(self) -> np.ndarray:
        """Task labels ``z_0 > 0.5``, bool of shape ``(n_samples,)``."""
        return ((self.support == 0) & (self.values > 0.5)).any(axis=1)

    def latent_counts(self) -> np.ndarray:
        """How many samples activate each latent, int64 of shape ``(n_latents,)``."""
        return np.bincount(self.support.ravel(), minlength=self.n_latents)


@dataclass(eq=False)
class SparseDataset:
    """Mixing matrix, the three splits and the configuration that produced them.

    Attributes
    ----------
    A : numpy.ndarray of float32, shape (m, n_latents)
        Mixing matrix, i.i.d. Gaussian with unit-norm columns.
    train, val, ood : Split
        ``train`` is the first ``n_samples // 2`` in-distribution samples, ``val`` the rest
        (``n_samples - n_samples // 2``), ``ood`` holds ``n_samples // 2`` OOD samples.
    n_latents, k, m, n_samples, seed, n_ood : int
        Configuration (``n_ood = n_latents // 2`` is the size of the OOD distractor pool).
    c : float
        Constant of the compressed-sensing bound used for the default ``m``.
    """

    A: np.ndarray
    train: Split
    val: Split
    ood: Split
    n_latents: int
    k: int
    m: int
    c: float
    n_samples: int
    seed: int
    n_ood: int

    SPLITS = ("train", "val", "ood")

    def splits(self) -> dict[str, Split]:
        """The splits by name: ``{"train": ..., "val": ..., "ood": ...}``."""
        return {name: getattr(self, name) for name in self.SPLITS}

    def __getitem__(self, name: str) -> Split:
        if name not in self.SPLITS:
            raise KeyError(f"split must be one of {self.SPLITS}; got {name!r}.")
        return getattr(self, name)

    @property
    def id_pool(self) -> tuple[int, int]:
        """Half-open range ``(1, n_latents - n_ood)`` of the ID distractor latents."""
        return 1, self.n_latents - self.n_ood

    @property
    def ood_pool(self) -> tuple[int, int]:
        """Half-open range ``(n_latents - n_ood, n_latents)`` of the OOD distractor latents."""
        return self.n_latents - self.n_ood, self.n_latents


def _sample_subsets(rng: np.random.Generator, n_rows: int, n_pick: int, pool_size: int) -> np.ndarray:
    """Uniform ``n_pick``-subsets of ``{0, ..., pool_size - 1}``, one per row (Floyd's algorithm).

    Vectorised over rows: ``n_pick`` steps, step ``i`` compares against the ``i`` indices
    already chosen. Returns int64 of shape ``(n_rows, n_pick)``, rows in no particular order.
    """
    out = np.empty((n_rows, n_pick), dtype=np.int64)
    for i, j in enumerate(range(pool_size - n_pick, pool_size)):
        t = rng.integers(0, j + 1, size=n_rows)
        taken = (out[:, :i] == t[:, None]).any(axis=1)
        out[:, i] = np.where(taken, j, t)
    return out


def _with_label_latent(rng, n_rows: int, k: int, pool_start: int, pool_size: int) -> np.ndarray:
    """Supports holding latent 0 plus ``k - 1`` distinct latents of a pool, shape (n_rows, k)."""
    support = np.zeros((n_rows, k), dtype=np.int64)
    support[:, 1:] = _sample_subsets(rng, n_rows, k - 1, pool_size) + pool_start
    return support


def _id_supports(rng, n_rows: int, n_latents: int, k: int, n_ood: int) -> np.ndarray:
    has_label = rng.random(n_rows) < 0.5
    support = np.empty((n_rows, k), dtype=np.int64)
    n_with = int(has_label.sum())
    support[has_label] = _with_label_latent(rng, n_with, k, 1, n_latents - n_ood - 1)
    support[~has_label] = _sample_subsets(rng, n_rows - n_with, k, n_latents - 1) + 1
    return support


def _make_split(rng, support: np.ndarray, A_T: torch.Tensor) -> Split:
    """Sort ``support`` rows in place, draw values, compute ``Y``; ``A_T`` is ``A.T`` (n, m)."""
    support.sort(axis=1)
    n_rows, k = support.shape
    values = (rng.integers(1, 2**_VALUE_BITS, size=(n_rows, k)).astype(np.float32)
              * np.float32(2.0**-_VALUE_BITS))
    # Y = Z @ A.T without a dense Z: a weighted sum of k gathered atoms per row (one
    # multithreaded kernel; deterministic, each row is summed sequentially).
    Y = torch.nn.functional.embedding_bag(
        torch.from_numpy(support), A_T,
        per_sample_weights=torch.from_numpy(values), mode="sum").numpy()
    return Split(support=support, values=values, Y=Y, n_latents=A_T.shape[0])


def check_data_config(n_latents, k, *, m=None, n_samples=5000, c=2.0, seed=0) -> tuple:
    """Validate the arguments of :func:`make_dataset` without drawing anything.

    Chapters call it in their parameter cell; :func:`make_dataset` calls it first.

    Returns
    -------
    tuple
        ``(n_latents, k, m, n_samples, c, seed)`` canonicalised, with the default ``m``
        resolved to ``min(cs_bound(n_latents, k, c), n_latents)``.

    Raises
    ------
    ValueError
        Naming the offending argument.
    """
    n_latents = check_int("n_latents", n_latents, low=2)
    k = _check_k(k, n_latents)
    c = check_float("c", c, low=0.0, low_inclusive=False)
    n_samples = check_int("n_samples", n_samples, low=2)
    seed = check_int("seed", seed, low=0)
    n_ood = n_latents // 2
    id_pool = n_latents - n_ood - 1
    if k - 1 > min(id_pool, n_ood):
        fail("k", f"at most {min(id_pool, n_ood) + 1} for n_latents = {n_latents}, so that the ID "
             f"distractor pool {{1..{id_pool}}} ({id_pool} latents) and the OOD pool "
             f"{{{n_latents - n_ood}..{n_latents - 1}}} ({n_ood} latents) each hold k - 1 "
             "distinct latents", k)
    if m is None:
        m = min(cs_bound(n_latents, k, c), n_latents)
    else:
        m = check_int("m", m, low=1, high=n_latents,
                      allowed=f"an integer with 1 <= m <= n_latents (= {n_latents})")
    return n_latents, k, m, n_samples, c, seed


def make_dataset(
    n_latents: int,
    k: int,
    *,
    m: int | None = None,
    n_samples: int = 5000,
    c: float = 2.0,
    seed: int = 0,
) -> SparseDataset:
    """Draw the mixing matrix and the train / val / OOD splits of SPEC section 2.

    Parameters
    ----------
    n_latents : int
        Number of latents ``n`` (>= 2).
    k : int
        Active latents per sample, ``0 < k < n_latents``; both distractor pools must hold
        ``k - 1`` latents, i.e. ``k - 1 <= n_latents - n_latents // 2 - 1``.
    m : int, optional
        Observation dimension, ``1 <= m <= n_latents``. Default
        ``min(cs_bound(n_latents, k, c), n_latents)``.
    n_samples : int, default 5000
        In-distribution samples (>= 2), split into train (first ``n_samples // 2``) and val
        (the rest). The OOD split has ``n_samples // 2`` samples.
    c : float, default 2.0
        Constant of the compressed-sensing bound for the default ``m`` (> 0).
    seed : int, default 0
        Seed of the one ``numpy.random.default_rng`` everything is drawn from.

    Returns
    -------
    SparseDataset
        ``A`` has shape ``(m, n_latents)``; each split's ``Y`` has shape ``(len(split), m)``.

    Raises
    ------
    ValueError
        Naming the offending argument.
    """
    n_latents, k, m, n_samples, c, seed = check_data_config(n_latents, k, m=m, n_samples=n_samples,
                                                            c=c, seed=seed)
    n_ood = n_latents // 2

    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n_latents), dtype=np.float32)
    A /= np.linalg.norm(A, axis=0, keepdims=True)

    n_train = n_samples // 2
    id_support = _id_supports(rng, n_samples, n_latents, k, n_ood)
    ood_support = _with_label_latent(rng, n_samples // 2, k, n_latents - n_ood, n_ood)
    A_T = torch.from_numpy(np.ascontiguousarray(A.T))
    train = _make_split(rng, id_support[:n_train].copy(), A_T)
    val = _make_split(rng, id_support[n_train:].copy(), A_T)
    ood = _make_split(rng, ood_support, A_T)
    return SparseDataset(A=A, train=train, val=val, ood=ood, n_latents=n_latents, k=k, m=m,
                         c=c, n_samples=n_samples, seed=seed, n_ood=n_ood)
