"""Controlled decompositions (SPEC section 5, chapter 4): codes on a given support or decoder.

* :func:`ls_on_support` — per-sample least squares restricted to a given support (magnitudes
  on an SAE's support, or on the true one);
* :func:`frozen_decoder_codes` — FISTA on ``y - b_dec`` with an SAE's decoder as dictionary
  (cold start: *frozen decoder*; warm start from the SAE's codes: *refined*,
  :func:`refined_codes`);
* :func:`renormalise_columns`, :func:`with_true_norms` — dictionary-quality variants of a
  learned decoder (unit columns; the learned directions with the matched true norms).

Numpy inputs give numpy outputs, tensors give tensors on their own device.
"""

from __future__ import annotations

import numpy as np
import torch

from ._validation import check_array, check_float, check_int, fail
from .metrics import dictionary_diagnostics
from .solvers import _check_Y_D, _compute_device, _dtype_of, _like, _to_tensor, fista

__all__ = ["ls_on_support", "frozen_decoder_codes", "refined_codes", "renormalise_columns",
           "with_true_norms"]


# --------------------------------------------------------------------------- least squares
def _support_mask(support, n_samples: int, n_components: int, threshold: float):
    """Boolean mask (n_samples, n_components): ``support`` itself or ``|support| > threshold``."""
    if not isinstance(support, torch.Tensor):
        support = np.asarray(support)
    is_bool = support.dtype in (np.bool_, torch.bool)
    S = check_array("support", support.view(np.uint8) if is_bool and isinstance(support, np.ndarray)
                    else support.to(torch.uint8) if is_bool else support, ndim=2)
    if tuple(S.shape) != (n_samples, n_components):
        fail("support", f"of shape (n_samples, n_components) = ({n_samples}, {n_components}) "
             "to match Y and D", f"shape {tuple(S.shape)}")
    if is_bool:
        return support
    return S.abs() > threshold if isinstance(S, torch.Tensor) else np.abs(S) > threshold


@torch.no_grad()
def _ls_chunk(Y: torch.Tensor, D: torch.Tensor, M: torch.Tensor, ridge: float) -> torch.Tensor:
    """Least squares of the rows of ``Y`` (B, m) on the columns of ``D`` (m, N) allowed by ``M``.

    Each row's active indices are packed to the left of an index matrix of width ``s`` (the
    largest support in the chunk); the padding points at column 0 but its gathered atoms are
    zeroed. The normal equations ``G c = D_S^T y`` are solved in float64 by a batched Cholesky
    factorisation, with ``ridge * mean(diag G)`` added to the active diagonal and 1 on the
    padded one (padded coefficients are then exactly 0).
    """
    B, N = M.shape
    counts = M.sum(dim=1)
    s = int(counts.max()) if B else 0
    Z = torch.zeros((B, N), dtype=Y.dtype, device=Y.device)
    if s == 0:
        return Z
    # stable sort puts active columns first, in increasing index order
    order = torch.sort((~M).to(torch.int8), dim=1, stable=True).indices[:, :s]  # (B, s)
    valid = torch.arange(s, device=Y.device).unsqueeze(0) < counts.unsqueeze(1)  # (B, s)
    idx = torch.where(valid, order, torch.zeros_like(order))
    Dd, Yd = D.to(torch.float64), Y.to(torch.float64)
    A = Dd.T[idx] * valid.unsqueeze(-1)  # (B, s, m): active atoms as rows, padding zero
    G = A @ A.transpose(1, 2)  # (B, s, s)
    rhs = (A @ Yd.unsqueeze(-1))  # (B, s, 1)
    scale = (G.diagonal(dim1=1, dim2=2).sum(dim=1) / counts.clamp(min=1)).clamp(min=1e-30)
    diag = torch.where(valid, ridge * scale.unsqueeze(1), torch.ones_like(scale).unsqueeze(1))
    G = G + torch.diag_embed(diag)
    chol, info = torch.linalg.cholesky_ex(G)
    bad = info != 0
    if bool(bad.any()):  # singular even with the ridge: a stronger ridge for those rows only
        G[bad] += torch.diag_embed(torch.where(valid[bad], 1e-6 * scale[bad].unsqueeze(1),
                                               torch.zeros_like(diag[bad])))
        chol[bad] = torch.linalg.cholesky(G[bad])
    coef = torch.cholesky_solve(rhs, chol).squeeze(-1)  # (B, s)
    coef = torch.where(valid, coef, torch.zeros_like(coef)).to(Y.dtype)
    Z.scatter_add_(1, idx, coef)  # padding adds exact zeros to column 0
    return Z


def ls_on_support(Y, D, support, *, threshold: float = 1e-4, ridge: float = 1e-10,
                  chunk_size: int | None = None, device=None):
    """Per-sample least-squares coefficients on a given support.

    For every row ``y`` with support ``S``: ``argmin_c ||y - D[:, S] c||^2`` (unconstrained
    signs); entries outside ``S`` are 0. Batched: rows are processed in chunks, each padded to
    its largest support size and solved by one batched Cholesky factorisation (no loop over
    samples).

    Parameters
    ----------
    Y : array or tensor, shape (n_samples, m)
    D : array or tensor, shape (m, n_components)
        Dictionary, atoms as columns.
    support : array or tensor, shape (n_samples, n_components)
        Boolean mask, or codes whose entries with ``|value| > threshold`` form the support.
    threshold : float, default 1e-4
        Support threshold for non-boolean ``support`` (>= 0).
    ridge : float, default 1e-10
        Tikhonov term relative to the mean squared norm of the active atoms (>= 0); keeps
        supports larger than ``m`` or with duplicated atoms solvable (then the solution is the
        ridge-regularised one). Negligible otherwise.
    chunk_size : int, optional
        Rows per batched solve (>= 1). Default: as many as keep the gathered atoms and Gram
        matrices (``chunk_size * s * max(m, s)`` float64 values, ``s`` the largest support)
        near 2**24 values (128 MiB).
    device : str or torch.device, optional
        None: a tensor ``Y`` keeps its device, numpy goes to "auto".

    Returns
    -------
    array or tensor, shape (n_samples, n_components)
        Same kind as ``Y``; float64 if ``Y`` or ``D`` is, else float32.
    """
    Y, D = _check_Y_D(Y, D)
    threshold = check_float("threshold", threshold, low=0.0)
    ridge = check_float("ridge", ridge, low=0.0)
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, low=1)
    M = _support_mask(support, Y.shape[0], D.shape[1], threshold)
    dev = _compute_device(Y, device)
    dtype = _dtype_of(Y, D)
    Yt, Dt = _to_tensor(Y, dtype, dev), _to_tensor(D, dtype, dev)
    Mt = M.to(dev) if isinstance(M, torch.Tensor) else torch.as_tensor(np.asarray(M), device=dev)
    if chunk_size is None:
        s = int(Mt.sum(dim=1).max()) if Mt.shape[0] else 0
        chunk_size = max(1, 2**24 // max(s * max(Dt.shape[0], s), 1))
    parts = [_ls_chunk(Yt[i:i + chunk_size], Dt, Mt[i:i + chunk_size], ridge)
             for i in range(0, Yt.shape[0], chunk_size)]
    Z = torch.cat(parts) if parts else torch.zeros((0, Dt.shape[1]), dtype=dtype, device=dev)
    return _like(Z, Y)


# --------------------------------------------------------------------------- frozen decoder
def frozen_decoder_codes(Y, W_dec, b_dec=None, *, lam: float = 0.1, max_iter: int = 100,
                         Z0=None, positive: bool = True, device=None):
    """FISTA codes of ``Y - b_dec`` on an SAE's decoder (frozen decoder; refined with ``Z0``).

    Parameters
    ----------
    Y : array or tensor, shape (n_samples, m)
    W_dec : array or tensor, shape (m, n_components)
        The SAE's decoder, atoms as columns (used as the FISTA dictionary, norms as they are).
    b_dec : array or tensor, shape (m,), optional
        Decoder bias, subtracted from every row of ``Y`` (default zeros).
    lam : float, default 0.1
        Lasso penalty (>= 0).
    max_iter : int, default 100
        FISTA iterations (>= 1).
    Z0 : array or tensor, shape (n_samples, n_components), optional
        Warm start (the SAE's codes: "refined"); default zeros ("frozen decoder").
    positive : bool, default True
        Non-negative codes.
    device : str or torch.device, optional

    Returns
    -------
    array or tensor, shape (n_samples, n_components)
        Same kind as ``Y``.
    """
    Y, W_dec = _check_Y_D(Y, W_dec)
    if b_dec is not None:
        b_dec = check_array("b_dec", b_dec, ndim=1)
        if b_dec.shape[0] != Y.shape[1]:
            fail("b_dec", f"of shape (m,) = ({Y.shape[1]},) to match Y of shape "
                 f"{tuple(Y.shape)}", f"shape {tuple(b_dec.shape)}")
        if isinstance(Y, torch.Tensor):
            Y = Y - _to_tensor(b_dec, Y.dtype, Y.device)
        else:
            b = b_dec.detach().cpu().numpy() if isinstance(b_dec, torch.Tensor) else b_dec
            Y = Y - np.asarray(b, dtype=Y.dtype)
    return fista(Y, W_dec, lam, positive=positive, max_iter=max_iter, Z0=Z0, device=device)


def refined_codes(Y, W_dec, b_dec, Z0, *, lam: float = 0.1, max_iter: int = 100,
                  positive: bool = True, device=None):
    """"Refined" codes: :func:`frozen_decoder_codes` warm-started from the SAE's codes ``Z0``."""
    if Z0 is None:
        fail("Z0", "the SAE's codes of shape (n_samples, n_components)", None)
    return frozen_decoder_codes(Y, W_dec, b_dec, lam=lam, max_iter=max_iter, Z0=Z0,
                                positive=positive, device=device)


# --------------------------------------------------------------------------- dictionary variants
def _column_norms(D):
    return torch.linalg.vector_norm(D, dim=0) if isinstance(D, torch.Tensor) else \
        np.linalg.norm(D, axis=0)


def renormalise_columns(D):
    """``D`` with every non-zero column scaled to unit norm (zero columns stay zero).

    Parameters
    ----------
    D : array or tensor, shape (m, n_components)

    Returns
    -------
    array or tensor, shape (m, n_components)
        Same kind, dtype and device as ``D``; a new object.
    """
    D = check_array("D", D, ndim=2)
    norms = _column_norms(D)
    if isinstance(D, torch.Tensor):
        return D / torch.where(norms > 0, norms, torch.ones_like(norms))
    return D / np.where(norms > 0, norms, 1.0).astype(D.dtype, copy=False)


def with_true_norms(D, A):
    """The directions of ``D`` with the norms of the true columns they are matched to.

    Atoms are matched one-to-one to the columns of ``A`` by
    :func:`csood.metrics.dictionary_diagnostics` (Hungarian on |cosine|); matched atom ``j``
    becomes ``D[:, j] / ||D[:, j]|| * ||A[:, i(j)]||``. Unmatched atoms (when ``D`` has more
    columns than ``A``) and zero atoms are left as they are.

    Parameters
    ----------
    D : array or tensor, shape (m, n_components)
        Learned dictionary (e.g. an SAE decoder).
    A : array or tensor, shape (m, n_latents)
        True mixing matrix (non-zero columns).

    Returns
    -------
    array or tensor, shape (m, n_components)
        Same kind, dtype and device as ``D``.
    """
    D = check_array("D", D, ndim=2)
    A = check_array("A", A, ndim=2)
    match = dictionary_diagnostics(D, A)["matching"]  # validates shapes
    A_np = A.detach().cpu().numpy() if isinstance(A, torch.Tensor) else np.asarray(A)
    D_np = D.detach().cpu().numpy() if isinstance(D, torch.Tensor) else np.asarray(D)
    norms = np.linalg.norm(D_np.astype(np.float64), axis=0)
    scale = np.ones(D_np.shape[1])
    ti, ci = match["true_index"], match["code_index"]
    ok = norms[ci] > 0
    scale[ci[ok]] = np.linalg.norm(A_np.astype(np.float64), axis=0)[ti[ok]] / norms[ci[ok]]
    if isinstance(D, torch.Tensor):
        return D * torch.as_tensor(scale, dtype=D.dtype, device=D.device)
    return (D_np * scale).astype(D_np.dtype, copy=False)
