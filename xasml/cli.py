"""The ``xasml`` command line.

Each capability contributes one sub-command from its own module, which defines
``add_parser(subparsers)``; the module is imported only when listed here, so the core stays light.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from xasml.errors import XasmlError

#: sub-command -> module providing ``add_parser(subparsers)``
COMMANDS = {
    "topology": "xasml.topology.cli",
    "local": "xasml.local.cli",
    "forward": "xasml.forward.cli",
    "fetch": "xasml.io.fetch_cli",
    "curate": "xasml.curate.cli",
    "simulate": "xasml.simulate.cli",
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every sub-command)."""
    from xasml import __version__

    parser = argparse.ArgumentParser(prog="xasml", description="Machine learning on X-ray absorption spectra.")
    parser.add_argument("--version", action="version", version=f"xasml {__version__}")
    parser.add_argument("--num-threads", type=int, default=None, metavar="N",
                        help="threads for PyTorch and the BLAS/OpenMP pools (default: $XASML_THREADS or 1, "
                             "fastest for these small models on a few cores)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        if importlib.util.find_spec(module) is None:  # capability not built yet
            continue
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xasml`` console script. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from xasml.utils import set_threads

    set_threads(args.num_threads if args.num_threads is not None else getattr(args, "threads", None))
    try:
        return int(args.func(args) or 0)
    except XasmlError as exc:
        print(f"xasml: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("xasml: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
