"""``xasml serve``: the beamline page (see docs/serve.md)."""

from __future__ import annotations

import os
from pathlib import Path

from xasml.errors import MissingExtraError, SpectrumError


def add_parser(subparsers) -> None:
    """Add the ``serve`` sub-command."""
    p = subparsers.add_parser(
        "serve", help="the beamline page: drop files or watch a folder / Tiled server, see answers as scans land",
        description="One long-running process that loads the readers and models once and serves a web page: "
                    "uploaded, watched (--watch) and Tiled (--tiled) scans are normalised and answered "
                    "(oxidation state, CN, environment, with sigma and warnings), plotted, and kept in a result "
                    "store so a restart resumes without re-analysing.")
    p.add_argument("--watch", type=Path, metavar="DIR",
                   help="analyse each new or grown file in this folder once it is complete")
    p.add_argument("--tiled", metavar="URI", help="analyse each new run of this Tiled server container")
    p.add_argument("--tiled-api-key", metavar="KEY", default=None,
                   help="API key of the Tiled server (default: $TILED_API_KEY)")
    p.add_argument("--references", type=Path, metavar="DIR",
                   help="folder of reference foil scans offered for energy calibration on the page")
    p.add_argument("--store", type=Path, metavar="DIR", default=None,
                   help="folder of the result store (results.sqlite), uploads and Tiled scans (default: "
                        "$XASML_SERVE_STORE or ~/.local/share/xasml/serve)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens the page to "
                        "the network, which has no login)")
    p.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest upload or watched file, MB (default 50)")
    p.add_argument("--max-upload-files", type=int, default=20, help="most files in one drop on the page (default 20)")
    p.add_argument("--max-uploads", type=int, default=2000, help="most uploads kept in the store (default 2000)")
    p.add_argument("--elements", nargs="+", metavar="EL", default=None,
                   help="load the models of these elements at start (default: every shipped element); others load "
                        "when their first scan arrives")
    p.add_argument("--settle", type=float, default=0.5,
                   help="seconds a watched file must stay unchanged to count as completely written (default 0.5)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Start the service and the web server; return when interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise MissingExtraError("uvicorn", "serve") from None
    from xasml.serve.app import create_app
    from xasml.serve.service import ServeConfig, ServeService

    if args.port < 0 or args.port > 65535:
        raise SpectrumError(f"{args.port} is not a port number (0-65535)", source="--port")
    cfg = ServeConfig(watch=args.watch, tiled=args.tiled,
                      tiled_api_key=args.tiled_api_key or os.environ.get("TILED_API_KEY"),
                      references=args.references, store=args.store,
                      max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_upload_files=args.max_upload_files,
                      max_uploads=args.max_uploads, settle=args.settle)
    service = ServeService(cfg)
    print("xasml serve: loading models ...", flush=True)
    service.start(elements=args.elements)
    app = create_app(service)
    print(f"xasml serve: http://{args.host}:{args.port}/  (store {service.store_dir}"
          + (f", watching {cfg.watch}" if cfg.watch else "") + (f", Tiled {cfg.tiled}" if cfg.tiled else "") + ")",
          flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=2)
    finally:
        service.stop()
    return 0
