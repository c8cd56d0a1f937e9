"""The fall model's 1-D convolutional net: definition, training and export (offline only).

Needs torch (``pip install -e '.[train]'``, CPU build; 2.13 here), never a runtime dependency:
the gateway runs the exported arrays with numpy (:class:`gateway.detection.fall_model.ConvNet`).
Inputs are the candidates' sequences (:mod:`gateway.detection.fall_sequence`). Nothing here
was tuned: the size, epochs and learning rate are the first ones tried when the net was probed
(5-fold subject-wise CV; ``docs/DETECTION.md``, fourth round; the probe scripts are in git history,
commit b186432).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from gateway.detection import fall_sequence

WIDTH = 16
BINS = 10  # pooled time bins of 1.1 s: the dense layers still see when things happen
EPOCHS = 8
BATCH = 256
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-3
DROPOUT = 0.3
THREADS = 2


class Net(nn.Module):
    def __init__(self, channels: int = len(fall_sequence.CHANNELS), width: int = WIDTH) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(channels, width, 7, stride=2, padding=3),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.Conv1d(width, 2 * width, 5, stride=2, padding=2),
            nn.BatchNorm1d(2 * width),
            nn.ReLU(),
            nn.Conv1d(2 * width, 2 * width, 5, stride=2, padding=2),
            nn.BatchNorm1d(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(BINS),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(DROPOUT),
            nn.Linear(2 * width * BINS, 16),
            nn.ReLU(),
            nn.Linear(16, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


def train(x: np.ndarray, y: np.ndarray, weights: np.ndarray, seed: int = 0) -> Net:
    """A net trained on sequences ``x`` ``(n, channels, length)``, labels ``y`` (0/1) and
    per-sample ``weights`` (binary cross-entropy, AdamW, one-cycle learning rate)."""
    torch.set_num_threads(THREADS)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = Net(x.shape[1])
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(y.astype(np.float32))
    wt = torch.from_numpy(weights.astype(np.float32))
    opt = torch.optim.AdamW(net.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    steps = EPOCHS * -(-len(x) // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LEARNING_RATE, total_steps=steps)
    loss_fn = nn.functional.binary_cross_entropy_with_logits
    net.train()
    for _ in range(EPOCHS):
        order = torch.from_numpy(rng.permutation(len(x)))
        for b in range(0, len(x), BATCH):
            j = order[b : b + BATCH]
            loss = (loss_fn(net(xt[j]), yt[j], reduction="none") * wt[j]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    return net


def export(net: Net) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and meta of ``ConvNet.from_arrays``: every convolution with its batch norm
    folded in (eval mode), then the dense layers."""
    arrays: dict[str, np.ndarray] = {}
    strides_padding = []
    layers = list(net.features)
    convs = [(m, layers[i + 1]) for i, m in enumerate(layers) if isinstance(m, nn.Conv1d)]
    for i, (conv, bn) in enumerate(convs):
        assert isinstance(bn, nn.BatchNorm1d) and bn.running_var is not None
        assert bn.running_mean is not None and conv.bias is not None
        scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
        weight = conv.weight.detach().numpy() * scale[:, None, None]
        bias = (conv.bias.detach().numpy() - bn.running_mean.numpy()) * scale
        arrays[f"conv{i}_weight"] = weight.astype(np.float32)
        arrays[f"conv{i}_bias"] = (bias + bn.bias.detach().numpy()).astype(np.float32)
        strides_padding.append([int(conv.stride[0]), int(conv.padding[0])])  # type: ignore[index]
    dense = [m for m in net.head if isinstance(m, nn.Linear)]
    for i, lin in enumerate(dense):
        arrays[f"dense{i}_weight"] = lin.weight.detach().numpy().astype(np.float32)
        arrays[f"dense{i}_bias"] = lin.bias.detach().numpy().astype(np.float32)
    meta = {
        "conv_stride_padding": strides_padding,
        "bins": BINS,
        "dense_layers": len(dense),
        "channels": list(fall_sequence.CHANNELS),
        "length": fall_sequence.LENGTH,
    }
    return arrays, meta


def logits(net: Net, x: np.ndarray) -> np.ndarray:
    """The net's log-odds in torch (to check the numpy forward against)."""
    with torch.no_grad():
        parts = [net(torch.from_numpy(x[b : b + 2048])) for b in range(0, len(x), 2048)]
    return torch.cat(parts).numpy().astype(np.float64)
