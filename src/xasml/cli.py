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
    "measure": "xasml.measure.cli",
    "latent": "xasml.latent.cli",
    "references": "xasml.references.cli",
    "serve": "xasml.serve.cli",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every sub-command, or only ``only`` (a key of :data:`COMMANDS`).

    A command line names one sub-command, so :func:`main` builds the parser with that one only:
    importing every capability's CLI module (curation, simulation, topology …) costs about half
    a second that a one-file ``xasml measure read`` does not need.
    """
    from xasml import __version__

    parser = argparse.ArgumentParser(prog="xasml", description="Machine learning on X-ray absorption spectra.")
    parser.add_argument("--version", action="version", version=f"xasml {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="also show warnings about files that depart from their format's specification "
                             "without changing the data (e.g. a missing XDI Mono.d_spacing)")
    parser.add_argument("--num-threads", type=int, default=None, metavar="N",
                        help="threads for PyTorch and the BLAS/OpenMP pools (default: $XASML_THREADS or 1, "
                             "fastest for these small models on a few cores)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        if only is not None and name != only:
            continue
        if importlib.util.find_spec(module) is None:  # capability not built yet
            continue
        importlib.import_module(module).add_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a warning as ``warning: FILE: message`` (no Python source line).

    The readers put the file they read at the start of their warning messages; a warning object
    with a ``source`` attribute gets that file prefixed. Python's own location (``filename``,
    ``lineno``) is never printed: it names xasml's code, not the user's file.
    """
    text = str(message)
    source = getattr(message, "source", None)
    if source and not text.startswith(str(source)):
        text = f"{source}: {text}"
    stream = file if file is not None else sys.stderr
    try:
        stream.write(f"warning: {text}\n")
    except (OSError, ValueError):  # stderr closed: nothing sensible left to do
        pass


def _quiet_broken_pipe() -> int:
    """Handle stdout closed by the reader (``xasml ... | head``): no traceback, exit status 141.

    Python flushes stdout again at exit; pointing it at /dev/null stops a second BrokenPipeError.
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
        pass
    return 141  # 128 + SIGPIPE, what a shell reports for a killed writer


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xasml`` console script.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success; 2 for a user mistake (any :class:`~xasml.errors.XasmlError`,
        printed as one line ``xasml: error: ...`` on stderr, and argparse's usage errors);
        1 only for an unexpected failure (a traceback); 130 on Ctrl-C; 141 when stdout was
        closed early (``| head``), quietly.
    """
    import warnings

    args_in = sys.argv[1:] if argv is None else list(argv)
    first = next((a for a in args_in if not a.startswith("-")), None)
    parser = build_parser(first if first in COMMANDS else None)
    try:
        args = parser.parse_args(args_in)  # --help and usage errors write and exit here
    except BrokenPipeError:
        return _quiet_broken_pipe()
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from xasml.utils import set_threads

    set_threads(args.num_threads if args.num_threads is not None else getattr(args, "threads", None))
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    if not getattr(args, "verbose", False):
        from xasml.io.xdi import XDIPedanticWarning

        warnings.filterwarnings("ignore", category=XDIPedanticWarning)
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()
        return status
    except XasmlError as exc:
        print(f"xasml: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        print("xasml: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
