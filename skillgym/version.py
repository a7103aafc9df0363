"""skillgym's version, in a module that imports nothing (artifacts record it)."""

__version__ = "0.1.0"
