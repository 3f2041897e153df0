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

#: Initial candidates: the largest weights of each row and of each column.
TOP_K = 6
#: At most this many violated pairs per row join the candidates in one round.
ADD_PER_ROW = 256
#: At most this many violated pairs per column join the candidates in one round.
ADD_PER_COL = 32
#: Violations smaller than this are rounding noise (the sum is then optimal to p * 1e-15).
VIOLATION = 1e-15
#: Relative rounding margin of the envelope screen (rows within it are scanned exactly).
MARGIN = 1e-12
#: Rows processed together in the dense checks (bounds the temporary memory).
BLOCK = 512
#: Increments of the dual below this (relative to the largest weight) are rounding noise.
TOL = 1e-13
#: Below this many pairs the dense solver is used directly.
DENSE_SIZE = 250_000


def _top_k(M, k, axis):
    """Row (``axis=1``) or column (``axis=0``) indices of the ``k`` largest entries of dense ``M``.

    Returns ``(rows, cols)``, int arrays of shape (n_lines * min(k, line length),).
    """
    if axis == 0:
        c, r = _top_k(M.T, k, 1)
        return r, c
    p, q = M.shape
    k = min(k, q)
    rows, cols = [], []
    for s in range(0, p, BLOCK):
        blk = M[s:s + BLOCK]
        idx = np.argpartition(blk, q - k, axis=1)[:, q - k:] if k < q else np.broadcast_to(np.arange(q), blk.shape)
        rows.append(np.repeat(np.arange(s, s + blk.shape[0]), k))
        cols.append(idx.ravel())
    return np.concatenate(rows), np.concatenate(cols)


class DenseWeights:
    """Weights given as a dense matrix ``C`` of shape (p, q), ``p <= q``, finite."""

    def __init__(self, C):
        self.C = C
        self.shape = C.shape
        self.row_max = C.max(axis=1)

    def initial(self, k):
        """Candidate pairs ``(rows, cols)``: top ``k`` of every row and of every column."""
        r1, c1 = _top_k(self.C, k, 1)
        r2, c2 = _top_k(self.C, k, 0)
        return np.concatenate([r1, r2]), np.concatenate([c1, c2])

    def values(self, rows, cols):
        """Weights of the pairs, shape (n_pairs,)."""
        return self.C[rows, cols]

    def dense(self):
        """The full (p, q) matrix."""
        return self.C

    def violations(self, u, v):
        """``(rows, cols, slacks)`` of all pairs with ``u_i + v_j < w_ij``; ``u`` (p,), ``v >= 0`` (q,)."""
        # v >= 0, so a row whose u reaches its maximum weight has no violation
        suspect = np.flatnonzero(u + v.min() < self.row_max)
        out = []
        for s in range(0, suspect.size, BLOCK):
            rows = suspect[s:s + BLOCK]
            r, c, sl = _negative((u[rows, None] + v[None, :]) - self.C[rows])
            out.append((rows[r], c, sl))
        return _cat(out)


class SparseRankOneWeights:
    """Weights ``w_ij = S_ij`` on the stored entries of ``S``, ``min(a_i b_j, 1)`` elsewhere.

    Parameters
    ----------
    S : scipy.sparse matrix of shape (p, q), ``p <= q``
        Exact weights of the listed pairs (explicit zeros allowed), canonical CSR.
    a : ndarray of shape (p,)
    b : ndarray of shape (q,)
        Non-negative factors of the background.
    """

    def __init__(self, S, a, b):
        self.S = sp.csr_matrix(S)
        self.S.sum_duplicates()
        self.S.sort_indices()
        self.a, self.b = a, b
        self.shape = S.shape
        p, q = S.shape
        self.s_rows = np.repeat(np.arange(p), np.diff(self.S.indptr))
        self.keys = self.s_rows * q + self.S.indices  # sorted (canonical CSR)
        stored_max = np.zeros(p)
        np.maximum.at(stored_max, self.s_rows, self.S.data)
        self.row_max = np.maximum(stored_max, np.minimum(a * (b.max() if q else 0.0), 1.0))

    def initial(self, k):
        """Top ``k`` stored entries per row and column; rank-matched background pairs."""
        p, q = self.shape
        S = self.S
        order = np.lexsort((-S.data, self.s_rows))
        rank = np.arange(order.size) - S.indptr[self.s_rows[order]]
        pick = [order[rank < k]]
        cols = S.indices
        order = np.lexsort((-S.data, cols))
        start = np.searchsorted(cols[order], cols[order])
        pick.append(order[np.arange(order.size) - start < k])
        pick = np.concatenate(pick)
        rows, cols = [self.s_rows[pick]], [cols[pick]]
        # background: the best pairing of a_i b_j is by rank (rearrangement inequality)
        ra = np.argsort(-self.a, kind="stable")
        cb = np.argsort(-self.b, kind="stable")
        for d in range(-k, k + 1):
            pos = np.clip(np.arange(p) + d, 0, q - 1)
            rows.append(ra)
            cols.append(cb[pos])
        return np.concatenate(rows), np.concatenate(cols)

    def values(self, rows, cols):
        """Weights of the pairs, shape (n_pairs,)."""
        q = self.shape[1]
        key = rows * q + cols
        pos = np.minimum(np.searchsorted(self.keys, key), max(self.keys.size - 1, 0))
        stored = self.keys[pos] == key if self.keys.size else np.zeros(key.size, bool)
        return np.where(stored, self.S.data[pos] if self.keys.size else 0.0,
                        np.minimum(self.a[rows] * self.b[cols], 1.0))

    def refine(self, match, weak, k):
        """Rank-band candidates between weak rows and the columns they can compete for.

        ``weak`` (n_weak,) rows with violations plus rows matched on a background pair
        (``match`` (p,)) are paired, sorted by ``a``, with the free columns and the columns of
        those rows, sorted by ``b``: the rearrangement inequality makes this band contain the
        optimal pairing of a purely rank-one block. Returns ``(rows, cols)``.
        """
        p, q = self.shape
        real = match >= 0
        key = np.arange(p) * q + match
        background = ~real | ~_member(key, self.keys)
        rows = np.union1d(weak, np.flatnonzero(background))
        free = np.ones(q, bool)
        free[match[real]] = False
        free[match[rows][real[rows]]] = True
        cols = np.flatnonzero(free)
        ra = rows[np.argsort(-self.a[rows], kind="stable")]
        cb = cols[np.argsort(-self.b[cols], kind="stable")]
        out_r, out_c = [], []
        for d in range(-k, k + 1):
            pos = np.clip(np.arange(ra.size) + d, 0, cb.size - 1)
            out_r.append(ra)
            out_c.append(cb[pos])
        return np.concatenate(out_r), np.concatenate(out_c)

    def dense(self):
        """The full (p, q) matrix (for the fallback and for tests)."""
        W = np.minimum(np.outer(self.a, self.b), 1.0)
        W[self.s_rows, self.S.indices] = self.S.data
        return W

    def violations(self, u, v):
        """``(rows, cols, slacks)`` of all pairs with ``u_i + v_j < w_ij``; ``u`` (p,), ``v >= 0`` (q,)."""
        slack = u[self.s_rows] + v[self.S.indices] - self.S.data
        bad = slack < -VIOLATION
        out = [(self.s_rows[bad], self.S.indices[bad], slack[bad])]
        # background: u_i + min_j (v_j - a_i b_j) over *all* j bounds the slack of row i from
        # below (stored pairs included, so it is conservative); only rows where it is
        # negative (up to a rounding margin) are scanned exactly
        low = u + lower_envelope(self.b, v, self.a)
        suspect = np.flatnonzero(low < MARGIN * (1.0 + np.abs(u)))
        for s in range(0, suspect.size, BLOCK):
            rows = suspect[s:s + BLOCK]
            slack = (u[rows, None] + v[None, :]) - np.minimum(self.a[rows, None] * self.b[None, :], 1.0)
            sub = self.S[rows]
            slack[np.repeat(np.arange(rows.size), np.diff(sub.indptr)), sub.indices] = np.inf
            r, c, sl = _negative(slack)
            out.append((rows[r], c, sl))
        return _cat(out)


def lower_envelope(b, v, t):
    """``min_j (v_j - b_j t_i)`` for every ``t_i >= 0``, in ``O((q + p) log q)``.

    Parameters
    ----------
    b, v : ndarray of shape (q,)
        Lines ``y = v_j - b_j t``.
    t : ndarray of shape (p,)
        Non-negative query points.

    Returns
    -------
    ndarray of shape (p,)
    """
    if b.size == 0:
        return np.full(t.shape, np.inf)
    order = np.lexsort((v, b))  # slope -b decreasing; for equal slopes the lowest first
    bs, vs = b[order], v[order]
    first = np.r_[True, bs[1:] != bs[:-1]]
    bs, vs = bs[first], vs[first]
    hull = []  # indices of the lines on the lower envelope, left to right
    for k in range(bs.size):
        while hull:
            if vs[k] <= vs[hull[-1]]:  # steeper descent and not higher at t = 0: dominates
                hull.pop()
                continue
            if len(hull) < 2:
                break
            i, j = hull[-2], hull[-1]
            # j is useless if k undercuts i no later than j does
            if (vs[k] - vs[i]) * (bs[j] - bs[i]) <= (vs[j] - vs[i]) * (bs[k] - bs[i]):
                hull.pop()
            else:
                break
        hull.append(k)
    h = np.array(hull)
    hb, hv = bs[h], vs[h]
    cross = (hv[1:] - hv[:-1]) / (hb[1:] - hb[:-1])  # where line k + 1 takes over from line k
    idx = np.searchsorted(cross, t, side="right")
    best = hv[idx] - hb[idx] * t
    # guard against rounding at the breakpoints: also try the neighbours
    for d in (-1, 1):
        alt = np.clip(idx + d, 0, h.size - 1)
        best = np.minimum(best, hv[alt] - hb[alt] * t)
    return best


def _cat(parts):
    """Concatenate a list of ``(rows, cols, slacks)`` triples."""
    if not parts:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp), np.zeros(0)
    return tuple(np.concatenate(x) for x in zip(*parts))


def _negative(slack):
    """``(rows, cols, values)`` of the entries of ``slack`` (b, q) below ``-VIOLATION``."""
    r, c = np.nonzero(slack < -VIOLATION)
    return r, c, slack[r, c]


def _sorted_unique(x):
    """Sorted distinct values of the int array ``x`` (a sort, not numpy's hash table)."""
    x = np.sort(x)
    return x[np.r_[True, x[1:] != x[:-1]]] if x.size else x


def _member(x, sorted_keys):
    """Bool array: which entries of ``x`` occur in the sorted array ``sorted_keys``."""
    if sorted_keys.size == 0:
        return np.zeros(x.shape, bool)
    pos = np.minimum(np.searchsorted(sorted_keys, x), sorted_keys.size - 1)
    return sorted_keys[pos] == x


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
