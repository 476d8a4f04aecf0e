"""Rank-constrained adversarial autoencoder (RankAAE) and a latent -> property ensemble.

Seed paper: the Lu-group perspective "AI-driven XAS analysis" (``../shared/papers/002``, §II.C,
Figure 4; RankAAE after its ref. [30]). A RankAAE compresses a spectrum x into a latent vector
z = E(x) of ``n_latent`` (6) dimensions and decodes it back, x' = G(z). Its loss is

    L = L_rec + w_adv L_adv + w_rank L_rank (+ w_dec L_dec)

* L_rec = mean_i ||x_i - G(E(x_i))||² / n_points: reconstruction of the standardised spectrum;
* L_adv: adversarial Gaussian prior (adversarial autoencoder, Makhzani et al. 2015): a
  discriminator D is trained to tell draws z ~ N(0, I) from encoded latents,
  L_D = -log σ(D(z_prior)) - log(1 - σ(D(E(x)))), and the encoder is trained to fool it,
  L_adv = -log σ(D(E(x)));
* L_rank = mean_k mean_{(i,j): d_ik > d_jk} softplus(-(z_ik - z_jk) / τ): a pairwise logistic
  ranking loss (RankNet) per constrained dimension k, over the pairs of a mini-batch whose
  descriptor k is known for both sites and differs; it is small when z_k orders the sites as
  descriptor k does, so each of the first ``n_constrained`` latent dimensions becomes monotone
  in its descriptor (oxidation state, coordination number, ...), the remaining one(s) free;
* L_dec (optional, weight 0 by default): squared off-diagonal correlations of the latent
  dimensions over the batch.

:class:`LatentPropertyEnsemble` is the paper's ensemble of small fully connected networks
mapping the latent vector to OS and CN (32 networks in the paper; 16 here by default): the
ensemble mean is the prediction, the member standard deviation the uncertainty.

Both follow the xasml estimator contract (:mod:`xasml.models.base`). :class:`RankAAE` is a
scikit-learn transformer (``fit(X, y=descriptors)``, ``transform`` -> latent,
``inverse_transform`` -> spectra); it is not in the model-name registry, whose contract tests
cover classifiers and regressors only, and loads with :meth:`RankAAE.load`.
:class:`LatentPropertyEnsemble` is a registered regressor (``"latent_property_ensemble"``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import RegressorMixin, TransformerMixin

from xasml.errors import DataError
from xasml.models.base import XasmlEstimator, numpy_to_torch_state, register_model, torch_state_to_numpy

__all__ = ["LatentPropertyEnsemble", "RankAAE", "load_rankaae", "pairwise_rank_loss"]


def pairwise_rank_loss(z, d, temperature: float = 1.0):
    """Pairwise logistic ranking loss aligning latent columns with descriptor columns (RankAAE's L_rank).

    Parameters
    ----------
    z : torch.Tensor, shape (batch, k)
        The constrained latent dimensions.
    d : torch.Tensor, shape (batch, k)
        Descriptor values; NaN where unknown (such pairs are skipped).
    temperature : float
        τ: latent differences are divided by it.

    Returns
    -------
    torch.Tensor
        Scalar: mean over the columns that have at least one ordered pair of the mean over
        ordered pairs (d_i > d_j) of softplus(-(z_i - z_j)/τ); 0 when no column has a pair.
    """
    import torch
    import torch.nn.functional as F

    losses = []
    for k in range(z.shape[1]):
        ok = torch.isfinite(d[:, k])
        if int(ok.sum()) < 2:
            continue
        zk, dk = z[ok, k], d[ok, k]
        ordered = (dk[:, None] - dk[None, :]) > 1e-9  # pair (i, j) with d_i > d_j
        if not bool(ordered.any()):
            continue
        diff = (zk[:, None] - zk[None, :]) / temperature
        losses.append(F.softplus(-diff[ordered]).mean())
    if not losses:
        return z.sum() * 0.0
    return torch.stack(losses).mean()


def _threads(n):
    import torch

    if n:
        torch.set_num_threads(int(n))


def load_rankaae(path: str | Path) -> RankAAE:
    """Load a :class:`RankAAE` folder written by :meth:`RankAAE.save` (see :meth:`RankAAE.load`)."""
    return RankAAE.load(path)


class RankAAE(TransformerMixin, XasmlEstimator):
    """Rank-constrained adversarial autoencoder of gridded spectra (seed 002 §II.C, Figure 4).

    Parameters
    ----------
    n_latent : int
        Latent dimensions (6 in the paper).
    hidden : sequence of int
        Encoder hidden widths (the decoder mirrors them).
    disc_hidden : sequence of int
        Discriminator hidden widths.
    epochs, batch_size, learning_rate : training (Adam for the autoencoder and the discriminator).
    rank_weight : float
        w_rank; 0 gives a plain adversarial autoencoder (for comparison).
    adversarial_weight : float
        w_adv, weight of the encoder's adversarial term.
    decorrelation_weight : float
        w_dec, weight of the latent decorrelation penalty (0: off).
    rank_temperature : float
        τ of :func:`pairwise_rank_loss`.
    noise_sigma : float
        Gaussian noise added to the standardised input during training (denoising; 0: none).
    weight_decay : float
        L2 penalty of the autoencoder's Adam.
    seed : int
        Seeds torch and the batch order: same seed and data, same weights.
    device : str, optional
        ``"cpu"`` (default) or ``"cuda"``.
    n_threads : int, optional
        ``torch.set_num_threads`` during fit.

    Attributes
    ----------
    n_features_in_ : int
        Grid points of the training spectra.
    n_constrained_ : int
        Latent dimensions tied to a descriptor (the columns of ``y`` in ``fit``; 0 without).
    feature_mean_, feature_scale_ : ndarray, shape (n_features_in_,)
        Per-grid-point standardisation of the input.
    module_ : xasml.latent.nets.RankAAEModule
        Encoder, decoder and discriminator.
    history_ : dict of list of float
        Per-epoch mean of each loss term (``rec``, ``adv``, ``rank``, ``disc``).
    """

    def __init__(self, n_latent: int = 6, hidden: Sequence[int] = (128, 64), disc_hidden: Sequence[int] = (64, 64),
                 epochs: int = 100, batch_size: int = 64, learning_rate: float = 1e-3, rank_weight: float = 1.0,
                 adversarial_weight: float = 0.05, decorrelation_weight: float = 0.0, rank_temperature: float = 1.0,
                 noise_sigma: float = 0.0, weight_decay: float = 0.0, seed: int = 0, device: str | None = None,
                 n_threads: int | None = None):
        self.n_latent = n_latent
        self.hidden = hidden
        self.disc_hidden = disc_hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.rank_weight = rank_weight
        self.adversarial_weight = adversarial_weight
        self.decorrelation_weight = decorrelation_weight
        self.rank_temperature = rank_temperature
        self.noise_sigma = noise_sigma
        self.weight_decay = weight_decay
        self.seed = seed
        self.device = device
        self.n_threads = n_threads

    def __sklearn_tags__(self):
        """scikit-learn tags: the latents are float32 (the networks' precision) for any input dtype."""
        tags = super().__sklearn_tags__()
        if getattr(tags, "transformer_tags", None) is not None:
            tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    # -- helpers ---------------------------------------------------------------------------
    def _module(self, n_in: int):
        from xasml.latent.nets import RankAAEModule

        return RankAAEModule(n_in, int(self.n_latent), tuple(self.hidden), tuple(self.disc_hidden))

    def _standardize(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.feature_mean_) / self.feature_scale_).astype(np.float32)

    def fit(self, X, y=None) -> RankAAE:
        """Train on spectra ``X`` with descriptors ``y`` (the rank constraint).

        Parameters
        ----------
        X : array_like, shape (n, n_points)
            Max-normalised spectra on one energy grid.
        y : array_like, shape (n, k) or (n,), optional
            Descriptor values of each site, NaN where unknown; column j constrains latent
            dimension j (k <= n_latent). None: no rank constraint.

        Returns
        -------
        self

        Raises
        ------
        DataError
            If ``X`` is malformed (not 2-D, empty, NaN/inf), ``y`` has the wrong number of rows
            or more columns than latent dimensions, or a parameter is out of range.
        """
        import torch
        import torch.nn.functional as F

        X = self._validate(X, reset=True, dtype=np.float32)
        n = len(X)
        if n < 2:
            raise DataError(f"RankAAE needs at least 2 spectra, got n_samples = {n}")
        if int(self.n_latent) < 1:
            raise DataError(f"n_latent must be >= 1, got {self.n_latent}")
        if y is None:
            D = np.full((n, 0), np.nan, dtype=np.float32)
        else:
            D = np.asarray(y, dtype=float)
            D = D[:, None] if D.ndim == 1 else D
            if D.ndim != 2 or len(D) != n:
                raise DataError(f"descriptors have shape {D.shape}; expected ({n}, k), one row per spectrum")
            if D.shape[1] > int(self.n_latent):
                raise DataError(f"{D.shape[1]} descriptor columns but only {self.n_latent} latent dimensions")
            D = np.where(np.isfinite(D), D, np.nan).astype(np.float32)
        self.n_constrained_ = int(D.shape[1])
        _threads(self.n_threads)
        device = torch.device(self.device or "cpu")
        self.feature_mean_ = X.mean(axis=0).astype(np.float32)
        sd = X.std(axis=0)
        self.feature_scale_ = np.where(sd > 1e-8, sd, 1.0).astype(np.float32)
        Xs = torch.from_numpy(self._standardize(X)).to(device)
        Dt = torch.from_numpy(D).to(device)
        torch.manual_seed(int(self.seed))
        gen = torch.Generator().manual_seed(int(self.seed))
        module = self._module(X.shape[1]).to(device)
        ae_params = list(module.encoder.parameters()) + list(module.decoder.parameters())
        opt_ae = torch.optim.Adam(ae_params, lr=self.learning_rate, weight_decay=self.weight_decay)
        opt_d = torch.optim.Adam(module.discriminator.parameters(), lr=self.learning_rate, betas=(0.5, 0.9))
        bs = max(2, int(self.batch_size))
        L = int(self.n_latent)
        hist: dict[str, list] = {"rec": [], "adv": [], "rank": [], "disc": []}
        for _ in range(int(self.epochs)):
            module.train()
            order = torch.randperm(n, generator=gen).to(device)
            sums = dict.fromkeys(hist, 0.0)
            nb = 0
            for b in range(0, n, bs):
                idx = order[b:b + bs]
                if len(idx) < 2:
                    continue
                xb = Xs[idx]
                xin = xb + self.noise_sigma * torch.randn(xb.shape, generator=gen).to(device) \
                    if self.noise_sigma > 0 else xb
                # discriminator step: prior draws are "real", encoded latents "fake"
                with torch.no_grad():
                    z_fake = module.encoder(xin)
                z_real = torch.randn(len(idx), L, generator=gen).to(device)
                lr_, lf_ = module.discriminator(z_real), module.discriminator(z_fake)
                loss_d = F.binary_cross_entropy_with_logits(lr_, torch.ones_like(lr_)) + \
                    F.binary_cross_entropy_with_logits(lf_, torch.zeros_like(lf_))
                opt_d.zero_grad()
                loss_d.backward()
                opt_d.step()
                # autoencoder step
                z = module.encoder(xin)
                rec = F.mse_loss(module.decoder(z), xb)
                lg = module.discriminator(z)
                adv = F.binary_cross_entropy_with_logits(lg, torch.ones_like(lg))
                rank = pairwise_rank_loss(z[:, :self.n_constrained_], Dt[idx], self.rank_temperature) \
                    if self.n_constrained_ and self.rank_weight > 0 else z.sum() * 0.0
                loss = rec + self.adversarial_weight * adv + self.rank_weight * rank
                if self.decorrelation_weight > 0:
                    zc = (z - z.mean(0)) / (z.std(0) + 1e-6)
                    C = zc.T @ zc / len(idx)
                    loss = loss + self.decorrelation_weight * (C - torch.diag(torch.diag(C))).pow(2).sum() / (L * (L - 1) or 1)
                opt_ae.zero_grad()
                loss.backward()
                opt_ae.step()
                for k, v in (("rec", rec), ("adv", adv), ("rank", rank), ("disc", loss_d)):
                    sums[k] += float(v.detach())
                nb += 1
            for k in hist:
                hist[k].append(round(sums[k] / max(nb, 1), 6))
        self.history_ = hist
        self.module_ = module.cpu().eval()
        return self

    def transform(self, X) -> np.ndarray:
        """Latent vectors z = E(x), shape (n, n_latent), of spectra ``X`` (n, n_features_in_).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit`` / ``load``.
        DataError
            If ``X`` is malformed or has another number of grid points.
        """
        import torch

        self._check_fitted("module_")
        X = self._validate(X, reset=False, dtype=np.float32)
        with torch.no_grad():
            return self.module_.encoder(torch.from_numpy(self._standardize(X))).numpy()

    def inverse_transform(self, Z) -> np.ndarray:
        """Decoded spectra x' = G(z), shape (n, n_features_in_), on the training scale (max-normalised).

        Parameters
        ----------
        Z : array_like, shape (n, n_latent)

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit`` / ``load``.
        DataError
            If ``Z`` does not have ``n_latent`` columns.
        """
        import torch

        self._check_fitted("module_")
        Z = np.asarray(Z, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != int(self.n_latent) or not np.isfinite(Z).all():
            raise DataError(f"latent array has shape {Z.shape}; expected (n, {self.n_latent}) finite values")
        with torch.no_grad():
            out = self.module_.decoder(torch.from_numpy(Z)).numpy()
        return out * self.feature_scale_ + self.feature_mean_

    def reconstruct(self, X) -> np.ndarray:
        """Reconstruction G(E(x)) of spectra ``X`` (n, n_features_in_; max-normalised), same shape.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit`` / ``load``.
        """
        return self.inverse_transform(self.transform(X))

    # -- storage ---------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {"feature_mean": self.feature_mean_, "feature_scale": self.feature_scale_}
        arrays.update({f"module.{k}": v for k, v in torch_state_to_numpy(self.module_).items()})
        hist = getattr(self, "history_", {})
        return arrays, {"n_features_in": int(self.n_features_in_), "n_constrained": int(self.n_constrained_),
                        "final_loss": {k: (v[-1] if v else None) for k, v in hist.items()}}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.n_features_in_ = int(state["n_features_in"])
        self.n_constrained_ = int(state["n_constrained"])
        self.feature_mean_ = np.asarray(arrays["feature_mean"], dtype=np.float32)
        self.feature_scale_ = np.asarray(arrays["feature_scale"], dtype=np.float32)
        module = self._module(self.n_features_in_)
        numpy_to_torch_state(module, arrays, prefix="module.")
        self.module_ = module.eval()

    @classmethod
    def load(cls, path: str | Path) -> RankAAE:
        """Load a folder written by :meth:`save` (``estimator.json`` + ``weights.safetensors``; no pickle).

        Raises
        ------
        DataError
            If the folder is not a saved RankAAE, or its weights are unreadable, non-finite or do
            not fit the stored parameters (the folder is named).
        """
        from safetensors.numpy import load_file

        path = Path(path)
        meta_path = path / "estimator.json"
        if not meta_path.exists():
            raise DataError(f"{path}: not a saved model (no estimator.json)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("model") != "RankAAE":
                raise DataError(f"{meta_path}: field 'model' is {meta.get('model') if isinstance(meta, dict) else None!r};"
                                " expected 'RankAAE'")
            est = cls(**meta.get("params", {}))
            arrays = load_file(str(path / "weights.safetensors"))
            if not all(np.isfinite(v).all() for v in arrays.values() if v.dtype.kind == "f"):
                raise DataError(f"{path / 'weights.safetensors'}: non-finite weights; the file is corrupt")
            est._set_state(arrays, meta.get("state", {}))
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{path}: cannot load the RankAAE model ({type(exc).__name__}: {str(exc)[:200]})") from None
        return est


@register_model("latent_property_ensemble")
class LatentPropertyEnsemble(RegressorMixin, XasmlEstimator):
    """Ensemble of small fully connected networks: latent vector -> site properties (OS, CN).

    The seed perspective (``../shared/papers/002`` §II.C) trains 32 such networks on the RankAAE
    latent space and reports their mean as the prediction and their standard deviation as the
    uncertainty. Members differ by initialisation and by a bootstrap resample of the training
    rows; all are trained at once as batched matrix products.

    Parameters
    ----------
    hidden : sequence of int
        Hidden widths (SiLU).
    n_members : int
        Networks (16 by default; the paper uses 32); at least 2.
    epochs, batch_size, learning_rate, weight_decay : Adam training.
    bootstrap : bool
        Each member trains on a bootstrap resample.
    seed : int
        Seeds initialisation, resamples and batch order.
    device : str, optional
        ``"cpu"`` (default) or ``"cuda"``.
    n_threads : int, optional
        ``torch.set_num_threads`` during fit.

    Attributes
    ----------
    n_features_in_ : int
    n_outputs_ : int
        Targets (columns of ``y``).
    feature_mean_, feature_scale_ : ndarray, shape (n_features_in_,)
    target_mean_, target_scale_ : ndarray, shape (n_outputs_,)
    std_scale_ : ndarray, shape (n_outputs_,)
        Factor on the member spread (1 after ``fit``; see :meth:`calibrate`).
    net_ : xasml.latent.nets.BatchedMLP
    """

    def __init__(self, hidden: Sequence[int] = (32, 32), n_members: int = 16, epochs: int = 200,
                 batch_size: int = 128, learning_rate: float = 3e-3, weight_decay: float = 1e-4,
                 bootstrap: bool = True, seed: int = 0, device: str | None = None, n_threads: int | None = None):
        self.hidden = hidden
        self.n_members = n_members
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.bootstrap = bootstrap
        self.seed = seed
        self.device = device
        self.n_threads = n_threads

    def __sklearn_tags__(self):
        """scikit-learn tags: several targets at once are supported (OS and CN)."""
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _net(self, n_in: int, n_out: int, n_members: int):
        from xasml.latent.nets import BatchedMLP

        return BatchedMLP(n_members, n_in, n_out, tuple(self.hidden))

    def fit(self, X, y) -> LatentPropertyEnsemble:
        """Train on features ``X`` (n, n_features; latent vectors) and targets ``y`` (n,) or (n, t).

        Targets may hold NaN (an unknown label): those entries are left out of the loss.

        Returns
        -------
        self

        Raises
        ------
        DataError
            If ``X`` is malformed, ``y`` has another number of rows or a target column has no
            known value, or fewer than 2 members are requested.
        """
        import torch

        if int(self.n_members) < 2:
            raise DataError("an ensemble needs n_members >= 2 for an uncertainty")
        if y is None:
            raise DataError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        X = self._validate(X, reset=True, dtype=np.float32)
        Y = np.asarray(y, dtype=float)
        if Y.ndim == 2 and Y.shape[1] == 1:  # a column vector is one target, as scikit-learn regressors treat it
            import warnings

            from sklearn.exceptions import DataConversionWarning

            warnings.warn("A column-vector y was passed when a 1d array was expected", DataConversionWarning,
                          stacklevel=2)
            Y = Y[:, 0]
        self._single_ = Y.ndim == 1
        Y = Y[:, None] if Y.ndim == 1 else Y
        if Y.ndim != 2 or len(Y) != len(X):
            raise DataError(f"targets have shape {np.shape(y)}; expected ({len(X)},) or ({len(X)}, t)")
        known = np.isfinite(Y)
        if not known.any(axis=0).all():
            raise DataError("a target column has no known value")
        _threads(self.n_threads)
        device = torch.device(self.device or "cpu")
        self.n_outputs_ = int(Y.shape[1])
        self.std_scale_ = np.ones(self.n_outputs_, dtype=np.float32)
        self.feature_mean_ = X.mean(axis=0).astype(np.float32)
        sd = X.std(axis=0)
        self.feature_scale_ = np.where(sd > 1e-8, sd, 1.0).astype(np.float32)
        self.target_mean_ = np.array([Y[known[:, j], j].mean() for j in range(Y.shape[1])], dtype=np.float32)
        tsd = np.array([Y[known[:, j], j].std() for j in range(Y.shape[1])])
        self.target_scale_ = np.where(tsd > 1e-8, tsd, 1.0).astype(np.float32)
        Xs = torch.from_numpy(((X - self.feature_mean_) / self.feature_scale_).astype(np.float32)).to(device)
        T = torch.from_numpy(np.where(known, (Y - self.target_mean_) / self.target_scale_, 0.0).astype(np.float32)).to(device)
        Mk = torch.from_numpy(known.astype(np.float32)).to(device)
        n, M, bs = len(X), int(self.n_members), int(self.batch_size)
        torch.manual_seed(int(self.seed))
        gen = torch.Generator().manual_seed(int(self.seed))
        rows = torch.randint(0, n, (M, n), generator=gen) if self.bootstrap else torch.arange(n).repeat(M, 1)
        net = self._net(X.shape[1], self.n_outputs_, M).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(int(self.epochs), 1))
        for _ in range(int(self.epochs)):
            net.train()
            order = torch.gather(rows, 1, torch.argsort(torch.rand(M, n, generator=gen), dim=1)).to(device)
            for b in range(0, n, bs):
                bi = order[:, b:b + bs]
                err = (net(Xs[bi]) - T[bi]) ** 2 * Mk[bi]
                loss = err.sum() / Mk[bi].sum().clamp(min=1.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
        self.net_ = net.cpu().eval()
        return self

    def predict_members(self, X) -> np.ndarray:
        """Each member's prediction (float64), shape (n_members, n, n_outputs_).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit`` / ``load``.
        """
        import torch

        self._check_fitted("net_")
        X = self._validate(X, reset=False, dtype=np.float32)
        Xs = torch.from_numpy(((X - self.feature_mean_) / self.feature_scale_).astype(np.float32))
        with torch.no_grad():
            P = self.net_(Xs.unsqueeze(0).expand(self.net_.n_members, -1, -1).contiguous()).numpy()
        return P.astype(np.float64) * self.target_scale_ + self.target_mean_

    def predict(self, X, return_std: bool = False):
        """Ensemble mean, shape (n,) for one target or (n, n_outputs_); with ``return_std`` also the uncertainty.

        The uncertainty is the member standard deviation times ``std_scale_`` (1 unless
        :meth:`calibrate` was called).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit`` / ``load``.
        """
        P = self.predict_members(X)
        mean, std = P.mean(axis=0), P.std(axis=0, ddof=1) * getattr(self, "std_scale_", np.ones(P.shape[2]))
        if getattr(self, "_single_", False):
            mean, std = mean[:, 0], std[:, 0]
        return (mean, std) if return_std else mean

    def calibrate(self, X, y, coverage: float = 0.9545) -> LatentPropertyEnsemble:
        """Scale the member spread per target so that ±2σ holds ``coverage`` of held-out data.

        Bootstrap ensembles are over-confident; one factor per target, ``std_scale_`` =
        (``coverage`` quantile of ``|y - mean| / std``) / 2, is learned on a validation set (never
        the test set), as :meth:`xasml.models.local_nets.SpectrumEnsembleRegressor.calibrate` does.

        Parameters
        ----------
        X : array_like, shape (n, n_features_in_)
            Held-out features (latents).
        y : array_like, shape (n,) or (n, n_outputs_)
            Their targets, NaN where unknown.
        coverage : float
            Target fraction inside ±2σ.

        Returns
        -------
        self

        Raises
        ------
        DataError
            If a target has fewer than 5 known held-out values.
        """
        P = self.predict_members(X)
        Y = np.asarray(y, dtype=float).reshape(len(P[0]), -1)
        mean, std = P.mean(axis=0), P.std(axis=0, ddof=1)
        scale = np.ones(P.shape[2], dtype=np.float32)
        for j in range(P.shape[2]):
            ok = np.isfinite(Y[:, j])
            if ok.sum() < 5:
                raise DataError(f"calibration needs at least 5 held-out values per target, got {int(ok.sum())}")
            z = np.abs(Y[ok, j] - mean[ok, j]) / np.maximum(std[ok, j], 1e-8)
            scale[j] = max(float(np.quantile(z, coverage)) / 2.0, 1e-3)
        self.std_scale_ = scale
        return self

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {"feature_mean": self.feature_mean_, "feature_scale": self.feature_scale_,
                  "target_mean": self.target_mean_, "target_scale": self.target_scale_,
                  "std_scale": np.asarray(getattr(self, "std_scale_", np.ones(self.n_outputs_)), dtype=np.float32)}
        arrays.update({f"net.{k}": v for k, v in torch_state_to_numpy(self.net_).items()})
        return arrays, {"n_features_in": int(self.n_features_in_), "n_outputs": int(self.n_outputs_),
                        "n_fitted_members": int(self.net_.n_members), "single_output": bool(self._single_)}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.n_features_in_ = int(state["n_features_in"])
        self.n_outputs_ = int(state["n_outputs"])
        self._single_ = bool(state.get("single_output", False))
        for k in ("feature_mean", "feature_scale", "target_mean", "target_scale"):
            setattr(self, f"{k}_", np.asarray(arrays[k], dtype=np.float32))
        self.std_scale_ = np.asarray(arrays.get("std_scale", np.ones(self.n_outputs_)), dtype=np.float32)
        net = self._net(self.n_features_in_, self.n_outputs_, int(state["n_fitted_members"]))
        numpy_to_torch_state(net, arrays, prefix="net.")
        self.net_ = net.eval()
