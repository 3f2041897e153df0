"""Kernels behind :mod:`csood.metrics`: correlation, Hungarian matching, AUC, support counts.

Everything here trusts its caller: arrays are 2-D ``float64`` numpy arrays with samples as rows
and finite entries (the public functions in :mod:`csood.metrics` validate once).

Speed notes (the target is ``n_latents = 10,000`` and 2,500 samples):

* columns that never vary contribute a correlation of exactly 0, so they are dropped before the
  correlation matmul and the Hungarian step; an optimal assignment of the reduced problem extends
  to the full one with zero-weight pairs, so the matched sum is identical to the dense
  computation;
* correlations are one standardised matmul in float64. When one side is sparse (latents and
  sparse codes are) it is kept uncentred in a :mod:`scipy.sparse` matrix and multiplied with the
  standardised other side: ``sum_i (x_i - mean_x) v_i = sum_i x_i v_i - mean_x * sum_i v_i`` with
  ``v`` centred, so the result is the Pearson correlation, at a cost of ``nnz(x) * q`` instead of
  ``n_samples * p * q``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata

from csood._assignment import assign_sparse
from csood._validation import fail

#: Below this fraction of non-zero entries a side is multiplied as a sparse matrix.
SPARSE_DENSITY = 0.1


def to_numpy(X):
    """Convert a torch tensor to numpy (``.detach().cpu().numpy()``); pass anything else on."""
    if hasattr(X, "detach") and hasattr(X, "cpu"):
        X = X.detach().cpu().numpy()
    return X


def varying_columns(X):
    """Indices of the columns of ``X`` (n_samples, n_columns) that are not constant.

    A column "varies" when its maximum differs from its minimum, an exact test that is free of
    the rounding of a computed variance. Returns an int array of shape (n_varying,).
    """
    if X.shape[0] == 0:
        return np.zeros(0, dtype=np.intp)
    return np.flatnonzero(X.max(axis=0) != X.min(axis=0))


def _standardise(X, sum_row=False):
    """Centre the columns of ``X`` (n, p) and scale them to unit Euclidean norm (float64).

    With ``sum_row`` an extra last row holds the column sums of the result (zero up to
    rounding), for :func:`_sparse_standardised_t`; shape (n + 1, p) then.
    """
    n = X.shape[0]
    out = np.empty((n + 1 if sum_row else n, X.shape[1]))
    V = out[:n]
    np.subtract(X, X.mean(axis=0), out=V)
    norm = np.sqrt(np.einsum("ij,ij->j", V, V))
    norm[norm == 0] = 1.0  # only reached for columns that vary below float resolution
    V /= norm
    if sum_row:
        out[n] = V.sum(axis=0)
    return out


def _sparse_standardised_t(X):
    """Sparse ``(p, n + 1)`` matrix ``S`` with ``S @ [V; 1ᵀV] = corr(X, ·)`` for centred unit ``V``.

    ``X`` (n, p) is kept uncentred: ``S = [X / norm; -mean / norm]ᵀ`` (columns scaled by the
    centred norm), so one sparse-dense product with the standardised other side, augmented by
    the row of its column sums (zero up to rounding), gives exactly
    ``sum_i (x_i - mean) v_i / norm``, the Pearson correlation.
    """
    n, p = X.shape
    Xs = sp.csc_matrix(X)
    counts = np.diff(Xs.indptr)
    col = np.repeat(np.arange(p), counts)
    mean = np.asarray(Xs.sum(axis=0)).ravel() / n
    ss = np.bincount(col, weights=(Xs.data - mean[col]) ** 2, minlength=p) + (n - counts) * mean**2
    norm = np.sqrt(ss)
    norm[norm == 0] = 1.0
    Xs.data /= norm[col]
    return sp.vstack([Xs, sp.csc_matrix(-(mean / norm)[None, :])], format="csc").T.tocsr()


def abs_corr(X, Y):
    """Absolute Pearson correlation between the columns of ``X`` and ``Y``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, p)
    Y : ndarray of shape (n_samples, q)
        Both float64. Constant columns get correlation 0 with everything.

    Returns
    -------
    C : ndarray of shape (p, q)
        ``|corr(X[:, i], Y[:, j])|`` clipped to [0, 1].
    """
    p, q = X.shape[1], Y.shape[1]
    ix, iy = varying_columns(X), varying_columns(Y)
    if ix.size == 0 or iy.size == 0:
        return np.zeros((p, q))
    Xv = X if ix.size == p else X[:, ix]
    Yv = Y if iy.size == q else Y[:, iy]
    dx = np.count_nonzero(Xv) / Xv.size
    dy = np.count_nonzero(Yv) / Yv.size
    if min(dx, dy) < SPARSE_DENSITY:
        transpose = dy < dx  # keep the sparser side raw and sparse
        raw, other = (Yv, Xv) if transpose else (Xv, Yv)
        V = _standardise(other, sum_row=True)
        block = np.asarray(_sparse_standardised_t(raw) @ V)
        if transpose:
            block = block.T
    else:
        block = _standardise(Xv).T @ _standardise(Yv)
    np.abs(block, out=block)
    np.minimum(block, 1.0, out=block)
    if ix.size == p and iy.size == q:
        return block
    C = np.zeros((p, q))
    C[np.ix_(ix, iy)] = block
    return C


def sparse_abs_corr(X, Y):
    """|Pearson| of two sparse matrices as stored co-occurrence entries plus a rank-one rest.

    Two columns that are never non-zero on the same sample have ``sum_s x_s y_s = 0``, so
    their correlation is exactly ``-n mean_x mean_y / (norm_x norm_y)``: ``|corr| = a_i b_j``
    with ``a = sqrt(n) |mean| / norm`` per side (``norm`` of the centred column).

    Parameters
    ----------
    X : ndarray of shape (n_samples, p)
    Y : ndarray of shape (n_samples, q)
        Varying columns only (``norm > 0``).

    Returns
    -------
    S : scipy.sparse.csr_matrix of shape (p, q)
        ``|corr|`` (clipped to 1) on the pairs that are non-zero together on some sample.
    a : ndarray of shape (p,)
    b : ndarray of shape (q,)
    """
    n = X.shape[0]
    Xs, Ys = sp.csc_matrix(X), sp.csc_matrix(Y)
    mx, my = np.asarray(Xs.sum(axis=0)).ravel() / n, np.asarray(Ys.sum(axis=0)).ravel() / n
    nx, ny = _centred_norm(Xs, mx), _centred_norm(Ys, my)
    S = (Xs.T @ Ys).tocsr()
    S.sum_duplicates()
    rows = np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))
    S.data = np.minimum(np.abs((S.data - n * mx[rows] * my[S.indices]) / (nx[rows] * ny[S.indices])), 1.0)
    root = np.sqrt(n)
    return S, root * np.abs(mx) / nx, root * np.abs(my) / ny


def _centred_norm(Xs, mean):
    """Euclidean norm of the centred columns of a CSC matrix, shape (p,)."""
    n, p = Xs.shape
    counts = np.diff(Xs.indptr)
    col = np.repeat(np.arange(p), counts)
    return np.sqrt(np.bincount(col, weights=(Xs.data - mean[col]) ** 2, minlength=p) + (n - counts) * mean**2)


def sparse_pair(X, Y):
    """Whether the correlation of ``X`` and ``Y`` should take the sparse rank-one route."""
    return max(np.count_nonzero(X) / max(X.size, 1), np.count_nonzero(Y) / max(Y.size, 1)) < SPARSE_DENSITY

def hungarian(C):
    """Maximum-weight one-to-one matching on a (p, q) weight matrix (rectangular allowed).

    Returns ``(rows, cols)``, two int arrays of length ``min(p, q)``, rows sorted ascending.
    """
    if C.size == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty
    rows, cols = linear_sum_assignment(C, maximize=True)
    return rows.astype(np.intp), cols.astype(np.intp)


def _columns(X, index):
    """``X[:, index]``, without a copy when ``index`` is every column in order."""
    return X if index.size == X.shape[1] else X[:, index]


def match_columns(T, K):
    """Rectangular Hungarian matching of the varying columns of ``T`` to those of ``K``.

    Parameters
    ----------
    T : ndarray of shape (n_samples, n_true)
    K : ndarray of shape (n_samples, n_codes)

    Returns
    -------
    true_index, code_index : ndarray of shape (n_pairs,)
        Matched column indices into ``T`` and ``K``; ``true_index`` ascending. Only varying
        columns take part, so ``n_pairs = min(#varying in T, #varying in K)``.
    correlation : ndarray of shape (n_pairs,)
        Absolute correlation of each matched pair.
    n_true_varying : int
        Number of varying columns of ``T``.
    """
    it, ik = varying_columns(T), varying_columns(K)
    r, c, corr = _match(_columns(T, it), _columns(K, ik))
    return it[r], ik[c], corr, it.size


def _match(X, Y):
    """Hungarian matching on ``|corr(X, Y)|`` (varying columns): ``(rows, cols, corr)``.

    Two sparse sides take the exact sparse route of :mod:`csood._assignment` (co-occurrence
    entries plus a rank-one background, certified optimal), others the dense solver.
    """
    if X.shape[1] and Y.shape[1] and sparse_pair(X, Y):
        return assign_sparse(*sparse_abs_corr(X, Y))
    C = abs_corr(X, Y)
    r, c = hungarian(C)
    return r, c, C[r, c]


def _noise(rng, n_samples, n_columns):
    return rng.standard_normal((n_samples, n_columns))


def mcc_ours(T, K):
    """ID MCC, protocol ``"ours"``: mean over varying true columns of a rectangular matching."""
    _, _, corr, p = match_columns(T, K)
    return float(corr.sum() / p)


def mcc_paper(T, K, seed):
    """ID MCC, protocol ``"paper"``: pad the narrower side with seeded N(0, 1) noise columns.

    The true side is restricted to its varying columns (p of them); the code side keeps all
    its ``q`` columns. The narrower side is padded with Gaussian noise up to ``w = max(p, q)``
    columns, the square ``w x w`` problem is matched and the matched correlations are averaged
    over all ``w`` pairs. Constant code columns are dropped before matching (they weigh 0).
    """
    n, q = K.shape
    it = varying_columns(T)
    p = it.size
    rng = np.random.default_rng(seed)
    w = max(p, q)
    ik = varying_columns(K)
    Kv = _columns(K, ik)
    if q < p:
        Kv = np.hstack([Kv, _noise(rng, n, p - q)])
    Tv = _columns(T, it)
    blocks = [abs_corr(Tv, Kv)]
    if p < q:
        blocks.append(abs_corr(_noise(rng, n, q - p), Kv))
    C = np.vstack(blocks)
    r, c = hungarian(C)
    return float(C[r, c].sum() / w)


def mcc_ood_core(T, K, seed):
    """OOD MCC (both protocols): varying true columns vs the highest-variance code columns.

    ``p`` = number of varying true columns. The ``p`` code columns with the largest variance
    (ties broken by the lower index) are kept; if there are fewer than ``p`` code columns, the
    code side is padded with seeded N(0, 1) noise. Square Hungarian, mean over ``p`` pairs.
    """
    n, q = K.shape
    it = varying_columns(T)
    p = it.size
    var = K.var(axis=0)
    top = np.argsort(-var, kind="stable")[:p]
    Kv = K[:, top]
    Kv = _columns(Kv, varying_columns(Kv))  # constant ones weigh 0: drop, keep it rectangular
    if q < p:
        Kv = np.hstack([Kv, _noise(np.random.default_rng(seed), n, p - q)])
    _, _, corr = _match(_columns(T, it), Kv)
    return float(corr.sum() / p)


def abs_cosine(A, D):
    """Absolute cosine between the columns of ``A`` (m, p) and ``D`` (m, q); zero columns -> 0.

    Returns ``(C, norm_A, norm_D)`` with ``C`` of shape (p, q).
    """
    na = np.linalg.norm(A, axis=0)
    nd = np.linalg.norm(D, axis=0)
    An = A / np.where(na > 0, na, 1.0)
    Dn = D / np.where(nd > 0, nd, 1.0)
    C = np.abs(An.T @ Dn)
    np.minimum(C, 1.0, out=C)
    return C, na, nd


def pair_angles(A, D, na, nd):
    """Angle in degrees, in [0, 90], between the lines of paired columns ``A[:, j]``, ``D[:, j]``.

    ``A``, ``D`` have shape (m, n_pairs), ``na``, ``nd`` their column norms (``na > 0``). Uses
    ``2 arcsin(||a/|a| - s d/|d| || / 2)`` with ``s`` the sign of the cosine, accurate near 0
    (``arccos`` of a cosine loses half the digits there); a zero atom is at 90 degrees.
    """
    An = A / na
    Dn = D / np.where(nd > 0, nd, 1.0)
    sign = np.where(np.einsum("ij,ij->j", An, Dn) < 0, -1.0, 1.0)
    gap = np.linalg.norm(An - sign * Dn, axis=0)
    angles = np.degrees(2.0 * np.arcsin(np.minimum(gap / 2.0, 1.0)))
    angles = np.minimum(angles, 90.0)
    angles[nd == 0] = 90.0
    return angles


def logistic_regression(standardize=False):
    """Unpenalised lbfgs logistic regression (``max_iter=1000``), optionally behind a
    ``StandardScaler``."""
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    major, minor = (int(v) for v in sklearn.__version__.split(".")[:2])
    # No penalty: ``C=inf`` from scikit-learn 1.8 on (``penalty`` is deprecated there).
    kw = {"C": np.inf} if (major, minor) >= (1, 8) else {"penalty": None}
    model = LogisticRegression(max_iter=1000, **kw)
    return make_pipeline(StandardScaler(), model) if standardize else model


def column_auc(X, positive):
    """Sign-free ROC AUC of every column of ``X`` (n, p) as a score for bool ``positive`` (n,).

    Mann-Whitney form with average ranks for ties; constant columns give exactly 0.5.
    """
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    out = np.full(X.shape[1], 0.5)
    vary = varying_columns(X)
    if vary.size:
        ranks = rankdata(X[:, vary], axis=0)
        u = ranks[positive].sum(axis=0) - n_pos * (n_pos + 1) / 2.0
        a = u / (n_pos * n_neg)
        out[vary] = np.maximum(a, 1.0 - a)
    return out


def matching_arrays(matching, n_true, n_code):
    """Validate a matching (dict or pair of arrays); return ``(true_index, code_index)`` (intp)."""
    if isinstance(matching, dict):
        for key in ("true_index", "code_index"):
            if key not in matching:
                fail("matching", "a dict with keys 'true_index' and 'code_index'", sorted(matching))
        ti, ci = matching["true_index"], matching["code_index"]
    elif isinstance(matching, (tuple, list)) and len(matching) == 2:
        ti, ci = matching
    else:
        fail("matching", "a dict with 'true_index'/'code_index' or a pair of index arrays", type(matching).__name__)
    ti, ci = (np.asarray(to_numpy(i)) for i in (ti, ci))
    ti, ci = (i.astype(np.intp) if i.size == 0 else i for i in (ti, ci))  # [] is float
    for name, idx, bound in (("matching true_index", ti, n_true), ("matching code_index", ci, n_code)):
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or idx.shape != ti.shape:
            fail(name, "a 1-D integer array, both of the same length", f"shape {idx.shape}, dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= bound or np.unique(idx).size != idx.size):
            fail(name, f"distinct indices in [0, {bound})", idx.tolist()[:10])
    return ti.astype(np.intp), ci.astype(np.intp)


def support_scores(on_t, on_k, ti, ci):
    """Per-sample support precision, recall, F1 and L0s from on/off patterns.

    ``on_t`` (n, n_true) and ``on_k`` (n, n_codes) are bool; ``ti``/``ci`` (n_pairs,) map code
    column ``ci[j]`` onto true column ``ti[j]``. See :func:`csood.metrics.support_metrics` for
    the 0/0 conventions. Returns a dict of (n,) arrays.
    """
    tp = (on_t[:, ti] & on_k[:, ci]).sum(axis=1).astype(float)
    nt = on_t.sum(axis=1).astype(float)
    nk = on_k.sum(axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(nk > 0, tp / nk, 1.0)
        recall = np.where(nt > 0, tp / nt, 1.0)
        f1 = np.where(nt + nk > 0, 2 * tp / (nt + nk), 1.0)
    return {"precision": precision, "recall": recall, "f1": f1, "l0_true": nt, "l0_pred": nk}
