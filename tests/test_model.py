import pytest
import torch

from lib.config import Config
from lib.model import (
    SEDModel,
    build_model,
    load_checkpoint,
    load_weights,
    model_from_checkpoint,
    save_checkpoint,
)
from tests.conftest import TINY_BACKBONE

CFG = Config(backbone=TINY_BACKBONE, pretrained=False, n_mels=64)


def test_outputs_clip_and_frame_logits():
    model = build_model(CFG, num_classes=7).eval()
    out = model(torch.rand(3, 1, 64, 501))
    assert out.clip_logits.shape == (3, 7)
    assert out.frame_logits.shape[0] == 3 and out.frame_logits.shape[2] == 7
    assert 8 <= out.frame_logits.shape[1] <= 32  # time kept at backbone stride


def test_clip_logit_is_attention_weighted_frames():
    """Clip logits lie within the frames' range: attention is a convex combination."""
    model = build_model(CFG, num_classes=5).eval()
    out = model(torch.rand(2, 1, 64, 501))
    assert torch.all(out.clip_logits <= out.frame_logits.amax(dim=1) + 1e-5)
    assert torch.all(out.clip_logits >= out.frame_logits.amin(dim=1) - 1e-5)


@pytest.mark.parametrize("backbone", [TINY_BACKBONE, "resnet18", "efficientnet_b0"])
def test_any_timm_cnn_and_three_channels(backbone):
    model = SEDModel(backbone, num_classes=4, in_channels=3).eval()
    mel = torch.rand(1, 1, 64, 201)
    out = model(mel)  # one-channel image repeated for a 3-channel stem
    assert out.clip_logits.shape == (1, 4)
    torch.testing.assert_close(out.clip_logits, model(mel.repeat(1, 3, 1, 1)).clip_logits)


def test_variable_length_input():
    model = build_model(CFG, num_classes=3).eval()
    short, long = model(torch.rand(1, 1, 64, 101)), model(torch.rand(1, 1, 64, 1001))
    assert short.frame_logits.shape[1] < long.frame_logits.shape[1]


def test_checkpoint_round_trip(tmp_path):
    model = build_model(CFG, num_classes=3).eval()
    save_checkpoint(tmp_path / "m.pt", model, CFG, ["a", "b", "c"], epoch=4)
    loaded, cfg, classes = model_from_checkpoint(tmp_path / "m.pt")
    assert cfg == CFG and classes == ["a", "b", "c"]
    assert load_checkpoint(tmp_path / "m.pt")["epoch"] == 4
    x = torch.rand(2, 1, 64, 501)
    torch.testing.assert_close(loaded(x).clip_logits, model(x).clip_logits)
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves no temp file


def test_pretrained_backbone_new_head(tmp_path):
    """Pre-train on many species, fine-tune on fewer: backbone kept, head re-initialised."""
    pre = build_model(CFG, num_classes=12)
    fine = build_model(CFG, num_classes=5)
    head_before = fine.head.classifier.weight.clone()
    skipped = load_weights(fine, pre.state_dict())
    assert skipped and all(name.startswith("head.") for name in skipped)
    torch.testing.assert_close(
        fine.backbone.state_dict()["conv_stem.weight"],
        pre.backbone.state_dict()["conv_stem.weight"],
    )
    torch.testing.assert_close(fine.head.classifier.weight, head_before)


def test_wrong_backbone_checkpoint_is_a_clear_error():
    other = SEDModel("resnet18", num_classes=5)
    with pytest.raises(ValueError, match="backbone"):
        load_weights(build_model(CFG, num_classes=5), other.state_dict())


def test_unreadable_checkpoint_names_file(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="bad.pt"):
        load_checkpoint(tmp_path / "bad.pt")


def test_window_probabilities_choices():
    from lib.model import SEDOutput, window_probabilities

    clip = torch.tensor([[0.0, 2.0]])
    frames = torch.tensor([[[1.0, -1.0], [3.0, 0.0]]])  # (1, 2 frames, 2 classes)
    out = SEDOutput(clip, frames)
    torch.testing.assert_close(window_probabilities(out, "clip"), torch.sigmoid(clip))
    frame_max = torch.sigmoid(torch.tensor([[3.0, 0.0]]))
    torch.testing.assert_close(window_probabilities(out, "frame_max"), frame_max)
    mean = 0.5 * (torch.sigmoid(clip) + frame_max)
    torch.testing.assert_close(window_probabilities(out, "mean"), mean)
    with pytest.raises(ValueError, match="window_output"):
        window_probabilities(out, "median")
