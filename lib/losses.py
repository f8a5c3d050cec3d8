"""The recipe's loss: 1.0 x BCE(clip-wise) + 0.5 x BCE(max over frames), label smoothing 0.1.

The frame term makes the model point at *when* a bird calls: the loudest frame must carry the
label, which sharpens the frame-wise output used for 5-second windows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lib.config import Config
from lib.model import SEDOutput


def smooth_labels(targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Binary label smoothing: 1 -> 1 - s/2, 0 -> s/2 (s = 0.1 gives 0.95 / 0.05)."""
    return targets * (1.0 - smoothing) + 0.5 * smoothing


class SEDLoss(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.smoothing = config.label_smoothing
        self.clip_weight = config.clip_loss_weight
        self.frame_weight = config.frame_loss_weight

    def forward(self, output: SEDOutput, targets: torch.Tensor) -> torch.Tensor:
        # targets: (batch, classes) in [0, 1] (mixup gives fractions)
        targets = smooth_labels(targets.float(), self.smoothing)
        clip = F.binary_cross_entropy_with_logits(output.clip_logits, targets)
        frame_max = output.frame_logits.amax(dim=1)  # (batch, frames', classes) -> (batch, classes)
        frame = F.binary_cross_entropy_with_logits(frame_max, targets)
        return self.clip_weight * clip + self.frame_weight * frame
