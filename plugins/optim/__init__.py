"""Built-in optimizers and LR schedulers."""
