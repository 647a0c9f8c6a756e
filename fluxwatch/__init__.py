"""The fluxwatch command and its configuration; wires the other packages together."""

__version__ = "0.1.0"
