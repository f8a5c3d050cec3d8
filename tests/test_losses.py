import math

import pytest
import torch

from lib.config import Config
from lib.losses import SEDLoss, smooth_labels
from lib.model import SEDOutput


def bce(logit, target):
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_smoothing_values():
    out = smooth_labels(torch.tensor([1.0, 0.0, 0.5]), 0.1)
    torch.testing.assert_close(out, torch.tensor([0.95, 0.05, 0.5]))


def test_loss_is_weighted_clip_plus_frame_max():
    clip = torch.tensor([[2.0, -1.0]])
    frames = torch.tensor([[[0.5, -3.0], [1.5, 0.0], [-1.0, -2.0]]])  # (1, 3 frames, 2 classes)
    target = torch.tensor([[1.0, 0.0]])
    loss = SEDLoss(Config())(SEDOutput(clip, frames), target)
    clip_term = (bce(2.0, 0.95) + bce(-1.0, 0.05)) / 2
    frame_term = (bce(1.5, 0.95) + bce(0.0, 0.05)) / 2  # max over frames: 1.5 and 0.0
    assert loss.item() == pytest.approx(1.0 * clip_term + 0.5 * frame_term, rel=1e-6)


def test_weights_and_smoothing_come_from_config():
    clip, frames = torch.zeros(1, 1), torch.zeros(1, 2, 1)
    target = torch.ones(1, 1)
    only_clip = SEDLoss(Config(frame_loss_weight=0.0, label_smoothing=0.0))
    assert abs(only_clip(SEDOutput(clip, frames), target).item() - math.log(2)) < 1e-6
    doubled = SEDLoss(Config(clip_loss_weight=2.0, frame_loss_weight=0.0, label_smoothing=0.0))
    assert abs(doubled(SEDOutput(clip, frames), target).item() - 2 * math.log(2)) < 1e-6


def test_gradients_reach_both_outputs():
    clip = torch.zeros(2, 3, requires_grad=True)
    frames = torch.zeros(2, 4, 3, requires_grad=True)
    SEDLoss(Config())(SEDOutput(clip, frames), torch.ones(2, 3)).backward()
    assert clip.grad.abs().sum() > 0 and frames.grad.abs().sum() > 0
