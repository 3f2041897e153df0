"""Every registered method runs through the registry and the runner contract; reproduction at n = 100."""

import numpy as np
import pytest

from csood import data, metrics, methods
from csood.catalog import SAE_METHODS

FAST = {  # tiny budgets so that every method runs in a second or two
    "dl_fista": {"max_rounds": 5, "fista_iter": 20, "infer_iter": 20},
    "softplus_adam": {"n_steps": 50},
    "lista": {"epochs": 2},
    **{name: {"epochs": 2, "renorm_every": 2} for name in SAE_METHODS},  # ends on a renormalisation
}


@pytest.fixture(scope="module")
def tiny():
    return data.make_dataset(24, 3, n_samples=200, seed=0)


def _params(name):
    if name.startswith(("frozen_", "refined_")):
        base = name.split("_", 1)[1]
        return {"max_iter": 10, "base": FAST.get(base, {})}
    return FAST.get(name, {})


@pytest.mark.parametrize("name", methods.method_names())
def test_every_method_returns_codes_for_every_split(tiny, name):
    out = methods.run_method(name, tiny, params=_params(name), seed=0, device="cpu")
    width = out.codes["train"].shape[1]
    for split in ("train", "val", "ood"):
        assert out.codes[split].shape == (len(tiny[split]), width)
        assert np.isfinite(out.codes[split]).all()
    if out.dictionary is not None:
        assert out.dictionary.shape == (tiny.m, width)
    if name in SAE_METHODS:
        # decoder, its bias and the other parameters (to rebuild the SAE from the store)
        assert {"decoder", "decoder_bias"} <= set(out.artifacts)
        assert all(a in {"decoder", "decoder_bias"} or a.startswith("state_") for a in out.artifacts)
        assert ("state_W_enc_NFM" in out.artifacts) == (name != "sae_mp")
        np.testing.assert_allclose(np.linalg.norm(out.artifacts["decoder"], axis=0), 1.0, atol=1e-4)


def test_frozen_with_the_true_decoder_is_the_oracle(tiny):
    """The frozen-decoder family given the true A and a zero bias reproduces oracle FISTA."""
    base = methods.MethodOutput({s: None for s in methods.SPLITS},
                                artifacts={"decoder": tiny.A, "decoder_bias": np.zeros(tiny.m, np.float32)})
    frozen = methods.FAMILIES["frozen_"].fn(base, tiny, {"lam": 0.1, "max_iter": 50}, seed=0, device="cpu")
    oracle = methods.run_method("fista_oracle", tiny, params={"max_iter": 50}, device="cpu")
    for split in methods.SPLITS:
        np.testing.assert_allclose(frozen.codes[split], oracle.codes[split], atol=1e-5)


def test_unknown_sae_parameter_is_rejected():
    with pytest.raises(ValueError, match="parameter names of method 'sae_topk' must be among"):
        methods.resolve_params("sae_topk", {"gamma": 1e-3})
    with pytest.raises(ValueError, match="structure must be one of"):
        methods.resolve_params("lista", {"structure": "dense"})


@pytest.mark.slow
def test_reproduction_n100_oracle_and_dl_fista():
    """SPEC defaults at n = 100, k = 10, 5,000 samples, seed 0: oracle FISTA ID and OOD MCC
    >= 0.97, DL-FISTA ID MCC >= 0.9."""
    ds = data.make_dataset(100, 10, n_samples=5000, seed=0)
    Z = {s: ds[s].Z for s in methods.SPLITS}
    labels = {s: ds[s].labels for s in methods.SPLITS}
    oracle = metrics.evaluate(Z, methods.run_method("fista_oracle", ds, device="cpu").codes, labels)
    assert oracle["mcc_id"] >= 0.97 and oracle["mcc_ood"] >= 0.97
    dl = methods.run_method("dl_fista", ds, seed=0, device="cpu")
    assert metrics.mcc_id(Z["val"], dl.codes["val"]) >= 0.9
