"""Models: building from plugins, attention surgery, pretrained weights, cost."""
