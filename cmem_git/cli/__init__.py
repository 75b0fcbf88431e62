"""The command line: a thin layer that turns options into calls and results into text.

Only this package imports click (tests/test_layers.py checks it). One module per command group,
imported when one of its commands runs (options.COMMAND_MODULES, lazy.py); options.py holds the
`cmem` group and the options several groups share; boundary.py is the one place errors become
messages and exit codes.
"""

from .boundary import main

__all__ = ["main"]
