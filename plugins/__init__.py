"""Built-in plugins, installed as ``harness_plugins``; loaded through the same entry points as third-party ones."""
