"""Writing memory: transcript backups, checkpoints, recovery, import of old backups."""
