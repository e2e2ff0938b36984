"""Neural building blocks and models (plain ``nn.Module``s; training lives in ltr.training)."""
