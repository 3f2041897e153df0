"""Exact maximum-weight rectangular assignment on a sparse candidate set, with a dual certificate.

:func:`scipy.optimize.linear_sum_assignment` on a dense ``8,500 x 8,900`` correlation matrix
takes 15-50 s; almost all of that matrix is irrelevant (every latent is matched to one of its few
best codes). :func:`max_weight_matching` solves the same problem exactly as follows.

1. Solve the problem restricted to a small candidate edge set ``E`` with the sparse
   Jonker-Volgenant solver :func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`
   (row ``i`` also gets a private dummy column of weight 0, so a full matching always exists;
   weights being >= 0, this does not change the optimum: rows left on dummies finally take
   unused columns, which can only add weight).
2. Compute dual variables for that matching. With ``p <= q`` rows and columns, every row matched,
   the linear-programming dual is ``min sum(u) + sum(v)`` subject to ``u_i + v_j >= w_ij`` and
   ``v >= 0``. Setting ``u_i = w_{i,M(i)} - v_{M(i)}``, the constraints on ``E`` become the
   difference constraints ``v_k >= v_{M(i)} + w_ik - w_{i,M(i)}``; their least solution with
   ``v >= 0`` is a longest-path problem that a label-correcting iteration (vectorised
   Bellman-Ford) solves in a few sweeps, since the matching is optimal on ``E`` (no positive
   alternating cycle). It gives ``v = 0`` on unmatched columns, so ``sum(u) + sum(v)`` equals
   the matched weight.
3. Check ``u_i + v_j >= w_ij`` on *every* pair of the full problem (the weight classes below do
   this without visiting most pairs). If it holds, the dual is feasible and its value equals the
   matched weight: by LP duality no matching of the full matrix weighs more, so the matching is
   optimal. Otherwise the violated pairs join ``E`` and the loop repeats; ``E`` grows strictly,
   so it terminates, at worst with every pair a candidate (the dense optimum).

The result is optimal up to floating-point rounding of the weights (about ``1e-15`` per pair);
with ties, another optimal matching than the dense solver's may be returned.

Two weight classes: :class:`DenseWeights` (any dense matrix) and :class:`SparseRankOneWeights`
(stored entries plus a non-negative rank-one background ``min(a_i b_j, 1)``, which is what
absolute correlations of two sparse matrices are: pairs of columns that are never non-zero on the
same sample have correlation ``-n mean_i mean_j / (norm_i norm_j)``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from ._assignment_weights import DenseWeights, SparseRankOneWeights, _member, _sorted_unique

#: Initial candidates: the largest weights of each row and of each column.
TOP_K = 16
#: At most this many violated pairs per row join the candidates in one round.
ADD_PER_ROW = 256
#: At most this many violated pairs per column join the candidates in one round.
ADD_PER_COL = 32
#: Increments of the dual below this (relative to the largest weight) are rounding noise.
TOL = 1e-13
#: Below this many pairs the dense solver is used directly.
DENSE_SIZE = 250_000


def _select(r, c, s, k_row, k_col):
    """The ``k_row`` most negative ``s`` of each row and ``k_col`` of each column, no duplicates.

    ``r``, ``c``, ``s`` (n,) list violated pairs and their slacks; returns ``(rows, cols)``.
    """
    if r.size == 0:
        return r, c
    pick = []
    for major, k in ((r, k_row), (c, k_col)):
        order = np.lexsort((s, major))
        sorted_major = major[order]
        start = np.searchsorted(sorted_major, sorted_major)
        pick.append(order[np.arange(order.size) - start < k])
    keep = np.zeros(r.size, bool)
    keep[np.concatenate(pick)] = True
    return r[keep], c[keep]


def _complete(match, q):
    """Give rows on dummy columns (``match >= q``) the unused real columns, in order (p,)."""
    match = match.astype(np.intp)
    on_dummy = match >= q
    if on_dummy.any():
        used = np.zeros(q, bool)
        used[match[~on_dummy]] = True
        match[on_dummy] = np.flatnonzero(~used)[: on_dummy.sum()]
    return match


def _duals(rows, cols, w, indptr, match, p, q):
    """Least dual ``v >= 0`` (q,) and ``u`` (p,) for a matching optimal on the candidate edges.

    ``rows``, ``cols``, ``w`` (n_edges,) list the candidate edges sorted by row (CSR with
    ``indptr`` (p + 1,)); ``match`` (p,) is the column of each row. Returns ``(u, v)`` with
    ``u_i + v_j >= w_ij`` on every candidate edge and ``u_i + v_{match_i} = w_{i, match_i}``.
    """
    matched = cols == match[rows]
    wm = np.zeros(p)
    wm[rows[matched]] = w[matched]
    gain = w - wm[rows]
    gain[matched] = -np.inf
    v = np.zeros(q)
    # a cycle of zero gain can gain an ulp per turn in floating point: ignore such increments
    tol = TOL * max(1.0, float(np.abs(w).max(initial=0.0)))
    active = np.flatnonzero(np.bincount(rows[gain > tol], minlength=p))  # from v = 0, only
    # edges with a positive gain can raise v
    owner = np.full(q, -1)
    owner[match] = np.arange(p)
    for _ in range(p + q + 2):
        if active.size == 0:
            u = wm - v[match]
            return u, v
        start, length = indptr[active], indptr[active + 1] - indptr[active]
        edge = np.repeat(start - np.cumsum(length) + length, length) + np.arange(length.sum())
        cand = v[match[rows[edge]]] + gain[edge]
        up = cand > v[cols[edge]] + tol
        if not up.any():
            active = active[:0]
            continue
        tgt = cols[edge[up]]
        np.maximum.at(v, tgt, cand[up])
        raised = np.zeros(q, bool)
        raised[tgt] = True
        active = owner[raised]
        active = active[active >= 0]  # raised unmatched columns: see the check in the caller
    return None  # a positive cycle: the matching is not optimal (rounding); caller falls back


def max_weight_matching(weights, max_rounds=100):
    """Exact maximum-weight matching saturating the rows of a (p, q) problem, ``p <= q``.

    Parameters
    ----------
    weights : DenseWeights or SparseRankOneWeights
        The full weight matrix of shape (p, q), weights in [0, 1] (any finite values work,
        ``+ 1`` keeps stored candidate weights non-zero for the sparse solver only if they
        are > -1).
    max_rounds : int
        Safety cap on certificate rounds; after it the dense solver is used.

    Returns
    -------
    rows, cols : ndarray of shape (p,)
        ``rows = arange(p)``; ``cols`` the matched column of each row.
    """
    p, q = weights.shape
    r0, c0 = weights.initial(TOP_K)
    keys = _sorted_unique(r0 * q + c0)
    dummy = np.arange(p)
    for _ in range(max_rounds):
        rows, cols = keys // q, keys % q
        w = weights.values(rows, cols)
        # row i may also take a dummy column q + i of weight 0: a full matching always exists
        # and, weights being >= 0, the optimum is unchanged (see the module docstring)
        rows = np.concatenate([rows, dummy])
        cols = np.concatenate([cols, q + dummy])
        w = np.concatenate([w, np.zeros(p)])
        order = np.argsort(rows, kind="stable")
        rows, cols, w = rows[order], cols[order], w[order]
        # positive costs (the solver needs non-zero weights; its ``maximize=True`` can loop
        # forever on ties in scipy 1.17): minimise ``top + 1 - w`` over full matchings
        cost = (float(w.max()) + 1.0) - w
        indptr = np.searchsorted(rows, np.arange(p + 1))
        G = sp.csr_matrix((cost, cols, indptr), shape=(p, q + p))
        _, match = min_weight_full_bipartite_matching(G)
        duals = _duals(rows, cols, w, indptr, match, p, q + p)
        if duals is None:  # pragma: no cover
            break
        u, v = duals
        free = np.ones(q + p, bool)
        free[match] = False
        if np.any(v[free] > 10 * TOL):  # pragma: no cover - only if the matching were not optimal
            break
        v = v[:q]
        allv = weights.violations(u, v)
        fresh = ~_member(allv[0] * q + allv[1], keys)  # candidates are only off by rounding
        allv = tuple(x[fresh] for x in allv)
        vr, vc = _select(*allv, ADD_PER_ROW, ADD_PER_COL)
        if hasattr(weights, "refine") and vr.size:
            er, ec = weights.refine(np.where(match < q, match, -1), np.unique(allv[0]), TOP_K)
            vr, vc = np.concatenate([vr, er]), np.concatenate([vc, ec])
        new = _sorted_unique(vr * q + vc)
        if new.size == 0:
            return np.arange(p), _complete(match, q)
        keys = np.sort(np.concatenate([keys, new[~_member(new, keys)]]))
    r, c = linear_sum_assignment(weights.dense(), maximize=True)  # pragma: no cover
    return r.astype(np.intp), c.astype(np.intp)  # pragma: no cover


def assign_dense(C, force=False):
    """Maximum-weight one-to-one matching of a dense (p, q) matrix (rectangular allowed).

    Returns ``(rows, cols)``, int arrays of length ``min(p, q)``, ``rows`` ascending; the
    matched weight equals that of :func:`scipy.optimize.linear_sum_assignment`. Small problems
    (fewer than :data:`DENSE_SIZE` pairs) go to that solver unless ``force``.
    """
    p, q = C.shape
    if p == 0 or q == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty
    if C.size < DENSE_SIZE and not force:
        r, c = linear_sum_assignment(C, maximize=True)
        return r.astype(np.intp), c.astype(np.intp)
    if p > q:
        r, c = max_weight_matching(DenseWeights(C.T))
        order = np.argsort(c)
        return c[order], r[order]
    return max_weight_matching(DenseWeights(C))


def assign_sparse(S, a, b):
    """Maximum-weight matching of ``W = S`` on stored entries, ``min(a b^T, 1)`` elsewhere.

    ``S`` (p, q) sparse, ``a`` (p,), ``b`` (q,) non-negative. Returns ``(rows, cols, weights)``,
    arrays of length ``min(p, q)``, ``rows`` ascending.
    """
    p, q = S.shape
    if p == 0 or q == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, np.zeros(0)
    if p > q:
        W = SparseRankOneWeights(sp.csr_matrix(S.T), b, a)
        c, r = max_weight_matching(W)
        w = W.values(c, r)
        order = np.argsort(r)
        return r[order], c[order], w[order]
    W = SparseRankOneWeights(S, a, b)
    r, c = max_weight_matching(W)
    return r, c, W.values(r, c)
