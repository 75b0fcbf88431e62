"""The end-to-end tier: the real `claude` binary against a mock Messages API (`pytest -m claude`).

A package, so that its conftest and modules do not collide with tests/conftest.py by name.
"""
