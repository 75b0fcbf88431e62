"""The one error boundary of the command line: a CmemError becomes its message and hint with
exit status 1, anything unexpected a one-line summary (traceback with CMEM_DEBUG=1) and exit
status 3.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Sequence

import click

from .. import paths
from ..errors import CmemError
from .options import _print_notices, cli


def main(argv: Sequence[str] | None = None) -> int:
    paths.private()
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="cmem",
                 standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except CmemError as error:
        click.echo(f"cmem: error: {error}", err=True)
        if error.hint:
            click.echo(f"hint: {error.hint}", err=True)
        return error.exit_code
    except OSError as error:  # a file the user named, a full disk: their words, not a trace
        where = f": {error.filename}" if error.filename else ""
        click.echo(f"cmem: error: {error.strerror or error}{where}", err=True)
        return 1
    except Exception as error:  # noqa: BLE001 - the boundary for the unexpected
        if os.environ.get("CMEM_DEBUG"):
            traceback.print_exc()
        click.echo(f"cmem: internal error: {type(error).__name__}: {error}", err=True)
        click.echo("hint: run again with CMEM_DEBUG=1 for the traceback", err=True)
        return 3
    finally:
        _print_notices()
    return 0
