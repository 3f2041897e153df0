"""Sweep chapters: grids, parameter validation, run-or-load, derived fields, paper tables, figures."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from csood import paper, params, pipeline, sweeps
from csood.runner import make_grid
from csood.store import ResultStore, aggregate
from csood.sweep_plots import facet_figure

ROOT = sweeps.repo_root()


def _record(method, n, k, m, seed, mcc_id, mcc_ood, n_samples=100, c=2.0, seconds=1.0):
    metrics = {"mcc_id": mcc_id, "mcc_ood": mcc_ood, "acc_ood": 0.5, "auc_ood": 0.5}
    return {"key": f"{method}{n}{k}{m}{seed}", "method": method, "seed": seed,
            "data": {"n_latents": n, "k": k, "m": m, "n_samples": n_samples, "c": c, "seed": seed},
            "metrics": dict(metrics), "metrics_paper": {**metrics, "mcc_id": mcc_id - 0.1},
            "seconds": {"data": 0.0, "method": seconds, "evaluate": 0.5}}


# --------------------------------------------------------------------------- grids
def test_phase_m_follows_spec_formula_and_caps_at_n():
    assert sweeps.phase_m(100, 10, 1.0) == math.ceil(10 * math.log(10))
    assert sweeps.phase_m(50, 10, 6.0) == 50            # capped at n
    assert sweeps.phase_m(50, 3, 0.01) == 1              # never below 1


def test_phase_grid_drops_repeated_m_and_orders():
    grid = sweeps.phase_grid([50], [10], [6.0, 0.5, 5.0, 4.0], n_samples=100)
    ms = [g["m"] for g in grid]
    assert ms == sorted(set(ms))
    assert ms == [9, 50] and [g["c"] for g in grid] == [0.5, 4.0]  # c = 5, 6 give m = 50 again


def test_phase_grid_rejects_k_too_large_for_n():
    with pytest.raises(ValueError, match="k must be"):
        sweeps.phase_grid([10], [10], [1.0], n_samples=100)


def test_vary_grid_and_select():
    grid = sweeps.vary_grid("n_latents", [20, 50], k=5, n_samples=100, c=2.0)
    assert grid == [{"k": 5, "n_samples": 100, "c": 2.0, "n_latents": 20},
                    {"k": 5, "n_samples": 100, "c": 2.0, "n_latents": 50}]
    recs = [_record("m", 20, 5, 10, 0, 0.5, 0.5), _record("m", 30, 5, 10, 0, 0.5, 0.5),
            _record("m", 50, 5, 10, 0, 0.5, 0.5, n_samples=200)]
    assert [r["data"]["n_latents"] for r in sweeps.select(recs, grid)] == [20]
    with pytest.raises(ValueError, match="axis must be"):
        sweeps.vary_grid("m", [1], n_latents=10, k=2)


def test_seed_list_and_method_overrides():
    assert sweeps.seed_list(3, 2) == [3, 4]
    with pytest.raises(ValueError, match="n_seeds must be"):
        sweeps.seed_list(0, 0)
    o = sweeps.method_overrides(["dl_fista", "sae_topk"], lam=0.2, sae_epochs=7, dl_max_rounds=9,
                                dl_schedule="fast", lista_epochs=3, softplus_steps=5)
    assert o == {"dl_fista": {"lam": 0.2, "max_rounds": 9, "schedule": "fast"}, "sae_topk": {"epochs": 7}}


# --------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("chapter", ["phase_transition", "scaling"])
@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_profiles_validate(chapter, profile):
    params.validate(chapter, **pipeline.load_profile(chapter, profile, ROOT))


@pytest.mark.parametrize("change, match", [
    ({"k": [3, 60]}, "k must be"),                       # k >= n
    ({"c": [1.0, 0.0]}, r"c\[1\] must be"),              # c <= 0
    ({"methods": ["fista_oracle", "nope"]}, r"methods\[1\] must be"),
    ({"methods": ["lista", "lista"]}, "without repeated"),
    ({"missing": "maybe"}, "missing must be"),
    ({"n_seeds": 0}, "n_seeds must be"),
])
def test_phase_transition_rejects_bad_grid(change, match):
    p = {**pipeline.load_profile("phase_transition", "quick", ROOT), **change}
    with pytest.raises(ValueError, match=match):
        params.validate("phase_transition", **p)


@pytest.mark.parametrize("change, match", [
    ({"vary_n": [50, 10]}, r"vary_n\[1\] = 10 with k = 10: k must be"),
    ({"vary_k": [2, 100]}, r"vary_k\[1\] = 100 .*k must be"),
    ({"c": -1.0}, "c must be"),
    ({"vary_samples": [1]}, r"vary_samples\[0\] must be"),
])
def test_scaling_rejects_bad_grid(change, match):
    p = {**pipeline.load_profile("scaling", "quick", ROOT), **change}
    with pytest.raises(ValueError, match=match):
        params.validate("scaling", **p)


# --------------------------------------------------------------------------- run or load
def test_run_or_load_computes_then_skips(tmp_path):
    grid = sweeps.phase_grid([20], [2], [1.0, 2.0], n_samples=60)
    cells = make_grid("t", grid, ["fista_oracle", "linear_probe"], [0], params={"fista_oracle": {"max_iter": 5}})
    recs, missing = sweeps.run_or_load(cells[:2], str(tmp_path), missing="compute")
    assert len(recs) == 2 and missing == []
    recs, missing = sweeps.run_or_load(cells, str(tmp_path), missing="skip")
    assert {r["key"] for r in recs} == {c.key for c in cells[:2]}
    assert [c.key for c in missing] == [c.key for c in cells[2:]]
    assert sweeps.missing_by_method(cells, missing) == {"fista_oracle": (1, 1, 2), "linear_probe": (1, 1, 2)}
    assert len(ResultStore(tmp_path)) == 2  # skip computes nothing


def test_results_path_is_repo_relative():
    assert sweeps.results_path("results/x") == ROOT / "results" / "x"
    assert str(sweeps.results_path("/tmp/abs")) == "/tmp/abs"


# --------------------------------------------------------------------------- derived values
def test_with_derived_and_aggregation_by_grid_value():
    recs = [_record("a", 50, 5, 10, s, 0.8 + 0.1 * s, 0.6) for s in (0, 1)]
    recs += [_record("a", 50, 5, 25, 0, 0.9, 0.9), _record("b", 50, 5, 10, 0, 0.3, 0.4)]
    d = sweeps.with_derived(recs)
    assert d[0]["data"]["delta"] == 0.2 and "delta" not in recs[0]["data"]  # copies
    assert d[1]["metrics"]["mcc_gap"] == pytest.approx(0.3)
    assert d[1]["metrics_paper"]["mcc_gap"] == pytest.approx(0.2)
    rows = aggregate(d, ["method", "data.delta"], ["mcc_gap"])
    assert [(r["method"], r["data.delta"], r["count"]) for r in rows] == [("a", 0.2, 2), ("a", 0.5, 1), ("b", 0.2, 1)]
    assert rows[0]["mcc_gap_mean"] == pytest.approx(0.25) and rows[0]["mcc_gap_std"] == pytest.approx(0.05)
    assert rows[0]["mcc_gap_min"] == pytest.approx(0.2) and rows[0]["mcc_gap_max"] == pytest.approx(0.3)
    assert sweeps.total_seconds(recs) == pytest.approx(4 * 1.5)


def test_endpoints_per_group():
    rows = [{"method": "a", "g": 1, "x": x, "v_mean": v} for x, v in ((3, 0.3), (1, 0.1), (2, 0.2))]
    rows += [{"method": "a", "g": 2, "x": 5, "v_mean": 0.5}, {"method": "b", "g": 1, "x": 9, "v_mean": 0.9}]
    assert sweeps.endpoints(rows, "a", x="x", group="g", metric="v") == {1: (0.1, 0.3), 2: (0.5, 0.5)}


def test_transition_point_interpolates():
    assert sweeps.transition_point([1, 2, 3], [0.5, 0.7, 1.0], 0.9) == pytest.approx(2 + 0.2 / 0.3)
    assert sweeps.transition_point([1, 2], [0.95, 1.0], 0.9) == 1.0
    assert math.isnan(sweeps.transition_point([1, 2], [0.1, 0.2], 0.9))
    with pytest.raises(ValueError, match="strictly increasing"):
        sweeps.transition_point([2, 1], [0.1, 0.2])


# --------------------------------------------------------------------------- paper tables
def test_compare_matches_configuration_and_judges_on_paper_protocol():
    claim = paper.Claim("x", "probe", "linear_probe", {"n_latents": 50}, "mcc_id", 0.0, 0.1)
    recs = [_record("linear_probe", 50, 5, 10, s, 0.15, 0.1) for s in (0, 1)]
    recs.append(_record("linear_probe", 60, 5, 10, 0, 0.9, 0.9))  # other configuration
    (row,) = paper.compare(recs, [claim])
    assert row["ours"] == pytest.approx(0.15) and row["ours_paper"] == pytest.approx(0.05)
    assert row["seeds"] == [0, 1] and row["agrees"] is True and row["paper"] == "< 0.10"
    (row,) = paper.compare(recs[:1], [paper.Claim("x", "p", "linear_probe", {"n_latents": 50}, "mcc_id",
                                                 0.9, 0.9, 0.02, why="because")])
    assert row["agrees"] is False and row["why"] == "because" and row["paper"] == "≈ 0.90"
    (row,) = paper.compare([], [claim])
    assert row["agrees"] is None and math.isnan(row["ours"])


def test_every_claim_names_a_sweep_method_and_chapter():
    assert {c.chapter for c in paper.CLAIMS} == {"phase_transition", "scaling"}
    assert all(c.method in sweeps.METHODS and c.low <= c.high for c in paper.CLAIMS)


# --------------------------------------------------------------------------- figures
def test_facet_figure_shapes():
    rows = aggregate([_record(m, n, 5, 10, 0, 0.5, 0.5) for m in ("fista_oracle", "sae_topk") for n in (20, 50)],
                     ["method", "data.n_latents", "data.k"], ["mcc_id", "mcc_ood"])
    fig, axes = facet_figure(rows, "data.n_latents", ["mcc_id", "mcc_ood"], methods=["fista_oracle", "sae_topk"],
                             facet="data.k", log_x=True)
    assert axes.shape == (2, 1) and len(axes[0, 0].lines) == 2
    fig, axes = facet_figure(rows, "data.n_latents", ["mcc_id", "mcc_ood"], methods=["sae_topk"])
    assert axes.shape == (1, 2) and len(axes[0, 1].lines) == 1
    np.testing.assert_array_equal(axes[0, 1].lines[0].get_xdata(), [20, 50])
    matplotlib.pyplot.close("all")


def test_profile_label_names_profile_and_seed_range():
    Q = params.validate("phase_transition", **pipeline.load_profile("phase_transition", "quick", ROOT))
    assert sweeps.profile_label("phase_transition", Q) == "quick profile"
    recs = [_record("a", 50, 5, 10, s, 0.5, 0.5) for s in (0, 1)] + [_record("b", 50, 5, 10, 0, 0.5, 0.5)]
    assert sweeps.profile_label("phase_transition", {**Q, "seed": 7}, recs) == "custom parameters, 1–2 seeds per point"
    assert sweeps.profile_label("phase_transition", Q, recs[:2]) == "quick profile, 2 seeds per point"


def test_sweep_command_fills_the_store(tmp_path, capsys):
    from csood.__main__ import main

    args = ["sweep", "phase_transition", "--profile", "quick", "--methods", "linear_probe",
            "-p", "results_dir", str(tmp_path), "-p", "n_latents", "[20]", "-p", "k", "[2]",
            "-p", "c", "[1.0, 2.0]", "-p", "n_samples", "60"]
    assert main(args) == 0
    assert len(ResultStore(tmp_path)) == 2
    assert "2 cells" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"methods\[0\] must be"):
        main(args[:4] + ["-p", "methods", "[nope]"] + args[6:])
