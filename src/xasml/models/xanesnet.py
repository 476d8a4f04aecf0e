"""The XANESNET multilayer perceptron: descriptor vector -> discretised spectrum.

Rankine & Penfold, J. Chem. Phys. 156, 164102 (2022), §II.B.1 and §III.B: an MLP
``N × 512 × 512 × n_out`` with ReLU hidden layers, batch normalisation and dropout (p = 0.25) on
each hidden layer, He-uniform initialisation, mean-squared-error loss, Adam (lr 1e-4) on
mini-batches of 32 for up to 512 epochs; the descriptor passes a variance-threshold filter (the
paper drops the 25 % lowest-variance wACSF features, keeping G1) and optionally a correlation
filter before standardisation.

The defaults are the paper's configuration. The same class trains faster with a larger batch,
a one-cycle learning-rate schedule and standardised targets (see ``xasml.forward.config``).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
from sklearn.base import RegressorMixin

from xasml.errors import DataError
from xasml.models.base import XasmlEstimator, numpy_to_torch_state, register_model, torch_state_to_numpy

__all__ = ["XanesnetMLP", "feature_filter"]


def feature_filter(X: np.ndarray, variance_fraction: float = 0.25, correlation_threshold: float | None = None,
                   keep: Sequence[int] = (0,)) -> np.ndarray:
    """Boolean mask of descriptor features that survive the variance and correlation filters.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
        Training descriptors.
    variance_fraction : float
        Fraction of features (0-1) with the lowest variance to drop (paper §III.B: 0.25). Features
        with zero variance are always dropped.
    correlation_threshold : float, optional
        Drop a feature whose absolute Pearson correlation with an already kept feature (scanned
        in order of decreasing variance) exceeds this value.
    keep : sequence of int
        Features never dropped (the G1 feature, index 0, as in the paper).

    Returns
    -------
    ndarray of bool, shape (n_features,)
    """
    X = np.asarray(X, dtype=float)
    n = X.shape[1]
    var = X.var(axis=0)
    mask = var > 0
    n_drop = int(round(variance_fraction * n))
    if n_drop > 0:
        order = np.argsort(var, kind="stable")
        mask[order[:n_drop]] = False
    for k in keep:
        if 0 <= k < n and var[k] > 0:
            mask[k] = True
    if correlation_threshold is not None and mask.sum() > 1:
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(-var[idx], kind="stable")]
        C = np.abs(np.corrcoef(X[:, idx], rowvar=False))
        kept: list[int] = []
        for a in range(len(idx)):
            if idx[a] in keep or all(C[a, b] <= correlation_threshold for b in kept):
                kept.append(a)
        mask[:] = False
        mask[idx[kept]] = True
    return mask


def _build_net(n_in: int, hidden: Sequence[int], n_out: int, dropout: float, batchnorm: bool):
    """Linear -> ReLU -> BatchNorm -> Dropout per hidden layer, He-uniform weights, zero biases."""
    from torch import nn

    layers: list[nn.Module] = []
    prev = n_in
    for h in hidden:
        lin = nn.Linear(prev, h)
        nn.init.kaiming_uniform_(lin.weight, nonlinearity="relu")   # He uniform
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.ReLU()]
        if batchnorm:
            layers.append(nn.BatchNorm1d(h))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        prev = h
    out = nn.Linear(prev, n_out)
    nn.init.kaiming_uniform_(out.weight, nonlinearity="linear")
    nn.init.zeros_(out.bias)
    layers.append(out)
    return nn.Sequential(*layers)


@register_model("xanesnet_mlp")
class XanesnetMLP(RegressorMixin, XasmlEstimator):
    """XANESNET MLP regressor from a descriptor vector to a spectrum on a fixed grid.

    A scikit-learn multi-output regressor: ``y`` of shape (n, n_points) gives predictions of that
    shape, a 1-D ``y`` 1-D predictions; ``score`` is scikit-learn's R² (averaged over the output
    points); fitted models pickle.

    Parameters
    ----------
    hidden : tuple of int
        Hidden layer widths (paper: 512, 512).
    dropout : float
        Dropout probability on hidden layers (paper: 0.25).
    batchnorm : bool
        Batch normalisation on hidden layers (paper: yes).
    lr : float
        Adam learning rate (paper: 1e-4); the peak rate for ``schedule="onecycle"``.
    batch_size : int
        Mini-batch size (paper: 32).
    epochs : int
        Training epochs (paper: up to 512).
    weight_decay : float
        Adam (decoupled, AdamW) weight decay; 0 = plain Adam as in the paper.
    schedule : {"constant", "onecycle", "cosine"}
        Learning-rate schedule (paper: constant).
    variance_fraction : float
        Fraction of lowest-variance descriptor features dropped (paper: 0.25); see :func:`feature_filter`.
    correlation_threshold : float, optional
        Correlation filter threshold (None: off).
    scale_targets : bool
        Standardise each output point on the training set (undone at prediction).
    x_transform : {"none", "log1p"}
        Transform of the (non-negative) descriptor before filtering and standardisation;
        ``"log1p"`` compresses the orders of magnitude spanned by G2/G4 values.
    seed : int
        Seed of initialisation, shuffling and dropout.
    device : str, optional
        Torch device; default CPU (``xasml.utils.get_device`` picks CUDA when present).
    n_threads : int, optional
        ``torch.set_num_threads`` during fit/predict.
    verbose : bool
        Print the loss every 10 % of the epochs.

    Attributes
    ----------
    n_features_in_ : int
        Descriptor length.
    n_outputs_ : int
        Output points (1 for a 1-D ``y``).
    feature_mask_ : ndarray of bool, shape (n_features_in_,)
        Descriptor features used.
    x_mean_, x_scale_ : ndarray
        Standardisation of the kept features.
    y_mean_, y_scale_ : ndarray, shape (n_outputs_,)
        Target standardisation (zeros and ones when ``scale_targets`` is False).
    history_ : list of float
        Training loss (MSE in the scaled target space) per epoch.
    fit_seconds_ : float
        Wall-clock training time.
    fit_cpu_seconds_ : float
        CPU time of the training process (equals the wall time on an otherwise idle machine
        with one thread).
    """

    def __init__(self, hidden: tuple = (512, 512), dropout: float = 0.25, batchnorm: bool = True,
                 lr: float = 1e-4, batch_size: int = 32, epochs: int = 512, weight_decay: float = 0.0,
                 schedule: str = "constant", variance_fraction: float = 0.25,
                 correlation_threshold: float | None = None, scale_targets: bool = False,
                 x_transform: str = "none", seed: int = 0,
                 device: str | None = None, n_threads: int | None = 1, verbose: bool = False):
        self.hidden = hidden
        self.dropout = dropout
        self.batchnorm = batchnorm
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.variance_fraction = variance_fraction
        self.correlation_threshold = correlation_threshold
        self.scale_targets = scale_targets
        self.x_transform = x_transform
        self.seed = seed
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose

    # -- helpers -----------------------------------------------------------------------------
    def _threads(self):
        """Context manager: ``torch.set_num_threads(n_threads)`` inside, the previous count restored after."""
        import contextlib

        import torch

        @contextlib.contextmanager
        def ctx():
            old = torch.get_num_threads()
            if self.n_threads:
                torch.set_num_threads(int(self.n_threads))
            try:
                yield
            finally:
                torch.set_num_threads(old)

        return ctx()

    def _transform(self, X: np.ndarray) -> np.ndarray:
        if self.x_transform == "log1p":
            return np.log1p(np.maximum(X, 0.0))
        if self.x_transform != "none":
            raise DataError(f"x_transform {self.x_transform!r}: expected 'none' or 'log1p'")
        return X

    def _prepare_x(self, X: np.ndarray) -> np.ndarray:
        """Validated (2-D, finite, ``n_features_in_`` columns), transformed, filtered, standardised descriptors."""
        X = self._validate(X, reset=False, dtype=np.float64)
        return (self._transform(X)[:, self.feature_mask_] - self.x_mean_) / self.x_scale_

    # -- estimator API -----------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None) -> "XanesnetMLP":
        """Train on descriptors ``X`` (n, n_features) and spectra ``y`` (n, n_points).

        Parameters
        ----------
        X : ndarray, shape (n_samples, n_features)
        y : ndarray, shape (n_samples, n_points) or (n_samples,)
        X_val, y_val : ndarray, optional
            Monitored each epoch (``val_history_``); never used for fitting.

        Returns
        -------
        self

        Raises
        ------
        DataError
            On mismatched shapes, fewer than 2 samples or non-finite values.
        """
        import torch

        if self.schedule not in ("constant", "onecycle", "cosine"):
            raise DataError(f"schedule {self.schedule!r}: expected 'constant', 'onecycle' or 'cosine'")
        # at least 2 samples: batch normalisation cannot train on one
        X, y = self._validate(X, y, reset=True, dtype=np.float64, multi_output=True, y_numeric=True,
                              ensure_min_samples=2)
        y = np.asarray(y, dtype=float)
        self.y_ndim_ = y.ndim
        if y.ndim == 1:
            y = y[:, None]
        t0 = time.perf_counter()
        c0 = time.process_time()
        self.n_features_in_ = X.shape[1]
        self.n_outputs_ = y.shape[1]
        self.feature_mask_ = feature_filter(X, self.variance_fraction, self.correlation_threshold)
        Xk = self._transform(X)[:, self.feature_mask_]
        self.x_mean_ = Xk.mean(axis=0)
        sd = Xk.std(axis=0)
        self.x_scale_ = np.where(sd > 0, sd, 1.0)
        if self.scale_targets:
            self.y_mean_ = y.mean(axis=0)
            ys = y.std(axis=0)
            self.y_scale_ = np.where(ys > 0, ys, 1.0)
        else:
            self.y_mean_ = np.zeros(y.shape[1])
            self.y_scale_ = np.ones(y.shape[1])
        device = self.device or "cpu"
        with self._threads():
            torch.manual_seed(self.seed)
            gen = torch.Generator().manual_seed(self.seed)
            net = _build_net(int(self.feature_mask_.sum()), self.hidden, self.n_outputs_, self.dropout,
                             self.batchnorm).to(device)
            xt = torch.as_tensor(self._prepare_x(X), dtype=torch.float32, device=device)
            yt = torch.as_tensor((y - self.y_mean_) / self.y_scale_, dtype=torch.float32, device=device)
            if X_val is not None:
                xv = torch.as_tensor(self._prepare_x(X_val), dtype=torch.float32, device=device)
                yv_raw = np.asarray(y_val, dtype=float).reshape(len(X_val), -1)
                yv = torch.as_tensor((yv_raw - self.y_mean_) / self.y_scale_, dtype=torch.float32,
                                     device=device)
            opt_cls = torch.optim.AdamW if self.weight_decay else torch.optim.Adam
            opt = opt_cls(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            n = len(xt)
            bs = max(1, min(int(self.batch_size), n))
            # drop a last batch of one sample: batch norm cannot train on it
            steps = n // bs + (1 if n % bs > 1 else 0)
            sched = None
            if self.schedule == "onecycle":
                sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=max(1, steps * self.epochs))
            elif self.schedule == "cosine":
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps * self.epochs))
            loss_fn = torch.nn.MSELoss()
            self.history_: list[float] = []
            self.val_history_: list[float] = []
            for epoch in range(int(self.epochs)):
                net.train()
                perm = torch.randperm(n, generator=gen).to(device)
                total = 0.0
                for s in range(steps):
                    idx = perm[s * bs:(s + 1) * bs]
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(net(xt[idx]), yt[idx])
                    loss.backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
                    total += float(loss.detach()) * len(idx)
                self.history_.append(total / n)
                if X_val is not None:
                    net.eval()
                    with torch.no_grad():
                        self.val_history_.append(float(loss_fn(net(xv), yv)))
                if self.verbose and (epoch + 1) % max(1, self.epochs // 10) == 0:
                    msg = f"epoch {epoch + 1}/{self.epochs} loss {self.history_[-1]:.4g}"
                    if self.val_history_:
                        msg += f" val {self.val_history_[-1]:.4g}"
                    print(msg, flush=True)
        self.net_ = net.cpu().eval()
        self.fit_seconds_ = time.perf_counter() - t0
        self.fit_cpu_seconds_ = time.process_time() - c0
        return self

    def predict(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Predicted spectra, shape (n_samples, n_outputs_), in the units of the training targets.

        A model trained on a 1-D ``y`` returns shape (n_samples,).
        """
        import torch

        self._check_fitted("net_")
        Xs = self._prepare_x(X)
        outs = []
        with self._threads(), torch.no_grad():
            self.net_.eval()
            for s in range(0, len(Xs), batch_size):
                outs.append(self.net_(torch.as_tensor(Xs[s:s + batch_size], dtype=torch.float32)).numpy())
        out = np.concatenate(outs) if outs else np.zeros((0, self.n_outputs_))
        out = out.astype(float) * self.y_scale_ + self.y_mean_
        return out[:, 0] if getattr(self, "y_ndim_", 2) == 1 else out

    def _more_tags(self) -> dict:
        """Tags for scikit-learn < 1.6 (see :meth:`__sklearn_tags__`)."""
        return {"multioutput": True}

    def __sklearn_tags__(self):
        """scikit-learn tags: a multi-output regressor (one output per spectrum point)."""
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    # -- storage -----------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {f"net.{k}": v for k, v in torch_state_to_numpy(self.net_).items()}
        arrays.update({"feature_mask": self.feature_mask_.astype(np.uint8), "x_mean": self.x_mean_,
                       "x_scale": self.x_scale_, "y_mean": self.y_mean_, "y_scale": self.y_scale_})
        state = {"n_features_in": int(self.n_features_in_), "n_outputs": int(self.n_outputs_),
                 "history": [float(h) for h in self.history_], "fit_seconds": float(self.fit_seconds_)}
        if getattr(self, "y_ndim_", 2) != 2:  # trained on a 1-D target; older files have no key (2-D)
            state["y_ndim"] = int(self.y_ndim_)
        return arrays, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.n_features_in_ = int(state["n_features_in"])
        self.n_outputs_ = int(state["n_outputs"])
        self.y_ndim_ = int(state.get("y_ndim", 2))
        self.history_ = list(state.get("history", []))
        self.fit_seconds_ = float(state.get("fit_seconds", 0.0))
        self.feature_mask_ = arrays["feature_mask"].astype(bool)
        self.x_mean_, self.x_scale_ = arrays["x_mean"], arrays["x_scale"]
        self.y_mean_, self.y_scale_ = arrays["y_mean"], arrays["y_scale"]
        self.net_ = _build_net(int(self.feature_mask_.sum()), self.hidden, self.n_outputs_, self.dropout,
                               self.batchnorm)
        numpy_to_torch_state(self.net_, arrays, prefix="net.")
        self.net_.eval()
