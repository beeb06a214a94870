"""EfficientNet-Lite0 in plain torch, so building needs neither timm nor torchvision.

Layer registration order mirrors the shipped state dict (stem, blocks, head, classifier) so weights
are mapped by position. Lite variants have no squeeze-excite and use ReLU6 throughout.
The shipped weights are a TF port: measured on skimage photos, TF "SAME" padding (asymmetric at
stride 2) and BN eps 1e-3 beat symmetric k//2 padding and eps 1e-5. Import only at build time.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# (kernel, stride, expand ratio, out channels, repeats) after the depthwise-separable first block.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
BN_EPS = 1e-3  # TF-origin EfficientNet-Lite checkpoints use 1e-3


def same_conv(cin: int, cout: int, k: int, stride: int, groups: int = 1) -> nn.Sequential:
    """Conv with TF "SAME" padding as a static pad; exact for even input sizes (224 → 112 → … → 7)."""
    total = k - stride  # (out - 1) * stride + k - in, with out = in / stride
    pad = nn.ZeroPad2d((total // 2, total - total // 2, total // 2, total - total // 2))
    return nn.Sequential(pad, nn.Conv2d(cin, cout, k, stride, 0, groups=groups, bias=False))


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class Block(nn.Module):
    """MBConv without SE: [1x1 expand] -> depthwise kxk -> 1x1 project, residual when shapes allow."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = None
        if expand != 1:
            self.expand = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), _bn(mid), nn.ReLU6())
        self.dw = same_conv(mid, mid, k, stride, groups=mid)
        self.bn_dw = _bn(mid)
        self.project = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn_project = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = F.relu6(self.bn_dw(self.dw(y)))
        y = self.bn_project(self.project(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = same_conv(3, 32, 3, 2)
        self.bn_stem = _bn(32)
        blocks: list[nn.Module] = [Block(32, 16, 3, 1, 1)]
        cin = 16
        for k, s, e, cout, n in STAGES:
            for i in range(n):
                blocks.append(Block(cin, cout, k, s if i == 0 else 1, e))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(cin, 1280, 1, bias=False)
        self.bn_head = _bn(1280)
        self.classifier = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled 1280-d feature (before the classifier)."""
        x = F.relu6(self.bn_stem(self.stem(x)))
        x = self.blocks(x)
        x = F.relu6(self.bn_head(self.head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def load_state(model: nn.Module, source: dict[str, torch.Tensor]) -> None:
    """Copy `source` onto `model` by position, asserting count and every shape match."""
    target = model.state_dict()
    if len(target) != len(source):
        raise ValueError(f"state dict sizes differ: model {len(target)} vs weights {len(source)}")
    mapped = {}
    for (tk, tv), (sk, sv) in zip(target.items(), source.items(), strict=True):
        if tuple(tv.shape) != tuple(sv.shape):
            raise ValueError(f"shape mismatch {tk} {tuple(tv.shape)} <- {sk} {tuple(sv.shape)}")
        mapped[tk] = sv
    model.load_state_dict(mapped, strict=True)
