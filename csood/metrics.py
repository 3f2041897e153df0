"""Recovery metrics of SPEC §4: MCC, accuracy, per-feature AUC, dictionary and support diagnostics.

Two protocols
-------------
``protocol="ours"`` (default) is the book's improved protocol; ``protocol="paper"`` reproduces the
authors' code for side-by-side tables. They differ in two places only:

===============  ==========================================  ==========================================
metric           ``"ours"``                                  ``"paper"``
===============  ==========================================  ==========================================
ID MCC           true columns that vary on val, rectangular  true side padded with seeded noise columns
                 Hungarian against all code columns, mean    up to the code width, mean over *all*
                 over those true columns                     matched pairs (capped near the fraction of
                                                             latents active on val)
accuracy / AUC   classifier fitted (best AUC feature         fitted / chosen on val codes and scored on
                 chosen) on train codes, scored on val and   val (in-sample) and OOD
                 OOD (out-of-sample)
===============  ==========================================  ==========================================

OOD MCC is the same in both. Inputs are numpy arrays or torch tensors (converted with
``.detach().cpu().numpy()``); everything is computed in float64. Samples are rows.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from csood import _matching
from csood._validation import check_array, check_bool, check_choice, check_float, check_int, fail

__all__ = [
    "METRICS_VERSION",
    "PROTOCOLS",
    "mcc_id",
    "mcc_ood",
    "match_latents",
    "accuracy",
    "auc",
    "dictionary_diagnostics",
    "support_metrics",
    "evaluate",
]

#: Accepted values of ``protocol``.
PROTOCOLS = ("ours", "paper")
#: Bump whenever a metric's definition changes: it is part of every stored result's key, so
#: records scored with an older definition are never mixed with current ones.
#: 1: accuracy on standardised codes; 2: accuracy on raw codes (SPEC section 4).
METRICS_VERSION = 2


# --------------------------------------------------------------------------- validation helpers
def _array(name, X, ndim=2):
    X = check_array(name, _matching.to_numpy(X), ndim=ndim)
    return np.asarray(X, dtype=np.float64)


def _pair(Z_true, Z_code, true_name="Z_true", code_name="Z_code"):
    T = _array(true_name, Z_true)
    K = _array(code_name, Z_code)
    if K.shape[0] != T.shape[0]:
        fail(code_name, f"an array with as many rows as {true_name} ({T.shape[0]})", f"shape {K.shape}")
    if T.shape[0] < 2:
        fail(true_name, "an array with at least 2 rows (samples)", f"shape {T.shape}")
    return T, K


def _need_varying(name, T):
    if _matching.varying_columns(T).size == 0:
        fail(name, "an array with at least one non-constant column", f"shape {T.shape} with only constant columns")


def _split(name, mapping, key):
    if not isinstance(mapping, dict) or key not in mapping:
        keys = sorted(mapping) if isinstance(mapping, dict) else type(mapping).__name__
        fail(name, f"a dict with key {key!r}", keys)
    return mapping[key]


def _labels(name, y, n_rows):
    y = np.asarray(_matching.to_numpy(y))
    y = np.asarray(check_array(name, y.astype(np.int64) if y.dtype == bool else y, ndim=1))
    if y.shape[0] != n_rows:
        fail(name, f"a 1-D array with one label per code row ({n_rows})", f"shape {y.shape}")
    return y


def _codes_and_labels(codes, labels, splits):
    out = {}
    for s in splits:
        X = _array(f"codes[{s!r}]", _split("codes", codes, s))
        out[s] = (X, _labels(f"labels[{s!r}]", _split("labels", labels, s), X.shape[0]))
    widths = {X.shape[1] for X, _ in out.values()}
    if len(widths) > 1:
        fail("codes", "arrays with the same number of columns in every split",
             {s: X.shape for s, (X, _) in out.items()})
    return out


def _two_classes(name, y):
    classes = np.unique(y)
    if classes.size != 2:
        fail(name, "labels with exactly two classes", f"classes {classes.tolist()}")
    return classes


# --------------------------------------------------------------------------- MCC
def mcc_id(Z_true, Z_code, *, protocol="ours", seed=0):
    """In-distribution mean correlation coefficient (MCC) on the val split.

    Parameters
    ----------
    Z_true : array of shape (n_samples, n_latents)
        True latents of the val split.
    Z_code : array of shape (n_samples, n_components)
        Codes of the same samples.
    protocol : {"ours", "paper"}
        ``"ours"`` (default): the true columns that vary on these samples (``p`` of them) are
        matched one-to-one to the code columns by a rectangular Hungarian matching on absolute
        Pearson correlation; the MCC is the mean over the ``p`` true columns (a true column left
        unmatched because there are fewer codes counts 0). A perfect code scores 1.
        ``"paper"``: the authors' protocol. The narrower side (in practice the true side) is
        padded with seeded standard-normal noise columns up to ``max(p, n_components)`` and the
        mean is over all matched pairs; noise pairs contribute ~0, so the score is capped near
        ``p / n_components`` (the fraction of latents active on val).
    seed : int
        Seed of the noise padding (``"paper"`` only).

    Returns
    -------
    float
        MCC in [0, 1]. Constant columns count as correlation 0.
    """
    check_choice("protocol", protocol, PROTOCOLS)
    seed = check_int("seed", seed, low=0)
    T, K = _pair(Z_true, Z_code)
    _need_varying("Z_true", T)
    if protocol == "ours":
        return _matching.mcc_ours(T, K)
    return _matching.mcc_paper(T, K, seed)


def mcc_ood(Z_true, Z_code, *, seed=0):
    """Out-of-distribution MCC on the OOD split (the same in both protocols).

    The true columns that vary on OOD (``p`` of them) are matched against the ``p`` code
    columns with the highest OOD variance (ties: lower index first; if the code has fewer than
    ``p`` columns it is padded with seeded standard-normal noise columns); square Hungarian on
    absolute Pearson correlation, mean over the ``p`` pairs.

    Parameters
    ----------
    Z_true : array of shape (n_samples, n_latents)
        True latents of the OOD split.
    Z_code : array of shape (n_samples, n_components)
        Codes of the same samples.
    seed : int
        Seed of the noise padding.

    Returns
    -------
    float
        MCC in [0, 1].
    """
    seed = check_int("seed", seed, low=0)
    T, K = _pair(Z_true, Z_code)
    _need_varying("Z_true", T)
    return _matching.mcc_ood_core(T, K, seed)


def match_latents(Z_true, Z_code):
    """The correlation matching behind ``mcc_id(protocol="ours")``, for reuse.

    Parameters
    ----------
    Z_true : array of shape (n_samples, n_latents)
    Z_code : array of shape (n_samples, n_components)

    Returns
    -------
    dict
        ``true_index`` (n_pairs,) int, ascending, and ``code_index`` (n_pairs,) int: matched
        columns (only non-constant columns take part, ``n_pairs = min`` of the two counts);
        ``correlation`` (n_pairs,): absolute Pearson correlation of each pair; ``mcc``: float,
        the ``"ours"`` ID MCC (sum of ``correlation`` over the number of varying true columns).
    """
    T, K = _pair(Z_true, Z_code)
    _need_varying("Z_true", T)
    ti, ci, corr, p = _matching.match_columns(T, K)
    return {"true_index": ti, "code_index": ci, "correlation": corr, "mcc": float(corr.sum() / p)}


# --------------------------------------------------------------------------- accuracy and AUC
def accuracy(codes, labels, *, protocol="ours", standardize=False):
    """Linear-classifier accuracy of the codes for the binary label.

    An unpenalised logistic regression (lbfgs, ``max_iter=1000``) on the raw codes is fitted on
    one split and scored on val and OOD (SPEC section 4). Deterministic. Code columns that are
    constant on the fitting split are dropped first (they only duplicate the intercept).

    Without a penalty the fit is sensitive to the scale of the features: standardising them
    (``standardize=True``) inflates rarely active code dimensions, and on this book's data the
    classifier then leans on co-occurrence shortcuts that a compositional shift breaks (oracle
    FISTA codes at n = 100: OOD accuracy 0.92 raw, 0.67 standardised). The book reports the raw
    variant, as the SPEC and the paper do.

    Parameters
    ----------
    codes : dict of array of shape (n_split_samples, n_components)
        Keys ``"train"``, ``"val"``, ``"ood"`` (``"train"`` is unused by ``"paper"``).
    labels : dict of array of shape (n_split_samples,)
        Binary labels, same keys.
    protocol : {"ours", "paper"}
        ``"ours"`` (default): fit on train, score val and OOD (both out-of-sample).
        ``"paper"``: fit on val, score val (in-sample) and OOD.
    standardize : bool, default False
        Standardise the code columns (fitted on the fitting split) before the classifier.

    Returns
    -------
    dict
        ``{"val": float, "ood": float}``.
    """
    check_choice("protocol", protocol, PROTOCOLS)
    standardize = check_bool("standardize", standardize)
    fit_split = "train" if protocol == "ours" else "val"
    data = _codes_and_labels(codes, labels, (fit_split, "val", "ood"))
    X, y = data[fit_split]
    _two_classes(f"labels[{fit_split!r}]", y)
    keep = _matching.varying_columns(X)
    if keep.size == 0:
        keep = np.arange(min(1, X.shape[1]))
    model = _matching.logistic_regression(standardize)
    with warnings.catch_warnings():
        # without a penalty, separable codes have no finite optimum: lbfgs stops at max_iter
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[:, keep], y)
        return {s: float(model.score(data[s][0][:, keep], data[s][1])) for s in ("val", "ood")}


def auc(codes, labels, *, protocol="ours"):
    """Best single-feature ROC AUC (sign-free) of the codes for the binary label.

    For every code column, the raw value is used as a score for the label; its AUC is made
    sign-free as ``max(AUC, 1 - AUC)`` (constant column: 0.5; ties get average ranks). The best
    column is chosen on one split (first index on ties) and its sign-free AUC reported on val
    and OOD.

    Parameters
    ----------
    codes : dict of array of shape (n_split_samples, n_components)
        Keys ``"train"``, ``"val"``, ``"ood"`` (``"train"`` is unused by ``"paper"``).
    labels : dict of array of shape (n_split_samples,)
        Binary labels, same keys; each split used must contain both classes.
    protocol : {"ours", "paper"}
        ``"ours"`` (default): choose the feature on train. ``"paper"``: choose it on val.

    Returns
    -------
    dict
        ``{"val": float, "ood": float, "feature": int}``.
    """
    check_choice("protocol", protocol, PROTOCOLS)
    pick_split = "train" if protocol == "ours" else "val"
    data = _codes_and_labels(codes, labels, (pick_split, "val", "ood"))
    classes = {s: _two_classes(f"labels[{s!r}]", data[s][1]) for s in data}
    X, y = data[pick_split]
    feature = int(np.argmax(_matching.column_auc(X, y == classes[pick_split][1])))
    out = {}
    for s in ("val", "ood"):
        X, y = data[s]
        out[s] = float(_matching.column_auc(X[:, [feature]], y == classes[s][1])[0])
    out["feature"] = feature
    return out


# --------------------------------------------------------------------------- diagnostics
def dictionary_diagnostics(D, A, *, cos_threshold=0.9):
    """Compare learned atoms with the true mixing columns after a Hungarian matching.

    Atoms are matched one-to-one to true columns by maximising the total absolute cosine
    (rectangular allowed: ``min(n_latents, n_components)`` pairs).

    Parameters
    ----------
    D : array of shape (m, n_components)
        Learned dictionary, atoms as columns. Zero atoms have cosine 0 and norm ratio 0.
    A : array of shape (m, n_latents)
        True mixing matrix; its columns must be non-zero.
    cos_threshold : float in [0, 1]
        Threshold of ``frac_aligned``.

    Returns
    -------
    dict
        ``mean_cosine``, ``mean_angle`` (degrees, in [0, 90]), ``mean_norm_ratio``
        (``||d|| / ||a||``), ``frac_aligned`` (fraction of matched pairs with
        ``|cos| > cos_threshold``): floats over matched pairs. Per-pair arrays of shape
        (n_pairs,), ordered by true column: ``cosines`` (absolute), ``angles`` (degrees),
        ``norm_ratios``; and ``matching``: ``{"true_index": (n_pairs,), "code_index":
        (n_pairs,)}`` (columns of ``A`` and of ``D``), usable by :func:`support_metrics`.
    """
    D = _array("D", D)
    A = _array("A", A)
    cos_threshold = check_float("cos_threshold", cos_threshold, low=0.0, high=1.0)
    if D.shape[0] != A.shape[0]:
        fail("D", f"an array with as many rows as A ({A.shape[0]})", f"shape {D.shape}")
    C, na, nd = _matching.abs_cosine(A, D)
    if np.any(na == 0):
        fail("A", "an array with non-zero columns", f"zero column(s) {np.flatnonzero(na == 0)[:5].tolist()}")
    ti, ci = _matching.hungarian(C)
    cos = C[ti, ci]
    angles = _matching.pair_angles(A[:, ti], D[:, ci], na[ti], nd[ci])
    ratios = nd[ci] / na[ti]
    mean = (lambda v: float(v.mean()) if v.size else float("nan"))
    return {
        "mean_cosine": mean(cos),
        "mean_angle": mean(angles),
        "mean_norm_ratio": mean(ratios),
        "frac_aligned": mean((cos > cos_threshold).astype(float)),
        "cosines": cos,
        "angles": angles,
        "norm_ratios": ratios,
        "matching": {"true_index": ti, "code_index": ci},
    }


def support_metrics(Z_true, Z_code, *, matching=None, threshold=1e-4):
    """Per-sample support recovery (precision, recall, F1) after matching codes to latents.

    An entry is "on" when ``|value| > threshold`` (for true latents and codes alike). Per
    sample, the true support ``T`` is the set of on latents; the predicted support ``P`` is the
    set of on code entries, *all* of them: a code column matched to true latent ``j`` predicts
    ``j``, an on code column that is matched to no latent is a false positive. With
    ``TP = |T ∩ P|`` (through the matching):

    * precision ``TP / |P|``, recall ``TP / |T|``, F1 ``2 TP / (|P| + |T|)``;
    * 0/0 convention ("vacuous truth"): each score only counts its own kind of error, so
      precision = 1 when nothing is predicted (``P`` empty: no false positive) and recall = 1
      when nothing is true (``T`` empty: nothing missed); F1 = ``2 TP / (|P| + |T|)`` is 1 when
      both are empty and 0 when exactly one is. A dead encoder thus scores precision 1,
      recall 0, F1 0; read precision together with recall, F1 or ``l0_pred``.

    Parameters
    ----------
    Z_true : array of shape (n_samples, n_latents)
    Z_code : array of shape (n_samples, n_components)
    matching : dict or (array, array), optional
        ``{"true_index": (n_pairs,), "code_index": (n_pairs,)}`` (as returned by
        :func:`match_latents` or ``dictionary_diagnostics(...)["matching"]``) or the pair of
        arrays. Default: :func:`match_latents` on these samples (correlation matching of the
        non-constant true columns).
    threshold : float >= 0
        On/off threshold on ``|value|``.

    Returns
    -------
    dict
        Floats averaged over samples: ``precision``, ``recall``, ``f1``, ``l0_true`` (mean
        ``|T|``), ``l0_pred`` (mean ``|P|``, all on code entries).
    """
    threshold = check_float("threshold", threshold, low=0.0)
    T, K = _pair(Z_true, Z_code)
    if matching is None:
        ti, ci, _, _ = _matching.match_columns(T, K)
    else:
        ti, ci = _matching.matching_arrays(matching, T.shape[1], K.shape[1])
    scores = _matching.support_scores(np.abs(T) > threshold, np.abs(K) > threshold, ti, ci)
    return {key: float(value.mean()) for key, value in scores.items()}


# --------------------------------------------------------------------------- all at once
def evaluate(Z_true, codes, labels, *, protocol="ours", seed=0):
    """All headline metrics of one method on one dataset.

    Parameters
    ----------
    Z_true : dict of array of shape (n_split_samples, n_latents)
        True latents; keys ``"val"`` and ``"ood"`` are used.
    codes : dict of array of shape (n_split_samples, n_components)
        Codes; keys ``"train"``, ``"val"``, ``"ood"`` (``"train"`` unused by ``"paper"``).
    labels : dict of array of shape (n_split_samples,)
        Binary labels, same keys as ``codes``.
    protocol : {"ours", "paper"}
        See the module docstring; applies to ``mcc_id``, accuracy and AUC.
    seed : int
        Seed of the MCC noise padding.

    Returns
    -------
    dict
        Floats ``mcc_id``, ``mcc_ood``, ``acc_val``, ``acc_ood``, ``auc_val``, ``auc_ood``.
    """
    check_choice("protocol", protocol, PROTOCOLS)
    zv, zo = _split("Z_true", Z_true, "val"), _split("Z_true", Z_true, "ood")
    cv, co = _split("codes", codes, "val"), _split("codes", codes, "ood")
    for s, z, c in (("val", zv, cv), ("ood", zo, co)):  # name the split in any error
        _need_varying(f"Z_true[{s!r}]", _pair(z, c, f"Z_true[{s!r}]", f"codes[{s!r}]")[0])
    acc = accuracy(codes, labels, protocol=protocol)
    best = auc(codes, labels, protocol=protocol)
    return {
        "mcc_id": mcc_id(zv, cv, protocol=protocol, seed=seed),
        "mcc_ood": mcc_ood(zo, co, seed=seed),
        "acc_val": acc["val"],
        "acc_ood": acc["ood"],
        "auc_val": best["val"],
        "auc_ood": best["ood"],
    }
