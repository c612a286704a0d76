"""The package version, in one place (the face, the results and the command line read it)."""

__version__ = "0.3.0"
