"""Training: list tensors, the Lightning data module and module, and the CLI."""
