"""``xasml latent``: RankAAE latent spaces of site spectra (seed 002 §II.C).

* ``xasml latent fit --data PATH --out DIR [--element Cu | --elements Ti,...,Zn]``: train a RankAAE
  and its latent -> (OS, CN) ensemble on a site table or FEFF data folder (per element, or one
  universal model with an element code); writes a run folder (config, versions, data
  fingerprint, splits, weights, metrics, report with the latent scan of Figure 6b).
* ``xasml latent encode [--model DIR] --json FILE...``: latent vector and OS/CN predictions of
  spectrum files (FEFF ``xmu.dat``, measured XDI); without ``--model`` the model shipped for the
  file's absorbing element (``xasml/data/latent/<El>/``).
"""

from __future__ import annotations

import json
import sys

from xasml.errors import file_error_line


def add_parser(subparsers) -> None:
    """Register ``latent fit`` and ``latent encode`` on the top-level sub-parsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``xasml`` command's sub-parsers.
    """
    p = subparsers.add_parser("latent", help="RankAAE latent spaces aligned with structural descriptors",
                              description="Rank-constrained adversarial autoencoder (RankAAE) of site spectra: "
                                          "a 6-dimensional latent space whose first five axes are ranked against "
                                          "oxidation state, coordination number, mean ligand coordination, "
                                          "first-shell radial spread and minimum ligand-ligand distance.")
    sub = p.add_subparsers(dest="latent_command", metavar="ACTION")
    f = sub.add_parser("fit", help="train a RankAAE and its OS/CN ensemble on a site table or FEFF folder")
    f.add_argument("--data", help="site table (Parquet, `xasml local sites`) or FEFF data folder "
                                  "(<material>/FEFF-XANES/<index>_<El>/xmu.dat + POSCAR); "
                                  "default $XASML_DATA or ../shared/data/omnixas-cu-feff")
    f.add_argument("--out", help="run folder (default runs/latent-<El>-<timestamp>)")
    f.add_argument("--config", metavar="FILE", help="TOML/JSON config overriding defaults (see --show-config); "
                                                    "options given on the command line override it")
    f.add_argument("--show-config", action="store_true",
                   help="print every option with the value the run would use (defaults, --config, options) and "
                        "its description, and exit")
    f.add_argument("--element", default=None, help="absorbing element of a per-element model (default Cu)")
    f.add_argument("--elements", default=None, help="universal model over these elements, comma-separated "
                                                    "(e.g. Ti,V,Cr,Mn,Fe,Co,Ni,Cu,Zn; one-hot element code)")
    f.add_argument("--labels", help="label table (Parquet) overriding the sites' environment, CN and OS")
    f.add_argument("--epochs", type=int, default=None, help="RankAAE epochs (default: the estimator's)")
    f.add_argument("--rank-weight", type=float, default=None, help="weight of the rank constraint")
    f.add_argument("--members", type=int, default=None, help="networks in the OS/CN ensemble (default 16)")
    f.add_argument("--candidates", type=int, default=None, help="RankAAE seeds; the best on validation is kept "
                                                                "(default 1)")
    f.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    f.add_argument("--threads", type=int, default=None, help="torch threads (default 1)")
    f.add_argument("--overwrite", action="store_true", help="clear an existing run folder first")
    f.set_defaults(func=_fit)
    from xasml.latent.model import shipped_elements

    shipped = ", ".join(shipped_elements()) or "none"
    e = sub.add_parser("encode", help="latent vector and OS/CN of spectrum files (FEFF xmu.dat, XDI)",
                       description=f"Latent vector and oxidation state / coordination number of spectrum files. "
                                   f"Latent models ship for: {shipped} (other elements: train one with `xasml "
                                   f"latent fit` and pass --model). Latents outside the model's training range, "
                                   f"and predictions outside its training labels' range, are flagged "
                                   f"(latent_in_range, latent_out_of_range, targets_out_of_range) and warned about.")
    e.add_argument("files", nargs="+", metavar="FILE")
    e.add_argument("--model", help=f"model or run folder (default: the model shipped for the file's element; "
                                   f"shipped: {shipped})")
    e.add_argument("--json", action="store_true", help="one JSON object per line")
    e.set_defaults(func=_encode)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def resolve_fit_config(args):
    """The :class:`~xasml.latent.model.LatentConfig` of ``xasml latent fit``: defaults, then
    ``--config``, then the options given on the command line."""
    from xasml.latent.model import LatentConfig

    cfg = LatentConfig.from_file(args.config) if args.config else LatentConfig.defaults()
    over = {k: v for k, v in (("data", args.data), ("element", args.element), ("labels", args.labels),
                              ("seed", args.seed), ("candidates", args.candidates), ("n_threads", args.threads))
            if v is not None}
    rankaae = {k: v for k, v in (("epochs", args.epochs), ("rank_weight", args.rank_weight)) if v is not None}
    if rankaae:
        over["rankaae"] = {**cfg.rankaae, **rankaae}
    if args.elements:
        over["elements"] = [e.strip() for e in args.elements.split(",") if e.strip()]
    if args.members is not None:
        over["ensemble"] = {**cfg.ensemble, "n_members": args.members}
    return cfg.merged(over, "command line")


def _fit(args) -> int:
    """``xasml latent fit``."""
    from xasml.latent.model import fit_latent
    from xasml.datasets.sites import default_data_path
    from xasml.runs import default_run_dir

    cfg = resolve_fit_config(args)
    if cfg.data is None:
        cfg = cfg.merged({"data": str(default_data_path())})
    if args.show_config:
        print(cfg.show())
        return 0
    out = args.out or default_run_dir(f"latent-{'all' if len(cfg.elements) > 1 else cfg.element}")
    fit_latent(cfg, out, overwrite=args.overwrite)
    return 0


def _encode(args) -> int:
    """``xasml latent encode``: one result per good file on stdout, one error line per bad file on stderr, exit 2."""
    from xasml.latent.model import encode_files

    status = 0
    for r in encode_files(args.files, args.model):
        if "error" in r:
            status = 2
            print(file_error_line(r["file"], r["error"]), file=sys.stderr)
        elif args.json:
            print(json.dumps(r))
        else:
            z = " ".join(f"{v:+.2f}" for v in r["latent"])
            os_, cn = r["oxidation_state"], r["coordination_number"]
            flag = {True: "", False: "  [OUT OF TRAINING RANGE]", None: "  [training range unknown]"}[
                r.get("latent_in_range")]
            print(f"{r['file']}: z = [{z}]  OS {os_['prediction']:.2f} ± {os_['std']:.2f}  "
                  f"CN {cn['prediction']:.2f} ± {cn['std']:.2f}{flag}")
            for w in r.get("warnings", []):
                print(f"  warning: {w}")
    return status
