"""Training (Lightning + Hydra + MLflow). Imports torch: never imported by `import valgusml`.

`train.main` is the Hydra app (`valgusml train`), `train.train(cfg)` one run, `config` composes and checks its
config, `datamodule.ValgusDataModule` feeds it, `module.ValgusLitModule` the LightningModule. Checkpoints and
MLflow runs are read and written through `valgusml.runs`.
"""
