"""Datasets on disk and athlete splits. Torch-free; the Lightning data module lives in `valgusml.training.datamodule`."""

from valgusml.data.format import (
    Dataset,
    finalize_dataset,
    open_dataset,
    write_dataset,
    write_shard,
    write_shards,
)

__all__ = ["Dataset", "finalize_dataset", "open_dataset", "write_dataset", "write_shard", "write_shards"]
