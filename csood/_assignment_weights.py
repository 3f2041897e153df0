"""Weight matrices for :func:`csood._assignment.max_weight_matching`: candidate edges and the
dual-feasibility check over every pair of the full problem.

:class:`DenseWeights` holds any dense matrix; :class:`SparseRankOneWeights` holds stored entries
plus a non-negative rank-one background ``min(a_i b_j, 1)`` — the absolute correlations of two
sparse matrices, whose never co-occurring columns have correlation
``-n mean_i mean_j / (norm_i norm_j)`` — and checks the background pairs through a lower envelope
of lines (:func:`lower_envelope`) instead of visiting them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Violations smaller than this are rounding noise (the sum is then optimal to p * 1e-15).
VIOLATION = 1e-15
#: Relative rounding margin of the envelope screen (rows within it are scanned exactly).
MARGIN = 1e-12
#: Rows processed together in the dense checks (bounds the temporary memory).
BLOCK = 512



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
