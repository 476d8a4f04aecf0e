"""The XAS topology classifier of Andrejevic et al., Adv. Mater. 34, 2204113 (2022).

Architecture (paper §3.2, Experimental Section, Figure 2b, Figure S5a):

* spectral embedding of each absorber's standardised K-edge spectrum:
  ``n_points -> 256 -> 64``, each linear layer followed by dropout (0.5) and ReLU;
* atom-type embedding: one linear layer on the one-hot atomic number (93 -> 93);
* direct (outer) product of the two embeddings per absorber, ``64 x 93``, summed over the
  absorbers of the compound (so any subset of a compound's edges can be used) and flattened
  (5952 features);
* ``5952 -> 256 -> 64`` (dropout 0.5 and ReLU after each) ``-> 1`` logit; sigmoid = probability
  of the topological class.

Training: binary cross-entropy with ``pos_weight`` for the class imbalance, Adam (learning
rate 1e-4), at most ~80 epochs with early stopping on the validation loss (best epoch kept),
decision threshold from the validation ROC curve. ``use_spectra=False`` gives the paper's
NN-type baseline (spectral embedding replaced by a vector of ones, Figure S5a).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin

from xasml.datasets.topology import TopologyData
from xasml.errors import DataError
from xasml.models.base import (
    XasmlEstimator,
    numpy_to_torch_state,
    register_model,
    torch_state_to_numpy,
)


def _build_module(n_points: int, spectral_hidden: int, spectral_dim: int, n_types: int, type_dim: int,
                  hidden: tuple, dropout: float, use_spectra: bool):
    """A :class:`xasml.models.nets.TopologyModule` (module level, so fitted estimators pickle)."""
    from xasml.models.nets import TopologyModule

    return TopologyModule(n_points, spectral_hidden, spectral_dim, n_types, type_dim, hidden, dropout, use_spectra)


@register_model("topology_net")
class TopologyNet(ClassifierMixin, XasmlEstimator):
    """Topology classifier on a compound's element spectra and atom types (Andrejevic et al. 2022).

    A scikit-learn classifier of compounds given as :class:`~xasml.datasets.topology.TopologyData`
    (not a plain array, so ``check_estimator`` does not apply): labels 0 (trivial) and 1
    (topological), ``score`` is the accuracy, :class:`sklearn.exceptions.NotFittedError` before
    fit, and fitted models pickle.

    Parameters
    ----------
    n_points : int
        Length of each spectrum (200 in the paper).
    spectral_hidden, spectral_dim : int
        Widths of the spectral embedding (256, 64).
    n_types : int
        Size of the one-hot atom-type vector; index = atomic number (93: Z up to 92).
    type_dim : int
        Width of the atom-type embedding (93).
    hidden : tuple of int
        Widths of the head after the direct product (256, 64).
    dropout : float
        Dropout rate (0.5).
    lr : float
        Adam learning rate (1e-4).
    weight_decay : float
        Adam weight decay (0 in the paper).
    epochs : int
        Maximum number of epochs (80).
    patience : int or None
        Stop when the validation loss has not improved for this many epochs (None: run all
        epochs, keep the best).
    batch_size : int
        Mini-batch size.
    pos_weight : "balanced" or float
        Weight of the positive (topological) class in the BCE loss; ``"balanced"`` =
        n_trivial / n_topological on the training set.
    use_spectra : bool
        False gives the NN-type baseline (ones instead of the spectral embedding).
    n_ensemble : int
        Number of networks trained with different seeds; probabilities are averaged.
    threshold_method : {"youden", "f1", "fixed"}
        How the decision threshold is chosen on the validation set (``"fixed"``: 0.5).
    seed : int
        Seed of initialisation and batch order: member m of the ensemble is seeded with
        ``seed * 1000 + m`` (so member m is the same network whatever ``n_ensemble``).
    device : str or None
        ``"cpu"``, ``"cuda"``; None picks the GPU when present.
    verbose : bool
        Show a progress bar over epochs.

    Attributes
    ----------
    classes_ : ndarray, [0, 1]
        Class labels (trivial, topological).
    modules_ : list of torch.nn.Module
        The fitted networks.
    pos_weight_ : float
        Positive-class weight used in the loss.
    threshold_ : float
        Decision threshold on the probability.
    history_ : list of dict
        Per member, per epoch: train and validation loss.
    best_epoch_ : list of int
        Epoch kept for each member.
    """

    def __init__(self, n_points: int = 200, spectral_hidden: int = 256, spectral_dim: int = 64,
                 n_types: int = 93, type_dim: int = 93, hidden: tuple = (256, 64), dropout: float = 0.5,
                 lr: float = 1e-4, weight_decay: float = 0.0, epochs: int = 80, patience: int | None = 20,
                 batch_size: int = 32, pos_weight: str | float = "balanced", use_spectra: bool = True,
                 n_ensemble: int = 1, threshold_method: str = "youden", seed: int = 0,
                 device: str | None = None, verbose: bool = False):
        self.n_points = n_points
        self.spectral_hidden = spectral_hidden
        self.spectral_dim = spectral_dim
        self.n_types = n_types
        self.type_dim = type_dim
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.pos_weight = pos_weight
        self.use_spectra = use_spectra
        self.n_ensemble = n_ensemble
        self.threshold_method = threshold_method
        self.seed = seed
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------------------------------
    def _new_module(self):
        return _build_module(int(self.n_points), int(self.spectral_hidden), int(self.spectral_dim),
                             int(self.n_types), int(self.type_dim), tuple(int(h) for h in self.hidden),
                             float(self.dropout), bool(self.use_spectra))

    def _tensors(self, data: TopologyData, device):
        import torch

        if data.X.shape[2] != self.n_points:
            raise DataError(f"spectra have {data.X.shape[2]} points, the model expects {self.n_points}")
        if data.Z.max(initial=0) >= self.n_types:
            raise DataError(f"atomic number {int(data.Z.max())} exceeds the atom-type vocabulary "
                            f"(n_types={self.n_types})")
        return (torch.as_tensor(data.X, dtype=torch.float32, device=device),
                torch.as_tensor(data.Z, dtype=torch.long, device=device),
                torch.as_tensor(data.mask, dtype=torch.bool, device=device))

    def fit(self, X: TopologyData, y=None, validation: TopologyData | None = None) -> TopologyNet:
        """Train on ``X`` (labels ``X.y`` unless ``y`` is given), early-stopping on ``validation``.

        Parameters
        ----------
        X : TopologyData
            Training compounds.
        y : array_like of {0, 1}, shape (n,), optional
            Labels (default ``X.y``).
        validation : TopologyData, optional
            Validation compounds: early stopping and the decision threshold. Without it the
            last epoch is kept and the threshold is 0.5.

        Returns
        -------
        self

        Raises
        ------
        DataError
            If labels are missing or of one class only.
        """
        import torch

        from xasml.utils import get_device, progress

        y = np.asarray(X.y if y is None else y, dtype=np.float32)
        if np.any((y != 0) & (y != 1)):
            raise DataError("TopologyNet.fit: labels must be 0 (trivial) or 1 (topological)")
        n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
        if n_pos == 0 or n_neg == 0:
            raise DataError("TopologyNet.fit: the training set needs both classes")
        self.pos_weight_ = float(n_neg / n_pos) if self.pos_weight == "balanced" else float(self.pos_weight)
        device = torch.device(get_device(self.device))
        Xt, Zt, Mt = self._tensors(X, device)
        yt = torch.as_tensor(y, device=device)
        if validation is not None and len(validation):
            Xv, Zv, Mv = self._tensors(validation, device)
            yv = torch.as_tensor(validation.y, dtype=torch.float32, device=device)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(self.pos_weight_, device=device))
        self.classes_ = np.array([0, 1])
        self.modules_, self.history_, self.best_epoch_ = [], [], []
        for member in range(int(self.n_ensemble)):
            seed = int(self.seed) * 1000 + member
            torch.manual_seed(seed)
            gen = torch.Generator().manual_seed(seed)
            net = self._new_module().to(device)
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            best, best_state, best_epoch, since, hist = np.inf, None, -1, 0, []
            epochs = progress(range(int(self.epochs)), desc=f"network {member + 1}/{self.n_ensemble}",
                              disable=not self.verbose)
            for epoch in epochs:
                net.train()
                perm = torch.randperm(len(y), generator=gen).to(device)
                tot = 0.0
                for a in range(0, len(y), int(self.batch_size)):
                    b = perm[a:a + int(self.batch_size)]
                    opt.zero_grad()
                    loss = loss_fn(net(Xt[b], Zt[b], Mt[b]), yt[b])
                    loss.backward()
                    opt.step()
                    tot += float(loss.detach()) * len(b)
                rec = {"epoch": epoch + 1, "train_loss": tot / len(y)}
                if validation is not None and len(validation):
                    net.eval()
                    with torch.no_grad():
                        vl = float(loss_fn(net(Xv, Zv, Mv), yv))
                    rec["val_loss"] = vl
                    if vl < best - 1e-6:
                        best, best_epoch, since = vl, epoch + 1, 0
                        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    else:
                        since += 1
                hist.append(rec)
                if self.patience is not None and validation is not None and since >= int(self.patience):
                    break
            if best_state is not None:
                net.load_state_dict(best_state)
            else:
                best_epoch = len(hist)
            net.eval()
            self.modules_.append(net)
            self.history_.append(hist)
            self.best_epoch_.append(int(best_epoch))
        self.threshold_ = 0.5
        if validation is not None and len(validation) and self.threshold_method != "fixed" \
                and len(np.unique(validation.y)) == 2:
            from xasml.evaluation.metrics import threshold_from_roc

            self.threshold_ = float(threshold_from_roc(validation.y, self.predict_proba(validation)[:, 1],
                                                       method=self.threshold_method))
        return self

    def predict_proba(self, X: TopologyData) -> np.ndarray:
        """Class probabilities, shape (n, 2): columns trivial, topological (ensemble mean)."""
        import torch

        self._check_fitted("modules_")
        device = next(self.modules_[0].parameters()).device
        Xt, Zt, Mt = self._tensors(X, device)
        with torch.no_grad():
            p = np.mean([torch.sigmoid(m(Xt, Zt, Mt)).cpu().numpy() for m in self.modules_], axis=0)
        p = np.asarray(p, dtype=float).reshape(-1)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: TopologyData) -> np.ndarray:
        """1 (topological) where the probability reaches ``threshold_``, else 0."""
        return (self.predict_proba(X)[:, 1] >= self.threshold_).astype(int)

    # ------------------------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self._check_fitted("modules_")
        arrays = {}
        for k, m in enumerate(self.modules_):
            arrays.update({f"member{k}.{name}": v for name, v in torch_state_to_numpy(m).items()})
        return arrays, {"threshold": self.threshold_, "pos_weight": self.pos_weight_,
                        "n_members": len(self.modules_), "best_epoch": self.best_epoch_,
                        "history": self.history_}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        from xasml.utils import get_device

        device = get_device(self.device)
        self.modules_ = []
        for k in range(int(state["n_members"])):
            m = self._new_module()
            numpy_to_torch_state(m, arrays, prefix=f"member{k}.")
            m.to(device).eval()
            self.modules_.append(m)
        self.classes_ = np.array([0, 1])
        self.threshold_ = float(state["threshold"])
        self.pos_weight_ = float(state.get("pos_weight", 1.0))
        self.best_epoch_ = list(state.get("best_epoch", []))
        self.history_ = state.get("history", [])


@register_model("nn_type")
class AtomTypeNet(TopologyNet):
    """NN-type baseline: :class:`TopologyNet` with the spectral embedding replaced by ones.

    Same parameters as :class:`TopologyNet`; ``use_spectra`` defaults to False (Andrejevic et
    al. 2022, Figure S5a, "NN-aug.").
    """

    def __init__(self, n_points: int = 200, spectral_hidden: int = 256, spectral_dim: int = 64,
                 n_types: int = 93, type_dim: int = 93, hidden: tuple = (256, 64), dropout: float = 0.5,
                 lr: float = 1e-4, weight_decay: float = 0.0, epochs: int = 80, patience: int | None = 20,
                 batch_size: int = 32, pos_weight: str | float = "balanced", use_spectra: bool = False,
                 n_ensemble: int = 1, threshold_method: str = "youden", seed: int = 0,
                 device: str | None = None, verbose: bool = False):
        super().__init__(n_points, spectral_hidden, spectral_dim, n_types, type_dim, hidden, dropout, lr,
                         weight_decay, epochs, patience, batch_size, pos_weight, use_spectra, n_ensemble,
                         threshold_method, seed, device, verbose)
