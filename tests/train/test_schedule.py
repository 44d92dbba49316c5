"""Learning-rate schedule: closed form checked against hand-computed values."""

import pytest
import torch

from reidgraph.train.schedule import WarmupMultiStepLR, lr_factor, step_milestones


def test_step_decay_matches_steplr_by_hand():
    # StepLR(20, 0.1) over 50 epochs (cluster contrast / GUR):
    # epochs 0-19 -> 1, 20-39 -> 0.1, 40-49 -> 0.01.
    expected = {0: 1.0, 19: 1.0, 20: 0.1, 39: 0.1, 40: 0.01, 49: 0.01}
    for epoch, value in expected.items():
        assert lr_factor(epoch, milestones=(20, 40)) == pytest.approx(value, rel=1e-12)


def test_linear_warmup_by_hand():
    # beta = 0.01, E_w = 10: w_e = 0.01 (1 - e/10) + e/10.
    # e=0 -> 0.01; e=5 -> 0.005 + 0.5 = 0.505; e=9 -> 0.001 + 0.9 = 0.901; e=10 -> 1.
    kw = dict(warmup_epochs=10, warmup_factor=0.01)
    assert lr_factor(0, **kw) == pytest.approx(0.01)
    assert lr_factor(5, **kw) == pytest.approx(0.505)
    assert lr_factor(9, **kw) == pytest.approx(0.901)
    assert lr_factor(10, **kw) == pytest.approx(1.0)
    # A milestone inside the warm-up multiplies both: e=6 -> (0.004 + 0.6) * 0.1.
    assert lr_factor(6, milestones=(6,), **kw) == pytest.approx(0.0604)


def test_constant_warmup_by_hand():
    kw = dict(warmup_epochs=3, warmup_factor=0.1, warmup_method="constant")
    assert [lr_factor(e, **kw) for e in range(5)] == pytest.approx([0.1, 0.1, 0.1, 1.0, 1.0])


def test_step_milestones():
    assert step_milestones(20, 50) == (20, 40)
    assert step_milestones(40, 60) == (40,)  # QAConv ECCV: StepLR(40), 60 epochs
    assert step_milestones(10, 10) == ()


def test_scheduler_keeps_group_ratio_and_resumes():
    w1, w2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))

    def make():
        opt = torch.optim.SGD([{"params": [w1], "lr": 0.1}, {"params": [w2], "lr": 1.0}])
        return opt, WarmupMultiStepLR(
            opt, milestones=(2,), gamma=0.5, warmup_epochs=1, warmup_factor=0.2
        )

    opt, sched = make()
    seen = []
    for _ in range(4):
        seen.extend(g["lr"] for g in opt.param_groups)
        opt.step()
        sched.step()
    # epoch 0: warm 0.2; epoch 1: 1; epochs 2, 3: 0.5 (group 0 is always 0.1x group 1)
    assert seen == pytest.approx([0.02, 0.2, 0.1, 1.0, 0.05, 0.5, 0.05, 0.5])

    opt, sched = make()
    for _ in range(2):
        opt.step()
        sched.step()
    saved = sched.state_dict()
    opt2, sched2 = make()
    sched2.load_state_dict(saved)
    opt2.step()
    sched2.step()
    assert [g["lr"] for g in opt2.param_groups] == pytest.approx([0.05, 0.5])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(milestones=(5, 5)), ValueError, "strictly increasing"),
        (dict(milestones=(0,)), ValueError, "milestones"),
        (dict(milestones=3), TypeError, "sequence of ints"),
        (dict(gamma=0.0), ValueError, "gamma"),
        (dict(gamma=1.5), ValueError, "gamma"),
        (dict(gamma="x"), TypeError, "gamma"),
        (dict(warmup_factor=1.5), ValueError, "warmup_factor"),
        (dict(warmup_epochs=-1), ValueError, "warmup_epochs"),
        (dict(warmup_method="cosine"), ValueError, "warmup_method"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        lr_factor(0, **kwargs)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(error, match=match):
        WarmupMultiStepLR(opt, **kwargs)


def test_bad_epoch_and_step_size():
    with pytest.raises(ValueError, match="'epoch' must be >= 0"):
        lr_factor(-1)
    with pytest.raises(ValueError, match="'step_size' must be >= 1"):
        step_milestones(0, 10)
