"""Preference labelling on Ray Data: the records of ``pairrm label``, bit for bit, computed
by a pool of actors (one model per actor).

    import ray, pairrm.ray
    ds = ray.data.read_parquet("ultrafeedback.parquet")
    pairs = pairrm.ray.label_dataset(ds, "llm-blender/PairRM", strategy="best-worst")
    pairs.write_parquet("dpo/")

or, as a ``map_batches`` class on a dataset that already has a ``__row`` column (the global
row number)::

    ds.map_batches(pairrm.ray.PairRMLabeler, fn_constructor_kwargs={"model": ...},
                   batch_format="pyarrow", concurrency=2)

Both run the same Rust code as the CLI (``pairrm._pairrm.label_batch``). Needs ``ray[data]``
and ``pyarrow``. See docs/label.md.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Optional

import pyarrow as pa

from ._pairrm import Engine, label_batch

__all__ = ["PairRMLabeler", "label_dataset", "label_parquet", "ROW_COLUMN"]

ROW_COLUMN = "__row"
"""The column holding each row's number in the input (added by :func:`label_dataset`)."""

_DEFAULT_COLUMNS = {"prompt": "prompt", "messages": "messages", "candidates": "candidates", "id": "id"}
_log = logging.getLogger(__name__)


def _options(strategy: str, min_margin: float, style: str, columns: Dict[str, str], id_kind: str) -> str:
    if style not in ("standard", "conversational"):
        raise ValueError(f"style must be 'standard' or 'conversational' here, not {style!r}")
    return json.dumps(
        {
            "strategy": strategy,
            "min_margin": float(min_margin),
            "style": style,
            "columns": {**_DEFAULT_COLUMNS, **columns},
            "id_kind": id_kind,
        }
    )


class PairRMLabeler:
    """A callable class for ``Dataset.map_batches(..., batch_format="pyarrow")``: loads the
    model once (per actor) and turns each batch of rows into preference records, the table
    ``pairrm label`` writes (same schema, same values). The batch must have a ``__row`` column
    with each row's number in the input; ``style`` and ``id_kind`` are those of the whole input
    (see :func:`label_dataset`, which works them out). Bad rows are dropped, counted in the log.
    ``engine_kwargs`` go to :class:`pairrm.Engine` (``threads``, ``dtype``, ``cache_dir``...).
    """

    def __init__(
        self,
        model: str,
        *,
        strategy: str = "best-worst",
        min_margin: float = 0.0,
        style: str = "standard",
        id_kind: str = "none",
        columns: Optional[Dict[str, str]] = None,
        **engine_kwargs: Any,
    ) -> None:
        self._engine = Engine(model, **engine_kwargs)
        self._options = _options(strategy, min_margin, style, columns or {}, id_kind)

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.column(ROW_COLUMN).to_pylist()
        table = batch.drop_columns([ROW_COLUMN])
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        records, errors, stats = label_batch(self._engine, sink.getvalue().to_pybytes(), rows, self._options)
        if errors:
            _log.warning("pairrm: %d bad rows dropped: %s", len(errors.splitlines()), errors.decode()[:500])
        return pa.ipc.open_stream(records).read_all()


def _input_shape(schema: Any, columns: Dict[str, str]) -> tuple:
    """(chat, id_kind) of a dataset, as ``pairrm label`` decides them from a Parquet schema."""
    names = list(schema.names)
    types = dict(zip(names, schema.types))
    chat = columns["messages"] in names
    id_type = types.get(columns["id"])
    if id_type is None or pa.types.is_null(id_type):
        id_kind = "none"
    elif pa.types.is_integer(id_type):
        id_kind = "int"
    else:
        id_kind = "text"
    return chat, id_kind


def label_dataset(
    ds: Any,
    model: str,
    *,
    strategy: str = "best-worst",
    min_margin: float = 0.0,
    style: str = "auto",
    columns: Optional[Dict[str, str]] = None,
    batch_size: int = 256,
    concurrency: int = 2,
    **engine_kwargs: Any,
) -> Any:
    """Labels a Ray dataset of rows (``{prompt, candidates}``, ``{messages, candidates}`` or
    UltraFeedback's ``{instruction, completions}``) on ``concurrency`` actors (one CPU each:
    leave the cluster a CPU more for the reads); returns the dataset of preference records, in
    input order (order preservation is switched on in the current ``DataContext``: the row
    numbers are zipped on, which needs Ray below 2.64). ``style="auto"``: conversational when
    there is a messages column.
    """
    import ray

    columns = {**_DEFAULT_COLUMNS, **(columns or {})}
    chat, id_kind = _input_shape(ds.schema(), columns)
    if style == "auto":
        style = "conversational" if chat else "standard"
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    numbers = ray.data.range(ds.count()).map_batches(
        lambda b: {ROW_COLUMN: b["id"]}, batch_format="numpy"
    )
    return ds.zip(numbers).map_batches(
        PairRMLabeler,
        fn_constructor_kwargs=dict(
            model=model,
            strategy=strategy,
            min_margin=min_margin,
            style=style,
            id_kind=id_kind,
            columns=columns,
            **engine_kwargs,
        ),
        batch_format="pyarrow",
        batch_size=batch_size,
        concurrency=concurrency,
    )


def label_parquet(input: str, output: str, model: str, **kwargs: Any) -> int:
    """Labels a Parquet file (or folder) into one Parquet file with :func:`label_dataset`
    (streamed, written with pyarrow: the same records as ``pairrm label``, not the same file
    bytes). Returns the number of records."""
    import pyarrow.parquet as pq
    import ray

    records = label_dataset(ray.data.read_parquet(input), model, **kwargs)
    count = 0
    writer = None
    try:
        for batch in records.iter_batches(batch_format="pyarrow", batch_size=None):
            if writer is None:
                writer = pq.ParquetWriter(output, batch.schema)
            writer.write_table(batch)
            count += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    return count
