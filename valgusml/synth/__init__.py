"""Synthetic athletes: a biomechanical generator of labelled pose sequences (the only source of mechanism labels).

    cfg = load_preset("realistic", n_athletes=40, seed=0)
    ds = generate_dataset(cfg, "data/synth40")              # sharded, parallel, deterministic, resumable
    seqs = list(generate_sequences(cfg, range(3)))          # in memory

Modules: `config` (typed presets), `athletes` (traits), `tasks` (movement programmes), `mechanisms` (deficit
signatures), `kinematics` (joints), `observation` (camera, pose-estimator error, layouts), `generator`.
"""

from valgusml.synth.config import TASKS, GeneratorConfig, load_preset, preset_names
from valgusml.synth.generator import generate_dataset, generate_sequences

__all__ = ["TASKS", "GeneratorConfig", "generate_dataset", "generate_sequences", "load_preset", "preset_names"]
