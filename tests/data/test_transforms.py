"""Tests of build_transforms: sizes, normalisation by hand, augmentation steps, errors."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from reidgraph.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms


def test_test_pipeline_normalises_by_hand():
    # A constant image (R, G, B) = (124, 116, 104): after the resize every pixel keeps its
    # colour, then y_c = (x_c / 255 - mean_c) / std_c:
    #   R: (124/255 - 0.485) / 0.229 = (0.486275 - 0.485) / 0.229 = 0.005566
    #   G: (116/255 - 0.456) / 0.224 = (0.454902 - 0.456) / 0.224 = -0.004902
    #   B: (104/255 - 0.406) / 0.225 = (0.407843 - 0.406) / 0.225 = 0.008192
    tf = build_transforms(64, 32, train=False)
    out = tf(Image.new("RGB", (20, 50), (124, 116, 104)))
    assert out.shape == (3, 64, 32) and out.dtype == torch.float32
    expected = torch.tensor([0.005566, -0.004902, 0.008192]).view(3, 1, 1).expand(3, 64, 32)
    assert torch.allclose(out, expected, atol=1e-5)


def test_steps_in_order():
    train = build_transforms(256, 128, train=True).transforms
    names = [type(t).__name__ for t in train]
    assert names == [
        "Resize",
        "RandomHorizontalFlip",
        "Pad",
        "RandomCrop",
        "ToTensor",
        "Normalize",
        "RandomErasing",
    ]
    assert tuple(train[0].size) == (256, 128)
    assert train[0].interpolation == T.InterpolationMode.BICUBIC
    assert train[1].p == 0.5 and train[2].padding == 10 and train[6].p == 0.5
    assert tuple(train[5].mean) == IMAGENET_MEAN and tuple(train[5].std) == IMAGENET_STD
    test = [type(t).__name__ for t in build_transforms(256, 128, train=False).transforms]
    assert test == ["Resize", "ToTensor", "Normalize"]
    bare = build_transforms(8, 4, train=True, flip_prob=0, pad=0, erasing_prob=0).transforms
    assert [type(t).__name__ for t in bare] == ["Resize", "ToTensor", "Normalize"]


def test_train_pipeline_flips_and_is_seeded():
    # Left half black, right half white; no padding/erasing, flip always: the result is mirrored.
    img = Image.new("RGB", (4, 8), (0, 0, 0))
    img.paste((255, 255, 255), (2, 0, 4, 8))
    tf = build_transforms(
        8, 4, train=True, flip_prob=1.0, pad=0, erasing_prob=0.0, mean=(0, 0, 0), std=(1, 1, 1)
    )
    out = tf(img)
    assert torch.allclose(out[:, :, :2], torch.ones(3, 8, 2), atol=1e-6)
    assert torch.allclose(out[:, :, 2:], torch.zeros(3, 8, 2), atol=1e-6)
    # With all augmentations on, the same torch seed gives the same tensor.
    full = build_transforms(32, 16, train=True)
    noisy = Image.effect_noise((16, 32), 50).convert("RGB")
    torch.manual_seed(5)
    a = full(noisy)
    torch.manual_seed(5)
    assert torch.equal(a, full(noisy))


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"height": 0}, ValueError, "'height' must be >= 1, got 0"),
        ({"width": 2.5}, TypeError, "'width' must be an int"),
        ({"train": "yes"}, TypeError, "'train' must be a bool, got str"),
        ({"flip_prob": 1.5}, ValueError, r"'flip_prob' must be a probability in \[0, 1\], got 1.5"),
        ({"erasing_prob": -0.1}, ValueError, "'erasing_prob' must be a probability"),
        ({"pad": -1}, ValueError, "'pad' must be >= 0"),
        ({"mean": (0.5, 0.5)}, ValueError, "'mean' and 'std' must hold 3 values"),
        ({"std": (1, 0, 1)}, ValueError, "std > 0"),
    ],
)
def test_errors(kwargs, err, match):
    args = {"train": True, **kwargs}
    with pytest.raises(err, match=match):
        build_transforms(**args)
