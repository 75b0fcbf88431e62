"""cmem: Claude Code session memory, versioned in git."""

__version__ = "0.1.0"
