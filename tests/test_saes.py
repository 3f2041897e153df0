"""Tests of the sparse autoencoders (csood.saes): one contract over all variants, then the
variant-specific properties, the trainer and argument validation."""

import math

import numpy as np
import pytest
import torch

from csood.data import make_dataset
from csood.saes import (SAE, SAE_VARIANTS, make_sae, sae_codes, sae_decoder, sae_decoder_bias,
                        train_sae, train_saes)
from csood.saes.training import _AdamW

VARIANTS = list(SAE_VARIANTS)
N_LATENTS, K = 24, 3


@pytest.fixture(scope="module")
def data():
    return make_dataset(N_LATENTS, K, n_samples=400, seed=0)


def _train(variant, Y, **kw):
    kw = {"width": N_LATENTS, "k": K, "epochs": 4, "device": "cpu", **kw}
    return train_sae(variant, Y, **kw)


def _perturbed(variant, m, width, k, n_models, seed=0, dtype=torch.float64):
    """An SAE with generic (non-initial) parameters: decoder norms off 1, non-zero biases."""
    sae = make_sae(variant, m, width, k=k, n_models=n_models, seed=seed, dtype=dtype)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        scale = 1 + 0.2 * torch.rand((n_models, 1, width), generator=gen, dtype=dtype)
        sae.W_dec_NMF.mul_(scale)
        sae.b_dec_NM.copy_(0.1 * torch.randn(sae.b_dec_NM.shape, generator=gen, dtype=dtype))
        if sae.has_encoder:
            sae.b_enc_NF.copy_(0.1 * torch.randn(sae.b_enc_NF.shape, generator=gen, dtype=dtype))
    return sae


def _manual_and_autograd_grads(sae, Y_NBM):
    for p in sae.parameters():
        p.grad = torch.zeros_like(p)
    with torch.no_grad():
        sae._grads_(Y_NBM, sae._bind())
    manual = {name: p.grad.clone() for name, p in sae.named_parameters()}
    for p in sae.parameters():
        p.grad = None
    sae.loss(Y_NBM).sum().backward()
    return manual, {name: p.grad for name, p in sae.named_parameters()}


# --------------------------------------------------------------------------- contract
@pytest.mark.parametrize("variant", VARIANTS)
class TestContract:
    def test_shapes_and_forward(self, variant, data):
        m, n_models = data.m, 2
        sae = make_sae(variant, m, N_LATENTS, k=K, n_models=n_models, seed=0)
        Y = torch.from_numpy(data.val.Y[:10])
        Z = sae.encode(Y)
        assert Z.shape == (n_models, 10, N_LATENTS)
        assert sae.decode(Z).shape == (n_models, 10, m)
        assert sae.loss(Y).shape == (n_models,)
        torch.testing.assert_close(sae(Y), sae.decode(sae.encode(Y)), rtol=0, atol=0)
        Y3 = torch.stack([Y, 2 * Y])  # one batch per model
        assert sae.encode(Y3).shape == (n_models, 10, N_LATENTS)
        assert sae_codes(sae, data.val.Y, model=1).shape == (len(data.val), N_LATENTS)
        assert sae_decoder(sae, model=1).shape == (m, N_LATENTS)
        assert sae_decoder_bias(sae).shape == (m,)

    def test_initialisation(self, variant, data):
        sae = make_sae(variant, data.m, N_LATENTS, k=K, n_models=2, seed=[4, 9])
        norms = torch.linalg.vector_norm(sae.W_dec_NMF, dim=1)
        torch.testing.assert_close(norms, torch.ones_like(norms))
        assert torch.count_nonzero(sae.b_dec_NM) == 0
        assert not torch.equal(sae.W_dec_NMF[0], sae.W_dec_NMF[1])  # own seed per model
        if sae.has_encoder:
            W = sae.W_enc_NFM.detach()
            assert W.abs().max() <= math.sqrt(6 / data.m)  # Kaiming-uniform bound
            torch.testing.assert_close(sae.W_dec_NMF, W.transpose(1, 2) / torch.linalg.vector_norm(
                W.transpose(1, 2), dim=1, keepdim=True))
            assert torch.count_nonzero(sae.b_enc_NF) == 0

    @pytest.mark.parametrize("batch", [40, 3])  # MP: Gram-updated (F <= k B) and residual paths
    def test_hand_written_gradients_match_autograd(self, variant, batch):
        sae = _perturbed(variant, 8, 16, 3, n_models=2)
        Y = torch.randn((2, batch, 8), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        manual, auto = _manual_and_autograd_grads(sae, Y)
        for name in manual:
            torch.testing.assert_close(manual[name], auto[name], rtol=1e-10, atol=1e-12, msg=name)
            if name != "log_theta_NF":  # zero unless some h lies within eps/2 of theta
                assert manual[name].abs().max() > 0, name

    def test_training_reduces_loss_and_keeps_unit_decoder(self, variant, data):
        sae, hist = _train(variant, data.train.Y, epochs=6, lr=5e-3, renorm_every=3, history_every=3)
        assert hist["epoch"] == [0, 3, 6]
        assert hist["loss"][-1] < 0.8 * hist["loss"][0]
        norms = np.linalg.norm(sae_decoder(sae), axis=0)
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)

    def test_projection_keeps_norms_between_renormalisations(self, variant, data, monkeypatch):
        sae, _ = _train(variant, data.train.Y, epochs=5, renorm_every=None)
        drift = np.abs(np.linalg.norm(sae_decoder(sae), axis=0) - 1).max()
        with monkeypatch.context() as mp:  # the same training without the projection
            mp.setattr(SAE, "_project_", staticmethod(lambda views: None))
            free, _ = _train(variant, data.train.Y, epochs=5, renorm_every=None)
        free_drift = np.abs(np.linalg.norm(sae_decoder(free), axis=0) - 1).max()
        assert drift < 0.01 and drift < 0.5 * free_drift
        # for unit-norm columns the projected gradient is orthogonal to every column
        sae.normalise_decoder_()
        g = torch.randn(sae.W_dec_NMF.shape, generator=torch.Generator().manual_seed(0))
        sae.W_dec_NMF.grad = g.clone()
        sae.project_decoder_grad_()
        W = sae.W_dec_NMF.detach()
        assert (sae.W_dec_NMF.grad * W).sum(dim=1).abs().max() < 1e-5
        torch.testing.assert_close(sae.W_dec_NMF.grad, g - (g * W).sum(dim=1, keepdim=True) * W)

    def test_batched_training_equals_one_at_a_time(self, variant, data):
        seeds = [3, 0]
        kw = dict(epochs=3, renorm_every=2, history_every=1)
        sae_b, hists = train_saes(variant, data.train.Y, seeds=seeds, width=N_LATENTS, k=K,
                                  device="cpu", **kw)
        assert sae_b.n_models == 2 and len(hists) == 2
        for i, seed in enumerate(seeds):
            sae_1, hist_1 = _train(variant, data.train.Y, seed=seed, **kw)
            for (name, p_b), p_1 in zip(sae_b.named_parameters(), sae_1.parameters()):
                torch.testing.assert_close(p_b[i:i + 1], p_1, rtol=1e-5, atol=1e-7, msg=name)
            np.testing.assert_allclose(hists[i]["loss"], hist_1["loss"], rtol=1e-5)

    def test_seeding(self, variant, data):
        a, _ = _train(variant, data.train.Y, seed=1, epochs=2)
        b, _ = _train(variant, data.train.Y, seed=1, epochs=2)
        c, _ = _train(variant, data.train.Y, seed=2, epochs=2)
        assert np.array_equal(sae_decoder(a), sae_decoder(b))
        assert np.array_equal(sae_codes(a, data.val.Y), sae_codes(b, data.val.Y))
        assert not np.allclose(sae_decoder(a), sae_decoder(c))


# --------------------------------------------------------------------------- variants
@pytest.mark.parametrize("variant", ["topk", "mp"])
def test_exactly_k_active_latents(variant, data):
    sae, _ = _train(variant, data.train.Y, epochs=2)
    Z = sae_codes(sae, data.val.Y)
    np.testing.assert_array_equal((Z != 0).sum(axis=1), K)


def test_mp_never_reselects_an_atom():
    # atoms 0..7 are the standard basis: after the first step on y = 3 e_0 the residual is
    # exactly 0, every correlation ties at 0 and an unmasked argmax would pick atom 0 again
    m, width, k = 8, 12, 4
    sae = make_sae("mp", m, width, k=k, dtype=torch.float64)
    with torch.no_grad():
        sae.W_dec_NMF[0, :, :m] = torch.eye(m, dtype=torch.float64)
    Y = torch.zeros((5, m), dtype=torch.float64)
    Y[:, 0] = 3.0
    Y[1:, 1] = torch.tensor([1e-9, -2e-9, 0.5, 0.0], dtype=torch.float64)
    index, coef, residual = sae.pursuit(Y)
    assert index.shape == (1, 5, k)
    for row in index[0].tolist():
        assert len(set(row)) == k
    assert index[0, 0, 0] == 0 and coef[0, 0, 0] == 3.0
    torch.testing.assert_close(residual, torch.zeros_like(residual))
    # the trainer's pursuit (Gram-updated or residual-updated) makes the same choices
    for p in sae.parameters():
        p.grad = torch.zeros_like(p)
    X = (Y - sae.b_dec_NM).unsqueeze(0)
    for rows in (5, 2):  # F <= k B: Gram-updated path; F > k B: residual path
        with torch.no_grad():
            idx_fast, _, coef_fast, gram = sae._select(X[:, :rows], sae._bind())
        assert (gram is not None) == (rows == 5)
        for row in idx_fast[0].tolist():
            assert len(set(row)) == k
        torch.testing.assert_close(coef_fast[:, :, 0], coef[:, :rows, 0])


def test_mp_selection_of_trainer_matches_pursuit(data):
    sae = _perturbed("mp", data.m, N_LATENTS, K, n_models=2, dtype=torch.float64)
    for p in sae.parameters():
        p.grad = torch.zeros_like(p)
    for n_rows in (2, 64):  # residual path, Gram path
        Y = torch.from_numpy(data.val.Y[:n_rows]).double()
        index, coef, _ = sae.pursuit(Y)
        with torch.no_grad():
            X = sae._with_model_axis(Y) - sae.b_dec_NM.unsqueeze(1)
            idx_fast, _, coef_fast, _ = sae._select(X, sae._bind())
        assert torch.equal(idx_fast, index)
        torch.testing.assert_close(coef_fast, coef)


def test_jumprelu_threshold_gets_gradient():
    m, width = 6, 10
    sae = make_sae("jumprelu", m, width, dtype=torch.float64)
    theta = sae.thresholds().detach()
    torch.testing.assert_close(theta, torch.full_like(theta, 1e-3))
    with torch.no_grad():  # h = b_enc exactly: features 0..4 inside the kernel window, 5.. far
        sae.W_enc_NFM.zero_()
        sae.b_enc_NF[0, :5] = torch.linspace(0.7e-3, 1.3e-3, 5, dtype=torch.float64)
        sae.b_enc_NF[0, 5:] = 0.5
    Y = torch.randn((1, 7, m), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    manual, auto = _manual_and_autograd_grads(sae, Y)
    g = auto["log_theta_NF"][0]
    assert torch.all(g[:5] != 0) and torch.all(g[5:] == 0)
    torch.testing.assert_close(manual["log_theta_NF"], auto["log_theta_NF"], rtol=1e-10, atol=0)
    # features above their threshold pass h unchanged, those below are cut
    Z = sae.encode(Y)[0]
    torch.testing.assert_close(Z[:, 5:], torch.full_like(Z[:, 5:], 0.5))
    assert torch.all(Z[:, :2] == 0) and torch.all(Z[:, 3:5] > 0)


def test_fast_adamw_matches_torch_adamw():
    gen = torch.Generator().manual_seed(0)
    ps = [torch.randn((2, 5, 3), generator=gen), torch.randn((2, 4), generator=gen)]
    qs = [p.clone().requires_grad_() for p in ps]
    for p in ps:
        p.grad = torch.zeros_like(p)
    fast = _AdamW(ps, lr=5e-4)
    ref = torch.optim.AdamW(qs, lr=5e-4)  # torch defaults: betas (0.9, 0.999), eps 1e-8, wd 0.01
    for _ in range(5):
        for p, q in zip(ps, qs):
            g = torch.randn(p.shape, generator=gen)
            p.grad.copy_(g)
            q.grad = g.clone()
        fast.step()
        ref.step()
    for p, q in zip(ps, qs):
        torch.testing.assert_close(p, q.detach(), rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- trainer
def test_history_reference_inputs_and_dtypes(data):
    Yt = torch.from_numpy(data.train.Y).double()
    sae, hist = train_sae("relu", Yt, width=N_LATENTS, epochs=4, history_every=2, reference=data.A)
    assert sae.W_dec_NMF.dtype == torch.float64 and sae.W_dec_NMF.device.type == "cpu"
    assert sorted(hist) == ["epoch", "l0", "loss", "mean_cosine", "mse"]
    assert hist["epoch"] == [0, 2, 4]
    assert all(0 <= c <= 1 for c in hist["mean_cosine"])
    assert all(0 < l0 <= N_LATENTS for l0 in hist["l0"])
    assert all(loss >= mse for loss, mse in zip(hist["loss"], hist["mse"]))  # + L1 penalty
    assert sae_codes(sae, data.val.Y).dtype == np.float64
    _, hist2 = train_sae("topk", data.train.Y, width=N_LATENTS, k=K, epochs=3, device="cpu")
    assert hist2["epoch"] == [3] and hist2["l0"] == [pytest.approx(K)]


def test_config_reaches_the_model(data):
    sae, _ = _train("jumprelu", data.train.Y, epochs=1, gamma=0.0, theta_init=0.5, bandwidth=0.1)
    assert (sae.config.gamma, sae.config.theta_init, sae.config.bandwidth) == (0.0, 0.5, 0.1)
    relu, _ = _train("relu", data.train.Y, epochs=1, k=None, gamma=1e-2)
    assert relu.config.gamma == 1e-2


@pytest.mark.parametrize("kwargs, match", [
    (dict(variant="gelu"), r"variant must be one of 'relu', 'topk', 'jumprelu', 'mp'; got 'gelu'"),
    (dict(variant="topk", k=None), "k must be an integer with 1 <= k < width"),
    (dict(variant="mp", k=None), "k must be an integer with 1 <= k < width"),
    (dict(variant="topk", k=24), r"k must be an integer with 1 <= k < width \(= 24\); got 24"),
    (dict(width=0), "width must be an integer >= 1; got 0"),
    (dict(epochs=0), "epochs must be an integer >= 1; got 0"),
    (dict(batch_size=0), "batch_size must be"),
    (dict(lr=0.0), "lr must be"),
    (dict(history_every=0), "history_every must be"),
    (dict(seeds=[]), "seeds must be a non-empty sequence"),
    (dict(seeds=[0, -1]), "seed must be an integer >= 0"),
    (dict(gamma=-1.0), "gamma must be a finite number >= 0"),
    (dict(alpha=1.0), r"config must be keyword arguments among \('gamma',\)"),
    (dict(reference=np.ones((3, 5))), "reference must be an array of shape"),
    (dict(device="tpu"), "device must be"),
])
def test_bad_arguments(data, kwargs, match):
    kw = dict(variant="relu", Y_train=data.train.Y[:20], width=24, k=3, epochs=1, device="cpu")
    kw.update(kwargs)
    with pytest.raises(ValueError, match=match):
        train_saes(kw.pop("variant"), kw.pop("Y_train"), **kw)


def test_bad_inputs(data):
    Y = data.train.Y[:20].copy()
    Y[3, 2] = np.nan
    with pytest.raises(ValueError, match="Y_train must be finite"):
        train_sae("relu", Y, width=8, epochs=1)
    with pytest.raises(ValueError, match=r"Y_train must be an array with 2 dimension\(s\)"):
        train_sae("relu", data.train.Y[0], width=8, epochs=1)
    sae = make_sae("relu", data.m, 8, n_models=2)
    with pytest.raises(ValueError, match=r"model must be an integer with 0 <= model < n_models"):
        sae_codes(sae, data.val.Y, model=2)
    with pytest.raises(ValueError, match=r"Y must be an array of shape \(n_samples, %d\)" % data.m):
        sae_codes(sae, data.val.Y[:, :-1])
    with pytest.raises(ValueError, match="seed must be an int or a sequence of n_models"):
        make_sae("relu", data.m, 8, n_models=2, seed=[1, 2, 3])


@pytest.mark.cuda
@pytest.mark.parametrize("variant", VARIANTS)
def test_cuda_matches_cpu(variant, data):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    kw = dict(width=N_LATENTS, k=K, epochs=2, seeds=[0, 1])
    sae_cpu, hist_cpu = train_saes(variant, data.train.Y, device="cpu", **kw)
    sae_gpu, hist_gpu = train_saes(variant, data.train.Y, device="cuda", **kw)
    assert sae_gpu.W_dec_NMF.is_cuda
    for i in range(2):
        np.testing.assert_allclose(sae_decoder(sae_gpu, i), sae_decoder(sae_cpu, i), atol=1e-4)
        np.testing.assert_allclose(sae_codes(sae_gpu, data.val.Y, i), sae_codes(sae_cpu, data.val.Y, i),
                                   atol=1e-3)
        np.testing.assert_allclose(hist_gpu[i]["loss"], hist_cpu[i]["loss"], rtol=1e-3)
