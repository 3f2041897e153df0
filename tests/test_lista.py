"""Tests of LISTA (csood.lista)."""

import numpy as np
import pytest
import torch

from csood.data import make_dataset
from csood.lista import AUTO_FULL_MAX, LISTA, lista_codes, train_lista
from csood.solvers import ista, lasso_objective

LAM = 0.1


@pytest.fixture(scope="module")
def ds():
    return make_dataset(50, 3, n_samples=2000, seed=0)


@pytest.mark.parametrize("structure", ["full", "coupled"])
def test_init_is_exactly_ista(ds, structure):
    model = LISTA(torch.as_tensor(ds.A), n_layers=16, lam=LAM, structure=structure)
    Z = lista_codes(model, ds.val.Y)
    Z_ista = ista(ds.val.Y, ds.A, LAM, max_iter=16, L=model.L, device="cpu")
    assert isinstance(Z, np.ndarray) and Z.shape == (ds.val.Y.shape[0], 50)
    np.testing.assert_allclose(Z, Z_ista, atol=2e-6)
    # the same through train_lista without training, and with its default L
    untrained = train_lista(ds.A, ds.train.Y, structure=structure, epochs=0, device="cpu")
    np.testing.assert_allclose(lista_codes(untrained, ds.val.Y),
                               ista(ds.val.Y, ds.A, LAM, max_iter=16, device="cpu"), atol=2e-6)


def test_init_differs_from_fewer_ista_steps(ds):
    model = LISTA(torch.as_tensor(ds.A), n_layers=16, lam=LAM)
    Z15 = ista(ds.val.Y, ds.A, LAM, max_iter=15, L=model.L, device="cpu")
    assert np.abs(lista_codes(model, ds.val.Y) - Z15).max() > 1e-4  # the test above can fail


@pytest.mark.parametrize("structure", ["full", "coupled"])
def test_training_lowers_the_heldout_lasso_objective(ds, structure):
    model = train_lista(ds.A, ds.train.Y, structure=structure, epochs=15, seed=0, device="cpu")
    assert model.structure == structure
    init = LISTA(torch.as_tensor(ds.A), lam=LAM, structure=structure)
    f_init = lasso_objective(ds.val.Y, ds.A, lista_codes(init, ds.val.Y), LAM).mean()
    f_trained = lasso_objective(ds.val.Y, ds.A, lista_codes(model, ds.val.Y), LAM).mean()
    assert f_trained < 0.99 * f_init
    h = model.history_
    assert 1 <= h["best_epoch"] <= 15 and len(h["loss"]) == len(h["holdout"]) == len(h["epoch"])
    assert h["loss"][-1] < h["loss"][0]
    assert (lista_codes(model, ds.val.Y) >= 0).all()


def test_without_holdout_returns_the_last_epoch(ds):
    model = train_lista(ds.A, ds.train.Y[:256], epochs=2, holdout=0.0, device="cpu")
    assert model.history_["best_epoch"] == 2 and np.isnan(model.history_["holdout"]).all()


def test_training_is_seeded(ds):
    a = train_lista(ds.A, ds.train.Y[:300], epochs=2, seed=3, device="cpu")
    b = train_lista(ds.A, ds.train.Y[:300], epochs=2, seed=3, device="cpu")
    torch.testing.assert_close(a.W, b.W, rtol=0, atol=0)


def test_structure_auto_and_memory():
    D = torch.randn(5, AUTO_FULL_MAX + 1)
    assert LISTA(D).structure == "coupled" and LISTA(D).S is None
    small = LISTA(torch.randn(5, 20))
    assert small.structure == "full" and small.S.shape == (16, 20, 20)
    assert small.W.shape == (16, 5, 20) and small.theta.shape == (16, 20)


def test_torch_in_torch_out(ds):
    model = train_lista(torch.as_tensor(ds.A), torch.as_tensor(ds.train.Y[:64]), epochs=1,
                        device="cpu")
    Z = lista_codes(model, torch.as_tensor(ds.val.Y[:7]))
    assert isinstance(Z, torch.Tensor) and Z.shape == (7, 50) and not Z.requires_grad


@pytest.mark.parametrize("kwargs, match", [
    ({"lam": -1.0}, "lam must be"),
    ({"n_layers": 0}, "n_layers must be"),
    ({"structure": "tied"}, "structure must be one of"),
    ({"epochs": -1}, "epochs must be"),
    ({"batch_size": 0}, "batch_size must be"),
    ({"lr": 0.0}, "lr must be"),
    ({"holdout": 1.0}, "holdout must be"),
    ({"patience": 0}, "patience must be"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_lista(np.eye(3, 4), np.ones((5, 3)), **kwargs)


def test_bad_shapes_and_models():
    with pytest.raises(ValueError, match=r"Y must be of shape \(n_samples, 3\)"):
        train_lista(np.eye(3, 4), np.ones((5, 4)))
    with pytest.raises(ValueError, match="D must be a matrix with at least one non-zero"):
        train_lista(np.zeros((3, 4)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="model must be a LISTA"):
        lista_codes(torch.nn.Linear(3, 4), np.ones((2, 3)))
    model = LISTA(torch.eye(3, 4))
    with pytest.raises(ValueError, match="Y must be"):
        lista_codes(model, np.ones((2, 5)))


@pytest.mark.cuda
def test_cuda(ds):
    model = train_lista(ds.A, ds.train.Y[:256], epochs=1, device="cuda")
    assert model.D.device.type == "cuda"
    Z = lista_codes(model, ds.val.Y[:10])
    assert isinstance(Z, np.ndarray)
    Zt = lista_codes(model, torch.as_tensor(ds.val.Y[:10], device="cuda"))
    assert Zt.device.type == "cuda"
    np.testing.assert_allclose(Zt.cpu().numpy(), Z, atol=1e-5)
