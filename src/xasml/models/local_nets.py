"""Neural networks that read local structure from a gridded spectrum: MLP and CNN classifiers,
and an ensemble regressor with uncertainty.

Architecture (Carbone et al., Phys. Rev. Materials 3, 033604 (2019), §II.C and Figure 1):
input = the spectrum on a 100-point grid, standardised to zero mean and unit variance per grid
point; optional 1-D convolution (8 filters, kernel 10, stride 1, ReLU) and max-pooling (2)
("CNN"); three fully connected ReLU layers of 90, 60 and 20 neurons, each followed by 30 %
dropout; softmax output. Categorical cross-entropy, Adam, mini-batches of 32, 50 epochs.

Regression of oxidation state and coordination number follows the ensemble approach of the
Lu-group pipeline (perspective "AI-driven XAS analysis", §RankAAE): several networks trained
from different random initialisations (and bootstrap resamples of the training set); the
ensemble mean is the prediction, the standard deviation across members the uncertainty.

Every estimator here is an ensemble of ``n_members`` independently initialised networks (1 by
default for the classifiers), all drawn from one seeded random stream (see ``seed``).
Classifiers average the members' probabilities;
:meth:`SpectrumClassifier.predict_proba_members` gives each member's output so that metrics can be
reported as mean +- standard deviation over trained models, as the paper does.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin

from xasml.errors import DataError
from xasml.models.base import XasmlEstimator, register_model
from xasml.models.inference import ensemble_mean_std, member_probabilities


def build_ensemble_net(n_members: int, n_inputs: int, n_outputs: int, hidden: Sequence[int] = (90, 60, 20),
                       dropout: float = 0.3, conv_filters: int = 0, kernel_size: int = 10, pool_size: int = 2):
    """A torch module holding ``n_members`` independent networks evaluated together.

    Each member is [Conv1d(1 -> conv_filters, kernel_size, stride 1) -> ReLU -> MaxPool(pool_size)
    ->] (Linear -> ReLU -> Dropout) x len(hidden) -> Linear, the network of Carbone et al. (2019)
    Figure 1. Members share nothing but the tensors they are stored in: the convolution is a
    grouped convolution and the dense layers batched matrix products, so an ensemble of ten
    trains about as fast as one network on a CPU. The module is a
    :class:`xasml.models.nets.EnsembleNet` (defined at module level, so fitted estimators pickle).

    Parameters
    ----------
    n_members : int
        Independent networks.
    n_inputs : int
        Grid points of the input spectrum.
    n_outputs : int
        Classes (logits) or regression targets.
    hidden : sequence of int
        Hidden widths (90, 60, 20 in the paper).
    dropout : float
        Dropout after each hidden layer (0.3).
    conv_filters : int
        0 for the MLP, else the CNN's filters (8).
    kernel_size, pool_size : int
        Convolution kernel (10) and max-pool size (2).

    Returns
    -------
    torch.nn.Module
        ``forward(x)`` takes x of shape (n_members, batch, n_inputs) - member m sees x[m] - and
        returns (n_members, batch, n_outputs).

    Raises
    ------
    ValueError
        If the input is too short for the convolution and pooling.
    """
    from xasml.models.nets import EnsembleNet

    return EnsembleNet(n_members, n_inputs, n_outputs, hidden, dropout, conv_filters, kernel_size, pool_size)


class _SpectrumNetEnsemble(XasmlEstimator):
    """Shared machinery: feature standardisation, seeded training of members, storage."""

    _task = "classification"

    # -- helpers -----------------------------------------------------------------------------
    def _check_arch(self) -> None:
        if self.arch not in ("mlp", "cnn"):
            raise ValueError(f"arch must be 'mlp' or 'cnn', got {self.arch!r}")

    def _net(self, n_in: int, n_out: int, n_members: int):
        self._check_arch()
        return build_ensemble_net(n_members, n_in, n_out, tuple(self.hidden), self.dropout,
                                  self.conv_filters if self.arch == "cnn" else 0, self.kernel_size, self.pool_size)

    def _check_X(self, X) -> np.ndarray:
        """Spectra as a finite float32 array of shape (n, n_features_in_) (scikit-learn validation)."""
        return self._validate(X, reset=False, dtype=np.float32)

    def _standardize(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.feature_mean_) / self.feature_scale_).astype(np.float32)

    def _fit_members(self, X: np.ndarray, targets: np.ndarray, n_out: int, loss_name: str,
                     class_weights: np.ndarray | None = None) -> None:
        """Standardise ``X`` (validated by ``fit``) and train the members on ``targets``.

        One torch seed (``seed``) and one generator seeded with it draw, in this order, every
        member's initial weights (layer by layer, member-major), the bootstrap resamples and each
        epoch's batch order; dropout draws from the same global torch stream.
        """
        import torch
        import torch.nn.functional as F

        from xasml.utils import get_device

        if self.n_threads:
            torch.set_num_threads(int(self.n_threads))
        device = get_device(self.device)
        X = np.asarray(X, dtype=np.float32)  # validated by fit (which also set n_features_in_)
        warm = self._warm()
        if not warm:  # a warm start keeps the standardisation the network was trained with
            self.feature_mean_ = X.mean(axis=0).astype(np.float32)
            sd = X.std(axis=0)
            self.feature_scale_ = np.where(sd > 1e-8, sd, 1.0).astype(np.float32)
        Xs = torch.from_numpy(self._standardize(X)).to(device)
        T = torch.from_numpy(targets).to(device)
        n, bs = len(Xs), int(self.batch_size)
        M = int(self.net_.n_members) if warm else int(self.n_members)
        if M < 1:
            raise DataError(f"n_members must be >= 1, got {self.n_members}")
        torch.manual_seed(int(self.seed))
        gen = torch.Generator(device="cpu").manual_seed(int(self.seed))
        # member m trains on its own rows (a bootstrap resample when asked) in its own order
        rows = torch.randint(0, n, (M, n), generator=gen) if self.bootstrap else torch.arange(n).repeat(M, 1)
        net = self.net_.to(device) if warm else self._net(X.shape[1], n_out, M).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        schedule = getattr(self, "lr_schedule", "constant") or "constant"
        if schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {schedule!r}")
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(int(self.epochs), 1)) \
            if schedule == "cosine" else None
        weight = None  # per-class weights of the cross-entropy (classifier's class_weight)
        if loss_name == "ce" and class_weights is not None:
            weight = torch.tensor(np.asarray(class_weights, dtype=np.float64), dtype=torch.float32, device=device)
        curves = torch.zeros(M, int(self.epochs))
        for ep in range(int(self.epochs)):
            net.train()
            order = torch.gather(rows, 1, torch.argsort(torch.rand(M, n, generator=gen), dim=1)).to(device)
            tot = torch.zeros(M, device=device)
            for b in range(0, n, bs):
                bi = order[:, b:b + bs]  # (M, B)
                out = net(Xs[bi])  # (M, B, n_out)
                t = T[bi]
                if loss_name == "ce":
                    per = F.cross_entropy(out.reshape(-1, n_out), t.reshape(-1), weight=weight,
                                          reduction="none").view(bi.shape)
                else:
                    per = ((out - t) ** 2).mean(dim=2)
                loss_m = per.mean(dim=1)  # (M,)
                opt.zero_grad()
                loss_m.sum().backward()
                opt.step()
                tot += loss_m.detach() * bi.shape[1]
            curves[:, ep] = (tot / n).cpu()
            if sched is not None:
                sched.step()
        net.eval()
        self.net_ = net.cpu()
        self.loss_curves_ = curves.numpy().tolist()

    def _warm(self) -> bool:
        """True when ``fit`` continues from the fitted network (``warm_start`` and already fitted)."""
        return bool(getattr(self, "warm_start", False)) and hasattr(self, "net_")

    def _forward_members(self, X) -> np.ndarray:
        """Raw outputs of every member, shape (n_members, n, n_out)."""
        import torch

        self._check_fitted("net_")
        Xs = torch.from_numpy(self._standardize(self._check_X(X)))
        M = self.net_.n_members
        with torch.no_grad():
            return self.net_.eval()(Xs.unsqueeze(0).expand(M, -1, -1).contiguous()).numpy()

    # -- storage -----------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        from xasml.models.base import torch_state_to_numpy

        arrays = {"feature_mean": self.feature_mean_, "feature_scale": self.feature_scale_}
        arrays.update({f"net.{k}": v for k, v in torch_state_to_numpy(self.net_).items()})
        state = {"n_features_in": int(self.n_features_in_), "n_outputs": int(self._n_outputs()),
                 "n_fitted_members": int(self.net_.n_members),
                 "final_loss": [c[-1] if c else None for c in getattr(self, "loss_curves_", [])]}
        state.update(self._extra_state())
        return arrays, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        from xasml.models.base import numpy_to_torch_state

        self.n_features_in_ = int(state["n_features_in"])
        self.feature_mean_ = np.asarray(arrays["feature_mean"], dtype=np.float32)
        self.feature_scale_ = np.asarray(arrays["feature_scale"], dtype=np.float32)
        self._set_extra_state(state)
        net = self._net(self.n_features_in_, int(state["n_outputs"]), int(state["n_fitted_members"]))
        numpy_to_torch_state(net, arrays, prefix="net.")
        self.net_ = net.eval()

    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _extra_state(self) -> dict:
        return {}

    def _set_extra_state(self, state: dict) -> None:
        pass


@register_model("local_classifier")
class SpectrumClassifier(ClassifierMixin, _SpectrumNetEnsemble):
    """Coordination-environment classifier on gridded spectra: MLP or CNN (Carbone et al. 2019).

    A scikit-learn classifier: labels of any type (strings such as ``"S:4"``, integers) come
    back from :meth:`predict` in their original type, ``score`` is the accuracy, and fitted
    models pickle (and so work in joblib-parallel scikit-learn tools).

    Parameters
    ----------
    arch : {"mlp", "cnn"}
        Without / with the 1-D convolution layer.
    hidden : sequence of int
        Hidden widths (90, 60, 20).
    dropout : float
        Dropout after each hidden layer (0.3).
    conv_filters, kernel_size, pool_size : int
        CNN layer (8 filters, kernel 10, max-pool 2; stride 1).
    epochs, batch_size, learning_rate : training (50, 32, Adam 1e-3).
    weight_decay : float
        L2 penalty in Adam (0: none, as the paper).
    n_members : int
        Independently initialised networks; probabilities are averaged.
    bootstrap : bool
        Train each member on a bootstrap resample of the training set.
    seed : int
        Seeds the whole ensemble: one torch seed and one generator draw, in turn, every member's
        initial weights, the bootstrap resamples and the batch orders, so the same ``seed`` and
        ``n_members`` give identical weights (members differ because each takes its own draws
        from that stream; member m of an ensemble of 4 is not member m of an ensemble of 8).
    device : str, optional
        ``"cpu"`` / ``"cuda"``; default: GPU when present.
    n_threads : int, optional
        ``torch.set_num_threads`` during fit.
    class_weight : None, "balanced" or dict
        None: plain cross-entropy (the paper). ``"balanced"``: class c weighted by
        n / (k n_c) over the training rows, so rare environments (S:5) count as much as common
        ones; a dict maps labels to weights (:func:`sklearn.utils.class_weight.compute_class_weight`).
    lr_schedule : {"constant", "cosine"}
        Constant Adam step (the paper) or cosine annealing from ``learning_rate`` to 0 over ``epochs``.
    warm_start : bool
        When True and the model is fitted, ``fit`` continues training the fitted networks (with
        this ``epochs`` and ``learning_rate``) instead of starting anew: the fine-tuning of a
        universal model on one element (OmniXAS; Lu-group perspective §III). The first fit's
        standardisation, classes and ``n_members`` are kept.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        Sorted class labels, of the type of the training labels.
    n_features_in_ : int
        Grid points of the training spectra.
    feature_mean_, feature_scale_ : ndarray, shape (n_points,)
        Per-grid-point standardisation learned on the training data.
    net_ : torch.nn.Module
        The fitted ensemble (see :func:`build_ensemble_net`).
    loss_curves_ : list of list of float
        Training loss per member and epoch.
    """

    def __init__(self, arch: str = "mlp", hidden: Sequence[int] = (90, 60, 20), dropout: float = 0.3,
                 conv_filters: int = 8, kernel_size: int = 10, pool_size: int = 2, epochs: int = 50,
                 batch_size: int = 32, learning_rate: float = 1e-3, weight_decay: float = 0.0,
                 n_members: int = 1, bootstrap: bool = False, seed: int = 0, device: str | None = None,
                 n_threads: int | None = None, class_weight: str | None = None, lr_schedule: str = "constant",
                 warm_start: bool = False):
        self.arch = arch
        self.hidden = hidden
        self.dropout = dropout
        self.conv_filters = conv_filters
        self.kernel_size = kernel_size
        self.pool_size = pool_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.n_members = n_members
        self.bootstrap = bootstrap
        self.seed = seed
        self.device = device
        self.n_threads = n_threads
        self.class_weight = class_weight
        self.lr_schedule = lr_schedule
        self.warm_start = warm_start

    def fit(self, X, y) -> "SpectrumClassifier":
        """Train on spectra ``X`` (n, n_points; max-normalised) and class labels ``y`` (n,).

        Returns
        -------
        self

        Raises
        ------
        DataError
            If ``X`` is malformed (not 2-D, empty, NaN or inf) or ``y`` has a single class.
        """
        from sklearn.utils.multiclass import check_classification_targets

        warm = self._warm()
        X, y = self._validate(X, y, reset=not warm, dtype=np.float32)
        check_classification_targets(y)
        if warm:  # fine-tuning: the classes are those of the first fit; a new label cannot be learned
            unknown = sorted(set(np.unique(y).tolist()) - set(self.classes_.tolist()))
            if unknown:
                raise DataError(f"warm start: labels {unknown} are not among the fitted classes "
                                f"{self.classes_.tolist()}; drop those rows or fit from scratch")
            codes = np.searchsorted(self.classes_, y)
        else:
            self.classes_, codes = np.unique(y, return_inverse=True)
            if len(self.classes_) < 2:
                raise DataError(f"need at least 2 classes to train a classifier, got 1 class: {self.classes_.tolist()}")
        weights = None
        if self.class_weight is not None:  # "balanced": n / (k n_c) over the training rows, or a dict
            from sklearn.utils.class_weight import compute_class_weight

            present = np.unique(y) if warm else self.classes_  # fine-tuning data may lack some classes
            try:
                w = compute_class_weight(self.class_weight, classes=present, y=y)
            except ValueError as exc:
                raise DataError(f"class_weight: {exc}") from None
            weights = np.ones(len(self.classes_))
            weights[np.searchsorted(self.classes_, present)] = w
        self._fit_members(X, codes.astype(np.int64).ravel(), len(self.classes_), "ce", weights)
        return self

    def predict_proba_members(self, X) -> np.ndarray:
        """Class probabilities of each member, shape (n_members, n, n_classes)."""
        return member_probabilities(self._forward_members(X))

    def predict_proba(self, X) -> np.ndarray:
        """Member-averaged class probabilities, shape (n, n_classes), columns ordered as ``classes_``."""
        return self.predict_proba_members(X).mean(axis=0)

    def predict(self, X) -> np.ndarray:
        """Most probable class of each spectrum, shape (n,), in the type of the training labels."""
        self._check_fitted("classes_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _extra_state(self) -> dict:
        # JSON values of the labels' own type (str, int, bool); shipped models hold strings
        return {"classes": [c.item() if isinstance(c, np.generic) else c for c in self.classes_.tolist()]}

    def _set_extra_state(self, state: dict) -> None:
        self.classes_ = np.array(state["classes"])


@register_model("local_ensemble_regressor")
class SpectrumEnsembleRegressor(RegressorMixin, _SpectrumNetEnsemble):
    """Ensemble regressor of a scalar site property (oxidation state, coordination number).

    The network is that of :class:`SpectrumClassifier` with one linear output, trained with mean
    squared error on the standardised target. The prediction is the ensemble mean, the
    uncertainty the standard deviation across members. A scikit-learn regressor (``score`` is
    R²); fitted models pickle.

    Parameters
    ----------
    arch : {"mlp", "cnn"}
        Without / with the 1-D convolution layer.
    hidden : sequence of int
        Hidden widths (90, 60, 20).
    dropout : float
        Dropout after each hidden layer (0.3).
    conv_filters, kernel_size, pool_size : int
        CNN layer (8 filters, kernel 10, max-pool 2; stride 1).
    epochs, batch_size, learning_rate : training (50, 32, Adam 1e-3).
    weight_decay : float
        L2 penalty in Adam (0: none).
    n_members : int
        Networks of the ensemble (8; at least 2, for an uncertainty).
    bootstrap : bool
        Train each member on a bootstrap resample of the training set (True).
    seed : int
        Seeds the whole ensemble: one torch seed and one generator draw, in turn, every member's
        initial weights, the bootstrap resamples and the batch orders, so the same ``seed`` and
        ``n_members`` give identical weights (members differ because each takes its own draws
        from that stream; member m of an ensemble of 4 is not member m of an ensemble of 8).
    device : str, optional
        ``"cpu"`` / ``"cuda"``; default: GPU when present.
    n_threads : int, optional
        ``torch.set_num_threads`` during fit.
    lr_schedule : {"constant", "cosine"}
        Constant Adam step or cosine annealing from ``learning_rate`` to 0 over ``epochs``.
    warm_start : bool
        When True and the model is fitted, ``fit`` continues training the fitted networks (with
        this ``epochs`` and ``learning_rate``) instead of starting anew: the fine-tuning of a
        universal model on one element (OmniXAS; Lu-group perspective §III). The first fit's
        standardisation, target scaling and ``n_members`` are kept.

    Attributes
    ----------
    n_features_in_ : int
        Grid points of the training spectra.
    feature_mean_, feature_scale_ : ndarray, shape (n_points,)
        Per-grid-point standardisation learned on the training data.
    target_mean_, target_scale_ : float
        Target standardisation learned in ``fit``.
    std_scale_ : float
        Factor applied to the member spread (1 after ``fit``; see :meth:`calibrate`).
    noise_std_ : float
        Error floor combined in quadrature with the spread (0 after ``fit``; see
        :meth:`set_noise_std`).
    net_ : torch.nn.Module
        The fitted ensemble (see :func:`build_ensemble_net`).
    loss_curves_ : list of list of float
        Training loss per member and epoch.
    """

    _task = "regression"

    def __init__(self, arch: str = "mlp", hidden: Sequence[int] = (90, 60, 20), dropout: float = 0.3,
                 conv_filters: int = 8, kernel_size: int = 10, pool_size: int = 2, epochs: int = 50,
                 batch_size: int = 32, learning_rate: float = 1e-3, weight_decay: float = 0.0,
                 n_members: int = 8, bootstrap: bool = True, seed: int = 0, device: str | None = None,
                 n_threads: int | None = None, lr_schedule: str = "constant", warm_start: bool = False):
        self.arch = arch
        self.hidden = hidden
        self.dropout = dropout
        self.conv_filters = conv_filters
        self.kernel_size = kernel_size
        self.pool_size = pool_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.n_members = n_members
        self.bootstrap = bootstrap
        self.seed = seed
        self.device = device
        self.n_threads = n_threads
        self.lr_schedule = lr_schedule
        self.warm_start = warm_start

    def fit(self, X, y) -> "SpectrumEnsembleRegressor":
        """Train on spectra ``X`` (n, n_points) and targets ``y`` (n,).

        Returns
        -------
        self

        Raises
        ------
        DataError
            If ``X`` is malformed, ``y`` has NaN or inf (drop sites with unknown labels first),
            or fewer than 2 members are requested.
        """
        if int(self.n_members) < 2:
            raise DataError("an ensemble regressor needs n_members >= 2 for an uncertainty")
        warm = self._warm()
        X, y = self._validate(X, y, reset=not warm, dtype=np.float32, y_numeric=True)
        y = np.asarray(y, dtype=float).ravel()
        if not warm:  # fine-tuning keeps the target scaling of the first fit
            self.target_mean_ = float(y.mean())
            self.target_scale_ = float(y.std()) or 1.0
        self.std_scale_ = 1.0
        self.noise_std_ = 0.0
        t = ((y - self.target_mean_) / self.target_scale_).astype(np.float32)[:, None]
        self._fit_members(X, t, 1, "mse")
        return self

    def predict_members(self, X) -> np.ndarray:
        """Each member's prediction, shape (n_members, n)."""
        return self._forward_members(X)[:, :, 0] * self.target_scale_ + self.target_mean_

    def predict(self, X, return_std: bool = False):
        """Ensemble mean (n,), and with ``return_std`` also the uncertainty (n,).

        The uncertainty is the standard deviation across members times ``std_scale_`` (1 unless
        :meth:`calibrate` was called), combined in quadrature with ``noise_std_`` when it is set
        (:meth:`set_noise_std`): σ² = noise_std_² + (std_scale_ · spread)².
        """
        mean, std = ensemble_mean_std(self.predict_members(X), getattr(self, "std_scale_", 1.0),
                                      float(getattr(self, "noise_std_", 0.0)))
        return (mean, std) if return_std else mean

    def set_noise_std(self, noise_std: float) -> "SpectrumEnsembleRegressor":
        """Add an error floor to the uncertainty: σ² = ``noise_std``² + (ensemble spread)².

        The spread of an ensemble measures where its members disagree (large for spectra unlike
        the training data), not the error it makes where they agree; on small data sets members
        agree far more than they are right, and scaling the spread (:meth:`calibrate`) then
        multiplies the out-of-domain spread too. A floor equal to the out-of-fold RMSE of the
        model (cross-validation) covers the in-domain error and leaves the spread to flag the
        rest (an aleatoric + epistemic decomposition; Lakshminarayanan et al., NeurIPS 2017).

        Parameters
        ----------
        noise_std : float
            The floor, in units of the target (>= 0).

        Returns
        -------
        self
        """
        if not np.isfinite(noise_std) or noise_std < 0:
            raise DataError(f"noise_std must be finite and >= 0, got {noise_std}")
        self.noise_std_ = float(noise_std)
        return self

    def calibrate(self, X, y, coverage: float = 0.9545) -> "SpectrumEnsembleRegressor":
        """Scale the ensemble spread so that ±2σ holds ``coverage`` of held-out data.

        Deep ensembles are usually over-confident (their members agree more than they are right).
        A single factor ``std_scale_`` = (``coverage`` quantile of ``|y - mean| / std``) / 2 is
        learned on a held-out (validation) set - never the test set - so that mean ± 2σ covers
        ``coverage`` of it (a variance-scaling recalibration, cf. Levi et al., Sensors 22, 5540
        (2022)).

        Parameters
        ----------
        X : ndarray, shape (n, n_points)
            Held-out spectra.
        y : ndarray, shape (n,)
            Their labels.
        coverage : float
            Target fraction inside ±2σ (0.9545 = Gaussian).

        Returns
        -------
        self
        """
        y = np.asarray(y, dtype=float).ravel()
        P = self.predict_members(X)
        mean, std = P.mean(axis=0), P.std(axis=0, ddof=1)
        if len(y) < 5:
            raise DataError(f"calibration needs at least 5 held-out samples, got {len(y)}")
        z = np.abs(y - mean) / np.maximum(std, 1e-8)
        self.std_scale_ = float(max(np.quantile(z, coverage) / 2.0, 1e-3))
        return self

    def _n_outputs(self) -> int:
        return 1

    def _extra_state(self) -> dict:
        return {"target_mean": self.target_mean_, "target_scale": self.target_scale_,
                "std_scale": float(getattr(self, "std_scale_", 1.0)), "noise_std": float(getattr(self, "noise_std_", 0.0))}

    def _set_extra_state(self, state: dict) -> None:
        self.target_mean_ = float(state["target_mean"])
        self.target_scale_ = float(state["target_scale"])
        self.std_scale_ = float(state.get("std_scale", 1.0))
        self.noise_std_ = float(state.get("noise_std", 0.0))
