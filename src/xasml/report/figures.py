"""Report figures: ROC curves, metric bars, periodic-table heatmaps, confusion matrices, spectra,
PCA + k-means maps, embeddings, parity plots, histograms and metric curves.

Every function draws on a fresh :class:`matplotlib.figure.Figure` rendered by the Agg canvas
(pyplot and its global state are never touched, so this works headless and in threads), saves a
PNG at ``path`` atomically (a temporary file renamed into place), releases the figure and returns
the path.

Styles follow Andrejevic et al., Adv. Mater. 34, 2204113 (2022): trivial in blue, topological
in orange (Figure 1), periodic tables of element-resolved scores (Figure 3d,e), grouped metric
bars per model (Figure 3b,c).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from xasml.utils import atomic_path

__all__ = [
    "DPI",
    "class_colors",
    "plot_confusion",
    "plot_curves",
    "plot_embedding",
    "plot_histogram",
    "plot_metric_bars",
    "plot_parity",
    "plot_pca_kmeans",
    "plot_periodic_table",
    "plot_roc",
    "plot_spectra",
]

#: Resolution of saved PNGs (dots per inch).
DPI = 150

#: Colours of the two topology classes (matplotlib tab10 blue and orange, as in the paper).
BINARY_COLORS = {0: "#1f77b4", 1: "#ff7f0e", "trivial": "#1f77b4", "topological": "#ff7f0e"}


def _new_figure(figsize=(6.0, 4.5)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    fig.clear()
    return path


def _finish(fig, ax, path, xlabel: str, ylabel: str, title: str = "", legend: dict | None = None) -> Path:
    """Axis labels, light grid, optional legend (``legend`` = its keyword arguments) and title; save."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend is not None:
        ax.legend(**legend)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def class_colors(labels: Sequence) -> dict:
    """Stable colour per class label: blue/orange for the topology classes, tab10/tab20 otherwise.

    Parameters
    ----------
    labels : sequence
        Class labels in display order.

    Returns
    -------
    dict
        label -> matplotlib colour.
    """
    import matplotlib

    labels = list(labels)
    if all(lab in BINARY_COLORS for lab in labels) and len(labels) <= 2:
        return {lab: BINARY_COLORS[lab] for lab in labels}
    cmap = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {lab: cmap(i % cmap.N) for i, lab in enumerate(labels)}


def _label_order(labels) -> list:
    uniq = list(dict.fromkeys(np.asarray(labels).tolist()))
    try:
        return sorted(uniq)
    except TypeError:
        return uniq


def _fnum(v) -> float:
    return float("nan") if v is None else float(v)


# --------------------------------------------------------------------------------------------
# classification summaries
# --------------------------------------------------------------------------------------------

def plot_roc(curves: Mapping[str, Mapping], path, title: str = "") -> Path:
    """Receiver operating characteristic curves (Andrejevic et al. 2022, Figure 3a).

    Parameters
    ----------
    curves : dict
        Curve name (e.g. "train", "validation", "test" or a model name) -> dict with ``fpr`` and
        ``tpr`` (sequences) and optionally ``auc`` (float or None); the ``roc`` entry of
        :func:`xasml.evaluation.metrics.binary_metrics` merged with its ``auc`` fits.
    path : str or Path
        Output PNG.
    title : str
        Figure title.

    Returns
    -------
    Path
    """
    fig = _new_figure((5.2, 5.0))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="chance")
    styles = ("-", "--", "-.", ":")
    for i, (name, c) in enumerate(curves.items()):
        fpr, tpr = np.asarray(c.get("fpr", []), float), np.asarray(c.get("tpr", []), float)
        if fpr.size == 0:
            continue
        auc = c.get("auc")
        label = f"{name} (AUC = {auc:.3f})" if auc is not None else str(name)
        # line styles cycle so that coinciding curves stay distinguishable
        ax.plot(fpr, tpr, lw=2, ls=styles[(i // 10) % 4] if len(curves) > 10 else styles[i % 4] if i else "-",
                label=label, alpha=0.9)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    return _finish(fig, ax, path, "False positive rate", "True positive rate", title,
                   legend={"loc": "lower right", "fontsize": 9})


def plot_metric_bars(table: Mapping[str, Mapping[str, float]], metrics: Sequence[str], path,
                     title: str = "", errors: Mapping[str, Mapping[str, float]] | None = None,
                     ylabel: str = "Score", ylim: tuple[float, float] | None = None,
                     reference: Mapping[str, float] | None = None,
                     overlay: Mapping[str, Mapping[str, float]] | None = None,
                     overlay_label: str = "") -> Path:
    """Grouped bars: one group per model, one bar per metric (Andrejevic et al. 2022, Figure 3b,c).

    With ``overlay`` a second, grey, narrower bar is drawn inside each bar, as in Carbone et al.
    (2019), Figure 3, where it shows the class-wise F1 of models trained on the pre-edge only.
    The groups can be anything: models, absorbing elements (with classes as the "metrics"), ...

    Parameters
    ----------
    table : dict
        model name -> {metric name -> value}; a missing or None value leaves a gap.
    metrics : list of str
        Metrics to draw, in bar order (e.g. ``["recall", "precision", "f1"]``).
    path : str or Path
        Output PNG.
    title : str
        Figure title (e.g. "Topological examples").
    errors : dict, optional
        Same shape as ``table``: standard deviations drawn as error bars.
    ylabel : str
        y-axis label.
    ylim : (float, float), optional
        y range; default (0, 1.08) when all values lie in [0, 1].
    reference : dict, optional
        metric -> value drawn as a dashed horizontal line (e.g. the full model's scores).
    overlay : dict, optional
        Same shape as ``table``: values drawn as grey bars over the main ones.
    overlay_label : str
        Legend entry of the overlay bars.

    Returns
    -------
    Path
    """
    import matplotlib

    models = list(table)
    metrics = list(metrics)
    nm = max(len(metrics), 1)
    width = 0.8 / nm
    fig = _new_figure((max(4.5, 1.1 * len(models) * max(1, nm / 3) + 2.0), 4.2))
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["Set2"]
    x = np.arange(len(models))
    all_vals = []
    for j, m in enumerate(metrics):
        vals = np.array([_fnum(table[mod].get(m)) for mod in models])
        all_vals.extend(vals[np.isfinite(vals)].tolist())
        err = None
        if errors is not None:
            err = np.array([_fnum(errors.get(mod, {}).get(m)) for mod in models])
        pos = x - 0.4 + width * (j + 0.5)
        bars = ax.bar(pos, np.nan_to_num(vals, nan=0.0), width * 0.92, yerr=err, capsize=3,
                      color=cmap(j % cmap.N), edgecolor="0.25", lw=0.6, label=m)
        tops = vals + (np.nan_to_num(err, nan=0.0) if err is not None else 0.0)
        for b, v, top in zip(bars, vals, tops):
            if np.isfinite(v):
                ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, top), xytext=(0, 2),
                            textcoords="offset points", ha="center", va="bottom", fontsize=7)
        if overlay is not None:
            ov = np.array([_fnum(overlay.get(mod, {}).get(m)) for mod in models])
            ax.bar(pos, np.nan_to_num(ov, nan=0.0), width * 0.5, color="0.45", alpha=0.85,
                   label=(overlay_label or "overlay") if j == nm - 1 else None, zorder=3)
        if reference is not None and reference.get(m) is not None:
            ax.axhline(float(reference[m]), color=cmap(j % cmap.N), ls="--", lw=1)
    if max((len(str(m)) for m in models), default=0) > 8:
        ax.set_xticks(x, models, rotation=20, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(x, models)
    ax.set_ylabel(ylabel)
    if ylim is None and all_vals and min(all_vals) >= 0 and max(all_vals) <= 1:
        ylim = (0, 1.1)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(ncols=min(nm + (overlay is not None), 5), fontsize=9, loc="outside lower center", frameon=False)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_confusion(cm, classes: Sequence, path, title: str = "", normalize: bool = True) -> Path:
    """Confusion matrix heatmap with counts (and row fractions, i.e. recall, when ``normalize``).

    Parameters
    ----------
    cm : array_like, shape (k, k)
        Counts; rows true class, columns predicted class (sklearn convention, as returned in the
        ``confusion`` entry of the metrics functions).
    classes : sequence of str
        Class names in the order of rows/columns.
    path : str or Path
        Output PNG.
    title : str
        Figure title.
    normalize : bool
        Colour by row-normalised fraction and print it below the count.

    Returns
    -------
    Path
    """
    cm = np.asarray(cm, dtype=float)
    k = len(classes)
    if cm.shape != (k, k):
        raise ValueError(f"cm: expected shape ({k}, {k}) for {k} classes, got {cm.shape}")
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    shown = frac if normalize else cm
    size = 1.2 + 0.9 * k
    fig = _new_figure((size + 1.2, size))
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(cm.max(), 1))
    for i in range(k):
        for j in range(k):
            txt = f"{int(cm[i, j])}" + (f"\n{frac[i, j]:.2f}" if normalize else "")
            ax.text(j, i, txt, ha="center", va="center", fontsize=10 if k <= 6 else 7,
                    color="white" if shown[i, j] > 0.6 * (1 if normalize else cm.max()) else "black")
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=30 if k > 3 else 0)
    ax.set_yticks(range(k), [str(c) for c in classes])
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    fig.colorbar(im, ax=ax, shrink=0.8, label="Fraction of true class" if normalize else "Count")
    if title:
        ax.set_title(title)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# periodic table
# --------------------------------------------------------------------------------------------

def _table_position(symbol: str) -> tuple[int, int]:
    """(row, column) of an element in an 18-column table with the f-block in rows 8.5 and 9.5."""
    from pymatgen.core.periodic_table import Element

    e = Element(symbol)
    z = e.Z
    if 57 <= z <= 71:
        return 8, 3 + (z - 57)
    if 89 <= z <= 103:
        return 9, 3 + (z - 89)
    return int(e.row), int(e.group)


def plot_periodic_table(values: Mapping[str, float], path, title: str = "", cmap: str = "viridis",
                        vmin: float = 0, vmax: float = 1, counts: Mapping[str, int] | None = None,
                        label: str = "", fmt: str = ".2f", max_z: int = 103) -> Path:
    """Periodic-table heatmap of a per-element quantity (Andrejevic et al. 2022, Figure 3d,e).

    Cells are placed with pymatgen's ``Element.row`` and ``Element.group``; lanthanides and
    actinides (La-Lu, Ac-Lr) are drawn in two rows below the main table. Each cell shows the
    atomic number, symbol and value (and ``n=<count>`` when ``counts`` is given); elements without
    a value are light grey.

    Parameters
    ----------
    values : dict
        Element symbol -> value (None or NaN counts as missing).
    path : str or Path
        Output PNG.
    title : str
        Figure title.
    cmap : str
        Matplotlib colormap name.
    vmin, vmax : float
        Colour scale limits.
    counts : dict, optional
        Element symbol -> number of examples, printed in the cell.
    label : str
        Colour-bar label (e.g. "F1 (topological)").
    fmt : str
        Format of the printed values.
    max_z : int
        Highest atomic number drawn.

    Returns
    -------
    Path

    Raises
    ------
    xasml.errors.SpectrumError
        If a key is not an element symbol.
    """
    import matplotlib
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle
    from pymatgen.core.periodic_table import Element

    from xasml.spectrum import normalize_element

    vals = {}
    for k, v in values.items():
        el = normalize_element(k, field_name="values")
        vals[el] = v
    cnts = {normalize_element(k, field_name="counts"): v for k, v in (counts or {}).items()}
    cm = matplotlib.colormaps[cmap]
    norm = Normalize(vmin=vmin, vmax=vmax)
    fig = _new_figure((13.0, 7.6))
    ax = fig.add_subplot()
    for z in range(1, max_z + 1):
        sym = Element.from_Z(z).symbol
        r, c = _table_position(sym)
        y = r + (0.5 if r >= 8 else 0)
        v = vals.get(sym)
        has = v is not None and np.isfinite(float(v))
        face = cm(norm(float(v))) if has else "0.90"
        ax.add_patch(Rectangle((c - 0.5, y - 0.5), 0.96, 0.96, facecolor=face, edgecolor="white", lw=1))
        rgb = matplotlib.colors.to_rgb(face)
        lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
        tc = "white" if has and lum < 0.5 else ("black" if has else "0.55")
        ax.text(c - 0.44, y - 0.40, str(z), fontsize=5.5, color=tc, ha="left", va="top")
        ax.text(c - 0.02, y - 0.10, sym, fontsize=10 if has else 8.5, weight="bold" if has else "normal",
                color=tc, ha="center", va="center")
        if has:
            ax.text(c - 0.02, y + 0.22, format(float(v), fmt), fontsize=7, color=tc, ha="center", va="center")
        if sym in cnts and cnts[sym] is not None:
            ax.text(c + 0.42, y - 0.40, f"n={int(cnts[sym])}", fontsize=5, color=tc, ha="right", va="top")
    # placeholders for the f-block in group 3
    for r, txt in ((6, "57–71"), (7, "89–103")):
        ax.text(3 - 0.02, r, txt, fontsize=6.5, color="0.45", ha="center", va="center")
    ax.set_xlim(0.4, 18.6)
    ax.set_ylim(10.1, 0.4)
    ax.set_aspect("equal")
    ax.axis("off")
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cm)
    fig.colorbar(sm, ax=ax, orientation="horizontal", shrink=0.45, pad=0.01, aspect=35,
                 label=label or None)
    if title:
        ax.set_title(title, fontsize=13)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# spectra and low-dimensional maps
# --------------------------------------------------------------------------------------------

def plot_spectra(energy, spectra: Mapping[str, np.ndarray], path, title: str = "",
                 xlabel: str = "Energy (eV)", max_per_class: int = 10,
                 ylabel: str = "μ(E) (arb. units)", offset: float = 0.0, seed: int = 0) -> Path:
    """Example spectra of each class (thin lines) and the class mean (thick line).

    Parameters
    ----------
    energy : array_like, shape (m,)
        Energy grid (units as in ``xlabel``).
    spectra : dict
        class name -> array of shape (n_i, m).
    path : str or Path
        Output PNG.
    title, xlabel, ylabel : str
        Labels.
    max_per_class : int
        Number of thin example lines per class (a seeded random subset when there are more).
    offset : float
        Vertical offset added between classes (0 overlays them).
    seed : int
        Seed of the example subset.

    Returns
    -------
    Path
    """
    energy = np.asarray(energy, dtype=float)
    colors = class_colors(list(spectra))
    rng = np.random.default_rng(seed)
    fig = _new_figure((6.4, 4.4))
    ax = fig.add_subplot()
    for i, (name, S) in enumerate(spectra.items()):
        S = np.atleast_2d(np.asarray(S, dtype=float))
        if S.size == 0:
            continue
        if S.shape[1] != energy.size:
            raise ValueError(f"spectra[{name!r}]: {S.shape[1]} points per spectrum, energy has {energy.size}")
        sel = np.arange(len(S)) if len(S) <= max_per_class else np.sort(
            rng.choice(len(S), max_per_class, replace=False))
        col = colors[name]
        for s in S[sel]:
            ax.plot(energy, s + i * offset, color=col, lw=0.6, alpha=0.35)
        ax.plot(energy, S.mean(axis=0) + i * offset, color=col, lw=2.4, label=f"{name} (n={len(S)})")
    return _finish(fig, ax, path, xlabel, ylabel, title, legend={"fontsize": 9})


def plot_pca_kmeans(result, y, path, title: str = "", class_names: Sequence[str] = ("trivial", "topological"),
                    grid_points: int = 300) -> Path:
    """First two principal components coloured by true class over the k-means decision regions.

    Reproduces the panels of Andrejevic et al. (2022), Figure 1a: points are the spectra in the
    PC1-PC2 plane coloured by their true class; the background is shaded by the class the
    matched k-means clusters assign, evaluated in the plane through the data mean (the remaining
    retained components set to 0), so the boundary is the k-means boundary projected onto PC1-PC2.
    The legend gives the per-class F1 of the matching.

    Parameters
    ----------
    result : xasml.evaluation.exploration.PCAKMeansResult
        Output of :func:`xasml.evaluation.exploration.pca_kmeans`.
    y : array_like, shape (n,)
        True 0/1 classes of the rows of ``result.Z``.
    path : str or Path
        Output PNG.
    title : str
        Figure title (e.g. the element symbol).
    class_names : pair of str
        Names of class 0 and 1.
    grid_points : int
        Resolution of the shaded background.

    Returns
    -------
    Path
    """
    from matplotlib.colors import ListedColormap

    y = np.asarray(y).astype(int)
    Zp = np.asarray(result.Z_plot if result.Z_plot is not None else result.Z[:, :2], dtype=float)
    pad_x = 0.08 * (np.ptp(Zp[:, 0]) or 1.0)
    pad_y = 0.08 * (np.ptp(Zp[:, 1]) or 1.0)
    gx = np.linspace(Zp[:, 0].min() - pad_x, Zp[:, 0].max() + pad_x, grid_points)
    gy = np.linspace(Zp[:, 1].min() - pad_y, Zp[:, 1].max() + pad_y, grid_points)
    GX, GY = np.meshgrid(gx, gy)
    k = result.n_components
    G = np.zeros((GX.size, k))
    G[:, 0] = GX.ravel()
    if k >= 2:
        G[:, 1] = GY.ravel()
    # signed margin: distance to the nearest trivial-cluster centre minus that to the nearest
    # topological-cluster centre (> 0: class 1); its zero level is the smooth k-means boundary
    D = np.linalg.norm(G[:, None, :] - np.asarray(result.kmeans.cluster_centers_)[None, :, :], axis=2)
    inf = np.full(len(G), np.inf)
    dmin = {c: np.min(D[:, [k_ for k_, v in result.mapping.items() if v == c]], axis=1)
            if c in result.mapping.values() else inf for c in (0, 1)}
    margin = np.where(np.isinf(dmin[0]), 1.0, np.where(np.isinf(dmin[1]), -1.0, dmin[0] - dmin[1]))
    margin = margin.reshape(GX.shape)
    cls = (margin > 0).astype(int)
    fig = _new_figure((5.6, 4.8))
    ax = fig.add_subplot()
    ax.pcolormesh(GX, GY, cls, cmap=ListedColormap([BINARY_COLORS[0], BINARY_COLORS[1]]), vmin=0, vmax=1,
                  alpha=0.18, shading="auto", rasterized=True)
    if cls.min() != cls.max():  # else one class everywhere in this plane: no boundary to draw
        ax.contour(GX, GY, margin, levels=[0.0], colors="0.3", linewidths=1.0)
    per = result.metrics.get("per_class", {})
    for c in (0, 1):
        m = y == c
        name = class_names[c]
        f1 = per.get(name, {}).get("f1")
        lab = f"{name} (n={int(m.sum())}" + (f", F1={f1:.2f})" if f1 is not None else ")")
        ax.scatter(Zp[m, 0], Zp[m, 1], s=26, color=BINARY_COLORS[c], edgecolor="white", lw=0.5,
                   label=lab, zorder=3)
    evr = result.pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({100 * evr[0]:.1f} % of variance)")
    ax.set_ylabel(f"PC2 ({100 * evr[1]:.1f} % of variance)" if evr.size > 1 else "PC2")
    ax.legend(fontsize=8, loc="best", title=f"k-means on {k} PC{'s' if k > 1 else ''} "
                                             f"({100 * float(np.sum(result.explained_variance_ratio)):.0f} %)",
              title_fontsize=8, framealpha=0.85)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_embedding(Z, labels, path, title: str = "", xlabel: str = "Component 1",
                   ylabel: str = "Component 2", s: float = 14, alpha: float = 0.8) -> Path:
    """Scatter of a 2-D embedding (PCA, UMAP, latent space) coloured by class.

    Parameters
    ----------
    Z : array_like, shape (n, 2)
        Embedded coordinates.
    labels : array_like, shape (n,)
        Class of each point (any hashable labels; up to 20 distinct colours).
    path : str or Path
        Output PNG.
    title, xlabel, ylabel : str
        Labels.
    s, alpha : float
        Marker size and opacity.

    Returns
    -------
    Path
    """
    Z = np.asarray(Z, dtype=float)
    if Z.ndim != 2 or Z.shape[1] < 2:
        raise ValueError(f"Z: expected shape (n, 2), got {Z.shape}")
    labels = np.asarray(labels)
    if labels.shape[0] != Z.shape[0]:
        raise ValueError(f"labels: {labels.shape[0]} labels for {Z.shape[0]} points")
    order = _label_order(labels)
    colors = class_colors(order)
    fig = _new_figure((5.8, 4.8))
    ax = fig.add_subplot()
    for lab in order:
        m = labels == lab
        ax.scatter(Z[m, 0], Z[m, 1], s=s, alpha=alpha, color=colors[lab], edgecolor="none",
                   label=f"{lab} (n={int(m.sum())})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, markerscale=1.5, loc="best")
    if title:
        ax.set_title(title)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# regression and generic curves
# --------------------------------------------------------------------------------------------

def plot_parity(x, y, path, xlabel: str, ylabel: str, title: str = "", annotate: bool = True) -> Path:
    """Parity plot of predicted against true values with the y = x line, MAE and R².

    Parameters
    ----------
    x : array_like, shape (n,)
        True values (e.g. peak positions in eV).
    y : array_like, shape (n,)
        Predicted values, same units.
    path : str or Path
        Output PNG.
    xlabel, ylabel, title : str
        Labels (include units).
    annotate : bool
        Print n, MAE and R² in the corner.

    Returns
    -------
    Path
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} and {y.size}")
    fig = _new_figure((5.0, 4.8))
    ax = fig.add_subplot()
    ax.scatter(x, y, s=12, alpha=0.6 if x.size > 200 else 0.85, color="#1f77b4", edgecolor="none")
    finite = np.isfinite(x) & np.isfinite(y)
    if finite.any():
        lo = float(min(x[finite].min(), y[finite].min()))
        hi = float(max(x[finite].max(), y[finite].max()))
        pad = 0.03 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], ls="--", color="0.4", lw=1)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        if annotate:
            err = y[finite] - x[finite]
            ss = np.sum((x[finite] - x[finite].mean()) ** 2)
            r2 = 1 - np.sum(err ** 2) / ss if ss > 0 else float("nan")
            ax.text(0.04, 0.96, f"n = {int(finite.sum())}\nMAE = {np.mean(np.abs(err)):.3g}\nR² = {r2:.3f}",
                    transform=ax.transAxes, va="top", ha="left", fontsize=9,
                    bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"})
    ax.set_aspect("equal")
    return _finish(fig, ax, path, xlabel, ylabel, title)


def plot_histogram(values, path, xlabel: str, title: str = "", bins: int = 50, log: bool = False,
                   ylabel: str = "Count", show_median: bool = True) -> Path:
    """Histogram of a quantity (e.g. per-spectrum percentage error), with its median marked.

    Parameters
    ----------
    values : array_like
        Values (NaN and inf are dropped).
    path : str or Path
        Output PNG.
    xlabel : str
        Quantity and unit.
    title : str
        Figure title.
    bins : int
        Number of bins.
    log : bool
        Logarithmic count axis.
    ylabel : str
        Count-axis label.
    show_median : bool
        Draw and label the median.

    Returns
    -------
    Path
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    fig = _new_figure((5.8, 4.2))
    ax = fig.add_subplot()
    if v.size:
        ax.hist(v, bins=bins, color="#1f77b4", edgecolor="white", lw=0.4, log=log)
        if show_median:
            med = float(np.median(v))
            ax.axvline(med, color="#d62728", ls="--", lw=1.2, label=f"median = {med:.3g}")
            ax.legend(fontsize=9)
    return _finish(fig, ax, path, xlabel, ylabel, title)


def plot_curves(x, curves: Mapping[str, tuple], path, xlabel: str, ylabel: str, title: str = "",
                ylim: tuple[float, float] | None = None, reference: Mapping[str, float] | None = None,
                logx: bool = False) -> Path:
    """Lines with optional error bands, e.g. F1 against energy shift, noise or energy resolution.

    Parameters
    ----------
    x : array_like, shape (k,)
        Abscissa (e.g. energy interval ΔE in eV).
    curves : dict
        name -> ``(y, yerr)``, y of shape (k,), yerr of shape (k,) or None (a bare y is accepted).
    path : str or Path
        Output PNG.
    xlabel, ylabel, title : str
        Labels (include units).
    ylim : (float, float), optional
        y range.
    reference : dict, optional
        name -> value drawn as a dotted horizontal line (e.g. an atom-type-only baseline,
        Andrejevic et al. 2022, Figure S7).
    logx : bool
        Logarithmic x axis.

    Returns
    -------
    Path
    """
    x = np.asarray(x, dtype=float)
    fig = _new_figure((6.0, 4.3))
    ax = fig.add_subplot()
    colors = class_colors(list(curves) + list(reference or {}))
    for name, c in curves.items():
        if isinstance(c, tuple) and len(c) == 2:
            yv, yerr = c
        else:
            yv, yerr = c, None
        yv = np.asarray([_fnum(v) for v in yv], dtype=float)
        if yv.shape != x.shape:
            raise ValueError(f"curves[{name!r}]: {yv.size} values for {x.size} x positions")
        ax.plot(x, yv, marker="o", ms=4, lw=1.6, color=colors[name], label=name)
        if yerr is not None:
            e = np.asarray([_fnum(v) for v in yerr], dtype=float)
            ax.fill_between(x, yv - e, yv + e, color=colors[name], alpha=0.2, lw=0)
    for name, v in (reference or {}).items():
        ax.axhline(float(v), ls=":", lw=1.4, color=colors[name], label=name)
    if logx:
        ax.set_xscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    return _finish(fig, ax, path, xlabel, ylabel, title, legend={"fontsize": 9})
