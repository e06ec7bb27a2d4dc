"""Where bytes come from and go to: files, folders, stdin, atomic writes (re-exported here)."""

from xmlnest.files.atomic import (
    AtomicBatch,
    _create_temp,
    _temp_serial,
    _writeback_starter,
    sync_folders,
    write_atomic,
    write_new,
)
from xmlnest.files.inputs import (
    STDIN,
    STDIN_NAME,
    Input,
    Read,
    UnusedGlob,
    _match,
    _walk,
    expand,
    read,
)
from xmlnest.files.outdir import check_output_dir, mirror
from xmlnest.files.temps import (
    TEMP_PREFIX,
    TEMP_SUFFIX,
    remove_stale_temp_files,
    stale_temp_files,
)

__all__ = [
    "STDIN",
    "STDIN_NAME",
    "TEMP_PREFIX",
    "TEMP_SUFFIX",
    "AtomicBatch",
    "Input",
    "Read",
    "UnusedGlob",
    "_create_temp",
    "_match",
    "_temp_serial",
    "_walk",
    "_writeback_starter",
    "check_output_dir",
    "expand",
    "mirror",
    "read",
    "remove_stale_temp_files",
    "stale_temp_files",
    "sync_folders",
    "write_atomic",
    "write_new",
]
