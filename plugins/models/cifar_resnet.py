"""CIFAR-style ResNet-20/32/44/56/110 (He et al. 2016, Sec. 4.2) with 1x1-conv projection shortcuts.

3x3 stem with 16 channels; three stages of 16/32/64 channels with n basic blocks each
(depth = 6n + 2); stride 2 at the first block of stages 2 and 3; 1x1 conv + BN shortcut when
the shape changes; global average pooling; linear head; Kaiming-normal conv init.
Blocks use timm's attribute names so :func:`harness.models.surgery.apply_attention` can place SE.
"""

from __future__ import annotations

from torch import Tensor, nn

DEPTHS = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}
WIDTHS = (16, 32, 64)


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se: nn.Module | None = None
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        self.act2 = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        if self.downsample is not None:
            shortcut = self.downsample(x)
        return self.act2(out + shortcut)


class CifarResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int = 10, in_chans: int = 3):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"CIFAR ResNet depth must be one of {sorted(DEPTHS)}")
        blocks = DEPTHS[depth]
        self.conv1 = nn.Conv2d(in_chans, WIDTHS[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(WIDTHS[0])
        self.act1 = nn.ReLU(inplace=True)
        inplanes = WIDTHS[0]
        stages = []
        for index, planes in enumerate(WIDTHS):
            layers = []
            for block in range(blocks):
                stride = 2 if index > 0 and block == 0 else 1
                layers.append(BasicBlock(inplanes, planes, stride))
                inplanes = planes
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(WIDTHS[-1], num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def stages(self) -> dict[int, nn.Sequential]:
        return {1: self.layer1, 2: self.layer2, 3: self.layer3}

    def forward(self, x: Tensor) -> Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.global_pool(x).flatten(1))
