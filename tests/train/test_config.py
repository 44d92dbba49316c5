"""TrainConfig: defaults, validation, round trip."""

import pytest

from reidgraph.train.config import TrainConfig


def test_defaults_are_cluster_contrast():
    cfg = TrainConfig()
    # Adam 3.5e-4, wd 5e-4, 50 epochs, StepLR(20): milestones 20 and 40.
    assert (cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.epochs) == ("adam", 3.5e-4, 5e-4, 50)
    assert cfg.schedule_milestones() == (20, 40)


def test_milestones_override_step_size():
    assert TrainConfig(milestones=[6]).schedule_milestones() == (6,)
    assert TrainConfig(step_size=None).schedule_milestones() == ()
    assert TrainConfig(epochs=60, step_size=40).schedule_milestones() == (40,)


def test_dict_round_trip():
    cfg = TrainConfig(epochs=3, milestones=(1, 2), device="cpu", amp=False)
    back = TrainConfig.from_dict(cfg.to_dict())
    assert back == cfg
    assert isinstance(cfg.to_dict()["milestones"], list)


def test_replace_validates_and_names_unknown_fields():
    assert TrainConfig().replace(epochs=2).epochs == 2
    with pytest.raises(TypeError, match=r"no field\(s\) \['epoch'\]"):
        TrainConfig().replace(epoch=2)
    with pytest.raises(ValueError, match="'epochs' must be >= 1"):
        TrainConfig().replace(epochs=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(epochs=0), ValueError, "'epochs' must be >= 1"),
        (dict(iters=0), ValueError, "'iters' must be >= 1"),
        (dict(batch_size=1), ValueError, "'batch_size' must be >= 2"),
        (dict(batch_size=10, num_instances=4), ValueError, "multiple of 'num_instances'"),
        (dict(optimizer="rmsprop"), ValueError, "optimizer='rmsprop'"),
        (dict(lr=0.0), ValueError, "'lr' must be a finite number > 0"),
        (dict(lr=float("nan")), ValueError, "'lr'"),
        (dict(lr="0.1"), TypeError, "'lr' must be a float"),
        (dict(weight_decay=-1.0), ValueError, "'weight_decay'"),
        (dict(nesterov=1), TypeError, "'nesterov' must be a bool"),
        (dict(milestones=5), TypeError, "'milestones' must be a sequence"),
        (dict(milestones=[0]), ValueError, "milestones"),
        (dict(step_size=0), ValueError, "'step_size'"),
        (dict(gamma=0), ValueError, "'gamma'"),
        (dict(grad_clip=0.0), ValueError, "'grad_clip'"),
        (dict(amp="yes"), TypeError, "'amp' must be a bool or None"),
        (dict(amp_dtype="float8"), ValueError, "amp_dtype"),
        (dict(depth=20), ValueError, r"'depth' must be one of \[18, 34, 50, 101, 152\]"),
        (dict(last_stride=3), ValueError, "'last_stride' must be 1 or 2"),
        (dict(pooling="max"), ValueError, "pooling='max'"),
        (dict(height=8), ValueError, "'height' must be >= 16"),
        (dict(width=4), ValueError, "'width' must be >= 8"),
        (dict(num_workers=-1), ValueError, "'num_workers'"),
        (dict(seed=-1), ValueError, "'seed'"),
        (dict(eval_every=-1), ValueError, "'eval_every'"),
        (dict(log_every=0), ValueError, "'log_every'"),
        (dict(tensorboard=1), TypeError, "'tensorboard'"),
        (dict(verbose=None), TypeError, "'verbose' must be a bool"),
    ],
)
def test_bad_values(kwargs, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**kwargs)
