"""hftmem: a zero-stop terminal inspector for the memory of a running C++ trading engine."""

__version__ = "0.1.0"
