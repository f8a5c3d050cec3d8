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


def test_gradients_reach_the_clip_and_only_the_loudest_frame():
    """d loss / d logit of a mean BCE is (sigmoid(x) - y) / n: every clip logit gets it with
    weight 1.0, and of the frames only each class's loudest one, with weight 0.5."""
    clip = torch.zeros(2, 3, requires_grad=True)
    frames = torch.arange(24, dtype=torch.float32).reshape(2, 4, 3).div(10).requires_grad_()
    target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    SEDLoss(Config())(SEDOutput(clip, frames), target).backward()
    smoothed = target * 0.9 + 0.05
    torch.testing.assert_close(clip.grad, 1.0 * (0.5 - smoothed) / 6)
    loudest = frames.detach()[:, 3, :]  # frame 3 holds each class's largest logit
    expected = torch.zeros_like(frames)
    expected[:, 3, :] = 0.5 * (torch.sigmoid(loudest) - smoothed) / 6
    torch.testing.assert_close(frames.grad, expected)
