"""Built-in backbones: timm ResNet / SE-ResNet families, CIFAR ResNets, any ``timm/<name>``."""
