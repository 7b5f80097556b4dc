"""The Parquet store of a study: part files (:mod:`.parts`), the manifest (:mod:`.manifest`)
and the rows of an evaluated batch (:mod:`.rows`)."""

from .parts import (MANIFEST, ROW_SLOT, ROWS, SCHEMA_VERSION, WORKERS, Store, atomic_write_bytes, fixed_list,
                    part_rows_text, schema, var_list)

__all__ = ["MANIFEST", "ROW_SLOT", "ROWS", "SCHEMA_VERSION", "WORKERS", "Store", "atomic_write_bytes", "fixed_list",
           "part_rows_text", "schema", "var_list"]
