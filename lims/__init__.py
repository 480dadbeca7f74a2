"""lims: a lab information system for autologous MSC manufacturing."""

__version__ = "0.1.0"
