"""The original 2012 AlexNet as Caffe's ``bvlc_alexnet`` defines it.

Krizhevsky, Sutskever and Hinton (NIPS 2012), as in Caffe's
``models/bvlc_alexnet/deploy.prototxt``: 227x227 input; conv1 96 11x11/4;
LRN; pool 3/2; conv2 256 5x5 pad 2 in 2 groups; LRN; pool 3/2; conv3 384
3x3; conv4 384 3x3 in 2 groups; conv5 256 3x3 in 2 groups; pool 3/2;
fc6 4096, fc7 4096 (dropout 0.5), fc8 1000. Caffe pools round up (ceil mode).
LRN: local_size 5, alpha 1e-4, beta 0.75 (Caffe's alpha is divided by the
window, as ``nn.LocalResponseNorm`` does).

torchvision's ``alexnet`` is the later single-tower "one weird trick" variant
(64/192/384/256/256 channels, no groups, no LRN) and differs in every size.
"""

from __future__ import annotations

from torch import nn


class AlexNetCaffe(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4),  # conv1
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0),  # norm1
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),  # pool1
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),  # conv2
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0),  # norm2
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),  # pool2
            nn.Conv2d(256, 384, kernel_size=3, padding=1),  # conv3
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),  # conv4
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),  # conv5
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),  # pool5
        )
        self.classifier = nn.Sequential(
            nn.Linear(256 * 6 * 6, 4096),  # fc6
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),  # fc7
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),  # fc8
        )

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = self.features(x)
        x = x.flatten(1)  # Caffe's fc6 takes the 256x6x6 blob as it is (227x227 input only)
        return self.classifier(x)


def alexnet_caffe(num_classes: int = 1000) -> AlexNetCaffe:
    return AlexNetCaffe(num_classes=num_classes)


MODELS = {
    "alexnet_caffe": {
        "factory": alexnet_caffe,
        "default_res": 227,
        "description": "original 2012 AlexNet (Caffe bvlc_alexnet: 96/256/384/384/256, groups, LRN)",
    },
}
