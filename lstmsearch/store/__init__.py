"""The Parquet store of a study, one room a module: :class:`Store` (:mod:`.folder`) puts together
the row parts and reads (:mod:`.parts`), the manifest (:mod:`.manifest`), integrity and
quarantine (:mod:`.integrity`), the run lock and workers' leases (:mod:`.lock`); the schema
(:mod:`.schema`), file I/O and hashes (:mod:`.files`), the best rows (:mod:`.best`), the rows of
an evaluated batch (:mod:`.rows`) and per-generation state (:mod:`.generations`)."""

from .files import atomic_write_bytes
from .folder import Store
from .schema import MANIFEST, ROW_SLOT, ROWS, SCHEMA_VERSION, WORKERS, fixed_list, part_rows_text, schema, var_list

__all__ = ["MANIFEST", "ROW_SLOT", "ROWS", "SCHEMA_VERSION", "WORKERS", "Store", "atomic_write_bytes", "fixed_list",
           "part_rows_text", "schema", "var_list"]
