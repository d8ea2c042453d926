"""MobileNet v1 (Howard et al. 2017, arXiv:1704.04861), width multiplier 1.0.

Table 1 of the paper: a 3x3/2 conv of 32 channels, then 13 depthwise-separable
blocks (3x3 depthwise conv + BN + ReLU, 1x1 pointwise conv + BN + ReLU) with
pointwise widths and strides 64/1, 128/2, 128/1, 256/2, 256/1, 512/2,
5 x 512/1, 1024/2, 1024/1; global average pool; a 1000-way fully connected
layer. Used by seed 001 (17 MB) and by 3GPP TR 22.874's split-inference
examples. Convolutions have no bias (BN follows), as in the reference models.
"""

from __future__ import annotations

from torch import nn

_BLOCKS = (
    [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
)


def _conv_bn(cin: int, cout: int, k: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class MobileNetV1(nn.Module):
    def __init__(self, num_classes: int = 1000, width: float = 1.0) -> None:
        super().__init__()

        def c(n: int) -> int:
            return max(8, int(n * width))

        layers: list[nn.Module] = [_conv_bn(3, c(32), 3, 2)]
        cin = c(32)
        for cout, stride in _BLOCKS:
            layers.append(
                nn.Sequential(_conv_bn(cin, cin, 3, stride, groups=cin), _conv_bn(cin, c(cout), 1, 1))
            )
            cin = c(cout)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def mobilenet_v1(num_classes: int = 1000) -> MobileNetV1:
    return MobileNetV1(num_classes=num_classes)


MODELS = {
    "mobilenet_v1": {
        "factory": mobilenet_v1,
        "default_res": 224,
        "description": "MobileNet v1 1.0 (Howard et al. 2017), as in seed 001 and 3GPP TR 22.874",
    },
}
