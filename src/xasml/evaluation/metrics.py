"""Classification and regression metrics shared by every capability.

All functions return plain, JSON-serialisable Python objects (dicts of floats, ints, lists and
strings; ``None`` where a quantity is undefined), so a run folder can store them with
:func:`xasml.utils.atomic_write_json` and a report can tabulate them.

Definitions follow Andrejevic et al., "Machine-learning spectral indicators of topology",
Adv. Mater. 34, 2204113 (2022), Eq. 1, evaluated separately for each class ``c`` (one-vs-rest):

.. math::

    r_c = \\frac{t_p}{t_p + f_n}, \\qquad p_c = \\frac{t_p}{t_p + f_p}, \\qquad
    F_{1,c} = 2\\frac{p_c r_c}{p_c + r_c},

and the macro :math:`\\overline{F}_1` (the unweighted mean of the class-wise :math:`F_1`) of
Carbone et al., Phys. Rev. Materials 3, 033604 (2019), Sec. III. A ratio whose denominator is zero
(no example of a class, or no prediction of it) is reported as 0, as scikit-learn does with
``zero_division=0``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from xasml.errors import DataError

__all__ = [
    "binary_metrics",
    "bootstrap",
    "grouped_binary_metrics",
    "multiclass_metrics",
    "regression_metrics",
    "threshold_from_roc",
]


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------

def _as_1d(a, name: str, dtype=None) -> np.ndarray:
    arr = np.asarray(a, dtype=dtype)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise DataError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    return arr


def _check_same_length(**arrays) -> int:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise DataError(f"length mismatch: {desc}; expected one entry per example")
    n = next(iter(lengths.values()))
    if n == 0:
        raise DataError(f"{', '.join(lengths)}: empty input; expected at least one example")
    return n


def _binary_labels(y, name: str) -> np.ndarray:
    arr = _as_1d(y, name)
    if arr.dtype == bool:
        return arr.astype(int)
    try:
        f = arr.astype(float)
    except (TypeError, ValueError):
        raise DataError(f"{name}: expected binary labels 0/1, got values such as {arr[:3].tolist()}") from None
    bad = ~np.isin(f, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name}: expected binary labels 0/1, found {arr[i]!r} at index {i}")
    return f.astype(int)


def _scores(y, name: str) -> np.ndarray:
    arr = _as_1d(y, name, dtype=float)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataError(f"{name}: {int(bad.sum())} non-finite value(s) (NaN or inf), first at index "
                        f"{int(np.flatnonzero(bad)[0])}")
    return arr


def _native(x: Any) -> Any:
    """numpy scalar -> Python scalar (JSON keys and values)."""
    return x.item() if isinstance(x, np.generic) else x


def _prf(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence) -> tuple[np.ndarray, ...]:
    from sklearn.metrics import precision_recall_fscore_support

    return precision_recall_fscore_support(y_true, y_pred, labels=list(labels), average=None,
                                           zero_division=0)


def _per_class(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence, names: Sequence) -> dict:
    p, r, f, s = _prf(y_true, y_pred, labels)
    return {str(_native(name)): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                 "support": int(s[i])}
            for i, name in enumerate(names)}


# --------------------------------------------------------------------------------------------
# binary classification
# --------------------------------------------------------------------------------------------

def binary_metrics(y_true, y_score, threshold: float = 0.5,
                   class_names: Sequence[str] = ("trivial", "topological")) -> dict:
    """Recall, precision and F1 of both classes, accuracy, ROC curve and AUC of a binary classifier.

    An example is predicted as class 1 when ``y_score >= threshold``. Recall, precision and
    F1 of each class are those of Andrejevic et al. (2022), Eq. 1a-c, with that class taken as
    the positive one.

    Parameters
    ----------
    y_true : array_like, shape (n,)
        True labels in {0, 1} (bools accepted); 1 is the second entry of ``class_names``.
    y_score : array_like, shape (n,)
        Score or probability of class 1 (hard 0/1 predictions are accepted too; the ROC curve
        and AUC are then those of the hard predictions).
    threshold : float
        Decision threshold on ``y_score``; choose it on validation data, e.g. with
        :func:`threshold_from_roc`.
    class_names : pair of str
        Names of class 0 and class 1, used as keys of ``per_class``.

    Returns
    -------
    dict
        ``threshold``, ``n``, ``n_pos`` (examples of class 1), ``accuracy``, ``balanced_accuracy``
        (mean of the recalls of the classes present), ``macro_f1`` (mean F1 of the classes that
        occur in ``y_true`` or the predictions), ``auc`` (None when only one class is present),
        ``roc`` {``fpr``, ``tpr``, ``thresholds``} (lists; the first threshold, "predict nothing
        as class 1", is ``max(y_score) + 1`` instead of infinity so the dict stays valid JSON; empty
        lists when only one class is present), ``confusion`` ``[[tn, fp], [fn, tp]]`` (rows: true
        class 0, 1; columns: predicted class 0, 1) and ``per_class`` {name: {``precision``,
        ``recall``, ``f1``, ``support``}}.

    Raises
    ------
    xasml.errors.DataError
        If the arrays differ in length or are empty, labels are not 0/1, or scores are not finite.

    Examples
    --------
    >>> m = binary_metrics([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.9])
    >>> m["confusion"], m["per_class"]["topological"]["precision"]
    ([[1, 1], [0, 2]], 0.6666666666666666)
    """
    from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

    if len(class_names) != 2:
        raise DataError(f"class_names: expected two names (class 0, class 1), got {list(class_names)}")
    y_true = _binary_labels(y_true, "y_true")
    y_score = _scores(y_score, "y_score")
    n = _check_same_length(y_true=y_true, y_score=y_score)
    y_pred = (y_score >= threshold).astype(int)
    cm = confusion_matrix(y_true, y_pred, labels=[0, 1])
    per_class = _per_class(y_true, y_pred, [0, 1], class_names)
    recalls = [per_class[str(c)]["recall"] for c in class_names]
    n_pred = np.bincount(y_pred, minlength=2)
    f1s = [per_class[str(c)]["f1"] for i, c in enumerate(class_names)
           if per_class[str(c)]["support"] > 0 or n_pred[i] > 0]
    both = np.unique(y_true).size == 2
    if both:
        fpr, tpr, thr = roc_curve(y_true, y_score)
        thr = np.where(np.isfinite(thr), thr, float(y_score.max()) + 1.0)
        auc = float(roc_auc_score(y_true, y_score))
        roc = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thr.tolist()}
    else:
        auc = None
        roc = {"fpr": [], "tpr": [], "thresholds": []}
    return {
        "threshold": float(threshold),
        "n": int(n),
        "n_pos": int(y_true.sum()),
        "accuracy": float((y_pred == y_true).mean()),
        "balanced_accuracy": float(np.mean([r for r, c in zip(recalls, class_names)
                                            if per_class[str(c)]["support"] > 0])),
        "macro_f1": float(np.mean(f1s)),
        "auc": auc,
        "roc": roc,
        "confusion": cm.astype(int).tolist(),
        "per_class": per_class,
    }


def threshold_from_roc(y_true, y_score, method: str = "youden") -> float:
    """Decision threshold chosen on validation data from the ROC (or precision-recall) curve.

    ``"youden"`` maximises Youden's J statistic, ``J = TPR - FPR`` (W. J. Youden, Cancer 3, 32,
    1950), i.e. the point of the ROC curve farthest above the chance diagonal. ``"f1"`` maximises
    the F1 score of class 1 (the topological class). Ties go to the higher threshold.

    The returned threshold lies midway between the score at the optimum and the next lower
    distinct score, so that it classifies the validation data exactly as the optimum does
    (prediction is ``y_score >= threshold``) while not sitting on a training score.

    Parameters
    ----------
    y_true : array_like, shape (n,)
        True 0/1 labels of the VALIDATION set (never the test set).
    y_score : array_like, shape (n,)
        Scores or probabilities of class 1.
    method : {"youden", "f1"}
        Criterion to maximise.

    Returns
    -------
    float
        The threshold.

    Raises
    ------
    xasml.errors.DataError
        If only one class is present (the ROC curve is undefined), or on malformed input.
    ValueError
        If ``method`` is unknown.
    """
    from sklearn.metrics import precision_recall_curve, roc_curve

    if method not in ("youden", "f1"):
        raise ValueError(f"unknown method {method!r}: expected 'youden' or 'f1'")
    y_true = _binary_labels(y_true, "y_true")
    y_score = _scores(y_score, "y_score")
    _check_same_length(y_true=y_true, y_score=y_score)
    if np.unique(y_true).size < 2:
        raise DataError("y_true: a threshold from the ROC curve needs examples of both classes, "
                        f"found only class {int(y_true[0])}")
    distinct = np.unique(y_score)  # ascending

    if method == "youden":
        fpr, tpr, thr = roc_curve(y_true, y_score, drop_intermediate=False)
        finite = np.isfinite(thr)
        j = np.where(finite, tpr - fpr, -np.inf)
        # thresholds are decreasing: the first (near-)maximum is the highest threshold
        k = int(np.flatnonzero(j >= j.max() - 1e-12)[0])
        t = float(thr[k])
    else:
        prec, rec, thr = precision_recall_curve(y_true, y_score, drop_intermediate=False)
        prec, rec = prec[:-1], rec[:-1]
        denom = prec + rec
        f1 = np.divide(2 * prec * rec, denom, out=np.zeros_like(denom), where=denom > 0)
        best = f1.max()
        k = int(np.flatnonzero(f1 >= best - 1e-12)[-1])  # thresholds increasing: last = highest
        t = float(thr[k])
    below = distinct[distinct < t]
    return float(0.5 * (t + below[-1])) if below.size else float(t)


# --------------------------------------------------------------------------------------------
# multi-class classification
# --------------------------------------------------------------------------------------------

def multiclass_metrics(y_true, y_pred, classes: Sequence, y_proba=None) -> dict:
    """Class-wise precision, recall, F1, the macro F1, accuracy and confusion of a multi-class classifier.

    The macro :math:`\\overline{F}_1` is the unweighted mean of the one-vs-rest class-wise
    :math:`F_1` scores (Carbone et al., Phys. Rev. Materials 3, 033604, 2019, Sec. III), which
    weighs rare classes (e.g. S5 among mostly O6 sites) equally with common ones.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n,)
        True and predicted class labels (strings or integers), each one of ``classes``.
    classes : sequence
        All class labels in display order; fixes the order of ``confusion`` and of the columns of
        ``y_proba``.
    y_proba : array_like, shape (n, len(classes)), optional
        Predicted class probabilities; adds ``log_loss`` and ``auc_ovr`` (macro one-vs-rest ROC
        AUC over the classes present in ``y_true``, None when fewer than two are present).

    Returns
    -------
    dict
        ``classes`` (list), ``n``, ``accuracy``, ``balanced_accuracy`` (mean recall over classes
        present in ``y_true``), ``macro_f1`` (mean F1 over the classes that occur in ``y_true``
        or ``y_pred``; a class absent from both has no defined F1, is reported with ``f1`` None
        and left out of the mean), ``per_class`` {class: {``precision``, ``recall``, ``f1``,
        ``support``}} and ``confusion`` (list of lists; rows true class, columns predicted class,
        in the order of ``classes``).

    Raises
    ------
    xasml.errors.DataError
        If lengths differ, ``classes`` has duplicates, a label is not one of ``classes``, or
        ``y_proba`` has the wrong shape.
    """
    from sklearn.metrics import confusion_matrix, roc_auc_score

    classes = [_native(c) for c in classes]
    if len(set(classes)) != len(classes):
        raise DataError(f"classes: duplicate labels in {classes}")
    if not classes:
        raise DataError("classes: expected at least one class label")
    y_true = _as_1d(y_true, "y_true")
    y_pred = _as_1d(y_pred, "y_pred")
    n = _check_same_length(y_true=y_true, y_pred=y_pred)
    known = set(classes)
    for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
        for i, v in enumerate(arr.tolist()):
            if v not in known:
                raise DataError(f"{name}: label {v!r} at index {i} is not one of classes {classes}")
    p, r, f, s = _prf(y_true, y_pred, classes)
    cm = confusion_matrix(y_true, y_pred, labels=classes)
    n_pred = cm.sum(axis=0)
    per_class = {}
    present_f1, present_rec = [], []
    for i, c in enumerate(classes):
        occurs = s[i] > 0 or n_pred[i] > 0
        per_class[c] = {"precision": float(p[i]), "recall": float(r[i]),
                        "f1": float(f[i]) if occurs else None, "support": int(s[i])}
        if occurs:
            present_f1.append(f[i])
        if s[i] > 0:
            present_rec.append(r[i])
    out = {
        "classes": list(classes),
        "n": int(n),
        "accuracy": float(np.mean(y_true == y_pred)),
        "balanced_accuracy": float(np.mean(present_rec)) if present_rec else 0.0,
        "macro_f1": float(np.mean(present_f1)) if present_f1 else 0.0,
        "per_class": per_class,
        "confusion": cm.astype(int).tolist(),
    }
    if y_proba is not None:
        proba = np.asarray(y_proba, dtype=float)
        if proba.shape != (n, len(classes)):
            raise DataError(f"y_proba: expected shape ({n}, {len(classes)}) (examples, classes), "
                            f"got {proba.shape}")
        if not np.isfinite(proba).all():
            raise DataError("y_proba: contains NaN or inf")
        # cross-entropy computed directly: sklearn's log_loss assumes sorted label columns
        col = {c: j for j, c in enumerate(classes)}
        p_true = proba[np.arange(n), [col[v] for v in y_true.tolist()]] / np.maximum(proba.sum(axis=1), 1e-300)
        out["log_loss"] = float(-np.mean(np.log(np.clip(p_true, 1e-15, 1.0))))
        present = [i for i, c in enumerate(classes) if s[i] > 0]
        if len(present) >= 2:
            aucs = []
            for i in present:
                yt = np.array([v == classes[i] for v in y_true.tolist()], dtype=int)
                aucs.append(roc_auc_score(yt, proba[:, i]))
            out["auc_ovr"] = float(np.mean(aucs))
        else:
            out["auc_ovr"] = None
    return out


def one_vs_rest_roc(y_true, y_proba, classes: Sequence) -> dict[str, dict]:
    """One-vs-rest ROC curve and AUC of every class of a multi-class classifier.

    Parameters
    ----------
    y_true : array_like, shape (n,)
        True class labels, each one of ``classes``.
    y_proba : array_like, shape (n, len(classes))
        Predicted probabilities, columns in the order of ``classes``.
    classes : sequence
        Class labels.

    Returns
    -------
    dict
        str(class) -> {``fpr``, ``tpr``, ``auc``} (ready for
        :func:`xasml.report.figures.plot_roc`); classes absent from ``y_true`` (or the only class
        present) get empty curves and ``auc`` None.

    Raises
    ------
    xasml.errors.DataError
        If shapes disagree or a label is not one of ``classes``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    classes = [_native(c) for c in classes]
    y_true = _as_1d(y_true, "y_true")
    proba = np.asarray(y_proba, dtype=float)
    n = len(y_true)
    if proba.shape != (n, len(classes)):
        raise DataError(f"y_proba: expected shape ({n}, {len(classes)}) (examples, classes), got {proba.shape}")
    labels = y_true.tolist()
    known = set(classes)
    for i, v in enumerate(labels):
        if v not in known:
            raise DataError(f"y_true: label {v!r} at index {i} is not one of classes {classes}")
    out = {}
    for j, c in enumerate(classes):
        yt = np.array([v == c for v in labels], dtype=int)
        if 0 < yt.sum() < n:
            fpr, tpr, _ = roc_curve(yt, proba[:, j])
            out[str(c)] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": float(roc_auc_score(yt, proba[:, j]))}
        else:
            out[str(c)] = {"fpr": [], "tpr": [], "auc": None}
    return out


# --------------------------------------------------------------------------------------------
# per-group (per-element, per-subclass) metrics
# --------------------------------------------------------------------------------------------

def _group_names(g, i: int) -> list[str]:
    if g is None:
        return []
    if isinstance(g, (str, bytes, np.str_)) or not isinstance(g, Iterable):
        return [str(g)]
    return [str(x) for x in g]


def grouped_binary_metrics(y_true, y_pred, groups: Sequence, threshold: float = 0.5,
                           class_names: Sequence[str] = ("trivial", "topological"),
                           min_count: int = 1) -> dict[str, dict]:
    """Binary metrics within groups of examples: per absorbing element, per subclass, ...

    A compound counts once for every group it belongs to, so per-element scores are computed
    over all compounds containing that element, as in the element-resolved F1 maps of Andrejevic
    et al. (2022), Figure 3d,e. With one group per example (e.g. the subclass trivial / TI / TCI
    / SM), the ``recall`` of each group's true class is the per-subclass recall of their Figure S8.

    Parameters
    ----------
    y_true : array_like, shape (n,)
        True 0/1 labels.
    y_pred : array_like, shape (n,)
        Predicted 0/1 labels, or scores of class 1 that are thresholded at ``threshold``.
    groups : sequence of length n
        Group names of each example: an iterable of names (e.g. ``{"Bi", "Se"}``) or a single
        name (a string counts as one name, not as its characters).
    threshold : float
        Used only when ``y_pred`` holds scores other than 0/1.
    class_names : pair of str
        Names of class 0 and class 1 (keys of ``per_class``).
    min_count : int
        Groups with fewer examples are left out.

    Returns
    -------
    dict
        group name -> {``n``, ``n_pos``, ``accuracy``, ``per_class`` {class name: {``precision``,
        ``recall``, ``f1``, ``support``}}}, groups sorted by name.

    Raises
    ------
    xasml.errors.DataError
        If lengths differ or labels are not 0/1.
    """
    y_true = _binary_labels(y_true, "y_true")
    y_pred_arr = _scores(y_pred, "y_pred")
    if not np.isin(y_pred_arr, (0.0, 1.0)).all():
        y_pred_arr = (y_pred_arr >= threshold).astype(float)
    y_pred_arr = y_pred_arr.astype(int)
    groups = list(groups)
    _check_same_length(y_true=y_true, y_pred=y_pred_arr, groups=groups)
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        for name in dict.fromkeys(_group_names(g, i)):  # unique, order kept
            members.setdefault(name, []).append(i)
    out = {}
    for name in sorted(members):
        idx = np.asarray(members[name])
        if idx.size < min_count:
            continue
        yt, yp = y_true[idx], y_pred_arr[idx]
        out[name] = {"n": int(idx.size), "n_pos": int(yt.sum()), "accuracy": float(np.mean(yt == yp)),
                     "per_class": _per_class(yt, yp, [0, 1], class_names)}
    return out


# --------------------------------------------------------------------------------------------
# uncertainty by resampling
# --------------------------------------------------------------------------------------------

def _take(a, idx: np.ndarray):
    if isinstance(a, np.ndarray):
        return a[idx]
    try:
        import pandas as pd

        if isinstance(a, (pd.Series, pd.DataFrame)):
            return a.iloc[idx]
    except ImportError:  # pragma: no cover
        pass
    return [a[i] for i in idx]


def bootstrap(metric_fn: Callable[..., float], *arrays, n_boot: int = 10, seed: int = 0,
              stratify=None) -> dict:
    """Mean and spread of a metric over bootstrap resamples of the examples.

    Each resample draws ``n`` rows with replacement (the same rows from every array), as for the
    10 bootstrap test folds with which Carbone et al. (2019) report the spread of their F1 scores.

    Parameters
    ----------
    metric_fn : callable
        ``metric_fn(*resampled_arrays) -> float``, e.g.
        ``lambda yt, yp: binary_metrics(yt, yp)["per_class"]["topological"]["f1"]``. A resample
        on which it returns None or NaN (e.g. an AUC with one class drawn) is skipped in the mean.
    *arrays : array_like, each of length n
        Arrays indexed by example (numpy arrays, pandas objects or lists).
    n_boot : int
        Number of resamples.
    seed : int
        Seed of the resampling generator (``numpy.random.default_rng``).
    stratify : array_like, shape (n,), optional
        Class labels: resample within each class so that every resample keeps the class counts.

    Returns
    -------
    dict
        ``mean``, ``std`` (sample standard deviation, ddof=1; 0 for a single resample), both None
        if no resample gave a value, and ``values`` (list of n_boot floats, NaN-free: None marks
        a skipped resample).

    Raises
    ------
    xasml.errors.DataError
        If no array is given, lengths differ, or ``n_boot`` < 1.
    """
    if not arrays:
        raise DataError("bootstrap: give at least one array to resample")
    if n_boot < 1:
        raise DataError(f"n_boot: expected a positive number of resamples, got {n_boot}")
    n = _check_same_length(**{f"arrays[{i}]": a for i, a in enumerate(arrays)})
    rng = np.random.default_rng(seed)
    strata = None
    if stratify is not None:
        st = _as_1d(stratify, "stratify")
        _check_same_length(arrays0=arrays[0], stratify=st)
        strata = [np.flatnonzero(st == v) for v in np.unique(st)]
    values: list[float | None] = []
    for _ in range(n_boot):
        if strata is None:
            idx = rng.integers(0, n, size=n)
        else:
            idx = np.concatenate([rng.choice(s, size=s.size, replace=True) for s in strata])
        v = metric_fn(*[_take(a, idx) for a in arrays])
        v = None if v is None or not np.isfinite(float(v)) else float(v)
        values.append(v)
    ok = np.array([v for v in values if v is not None], dtype=float)
    if ok.size == 0:
        return {"mean": None, "std": None, "values": values}
    return {"mean": float(ok.mean()), "std": float(ok.std(ddof=1)) if ok.size > 1 else 0.0, "values": values}


def bootstrap_many(metric_fn: Callable[..., dict], *arrays, n_boot: int = 10, seed: int = 0,
                   stratify=None) -> dict[str, dict]:
    """:func:`bootstrap` for a function returning several named metrics at once.

    Parameters
    ----------
    metric_fn : callable
        ``metric_fn(*resampled_arrays) -> dict[str, float]`` (a flat dict, e.g. the class-wise F1
        ``{c: v["f1"] for c, v in multiclass_metrics(yt, yp, classes)["per_class"].items()}``).
    *arrays, n_boot, seed, stratify
        As in :func:`bootstrap`; every metric sees the same resamples.

    Returns
    -------
    dict
        metric name -> {``mean``, ``std``, ``values``} as returned by :func:`bootstrap`.
    """
    cache: list[dict] = []

    def one(*a):
        cache.append(metric_fn(*a))
        return 0.0

    bootstrap(one, *arrays, n_boot=n_boot, seed=seed, stratify=stratify)
    keys = list(dict.fromkeys(k for d in cache for k in d))
    out = {}
    for k in keys:
        vals = [d.get(k) for d in cache]
        vals = [None if v is None or not np.isfinite(float(v)) else float(v) for v in vals]
        ok = np.array([v for v in vals if v is not None], dtype=float)
        out[str(k)] = {"mean": float(ok.mean()) if ok.size else None,
                       "std": (float(ok.std(ddof=1)) if ok.size > 1 else 0.0) if ok.size else None,
                       "values": vals}
    return out


def per_class_rows(metrics: dict, model: str | None = None) -> list[dict]:
    """Rows (class, precision, recall, f1, support) of a metrics dict, for a report table.

    Parameters
    ----------
    metrics : dict
        Output of :func:`binary_metrics`, :func:`multiclass_metrics` or one group of
        :func:`grouped_binary_metrics` (anything with a ``per_class`` entry).
    model : str, optional
        Adds a leading ``model`` column.

    Returns
    -------
    list of dict
    """
    rows = []
    for c, v in metrics["per_class"].items():
        row = {"model": model} if model is not None else {}
        row.update({"class": c, "precision": v["precision"], "recall": v["recall"], "f1": v["f1"],
                    "support": v["support"]})
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# regression (forward model: spectra; scalar targets)
# --------------------------------------------------------------------------------------------

def regression_metrics(y_true, y_pred, y_std=None) -> dict:
    """Errors of a regression: MAE, RMSE, R² and, with predicted uncertainties, 2σ coverage.

    Works for scalar targets, shape (n,), and for spectra, shape (n, m) (every energy point is
    one output). For 2-D targets R² is the variance-weighted average over outputs,
    ``1 - Σ(y - ŷ)² / Σ(y - ȳ_column)²``, so flat regions of a spectrum (near-zero variance) do
    not dominate it.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n,) or (n, m)
        True and predicted values (same units).
    y_std : array_like, same shape, optional
        Predicted standard deviations (same units), e.g. from an ensemble or MC dropout.

    Returns
    -------
    dict
        ``n`` (examples), ``mae``, ``rmse``, ``r2`` (None for a single example) and, if ``y_std``
        is given, ``coverage_2sigma``: the fraction of values with
        ``|y_true - y_pred| <= 2 * y_std`` (about 0.954 for calibrated Gaussian errors).

    Raises
    ------
    xasml.errors.DataError
        If shapes differ, arrays are empty, or contain NaN/inf, or ``y_std`` is negative.
    """
    from sklearn.metrics import r2_score

    yt = np.asarray(y_true, dtype=float)
    yp = np.asarray(y_pred, dtype=float)
    if yt.shape != yp.shape:
        raise DataError(f"y_pred: shape {yp.shape} does not match y_true {yt.shape}")
    if yt.ndim not in (1, 2) or yt.shape[0] == 0:
        raise DataError(f"y_true: expected shape (n,) or (n, m) with n >= 1, got {yt.shape}")
    for name, a in (("y_true", yt), ("y_pred", yp)):
        if not np.isfinite(a).all():
            raise DataError(f"{name}: contains NaN or inf")
    err = yp - yt
    out = {"n": int(yt.shape[0]), "mae": float(np.mean(np.abs(err))),
           "rmse": float(np.sqrt(np.mean(err ** 2)))}
    if yt.shape[0] >= 2:
        out["r2"] = float(r2_score(yt, yp, multioutput="variance_weighted" if yt.ndim == 2 else "uniform_average"))
    else:
        out["r2"] = None
    if y_std is not None:
        sd = np.asarray(y_std, dtype=float)
        if sd.shape != yt.shape:
            raise DataError(f"y_std: shape {sd.shape} does not match y_true {yt.shape}")
        if not np.isfinite(sd).all() or (sd < 0).any():
            raise DataError("y_std: expected finite, non-negative standard deviations")
        out["coverage_2sigma"] = float(np.mean(np.abs(err) <= 2.0 * sd))
    return out
