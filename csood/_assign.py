"""Exact maximum-weight matching on a large dense weight matrix, by certified pruning.

``scipy.optimize.linear_sum_assignment`` on a dense ``(p, q)`` matrix costs up to
``O(p^2 q)``; at ``p, q ~ 10^4`` (MCC at ``n_latents = 10,000``) that is tens of seconds. This
module solves the same problem exactly on a small *candidate* set of entries and proves, with
a linear-programming dual certificate, that the entries left out cannot improve the matching.

The problem (``p <= q``; otherwise the matrix is transposed) is the rectangular assignment

    max  sum_ij C_ij x_ij   s.t.  sum_j x_ij = 1 (every row),  sum_i x_ij <= 1,  x >= 0,

whose dual is ``min sum_i u_i + sum_j v_j`` s.t. ``u_i + v_j >= C_ij`` for all ``(i, j)``,
``v >= 0`` (``u`` free). The polytope is integral, so its optimum is what
``linear_sum_assignment`` returns.

Why the pruning is exact
------------------------
1. Solve the problem restricted to a candidate set ``E`` (``x_ij = 0`` off ``E``) with
   :func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`; call its optimum ``V_E``.
   Since ``E`` only removes options, ``V_E <= V`` (the full optimum).
2. From the restricted optimal matching ``mu`` build duals ``(u, v)`` that are feasible for
   every constraint of ``E`` and have ``sum u + sum v = V_E`` (complementary slackness):
   ``u_i = C_{i mu(i)} - v_{mu(i)}``; feasibility on ``(i, j) in E`` reads
   ``v_{mu(i)} <= v_j + (C_{i mu(i)} - C_ij)``, a system of difference constraints solved by
   shortest paths from the unmatched columns (``v = 0`` there; a path from an unmatched
   column with negative length would be an improving alternating path, impossible at the
   restricted optimum, so all distances are ``>= 0``). Columns no such path reaches get a
   start length ``B = p * span(C) + 1``, larger than any (negative) path length, which keeps
   them ``>= 0`` without breaking any constraint.
3. If also ``u_i + v_j >= C_ij`` for every entry *outside* ``E`` (checked on the full
   matrix), ``(u, v)`` is dual-feasible for the full problem, so by weak duality
   ``V <= sum u + sum v = V_E <= V``: the restricted matching is optimal for the full problem.
4. Otherwise the violated entries are added to ``E`` (column generation) and the loop repeats;
   ``E`` grows strictly each round, so it ends, at worst with every entry (the dense problem).

The matched sum equals the dense one up to float round-off; when several matchings are
optimal (exact ties) the pairs may differ from scipy's. ``E`` starts as every row's top-``k``
columns (see :func:`_initial_candidates`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import min_weight_full_bipartite_matching, shortest_path

#: Problems with at most this many entries go to ``linear_sum_assignment`` unchanged.
DENSE_MAX_ENTRIES = 4_000_000
#: Initial candidates per row, and extra violated entries added per row and round.
TOP_K = 6
ADD_PER_ROW = 8
#: Slack of the dual check: an entry violates only if ``C_ij > u_i + v_j + TOL``. It bounds
#: the gap to the dense optimum by ``p * TOL`` (far below float64 round-off of a matched sum).
TOL = 1e-13


def max_weight_matching(C, *, dense_max_entries=DENSE_MAX_ENTRIES):
    """Maximum-weight one-to-one matching of a dense ``(p, q)`` weight matrix.

    Parameters
    ----------
    C : ndarray of shape (p, q), float64, finite
        Weights (any sign; the metrics pass values in [0, 1]).
    dense_max_entries : int
        Up to this size, ``scipy.optimize.linear_sum_assignment`` is called directly.

    Returns
    -------
    rows, cols : ndarray of shape (min(p, q),), intp
        Matched pairs, ``rows`` ascending; the matched sum equals ``linear_sum_assignment``'s.
    """
    p, q = C.shape
    if min(p, q) == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty
    if C.size <= dense_max_entries or min(p, q) < 2:
        r, c = linear_sum_assignment(C, maximize=True)
        return r.astype(np.intp), c.astype(np.intp)
    if p > q:
        c, r = _pruned(C.T)
    else:
        r, c = _pruned(C)
    order = np.argsort(r, kind="stable")
    return r[order].astype(np.intp), c[order].astype(np.intp)


def _initial_candidates(C, rng_seed=0):
    """Starting candidate entries ``(rows, cols)``.

    Every row's and every column's largest entry, the pairs ``(i, i)`` (an injection of the
    rows, so that a full row matching always exists on the candidates), and every entry above
    a global threshold chosen so that about ``TOP_K`` entries per row pass it (a quantile of a
    sample of the entries). Which entries start in ``E`` only affects speed, never the result.
    """
    p, q = C.shape
    sample = C.ravel()[np.random.default_rng(rng_seed).integers(0, C.size, size=min(C.size, 200_000))]
    tau = np.quantile(sample, max(0.0, 1.0 - TOP_K / q))
    rows, cols = [], []
    for s in range(0, p, 1024):
        r, c = np.nonzero(C[s:s + 1024] >= tau)
        rows.append(r + s)
        cols.append(c)
    rows.append(np.arange(p))
    cols.append(np.argmax(C, axis=1))
    rows.append(np.argmax(C, axis=0))
    cols.append(np.arange(q))
    rows.append(np.arange(p))
    cols.append(np.arange(p))
    return np.concatenate(rows), np.concatenate(cols)


def _unique_pairs(rows, cols, q):
    key = np.unique(rows.astype(np.int64) * q + cols)
    return key // q, key % q


def _solve_restricted(C, rows, cols):
    """Optimal matching ``mu`` (row -> column) on the candidate entries.

    The candidates always hold a full row matching (the pairs ``(i, i)``)."""
    p, q = C.shape
    w = C[rows, cols]
    # minimise (max + 1 - C) > 0: stored weights must be non-zero to count as edges
    G = sp.csr_matrix((w.max() + 1.0 - w, (rows, cols)), shape=(p, q))
    r, c = min_weight_full_bipartite_matching(G)
    mu = np.empty(p, dtype=np.intp)
    mu[r] = c
    return mu


def _duals(C, rows, cols, mu):
    """Dual variables ``(u, v)`` of the restricted optimum (module docstring, step 2)."""
    p, q = C.shape
    cm = C[np.arange(p), mu]
    off = cols != mu[rows]
    r, j = rows[off], cols[off]
    # arc j -> mu(r), length C[r, mu(r)] - C[r, j]; node q is the source
    length = cm[r] - C[r, j]
    matched = np.zeros(q, dtype=bool)
    matched[mu] = True
    span = float(C.max() - C.min())
    start = np.where(matched, p * span + 1.0, 0.0)
    src = np.concatenate([j, np.full(q, q)])
    dst = np.concatenate([mu[r], np.arange(q)])
    lens = np.concatenate([length, start])
    # csgraph keeps the explicit zeros of a csr matrix built from (data, (i, j)) as edges
    G = sp.csr_matrix((lens, (src, dst)), shape=(q + 1, q + 1))
    dist = shortest_path(G, method="BF", directed=True, indices=q)
    v = dist[:q]
    u = cm - v[mu]
    return u, v


def _pruned(C):
    p, q = C.shape
    rows, cols = _unique_pairs(*_initial_candidates(C), q)
    while True:
        mu = _solve_restricted(C, rows, cols)
        u, v = _duals(C, rows, cols, mu)
        new_r, new_c = _violations(C, u, v)
        if new_r.size == 0:
            return np.arange(p), mu
        n_before = rows.size
        rows, cols = _unique_pairs(np.concatenate([rows, new_r]), np.concatenate([cols, new_c]), q)
        if rows.size == n_before:  # violations only inside E: round-off of the duals
            return np.arange(p), mu


def _violations(C, u, v, block=1024):
    """Entries with ``C_ij > u_i + v_j + TOL``: up to ``ADD_PER_ROW`` worst ones per row."""
    p, q = C.shape
    out_r, out_c = [], []
    for s in range(0, p, block):
        R = C[s:s + block] - v
        R -= u[s:s + block, None]
        bad = np.flatnonzero((R > TOL).any(axis=1))
        if bad.size == 0:
            continue
        Rb = R[bad]
        k = min(ADD_PER_ROW, q)
        top = np.argpartition(Rb, q - k, axis=1)[:, q - k:] if k < q else np.tile(np.arange(q), (bad.size, 1))
        keep = np.take_along_axis(Rb, top, axis=1) > TOL
        out_r.append(np.repeat(bad + s, k)[keep.ravel()])
        out_c.append(top.ravel()[keep.ravel()])
    if not out_r:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    return np.concatenate(out_r), np.concatenate(out_c)
