# The CIFAR ResNet of the PyTorch peers (`bench models`, `bench quickstart`): the bench
# prepends this file to each peer script, so both build the one network burn's
# `sal_models::CifarResNet` is checked against (the parameter counts must match).
import torch.nn as nn
import torch.nn.functional as F


def conv(cin, cout, k, stride):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.c1, self.b1 = conv(cin, planes, 3, stride), nn.BatchNorm2d(planes)
        self.c2, self.b2 = conv(planes, planes, 3, 1), nn.BatchNorm2d(planes)
        self.short = nn.Sequential()
        if stride != 1 or cin != planes:
            self.short = nn.Sequential(conv(cin, planes, 1, stride), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(out)) + self.short(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        out = 4 * planes
        self.c1, self.b1 = conv(cin, planes, 1, 1), nn.BatchNorm2d(planes)
        self.c2, self.b2 = conv(planes, planes, 3, stride), nn.BatchNorm2d(planes)
        self.c3, self.b3 = conv(planes, out, 1, 1), nn.BatchNorm2d(out)
        self.short = nn.Sequential()
        if stride != 1 or cin != out:
            self.short = nn.Sequential(conv(cin, out, 1, stride), nn.BatchNorm2d(out))

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = F.relu(self.b2(self.c2(y)))
        return F.relu(self.b3(self.c3(y)) + self.short(x))


class CifarResNet(nn.Module):
    """SaliencyMix's CIFAR ResNet layout: 3x3 stem, stride 1, no max-pool."""

    def __init__(self, block, blocks, width, classes, in_channels):
        super().__init__()
        self.stem, self.bn = conv(in_channels, width, 3, 1), nn.BatchNorm2d(width)
        layers, cin = [], width
        for stage, n in enumerate(blocks):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(block(cin, width << stage, stride))
                cin = (width << stage) * block.expansion
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn(self.stem(x))))
        return self.fc(x.mean((2, 3)))
