"""The SED model: a timm CNN over the log-mel image, pooled over frequency, attention head.

Read it top to bottom like PANNs' `models.py`:
  log-mel (B, C_in, n_mels, T) -> timm backbone (B, F, n_mels', T') -> mean over frequency
  (B, F, T') -> smoothing pools + dropout + fc (B, T', F) -> attention head ->
  clip logits (B, classes) and frame logits (B, T', classes).
Clip-wise output = attention-weighted (tanh-softmax over time) sum of per-frame class logits.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import timm
import torch
import torch.nn.functional as F
from torch import nn

from lib.atomic import atomic_write
from lib.config import Config


class SEDOutput(NamedTuple):
    """What the model returns: logits; apply sigmoid for probabilities."""

    clip_logits: torch.Tensor  # (batch, classes)
    frame_logits: torch.Tensor  # (batch, frames', classes)


WINDOW_OUTPUTS = ("clip", "frame_max", "mean")


def window_probabilities(output: SEDOutput, how: str = "clip") -> torch.Tensor:
    """One probability per class for the whole input window, (batch, classes).

    "clip": sigmoid of the attention-pooled clip logits; "frame_max": the loudest frame's
    sigmoid (what the 0.5 x BCE(max over frames) term trains); "mean": their average.
    """
    clip = torch.sigmoid(output.clip_logits)
    if how == "clip":
        return clip
    frame_max = torch.sigmoid(output.frame_logits).amax(dim=1)  # (B, T', C) -> (B, C)
    if how == "frame_max":
        return frame_max
    if how == "mean":
        return 0.5 * (clip + frame_max)
    raise ValueError(f"window_output must be one of {WINDOW_OUTPUTS}, got {how!r}")


class AttentionHead(nn.Module):
    """Per-class attention pooling over time (PANNs' AttBlock, logits kept for the loss)."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.attention = nn.Conv1d(in_features, num_classes, kernel_size=1)
        self.classifier = nn.Conv1d(in_features, num_classes, kernel_size=1)
        for layer in (self.attention, self.classifier):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> SEDOutput:
        # x: (batch, features, frames')
        weights = torch.softmax(torch.tanh(self.attention(x)), dim=-1)  # (B, classes, T')
        frame_logits = self.classifier(x)  # (B, classes, T')
        clip_logits = (weights * frame_logits).sum(dim=-1)  # (B, classes)
        return SEDOutput(clip_logits, frame_logits.transpose(1, 2))


class SEDModel(nn.Module):
    """timm backbone + frequency pooling + attention head. Input: normalised log-mel images."""

    def __init__(
        self,
        backbone: str = "efficientnet_b0",
        num_classes: int = 264,
        pretrained: bool = False,
        in_channels: int = 1,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.backbone = timm.create_model(
            backbone, pretrained=pretrained, in_chans=in_channels, num_classes=0, global_pool=""
        )
        width = feature_width(self.backbone, in_channels)
        self.in_channels = in_channels
        self.dropout = dropout
        self.fc = nn.Linear(width, width)
        self.head = AttentionHead(width, num_classes)

    def forward(self, mel: torch.Tensor) -> SEDOutput:
        # mel: (B, C_in, n_mels, T); a 1-channel image is repeated if the stem wants more.
        if mel.shape[1] != self.in_channels:
            mel = mel.expand(-1, self.in_channels, -1, -1)
        x = self.backbone.forward_features(mel)  # (B, F, n_mels', T')
        x = x.mean(dim=2)  # pool frequency -> (B, F, T')
        x = F.max_pool1d(x, 3, stride=1, padding=1) + F.avg_pool1d(x, 3, stride=1, padding=1)
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = F.relu(self.fc(x.transpose(1, 2))).transpose(1, 2)  # (B, F, T')
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.head(x)


def feature_width(backbone: nn.Module, in_channels: int) -> int:
    """Channels of `forward_features` (timm's `num_features` counts a post-pool head on some
    CNNs, e.g. MobileNetV3), found with one tiny forward pass."""
    with torch.no_grad():
        was_training = backbone.training
        features = backbone.eval().forward_features(torch.zeros(1, in_channels, 64, 64))
        backbone.train(was_training)
    return int(features.shape[1])


def build_model(config: Config, num_classes: int, pretrained: bool | None = None) -> SEDModel:
    """The one factory: a model from the config (`pretrained` overrides config.pretrained)."""
    return SEDModel(
        backbone=config.backbone,
        num_classes=num_classes,
        pretrained=config.pretrained if pretrained is None else pretrained,
        in_channels=config.in_channels,
        dropout=config.dropout,
    )


def save_checkpoint(path: str | Path, model: nn.Module, config: Config, classes, **extra) -> None:
    """Weights + config + class list in one file, written atomically (lib.atomic)."""
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    payload = {"model": state, "config": config.to_dict(), "classes": list(classes), **extra}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by `save_checkpoint` (or a bare state dict)."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=False)
    except Exception as err:
        raise RuntimeError(f"{path}: cannot read checkpoint ({err})") from err
    if "model" not in payload:  # a bare state_dict
        payload = {"model": payload}
    return payload


def load_weights(model: nn.Module, state_dict: dict) -> list[str]:
    """Load what fits; tensors whose shape differs (a head for another species count) are
    skipped and keep their fresh initialisation. Returns the names of the skipped tensors.

    This is how fine-tuning on 264 species starts from a backbone pre-trained on ~800.
    """
    model = unwrap(model)
    own = model.state_dict()
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    fitting = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(fitting))
    model.load_state_dict(fitting, strict=False)
    backbone_missing = [k for k in skipped if k.startswith("backbone.")]
    if backbone_missing:
        raise ValueError(
            f"checkpoint does not fit the backbone ({len(backbone_missing)} tensors, e.g. "
            f"{backbone_missing[0]}): was it trained with another `backbone` or `in_channels`?"
        )
    return skipped


def model_from_checkpoint(path: str | Path) -> tuple[SEDModel, Config, list[str]]:
    """Rebuild a trained model (eval mode) with its own config and class list."""
    payload = load_checkpoint(path)
    config = Config.from_dict(payload["config"])
    classes = list(payload["classes"])
    model = build_model(config, len(classes), pretrained=False)
    model.load_state_dict(payload["model"])
    return model.eval(), config, classes


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DistributedDataParallel / DataParallel wrappers."""
    return model.module if hasattr(model, "module") else model
