"""The generator's speed-ups must not change a bit: each fast path against the plain computation."""

import numpy as np

from valgusml.skeleton import CANONICAL_JOINTS
from valgusml.synth import load_preset
from valgusml.synth.generator import emitted_joints, simulate, trials_of
from valgusml.synth.kinematics import JOINTS, built_joints


def test_emitted_joints_are_bit_identical_to_the_full_build():
    cfg = load_preset("realistic", n_athletes=2, seed=5)
    trials = trials_of(cfg, range(2))
    emit = emitted_joints("halpe26")
    full = simulate(cfg, trials)
    lean = simulate(cfg, trials_of(cfg, range(2)), emit=emit)
    built = built_joints(emit)
    assert built[: len(CANONICAL_JOINTS)] == CANONICAL_JOINTS and "left_thumb" not in built and "left_ear" in built
    assert built_joints(None) == JOINTS
    kept = [JOINTS.index(name) for name in built]
    for a, b in zip(full, lean, strict=True):
        assert b.joints.shape[1] == len(built)
        assert np.array_equal(a.joints[:, kept], b.joints)
        assert np.isfinite(a.joints).all()


def test_foot_forward_is_foot_frame_forward():
    from valgusml.synth.kinematics import foot_forward, foot_frame

    g = np.random.default_rng(1).uniform(-30, 30, (3, 4, 2))
    assert np.array_equal(foot_forward(g), foot_frame(g)[0])
