"""Reading and writing tables (CSV or Parquet by extension) and schema files, written atomically.

One module per idea: :mod:`~dpsynth.io.tables` (table files), :mod:`~dpsynth.io.limited_read` (reading
within the input limits), :mod:`~dpsynth.io.staging` (staged writes, their temporaries and signals),
:mod:`~dpsynth.io.config` (the YAML and JSON files a user writes). Every public name is importable
from here.
"""

from dpsynth.io.config import SCHEMA_SUFFIXES, check_schema_writable, key_names, read_config
from dpsynth.io.staging import (
    KEPT_RECORD,
    leftover_prefix,
    owner_tag,
    remove_stale_leftovers,
    staged_file,
    terminate_as_exit,
    write_text,
)
from dpsynth.io.tables import (
    TABLE_SUFFIXES,
    check_writable,
    read_header,
    read_table,
    sha256_file,
    table_format,
    write_table,
)

__all__ = ["KEPT_RECORD", "SCHEMA_SUFFIXES", "TABLE_SUFFIXES", "check_schema_writable", "check_writable",
           "key_names", "leftover_prefix", "owner_tag", "read_config", "read_header", "read_table",
           "remove_stale_leftovers", "sha256_file", "staged_file", "table_format", "terminate_as_exit", "write_table",
           "write_text"]
