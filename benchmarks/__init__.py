"""Benchmarks of pypicloud (SPEC section 12). Run: ``.venv/bin/python -m benchmarks.run``."""
