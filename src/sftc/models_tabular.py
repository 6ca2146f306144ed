"""Models for tables: ``mlp`` and ``resmlp``, after Gorishniy et al. (NeurIPS 2021, "Revisiting
Deep Learning Models for Tabular Data"): their MLP and their ResNet for tabular data.

Both take a row of ``in_channels`` encoded features (``[N, F]``). Their "layers" for CF-k and
EU-k are their four top-level children, first to last, as the small CNN's: ``mlp`` has
``block1``-``block3`` and ``head``; ``resmlp`` has ``stem`` (the first linear layer),
``block1``, ``block2`` (residual blocks) and ``head``. :mod:`sftc.models` registers them.
"""
from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """Gorishniy et al.'s MLP: blocks of Linear, ReLU and Dropout, and a linear head."""

    def __init__(self, in_features: int, num_classes: int, width: int = 256,
                 dropout: float = 0.1):
        super().__init__()

        def block(cin: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(cin, width), nn.ReLU(inplace=True), nn.Dropout(dropout))

        self.block1 = block(in_features)
        self.block2 = block(width)
        self.block3 = block(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return self.head(self.block3(self.block2(self.block1(x))))


class ResidualBlock(nn.Module):
    """``x + Dropout(Linear(Dropout(ReLU(Linear(BatchNorm(x))))))`` (Gorishniy et al., eq. 2)."""

    def __init__(self, width: int, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.norm = nn.BatchNorm1d(width)
        self.linear1 = nn.Linear(width, hidden)
        self.dropout1 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.dropout1(torch.relu(self.linear1(self.norm(x))))
        return x + self.linear2(z)


class ResMLP(nn.Module):
    """Gorishniy et al.'s ResNet for tables: a linear stem, residual blocks, and a head of
    BatchNorm, ReLU and Linear."""

    def __init__(self, in_features: int, num_classes: int, width: int = 128, hidden: int = 256,
                 dropout: float = 0.1):
        super().__init__()
        self.stem = nn.Linear(in_features, width)
        self.block1 = ResidualBlock(width, hidden, dropout)
        self.block2 = ResidualBlock(width, hidden, dropout)
        self.head = nn.Sequential(nn.BatchNorm1d(width), nn.ReLU(inplace=True),
                                  nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block2(self.block1(self.stem(x.flatten(1)))))
