"""Several devices, one remote: sync (fetch, merge, push) and restore."""
