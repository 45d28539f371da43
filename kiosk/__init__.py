"""The flashing station app: updates, image library, drives, flashing, flash log."""

__version__ = "0.1.0"
