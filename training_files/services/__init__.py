"""Services of the training_files app (re-exported here; see ``files``, ``gate`` and ``build``)."""

from training_files.services.exports import (
    export_create,
    export_download,
    export_fail,
    export_render,
    exports_expire,
)
from training_files.services.files import (
    training_file_build,
    training_file_build_enqueue,
    training_file_build_retry,
    training_file_create,
    training_file_download,
    training_file_members_update,
    training_file_version_get,
)
from training_files.services.gate import GateResult, training_file_gate
from training_files.services.sweep import BuildSweepResult, training_file_builds_sweep

__all__ = [
    "BuildSweepResult",
    "GateResult",
    "export_create",
    "export_download",
    "export_fail",
    "export_render",
    "exports_expire",
    "training_file_build",
    "training_file_build_enqueue",
    "training_file_build_retry",
    "training_file_builds_sweep",
    "training_file_create",
    "training_file_download",
    "training_file_gate",
    "training_file_members_update",
    "training_file_version_get",
]
