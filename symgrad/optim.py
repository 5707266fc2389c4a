"""torch.optim for symgrad (being written)."""
