"""Torch network modules of the xasml estimators, defined at module level so fitted estimators pickle.

This module imports torch; the estimator modules import it lazily (inside ``fit`` / ``_set_state``)
so that reading a model registry or running commands without networks does not load torch.
The parameter names and their creation order are those of the former in-function classes, so
the shipped ``weights.safetensors`` files load unchanged and a given seed gives the same weights.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EnsembleNet", "TopologyModule", "conv_geometry"]


def conv_geometry(n_inputs: int, kernel_size: int, pool_size: int) -> int:
    """Width after a stride-1 convolution of ``kernel_size`` and max-pooling by ``pool_size``.

    Raises
    ------
    ValueError
        If the input is too short for the convolution and pooling.
    """
    pooled = (n_inputs - kernel_size + 1) // pool_size
    if pooled < 1:
        raise ValueError(f"input of {n_inputs} points is too short for kernel {kernel_size} and pool {pool_size}")
    return pooled


def _uniform(shape, fan_in: int) -> nn.Parameter:
    """A parameter drawn as torch's default Linear / Conv1d initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


class EnsembleNet(nn.Module):
    """``n_members`` independent networks evaluated together (Carbone et al. 2019, Figure 1).

    Each member is [Conv1d(1 -> conv_filters, kernel_size, stride 1) -> ReLU -> MaxPool(pool_size)
    ->] (Linear -> ReLU -> Dropout) x len(hidden) -> Linear. Members share nothing but the
    tensors they are stored in: the convolution is a grouped convolution and the dense layers
    batched matrix products.

    Parameters
    ----------
    n_members : int
        Independent networks.
    n_inputs : int
        Grid points of the input spectrum.
    n_outputs : int
        Classes (logits) or regression targets.
    hidden : sequence of int
        Hidden widths.
    dropout : float
        Dropout after each hidden layer.
    conv_filters : int
        0 for the MLP, else the CNN's filters.
    kernel_size, pool_size : int
        Convolution kernel and max-pool size.

    Raises
    ------
    ValueError
        If the input is too short for the convolution and pooling.
    """

    def __init__(self, n_members: int, n_inputs: int, n_outputs: int, hidden: Sequence[int] = (90, 60, 20),
                 dropout: float = 0.3, conv_filters: int = 0, kernel_size: int = 10, pool_size: int = 2):
        super().__init__()
        M = int(n_members)
        self.n_members = M
        self.conv_filters = int(conv_filters)
        self.dropout = float(dropout)
        self.pool_size = int(pool_size)
        width = n_inputs
        if conv_filters:
            pooled = conv_geometry(n_inputs, kernel_size, pool_size)
            self.conv_weight = _uniform((M * conv_filters, 1, kernel_size), kernel_size)
            self.conv_bias = _uniform((M * conv_filters,), kernel_size)
            width = conv_filters * pooled
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for h in list(hidden) + [n_outputs]:
            self.weights.append(_uniform((M, width, h), width))
            self.biases.append(_uniform((M, 1, h), width))
            width = h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x of shape (n_members, batch, n_inputs) - member m sees x[m] - to (n_members, batch, n_outputs)."""
        Mx, B, L = x.shape
        if self.conv_filters:
            z = F.conv1d(x.permute(1, 0, 2), self.conv_weight, self.conv_bias, groups=Mx)  # (B, M*F, L')
            z = F.max_pool1d(F.relu(z), self.pool_size)  # (B, M*F, P)
            x = z.reshape(B, Mx, -1).permute(1, 0, 2)  # member-major, features filter-major
        n = len(self.weights)
        for i in range(n):
            x = torch.baddbmm(self.biases[i], x, self.weights[i])
            if i < n - 1:
                x = F.dropout(F.relu(x), self.dropout, self.training)
        return x


class TopologyModule(nn.Module):
    """Spectral x atom-type embedding network of Andrejevic et al. (2022) (see :mod:`xasml.models.topology_net`).

    Parameters
    ----------
    n_points : int
        Length of each spectrum.
    spectral_hidden, spectral_dim : int
        Widths of the spectral embedding.
    n_types : int
        Size of the one-hot atom-type vector.
    type_dim : int
        Width of the atom-type embedding.
    hidden : tuple of int
        Widths of the head after the direct product.
    dropout : float
        Dropout rate.
    use_spectra : bool
        False: ones instead of the spectral embedding (NN-type baseline).
    """

    def __init__(self, n_points: int, spectral_hidden: int, spectral_dim: int, n_types: int, type_dim: int,
                 hidden: tuple, dropout: float, use_spectra: bool):
        super().__init__()
        self.n_types = n_types
        self.spectral_dim = spectral_dim
        self.use_spectra = use_spectra
        if use_spectra:
            self.spectral = nn.Sequential(
                nn.Linear(n_points, spectral_hidden), nn.Dropout(dropout), nn.ReLU(),
                nn.Linear(spectral_hidden, spectral_dim), nn.Dropout(dropout), nn.ReLU())
        self.atom_type = nn.Linear(n_types, type_dim)
        layers: list[nn.Module] = []
        d = spectral_dim * type_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.Dropout(dropout), nn.ReLU()]
            d = h
        layers.append(nn.Linear(d, 1))
        self.head = nn.Sequential(*layers)

    def forward(self, X: torch.Tensor, Z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """X (B, A, P) float, Z (B, A) long, mask (B, A) bool -> logits (B,)."""
        t = self.atom_type(F.one_hot(Z, self.n_types).float())  # (B, A, T)
        if self.use_spectra:
            s = self.spectral(X)  # (B, A, S)
        else:
            s = torch.ones(X.shape[0], X.shape[1], self.spectral_dim, device=X.device)
        comp = s.unsqueeze(-1) * t.unsqueeze(-2)  # (B, A, S, T): element-specific channels
        comp = (comp * mask[..., None, None].float()).sum(dim=1)
        return self.head(comp.flatten(1)).squeeze(-1)
