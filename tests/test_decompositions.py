"""Tests of the controlled-decomposition experiments (csood.decompositions, csood.decomposition_report).

The building blocks have their own tests: renormalising unit columns is a no-op and true norms
keep the directions (tests/test_support.py), least squares on the true support of noiseless data
recovers Z (tests/test_support.py), support precision/recall on hand-made codes
(tests/test_metrics.py::test_support_metrics_hand_computed).
"""

import numpy as np
import pytest

from csood import decomposition_report as rep
from csood import decompositions as dc
from csood import params
from csood.data import make_dataset
from csood.metrics import mcc_ood
from csood.saes import sae_codes
from csood.store import ResultStore


def _Q(results_dir, **over):
    q = dict(n_latents=[20], k=3, c=2.0, n_samples=200, seed=0, n_seeds=1,
             saes=["sae_relu", "sae_topk", "sae_jumprelu", "sae_mp"], lam=0.1, lam_grid=[0.01, 0.1, 1.0],
             iteration_grid=[1, 5, 20], sae_epochs=3, sae_history_every=1, dl_max_rounds=4,
             dl_round_grid=[0, 2, 4], dl_schedule="fast", results_dir=str(results_dir), missing="compute",
             paper_results="show", device="cpu")
    q.update(over)
    return params.validate("controlled_decompositions", **q)


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    root = tmp_path_factory.mktemp("cd")
    Q = _Q(root)
    results, missing = dc.run_or_load(Q, missing="compute", device="cpu")
    return Q, results, missing


def test_base_cells_and_analysis_keys():
    Q = _Q("unused", n_latents=[20, 30], n_seeds=2, saes=["sae_topk"])
    cells = dc.base_cells(Q)
    assert len(cells) == 2 * 2 * 4  # (n, seed) x {oracle, sae, frozen, refined}
    assert {c.method for c in cells} == {"fista_oracle", "sae_topk", "frozen_sae_topk", "refined_sae_topk"}
    assert [c.key for c in cells] == [c.key for c in dc.base_cells(Q)]  # stable
    P = dc.analysis_params(Q)
    k = dc.analysis_key("sae", cells[1].key, P)
    assert k == dc.analysis_key("sae", cells[1].key, dict(P)) and len(k) == 16
    assert k != dc.analysis_key("reference", cells[1].key, P)
    assert k != dc.analysis_key("sae", cells[1].key, {**P, "lam": 0.2})
    with pytest.raises(ValueError, match="kind must be one of"):
        dc.analysis_key("frozen", cells[1].key, P)


def test_schema_checks():
    with pytest.raises(ValueError, match=r"dl_round_grid must be rounds <= dl_max_rounds \(= 4\)"):
        _Q("x", dl_round_grid=[0, 5])
    with pytest.raises(ValueError, match=r"saes\[0\] must be one of"):
        _Q("x", saes=["lista"])
    with pytest.raises(ValueError, match=r"n_latents\[0\] = 3 with k = 3"):
        _Q("x", n_latents=[3])


def test_run_or_load_shapes(computed):
    Q, results, missing = computed
    assert missing == []
    assert len(results["records"]) == 1 + 3 * 4
    assert set(results["reference"]) == {(20, 0)}
    assert set(results["sae"]) == {(20, s, 0) for s in Q["saes"]}
    ref = results["reference"][(20, 0)]
    assert [p["lam"] for p in ref["oracle_lambda"]] == [0.01, 0.1, 1.0]
    assert [p["iterations"] for p in ref["oracle_iterations"]] == [1, 5, 20]
    assert [p["round"] for p in ref["dl_random"]["curve"]] == [0, 2, 4]
    for a in results["sae"].values():
        assert len(a["dictionary"]["cosines"]) == len(dc.QUANTILES)
        assert np.all(np.diff(a["dictionary"]["cosines"]) >= 0)
        assert set(a["variants"]) == {"raw", "renormalised", "true_norms", "true_directions"}
        assert [p["iterations"] for p in a["warm_start"]["sae"]] == [1, 5, 20]
        assert a["dynamics"]["epoch"] == [0, 1, 2, 3]
        assert a["dynamics"]["retrain_max_abs_diff"] < 1e-6  # CPU training is deterministic
        for split in ("val", "ood"):
            s = a["support"]["sae"][split]
            assert 0 <= s["precision"] <= 1 and 0 <= s["recall"] <= 1 and s["l0_true"] == pytest.approx(3)
    topk = results["sae"][(20, "sae_topk", 0)]
    assert topk["support"]["sae"]["ood"]["l0_pred"] == pytest.approx(3)  # TopK keeps k codes


def test_stored_sae_is_reused_not_retrained(computed):
    Q, results, _ = computed
    store = ResultStore(Q["results_dir"])
    for rec in results["records"]:
        if not rec["method"].startswith("sae_"):
            continue
        arrays = store.load_arrays(rec["key"])
        if rec["method"] != "sae_mp":
            assert "state_W_enc_NFM" in arrays
        sae = dc.load_sae(rec, arrays)
        ds = make_dataset(**rec["data"])
        assert mcc_ood(ds.ood.Z, sae_codes(sae, ds.ood.Y), seed=rec["seed"]) == pytest.approx(rec["metrics"]["mcc_ood"])
    # a second pass only loads: identical analyses, nothing missing
    again, missing = dc.run_or_load(Q, missing="skip")
    assert missing == [] and again["sae"] == results["sae"] and again["reference"] == results["reference"]


def test_load_sae_rejects_bad_inputs(computed):
    Q, results, _ = computed
    rec = next(r for r in results["records"] if r["method"] == "sae_relu")
    arrays = ResultStore(Q["results_dir"]).load_arrays(rec["key"])
    with pytest.raises(ValueError, match="arrays must be the stored arrays of an SAE cell"):
        dc.load_sae(rec, {"decoder": arrays["decoder"]})
    with pytest.raises(ValueError, match="arrays must be a 'state_W_enc_NFM' entry"):
        dc.load_sae(rec, {k: v for k, v in arrays.items() if k != "state_W_enc_NFM"})
    with pytest.raises(ValueError, match=r"record\['method'\] must be one of"):
        dc.load_sae({**rec, "method": "fista_oracle"}, arrays)


def test_skip_reports_exactly_what_is_missing(tmp_path):
    Q = _Q(tmp_path, saes=["sae_topk"])
    results, missing = dc.run_or_load(Q, missing="skip")
    assert results["records"] == [] and not results["sae"]
    assert len(missing) == 4 + 2  # four cells, two analyses
    assert {(m["what"], m["method"]) for m in missing} >= {("cell", "sae_topk"), ("analysis", "reference")}
    assert rep.missing_table(missing)[0] == ["cell", "oracle FISTA", "20", 1]
    with pytest.raises(ValueError, match="missing must be one of"):
        dc.run_or_load(Q, missing="never")


def test_warm_start_from_the_optimum_stays_there():
    ds = make_dataset(30, 3, n_samples=200, seed=1)
    opt = {s: dc.frozen_decoder_codes(ds[s].Y, ds.A, None, max_iter=2000) for s in ("val", "ood")}
    warm = dc.warm_start_curve(ds, ds.A, None, opt, [1, 3], lam=0.1, seed=0)
    cold = dc.warm_start_curve(ds, ds.A, None, None, [2000], lam=0.1, seed=0)
    assert warm[0]["mcc_ood"] == pytest.approx(cold[0]["mcc_ood"], abs=1e-3)
    assert warm[0]["objective_ood"] == pytest.approx(cold[0]["objective_ood"], rel=1e-3)


def test_report_helpers():
    xs, ys = rep.curve_mean([[{"r": 0, "y": 0.0}, {"r": 2, "y": 1.0}], [{"r": 0, "y": 1.0}]], "r", "y")
    assert xs.tolist() == [0, 2] and ys.tolist() == [0.5, 1.0]  # the short curve keeps its last value
    assert rep.rounds_to([0, 1, 2], [0.1, 0.5, 0.9], 0.5) == 1.0 and np.isnan(rep.rounds_to([0], [0.1], 0.5))
    assert rep.join_ns([100, 50]) == "n = 50 and 100" and rep.join_ns([1, 2, 3]) == "n = 1, 2 and 3"
    assert rep.where([50], [50, 100]) == "at n = 50, but not at n = 100"
    assert rep.where([], [50]).startswith("at no n") and rep.where([50], [50]).startswith("at every n")
