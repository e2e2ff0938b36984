"""ltr: multi-task learning-to-rank for product search."""

__version__ = "0.1.0"
