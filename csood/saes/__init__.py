"""Sparse autoencoders (SPEC section 3): ReLU, TopK, JumpReLU and matching pursuit (MP).

An SAE of width ``F`` on inputs of dimension ``m`` decodes codes ``z`` (F,) as
``y_hat = W_dec z + b_dec`` with a decoder ``W_dec`` (m, F) of unit-norm columns; inputs are
centred by ``b_dec`` before encoding. Every SAE stacks ``n_models`` independent models along a
leading model axis (a single SAE is ``n_models = 1``), so several seeds train as one batched
computation. Variants (registry :data:`SAE_VARIANTS`, configs are dataclasses):

==============  =====================================================  ======================
variant         codes                                                  config
==============  =====================================================  ======================
``"relu"``      ``ReLU(W_enc (y - b_dec) + b_enc)``; + gamma * L1      ``ReLUConfig(gamma)``
``"topk"``      the ``k`` largest pre-activations, ReLU'd               ``TopKConfig(k)``
``"jumprelu"``  ``h * 1[h > theta]``, ``h`` = ReLU(pre); + gamma * L0   ``JumpReLUConfig(gamma,
                (learned thresholds, straight-through gradients)       theta_init, bandwidth)``
``"mp"``        ``k`` matching-pursuit steps on the decoder atoms      ``MPConfig(k)``
==============  =====================================================  ======================

Public API
----------
``make_sae(variant, n_inputs, width, *, k=None, n_models=1, seed=0, dtype=torch.float32, **config)``
    An untrained SAE (CPU).
``train_sae(variant, Y_train, *, width, k=None, seed=0, epochs=500, batch_size=64, lr=5e-4,
renorm_every=50, history_every=None, reference=None, device=None, **config) -> (sae, history)``
    Train one model.
``train_saes(variant, Y_train, *, seeds=(0, 1, 2), ...same...) -> (sae, histories)``
    Train one model per seed as one batched computation; model ``i`` equals
    ``train_sae(..., seed=seeds[i])``. Same-variant batching only.
``sae_codes(sae, Y, model=0)``, ``sae_decoder(sae, model=0)``, ``sae_decoder_bias(sae, model=0)``
    numpy codes (n_samples, F), decoder (m, F) and decoder bias (m,) of one model.

Methods of every :class:`SAE` (torch tensors; ``Y`` is (n_samples, m), shared by all models,
or (n_models, n_samples, m)): ``encode(Y)`` -> (n_models, n_samples, F), ``decode(Z)`` ->
(n_models, n_samples, m), ``forward(Y) = decode(encode(Y))``, ``loss(Y)`` -> (n_models,),
``normalise_decoder_()``, ``project_decoder_grad_()``, ``take(model)``.

Defaults follow SPEC: gamma = 1e-4 (ReLU's L1 and JumpReLU's L0), theta_init = bandwidth =
1e-3, AdamW lr 5e-4 (torch defaults otherwise, weight decay 0.01), batch 64, 500 epochs,
decoder gradient projected orthogonal to the columns, columns renormalised every 50 epochs.

>>> import numpy as np
>>> Y = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
>>> sae, history = train_sae("topk", Y, width=16, k=3, epochs=2, device="cpu")
>>> sae_codes(sae, Y).shape, sae_decoder(sae).shape, sorted(history)
((100, 16), (8, 16), ['epoch', 'l0', 'loss', 'mse'])
"""

from .base import SAE
from .registry import SAE_VARIANTS, make_sae
# registration order is the order of SAE_VARIANTS
from .relu import ReLUConfig, ReLUSAE  # isort: skip
from .topk import TopKConfig, TopKSAE  # isort: skip
from .jumprelu import JumpReLUConfig, JumpReLUSAE  # isort: skip
from .mp import MPConfig, MPSAE  # isort: skip
from .training import sae_codes, sae_decoder, sae_decoder_bias, train_sae, train_saes

__all__ = [
    "SAE",
    "SAE_VARIANTS",
    "make_sae",
    "train_sae",
    "train_saes",
    "sae_codes",
    "sae_decoder",
    "sae_decoder_bias",
    "ReLUConfig",
    "ReLUSAE",
    "TopKConfig",
    "TopKSAE",
    "JumpReLUConfig",
    "JumpReLUSAE",
    "MPConfig",
    "MPSAE",
]
