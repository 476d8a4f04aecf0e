"""Torch modules of the RankAAE estimators, at module level so that fitted estimators pickle.

Imported lazily by :mod:`xasml.models.rankaae` (inside ``fit`` / ``_set_state``) so that the
model registry and the command line load without torch.
Architecture after the seed perspective ``../shared/papers/002`` §II.C, Figure 4: a fully
connected encoder to a 6-dimensional latent space, a mirrored decoder, and a discriminator that
tells encoded latents from draws of the Gaussian prior.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["BatchedMLP", "RankAAEModule", "mlp"]


def mlp(sizes: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with SiLU (and dropout) between them, none after the last.

    Parameters
    ----------
    sizes : sequence of int
        Widths, input first.
    dropout : float
        Dropout after each hidden activation.

    Returns
    -------
    torch.nn.Sequential
    """
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(int(sizes[i]), int(sizes[i + 1])))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class RankAAEModule(nn.Module):
    """Encoder, decoder and latent discriminator of a RankAAE.

    Parameters
    ----------
    n_inputs : int
        Grid points of the (standardised) spectrum.
    n_latent : int
        Latent dimensions (6 in the paper).
    hidden : sequence of int
        Encoder hidden widths; the decoder mirrors them.
    disc_hidden : sequence of int
        Discriminator hidden widths.
    """

    def __init__(self, n_inputs: int, n_latent: int, hidden: Sequence[int], disc_hidden: Sequence[int]):
        super().__init__()
        hidden = [int(h) for h in hidden]
        self.encoder = mlp([n_inputs, *hidden, n_latent])
        self.decoder = mlp([n_latent, *hidden[::-1], n_inputs])
        self.discriminator = mlp([n_latent, *[int(h) for h in disc_hidden], 1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode and decode.

        Parameters
        ----------
        x : torch.Tensor, shape (batch, n_inputs)
            Standardised spectra.

        Returns
        -------
        (torch.Tensor, torch.Tensor)
            Latent (batch, n_latent) and reconstruction (batch, n_inputs).
        """
        z = self.encoder(x)
        return z, self.decoder(z)


class BatchedMLP(nn.Module):
    """``n_members`` independent MLPs evaluated together (batched matrix products).

    Parameters
    ----------
    n_members : int
    n_inputs, n_outputs : int
    hidden : sequence of int
        Hidden widths (SiLU activations).

    ``forward(x)``: x of shape (n_members, batch, n_inputs) -> (n_members, batch, n_outputs).
    """

    def __init__(self, n_members: int, n_inputs: int, n_outputs: int, hidden: Sequence[int]):
        super().__init__()
        self.n_members = int(n_members)
        sizes = [int(n_inputs), *[int(h) for h in hidden], int(n_outputs)]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            w = torch.empty(self.n_members, a, b)
            bound = 1.0 / math.sqrt(a)
            nn.init.uniform_(w, -bound, bound)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.empty(self.n_members, 1, b).uniform_(-bound, bound)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply member m to x[m].

        Parameters
        ----------
        x : torch.Tensor, shape (n_members, batch, n_inputs)

        Returns
        -------
        torch.Tensor, shape (n_members, batch, n_outputs)
        """
        n = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < n - 1:
                x = torch.nn.functional.silu(x)
        return x
