"""Rankers behind one interface, and reference scorers that need no training."""
