"""The command line: a thin layer that turns options into calls and results into text.

Only this package imports click (tests/test_layers.py checks it). One module per command group;
options.py holds the `cmem` group and the options several groups share; boundary.py is the one
place errors become messages and exit codes.
"""

from . import browse, devices, documents, find, install, purge  # noqa: F401 - they register commands
from .boundary import main

__all__ = ["main"]
