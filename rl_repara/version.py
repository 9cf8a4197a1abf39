"""The package version (what exports and checkpoints record)."""

__version__ = "0.2.0"
