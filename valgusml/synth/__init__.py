"""Synthetic athletes: a biomechanical generator of labelled pose sequences (the only source of mechanism labels).

    cfg = load_preset("realistic", n_athletes=40, seed=0)
    ds = generate_dataset(cfg, "data/synth40")              # sharded, parallel, deterministic, resumable
    seqs = list(generate_sequences(cfg, range(3)))          # in memory

Modules: `config` (the typed config and its checks), `presets` (preset → config: `generator_config`), `athletes` (traits), `tasks` (movement programmes), `mechanisms` (deficit
signatures), `kinematics` (joints), `observation` (camera, layouts), `estimators` (pose-estimator families),
`generator`, `analysis` (the sampled answers, kept apart from the data).
"""

from valgusml.synth.config import TASKS, GeneratorConfig
from valgusml.synth.dataset import generate_dataset
from valgusml.synth.generator import generate_sequences, generate_with_analysis
from valgusml.synth.presets import generator_config, load_preset, preset_names

__all__ = [
    "TASKS",
    "GeneratorConfig",
    "generate_dataset",
    "generate_sequences",
    "generate_with_analysis",
    "generator_config",
    "load_preset",
    "preset_names",
]
