"""DP-SGD of a softmax regression on sparse features, with Opacus (``dp_logreg``'s fit).

Imported only when a ``dp-logreg`` model is trained: it imports torch and Opacus at the top.

Opacus's ``PrivacyEngine.make_private`` does the private part as it documents it:
Poisson sampling of each step's rows (``DPDataLoader``), per-row gradients (``GradSampleModule``)
clipped to ``max_grad_norm``, Gaussian noise with the multiplier its RDP accountant finds for
``target_epsilon`` over ``epochs`` (``get_noise_multiplier``), and the accountant's record of
each step, from which the epsilon spent is read. The data set
handed to the loader is the row numbers; the model turns a batch of them into the dense rows of
the sparse feature matrix before its one linear layer, so a batch costs its own rows only.
The loss is summed over the batch (an empty Poisson batch is a step of noise alone, as the
accounting assumes) and the learning rate divided by the expected batch size: the mean
gradient's step.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import opacus
import torch
from opacus import PrivacyEngine
from opacus.accountants.utils import get_noise_multiplier
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from learnloop.families.base import FloatArray

# The Renyi orders the RDP accountant tries: three fractional ones (where a large epsilon is
# tightest), the integers to 63 and a few above (where a small one is). Opacus's default list
# has 99 fractional orders, each a slow series in Python: calibrating the noise with it took
# 20-40 s a fit on our (loaded) machine; an integer order costs a sum of its own length.
ORDERS: list[float] = [1.25, 1.5, 1.75, *map(float, range(2, 64)), 80.0, 96.0, 128.0, 192.0, 256.0]

# What Opacus and torch say on every fit, about choices dp_logreg's docstring states: the
# generator is not torchcsprng's; the linear layer's input needs no gradient; the best Renyi
# order is the largest tried (the epsilon is then an upper bound a little above the tightest).
EXPECTED_WARNINGS = ("Secure RNG turned off", "Full backward hook is firing", "Optimal order is the")


def default_delta(n: int) -> float:
    """Delta when the parameters give none: 1/(10 n), well below the 1/n at which a mechanism
    could publish one whole row and still meet it."""
    return 1.0 / (10.0 * max(n, 1))


class _RowsToScores(nn.Module):
    """Row numbers -> their dense feature rows -> one linear layer (the weights DP-SGD trains)."""

    def __init__(self, features: Any, classes: int) -> None:
        super().__init__()
        self.features = features  # scipy CSR, float32
        self.linear = nn.Linear(features.shape[1], classes)
        nn.init.zeros_(self.linear.weight)  # nothing drawn from the data or the generator
        nn.init.zeros_(self.linear.bias)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        dense = torch.from_numpy(self.features[rows.numpy()].toarray())
        return self.linear(dense)  # type: ignore[no-any-return]


def train_softmax(
    features: Any, targets: np.ndarray[Any, Any], classes: int, p: Mapping[str, Any], seeds: tuple[int, int]
) -> tuple[FloatArray, FloatArray, dict[str, Any]]:
    """(coef (n_features, classes), intercept, the privacy record) after ``p["epochs"]`` epochs."""
    n = features.shape[0]
    delta = p["delta"] if p["delta"] is not None else default_delta(n)
    batch = min(p["batch_size"], n)
    sampler, noise = torch.Generator().manual_seed(seeds[0]), torch.Generator().manual_seed(seeds[1])
    loader = DataLoader(TensorDataset(torch.arange(n), torch.from_numpy(targets)), batch_size=batch, generator=sampler)
    model = _RowsToScores(features, classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=p["learning_rate"] / batch, momentum=p["momentum"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a step's work is small: one thread measured 2x faster than two on 2 cores
    try:
        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            for message in EXPECTED_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            return _train(model, loader, optimizer, p, delta, noise)
    finally:
        torch.set_num_threads(threads)


def _train(
    model: _RowsToScores,
    loader: DataLoader[Any],
    optimizer: torch.optim.Optimizer,
    p: Mapping[str, Any],
    delta: float,
    noise: torch.Generator,
) -> tuple[FloatArray, FloatArray, dict[str, Any]]:
    private = p["target_epsilon"] is not None
    sigma = 0.0  # no target: clipped, Poisson-sampled, no noise; the same training, not private
    if private:
        sigma = get_noise_multiplier(
            target_epsilon=p["target_epsilon"],
            target_delta=delta,
            sample_rate=1 / len(loader),  # as make_private samples
            epochs=p["epochs"],
            accountant="rdp",
            alphas=ORDERS,
        )
    engine = PrivacyEngine(accountant="rdp")
    module, dp_optimizer, dp_loader = engine.make_private(
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        noise_multiplier=sigma,
        max_grad_norm=p["max_grad_norm"],
        loss_reduction="sum",
        noise_generator=noise,
    )
    loss_of = nn.CrossEntropyLoss(reduction="sum")
    with torch.set_grad_enabled(True):
        for _ in range(p["epochs"]):
            for rows, y in dp_loader:
                dp_optimizer.zero_grad()
                loss_of(module(rows), y).backward()
                dp_optimizer.step()
    spent = engine.accountant.get_epsilon(delta, alphas=ORDERS) if private else math.inf
    weight = model.linear.weight.detach().numpy().astype(np.float64)
    bias = model.linear.bias.detach().numpy().astype(np.float64)
    record = {
        "mechanism": "DP-SGD (Opacus)",
        "unit": "training row",
        "private": private,
        "epsilon": round(float(spent), 6) if private else None,
        "target_epsilon": p["target_epsilon"],
        "delta": delta,
        "accountant": "rdp",
        "noise_multiplier": round(float(sigma), 6),
        "max_grad_norm": p["max_grad_norm"],
        "sample_rate": 1 / len(dp_loader),
        "steps": p["epochs"] * len(dp_loader),
        "rows": len(loader.dataset),  # type: ignore[arg-type]
        "reproducible_noise": p["reproducible_noise"],
        "secure_mode": False,
        "opacus": opacus.__version__,
    }
    return np.ascontiguousarray(weight.T), bias, record
