"""Tests of csood.metrics (SPEC §4): MCC, accuracy, AUC, dictionary and support diagnostics."""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import roc_auc_score

from csood import _matching, metrics

PROTOCOLS = ("ours", "paper")


def sparse_latents(rng, n_samples, n_latents, density=0.2, low=0.0):
    """Non-negative sparse latents: U(low, 1) on a Bernoulli(density) support."""
    on = rng.random((n_samples, n_latents)) < density
    return np.where(on, rng.uniform(low, 1.0, (n_samples, n_latents)), 0.0)


def dense_abs_corr(X, Y):
    """Naive reference: full |Pearson| matrix of every column pair, constant columns -> 0."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    nx, ny = np.linalg.norm(Xc, axis=0), np.linalg.norm(Yc, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        C = np.abs((Xc.T @ Yc) / np.outer(nx, ny))
    return np.nan_to_num(C, nan=0.0, posinf=0.0)


def hungarian_sum(C):
    r, c = linear_sum_assignment(C, maximize=True)
    return C[r, c].sum()


def reference_mcc_id(T, K, protocol, seed):
    active = np.flatnonzero(T.std(0) > 0)
    Ta = T[:, active]
    p, q = Ta.shape[1], K.shape[1]
    if protocol == "ours":
        return hungarian_sum(dense_abs_corr(Ta, K)) / p
    rng = np.random.default_rng(seed)
    if q < p:
        K = np.hstack([K, rng.standard_normal((K.shape[0], p - q))])
    elif p < q:
        Ta = np.hstack([Ta, rng.standard_normal((T.shape[0], q - p))])
    return hungarian_sum(dense_abs_corr(Ta, K)) / max(p, q)


def reference_mcc_ood(T, K, seed):
    active = np.flatnonzero(T.std(0) > 0)
    p = active.size
    top = np.argsort(-K.var(0), kind="stable")[:p]
    Kt = K[:, top]
    if Kt.shape[1] < p:
        Kt = np.hstack([Kt, np.random.default_rng(seed).standard_normal((K.shape[0], p - Kt.shape[1]))])
    return hungarian_sum(dense_abs_corr(T[:, active], Kt)) / p


# --------------------------------------------------------------------------- MCC
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mcc_is_one_for_permuted_rescaled_copies(protocol):
    rng = np.random.default_rng(0)
    Z = sparse_latents(rng, 300, 25)
    perm = rng.permutation(25)
    scale = rng.choice([-3.0, -0.5, 0.2, 4.0], size=25)
    K = Z[:, perm] * scale
    assert metrics.mcc_id(Z, K, protocol=protocol) == pytest.approx(1.0, abs=1e-9)
    assert metrics.mcc_ood(Z, K) == pytest.approx(1.0, abs=1e-9)
    match = metrics.match_latents(Z, K)
    np.testing.assert_array_equal(perm[match["code_index"]], match["true_index"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mcc_near_zero_for_independent_noise(protocol):
    rng = np.random.default_rng(1)
    Z = sparse_latents(rng, 2000, 20)
    K = rng.standard_normal((2000, 20))
    assert 0 < metrics.mcc_id(Z, K, protocol=protocol) < 0.15
    assert 0 < metrics.mcc_ood(Z, K) < 0.15


def test_zero_variance_columns_give_zero_not_nan():
    rng = np.random.default_rng(2)
    Z = sparse_latents(rng, 200, 6)
    Z[:, 3] = 0.7  # constant true column: left out of ID and OOD MCC
    K = Z.copy()
    K[:, 1] = 0.0  # a dead code column
    for value in (metrics.mcc_id(Z, K), metrics.mcc_id(Z, K, protocol="paper"), metrics.mcc_ood(Z, K)):
        assert np.isfinite(value)
    # 5 varying true columns, one of them (1) has only a dead code: 4/5 in "ours".
    assert metrics.mcc_id(Z, K) == pytest.approx(4 / 5, abs=1e-9)
    C = _matching.abs_corr(Z, K)
    assert np.isfinite(C).all() and (C[3] == 0).all() and (C[:, 1] == 0).all()
    assert metrics.mcc_id(Z, np.zeros((200, 6))) == 0.0
    assert 3 not in metrics.match_latents(Z, K)["true_index"]


def test_paper_id_protocol_is_capped_near_active_fraction():
    rng = np.random.default_rng(3)
    Z = sparse_latents(rng, 500, 40)
    Z[:, 30:] = 0.0  # 10 of 40 latents never fire on val
    assert metrics.mcc_id(Z, Z) == pytest.approx(1.0, abs=1e-9)
    # dead code columns correlate 0 with the noise padding: exactly the active fraction
    assert metrics.mcc_id(Z, Z, protocol="paper") == pytest.approx(0.75, abs=1e-9)
    K = Z.copy()
    K[:, 30:] = 1e-3 * rng.standard_normal((500, 10))  # codes that flicker where latents don't
    assert metrics.mcc_id(Z, K) == pytest.approx(1.0, abs=1e-9)
    paper = metrics.mcc_id(Z, K, protocol="paper")
    assert 0.75 < paper < 0.8
    assert metrics.mcc_ood(Z, K) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    "true_density, code_density, n_codes",
    [(0.05, 0.05, 50), (0.05, 1.0, 50), (0.5, 0.02, 50), (0.3, 0.6, 35), (0.04, 0.05, 70)],
)
def test_sparse_dropping_matches_dense_reference(true_density, code_density, n_codes):
    rng = np.random.default_rng(4)
    T = sparse_latents(rng, 300, 50, density=true_density)
    T[:, :5] = 0.0  # never active
    K = rng.standard_normal((300, n_codes)) * (rng.random((300, n_codes)) < code_density)
    K[:, -3:] = 0.0  # dead codes
    K[:, 0] = 2.5  # constant code
    for protocol in PROTOCOLS:
        expected = reference_mcc_id(T, K, protocol, seed=7)
        assert metrics.mcc_id(T, K, protocol=protocol, seed=7) == pytest.approx(expected, abs=1e-10)
    assert metrics.mcc_ood(T, K, seed=7) == pytest.approx(reference_mcc_ood(T, K, seed=7), abs=1e-10)
    varying = np.flatnonzero(T.std(0) > 0)
    np.testing.assert_allclose(_matching.abs_corr(T, K), dense_abs_corr(T, K), atol=1e-12)
    match = metrics.match_latents(T, K)
    assert match["mcc"] == pytest.approx(reference_mcc_id(T, K, "ours", 0), abs=1e-10)
    assert match["correlation"].sum() / varying.size == pytest.approx(match["mcc"])


def test_mcc_paper_pads_the_code_side_when_codes_are_fewer():
    rng = np.random.default_rng(5)
    T = sparse_latents(rng, 400, 12)
    K = T[:, :8].copy()
    assert metrics.mcc_id(T, K) == pytest.approx(8 / 12, abs=1e-9)
    paper = metrics.mcc_id(T, K, protocol="paper", seed=3)
    assert paper == pytest.approx(reference_mcc_id(T, K, "paper", 3), abs=1e-10)
    assert 8 / 12 < paper < 0.75
    assert metrics.mcc_ood(T, K, seed=3) == pytest.approx(reference_mcc_ood(T, K, 3), abs=1e-10)


def test_mcc_ood_uses_the_highest_variance_codes():
    rng = np.random.default_rng(6)
    T = sparse_latents(rng, 500, 10)
    T[:, 5:] = 0.0  # 5 latents vary on OOD
    # 5 faithful codes with small variance, 5 loud noise codes: the loud ones are compared
    K = np.hstack([0.01 * T[:, :5], 10 * rng.standard_normal((500, 5))])
    assert metrics.mcc_id(T, K) == pytest.approx(1.0, abs=1e-9)
    assert metrics.mcc_ood(T, K) < 0.2


def test_mcc_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    Z = sparse_latents(rng, 100, 8)
    K = Z + 0.1 * rng.standard_normal(Z.shape)
    expected = metrics.mcc_id(Z, K)
    assert metrics.mcc_id(torch.tensor(Z), torch.tensor(K, dtype=torch.float32)) == pytest.approx(expected, abs=1e-6)


# --------------------------------------------------------------------------- AUC
def _split_dict(*arrays):
    return dict(zip(("train", "val", "ood"), arrays))


def test_column_auc_equals_sklearn_with_ties_and_is_sign_free():
    rng = np.random.default_rng(8)
    X = np.hstack([rng.integers(0, 4, (120, 5)).astype(float), rng.standard_normal((120, 3)), np.ones((120, 1))])
    y = rng.random(120) < 0.4
    got = _matching.column_auc(X, y)
    for j in range(X.shape[1] - 1):
        a = roc_auc_score(y, X[:, j])
        assert got[j] == pytest.approx(max(a, 1 - a), abs=1e-12)
    assert got[-1] == 0.5
    np.testing.assert_allclose(_matching.column_auc(-X, y), got, atol=1e-12)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_auc_is_sign_free_and_constant_column_is_half(protocol):
    rng = np.random.default_rng(9)
    labels = _split_dict(*(rng.random(200) < 0.5 for _ in range(3)))
    codes = {s: rng.standard_normal((200, 4)) + 0.8 * labels[s][:, None] for s in labels}
    plus = metrics.auc(codes, labels, protocol=protocol)
    minus = metrics.auc({s: -c for s, c in codes.items()}, labels, protocol=protocol)
    assert plus == pytest.approx(minus)
    X, y = codes["val"][:, plus["feature"]], labels["val"]
    assert plus["val"] == pytest.approx(max(roc_auc_score(y, X), 1 - roc_auc_score(y, X)))
    const = {s: np.full((200, 1), 3.0) for s in labels}
    assert metrics.auc(const, labels, protocol=protocol) == {"val": 0.5, "ood": 0.5, "feature": 0}


def test_auc_best_feature_follows_the_protocol():
    rng = np.random.default_rng(10)
    y = {s: np.arange(100) % 2 == 0 for s in ("train", "val", "ood")}
    noise = lambda: rng.standard_normal(100)  # noqa: E731
    codes = {
        "train": np.column_stack([y["train"] + 0.1 * noise(), noise()]),  # feature 0 separates train
        "val": np.column_stack([noise(), -3.0 * y["val"] + 0.1 * noise()]),  # feature 1 separates val
        "ood": np.column_stack([y["ood"] + 0.1 * noise(), noise()]),
    }
    ours = metrics.auc(codes, y)
    paper = metrics.auc(codes, y, protocol="paper")
    assert ours["feature"] == 0 and paper["feature"] == 1
    assert paper["val"] == 1.0 and ours["val"] < 0.7
    assert ours["ood"] == 1.0 and paper["ood"] < 0.7


# --------------------------------------------------------------------------- accuracy
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_accuracy_is_one_for_separable_codes(protocol):
    rng = np.random.default_rng(11)
    labels = _split_dict(*(rng.random(150) < 0.5 for _ in range(3)))
    codes = {s: np.column_stack([np.where(labels[s], 1.0, -1.0) + 0.2 * rng.standard_normal(150),
                                 rng.standard_normal(150), np.zeros(150)]) for s in labels}
    assert metrics.accuracy(codes, labels, protocol=protocol) == {"val": 1.0, "ood": 1.0}


def test_accuracy_protocols_fit_on_different_splits():
    rng = np.random.default_rng(12)
    x = {s: rng.standard_normal((200, 1)) for s in ("train", "val", "ood")}
    labels = {"train": x["train"][:, 0] > 0, "val": x["val"][:, 0] < 0, "ood": x["ood"][:, 0] > 0}
    ours = metrics.accuracy(x, labels)
    paper = metrics.accuracy(x, labels, protocol="paper")
    assert ours["val"] < 0.05 and ours["ood"] > 0.95  # the rule learnt on train fails on flipped val
    assert paper["val"] > 0.95 and paper["ood"] < 0.05  # in-sample val fit
    assert metrics.accuracy(x, labels) == ours  # deterministic


def test_accuracy_rejects_a_single_class_fitting_set():
    rng = np.random.default_rng(13)
    codes = _split_dict(*(rng.standard_normal((20, 2)) for _ in range(3)))
    labels = _split_dict(np.ones(20), rng.random(20) < 0.5, rng.random(20) < 0.5)
    with pytest.raises(ValueError, match=r"labels\['train'\] must be labels with exactly two classes"):
        metrics.accuracy(codes, labels)
    metrics.accuracy(codes, labels, protocol="paper")  # train unused there


# --------------------------------------------------------------------------- dictionary diagnostics
def test_dictionary_diagnostics_permuted_scaled_flipped_copy():
    rng = np.random.default_rng(14)
    A = rng.standard_normal((20, 30))
    A /= np.linalg.norm(A, axis=0)
    perm = rng.permutation(30)
    D = 2.0 * A[:, perm] * rng.choice([-1.0, 1.0], 30)
    out = metrics.dictionary_diagnostics(D, A)
    assert out["mean_cosine"] == pytest.approx(1.0)
    assert out["mean_angle"] == pytest.approx(0.0, abs=1e-6)
    assert out["mean_norm_ratio"] == pytest.approx(2.0)
    assert out["frac_aligned"] == 1.0
    np.testing.assert_array_equal(perm[out["matching"]["code_index"]], out["matching"]["true_index"])
    assert out["cosines"].shape == out["angles"].shape == out["norm_ratios"].shape == (30,)


def test_dictionary_diagnostics_rotation_and_zero_atom():
    theta = np.deg2rad(30.0)
    A = np.eye(3)
    R = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    out = metrics.dictionary_diagnostics(R @ A, A)
    np.testing.assert_allclose(out["cosines"], [np.cos(theta), np.cos(theta), 1.0])
    np.testing.assert_allclose(out["angles"], [30.0, 30.0, 0.0], atol=1e-9)
    assert out["mean_cosine"] == pytest.approx((2 * np.cos(theta) + 1) / 3)
    assert out["mean_angle"] == pytest.approx(20.0)
    assert out["frac_aligned"] == pytest.approx(1 / 3)
    # rectangular: an extra zero atom is left over; a zero atom matched alone scores 0 / 90 deg
    D = np.column_stack([0.5 * A[:, 0], np.zeros(3), A[:, 2], np.zeros(3)])
    out = metrics.dictionary_diagnostics(D, A)
    assert len(out["cosines"]) == 3
    np.testing.assert_allclose(out["norm_ratios"], [0.5, 0.0, 1.0])
    np.testing.assert_allclose(out["angles"], [0.0, 90.0, 0.0], atol=1e-9)


# --------------------------------------------------------------------------- support
def test_support_metrics_hand_computed():
    Z_true = np.array([[0.5, 0.2, 0.0], [0.0, 0.0, 0.9], [0.0, 0.0, 0.0], [0.3, 0.0, 0.0]])
    # matching: code 2 -> latent 0, code 0 -> latent 1, code 1 -> latent 2; code 3 unmatched
    Z_code = np.array([
        [0.0, 0.0, 1.0, 0.4],  # P={0, x}, T={0,1}: TP=1 -> p 1/2, r 1/2, f1 1/2
        [0.3, 0.7, 5e-5, 0.0],  # P={1,2} (5e-5 is off), T={2}: TP=1 -> p 1/2, r 1, f1 2/3
        [0.0, 0.0, 0.0, 0.0],  # both empty -> 1, 1, 1
        [0.0, 0.0, 0.0, 0.0],  # P empty, T={0} -> p 1 (vacuous), r 0, f1 0
    ])
    matching = {"true_index": np.array([0, 1, 2]), "code_index": np.array([2, 0, 1])}
    out = metrics.support_metrics(Z_true, Z_code, matching=matching)
    assert out == pytest.approx({"precision": 0.75, "recall": 0.625, "f1": (0.5 + 2 / 3 + 1) / 4,
                                 "l0_true": 1.0, "l0_pred": 1.0})
    as_pair = metrics.support_metrics(Z_true, Z_code, matching=(matching["true_index"], matching["code_index"]))
    assert as_pair == out
    # only T empty -> precision 0, recall 1 (vacuous), f1 0
    single = metrics.support_metrics(np.zeros((2, 3)), np.array([[1.0, 0, 0, 0], [0, 0, 0, 2.0]]), matching=matching)
    assert single["precision"] == 0.0 and single["recall"] == 1.0 and single["f1"] == 0.0


def test_support_metrics_default_matching_on_a_perfect_code():
    rng = np.random.default_rng(15)
    Z = sparse_latents(rng, 200, 12, low=0.1)
    K = 3.0 * Z[:, rng.permutation(12)]
    out = metrics.support_metrics(Z, K)
    assert out["precision"] == out["recall"] == out["f1"] == 1.0
    assert out["l0_true"] == out["l0_pred"] == pytest.approx((Z > 0).sum(1).mean())
    noisy = metrics.support_metrics(Z, K + 0.01 + 0.01 * np.abs(rng.standard_normal(K.shape)))
    assert noisy["recall"] == 1.0 and noisy["precision"] < 0.5 and noisy["l0_pred"] == 12.0


# --------------------------------------------------------------------------- evaluate
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_evaluate_returns_the_headline_metrics(protocol):
    rng = np.random.default_rng(16)
    Z = _split_dict(*(sparse_latents(rng, 150, 10, density=0.3) for _ in range(3)))
    labels = {s: Z[s][:, 0] > 0.5 for s in Z}
    codes = {s: 2.0 * Z[s][:, ::-1] for s in Z}
    out = metrics.evaluate(Z, codes, labels, protocol=protocol)
    assert set(out) == {"mcc_id", "mcc_ood", "acc_val", "acc_ood", "auc_val", "auc_ood"}
    assert all(isinstance(v, float) for v in out.values())
    assert out["mcc_id"] == pytest.approx(1.0) and out["mcc_ood"] == pytest.approx(1.0)
    assert out["auc_val"] == 1.0 and out["auc_ood"] == 1.0
    assert out["acc_val"] == metrics.accuracy(codes, labels, protocol=protocol)["val"]


# --------------------------------------------------------------------------- bad arguments
def test_bad_arguments_raise():
    rng = np.random.default_rng(17)
    Z = sparse_latents(rng, 30, 4)
    bad = Z.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="Z_code must be finite"):
        metrics.mcc_id(Z, bad)
    with pytest.raises(ValueError, match="Z_true must be finite"):
        metrics.mcc_ood(bad, Z)
    with pytest.raises(ValueError, match="Z_code must be an array with as many rows as Z_true"):
        metrics.mcc_id(Z, Z[:-1])
    with pytest.raises(ValueError, match="protocol must be one of 'ours', 'paper'; got 'authors'"):
        metrics.mcc_id(Z, Z, protocol="authors")
    with pytest.raises(ValueError, match="Z_true must be an array with 2 dimension"):
        metrics.mcc_id(Z[:, 0], Z)
    with pytest.raises(ValueError, match="Z_true must be an array with at least one non-constant column"):
        metrics.mcc_id(np.zeros_like(Z), Z)
    with pytest.raises(ValueError, match="threshold must be a finite number >= 0.0; got -0.1"):
        metrics.support_metrics(Z, Z, threshold=-0.1)
    with pytest.raises(ValueError, match="matching code_index must be distinct indices"):
        metrics.support_metrics(Z, Z, matching=([0, 1], [1, 1]))
    with pytest.raises(ValueError, match="D must be an array with as many rows as A"):
        metrics.dictionary_diagnostics(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="A must be an array with non-zero columns"):
        metrics.dictionary_diagnostics(np.ones((3, 2)), np.zeros((3, 2)))
    codes = _split_dict(Z, Z, Z)
    labels = _split_dict(*(np.arange(30) % 2 for _ in range(3)))
    with pytest.raises(ValueError, match="codes must be a dict with key 'ood'"):
        metrics.accuracy({"train": Z, "val": Z}, labels)
    with pytest.raises(ValueError, match=r"labels\['val'\] must be a 1-D array with one label per code row"):
        metrics.auc(codes, {**labels, "val": np.arange(29) % 2})
    with pytest.raises(ValueError, match=r"codes\['ood'\] must be finite"):
        metrics.evaluate(codes, {**codes, "ood": bad}, labels)
    with pytest.raises(ValueError, match="protocol must be one of"):
        metrics.evaluate(codes, codes, labels, protocol="in-sample")


def test_accuracy_uses_raw_codes_by_default_and_standardises_on_request():
    """Default: plain unpenalised logistic regression on the raw codes (SPEC §4); the
    standardised variant is the same classifier behind a StandardScaler."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(3)
    X = {s: rng.random((300, 6)) * [1, 1, 0.01, 1, 1, 1] for s in ("train", "val", "ood")}
    y = {s: X[s][:, 0] + 0.3 * rng.standard_normal(300) > 0.5 for s in X}
    kw = {"C": np.inf, "max_iter": 1000}
    for standardize, clf in ((False, LogisticRegression(**kw)),
                             (True, make_pipeline(StandardScaler(), LogisticRegression(**kw)))):
        clf.fit(X["train"], y["train"])
        expected = {s: float(clf.score(X[s], y[s])) for s in ("val", "ood")}
        assert metrics.accuracy(X, y, standardize=standardize) == expected
    with pytest.raises(ValueError, match="standardize must be True or False"):
        metrics.accuracy(X, y, standardize="yes")
