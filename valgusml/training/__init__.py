"""Training (Lightning + Hydra + MLflow). Imports torch: never imported by `import valgusml`.

`train.main` is the Hydra app (`valgusml train`), `train.train(cfg)` one run, `module.ValgusLitModule` the
LightningModule, `checkpoint.load_for_export` what the exporter reads.
"""
