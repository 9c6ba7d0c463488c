"""portmatrix: check real network traffic against an allowed port matrix."""

__version__ = "0.1.0"
