"""Autoregressive genotype model: each SNP's genotype given the previous ``window`` genotypes.

For SNP ``j`` of a batch, ``p(x_j | x_{j-1}, ..., x_{j-w})`` is a softmax over the three calls with
logits ``b_j + sum_k W_{j,k} onehot(x_{j-k})`` (``W`` : (m, w, 3, 3)), fitted by full-batch Adam with
weight decay on the training calls of the batch and its left context. Sampling walks along the batch,
batched over individuals. Individuals are drawn independently, so this family keeps allele frequencies
and short-range LD but not the cohort's relatedness; batches start afresh at their left context, so LD
across a batch edge is kept only as far as the context reaches back into the previous batch's SNPs (the
context itself is regenerated, not shared).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from genosynth.genetics.dosages import hard_calls
from genosynth.models.base import GenotypeModel, batch_seed

if TYPE_CHECKING:

    from genosynth.run_state import SnpBatch

_DEFAULTS = {"window": 8, "epochs": 60, "learning_rate": 0.1, "weight_decay": 1e-4}


def _one_hot_lags(calls: torch.Tensor, window: int) -> torch.Tensor:
    """Lagged one-hot calls ``(n, m, window, 3)``; lags before the first SNP are zero vectors."""
    n, m = calls.shape
    hot = torch.nn.functional.one_hot(calls.long(), 3).float()
    lags = torch.zeros(n, m, window, 3, device=calls.device)
    for k in range(1, window + 1):
        if k < m:
            lags[:, k:, k - 1, :] = hot[:, : m - k, :]
    return lags


class AutoregressiveModel(GenotypeModel):
    family = "autoregressive"

    def __init__(self, bias: np.ndarray, weights: np.ndarray, start: int, stop: int, context_start: int):
        self.bias = bias          # (m, 3) float32, m = stop - context_start
        self.weights = weights    # (m, window, 3, 3) float32
        self.start, self.stop, self.context_start = start, stop, context_start

    @classmethod
    def fit(cls, dosages: np.ndarray, *, batch: SnpBatch, plan: dict[str, Any], seed: int,
            options: dict[str, Any], device: torch.device) -> AutoregressiveModel:
        settings = {**_DEFAULTS, **{k: options[k] for k in _DEFAULTS if k in options}}
        window = int(settings["window"])
        # Only the left context is used: sampling walks left to right from context_start.
        calls = hard_calls(dosages[:, : batch.stop - batch.context_start])
        observed = calls >= 0
        # Missing inputs are replaced by the SNP's most common call; missing targets carry no loss.
        counts = np.stack([(calls == c).sum(axis=0) for c in range(3)], axis=1)
        filled = np.where(observed, calls, counts.argmax(axis=1)[None, :])
        generator = torch.Generator().manual_seed(batch_seed(seed, batch.batch, 21))
        x = torch.from_numpy(filled.astype(np.int64)).to(device)
        mask = torch.from_numpy(observed).to(device)
        m = x.shape[1]
        # SNP-major (m, n, window * 3) so each SNP's logits are one batched matrix product.
        lags = _one_hot_lags(x, window).permute(1, 0, 2, 3).reshape(m, x.shape[0], window * 3).contiguous()
        freq = (counts + 0.5) / (counts + 0.5).sum(axis=1, keepdims=True)
        bias = torch.log(torch.from_numpy(freq).float()).to(device).requires_grad_(True)
        init = 0.01 * torch.randn(m, window, 3, 3, generator=generator)
        weights = init.to(device).requires_grad_(True)
        optimiser = torch.optim.Adam([bias, weights], lr=float(settings["learning_rate"]))
        decay = float(settings["weight_decay"])
        for _ in range(int(settings["epochs"])):
            optimiser.zero_grad()
            logits = torch.bmm(lags, weights.reshape(m, window * 3, 3)) + bias[:, None, :]  # (m, n, 3)
            # Summed over SNPs, averaged over individuals: each SNP's parameters see a gradient of order
            # one, so the weight decay shrinks them evenly whatever the batch width.
            nll = torch.nn.functional.cross_entropy(logits[mask.T], x.T[mask.T], reduction="sum") / x.shape[0]
            loss = nll + decay * (weights**2).sum()
            loss.backward()
            optimiser.step()
        return cls(bias.detach().cpu().numpy(), weights.detach().cpu().numpy(), int(batch.start),
                   int(batch.stop), int(batch.context_start))

    def sample(self, n: int, *, batch: SnpBatch, plan: dict[str, Any], seed: int,
               device: torch.device) -> np.ndarray:
        window = self.weights.shape[1]
        bias = torch.from_numpy(self.bias).to(device)
        weights = torch.from_numpy(self.weights).to(device)
        m = bias.shape[0]
        generator = torch.Generator(device=device).manual_seed(batch_seed(seed, batch.batch, 22))
        history = torch.zeros(n, window, 3, device=device)  # most recent SNP first
        out = torch.empty(n, m, dtype=torch.int64, device=device)
        with torch.no_grad():
            for j in range(m):
                logits = bias[j][None] + torch.einsum("nkc,kcd->nd", history, weights[j])
                draw = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=generator)[:, 0]
                out[:, j] = draw
                history = torch.cat(
                    [torch.nn.functional.one_hot(draw, 3).float()[:, None], history[:, :-1]], dim=1)
        offset = self.start - self.context_start
        return out[:, offset:].cpu().numpy().astype(np.float32)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"start": self.start, "stop": self.stop, "context_start": self.context_start}
        return meta, {"bias": self.bias, "weights": self.weights}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> AutoregressiveModel:
        return cls(arrays["bias"], arrays["weights"], int(meta["start"]), int(meta["stop"]),
                   int(meta["context_start"]))
