"""A project's memory repository: the Store (the git layer plus the working files), the
memory-file rules, config, commit history and its trailers."""
