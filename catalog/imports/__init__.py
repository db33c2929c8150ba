"""Model imports. Each entry point takes only JSON-able keyword arguments (ids, paths, strings)
plus an optional `progress(fraction, stage)` callback, so a Celery job can call it directly; each
stages into ARTIFACT_ROOT/tmp and leaves no files or rows behind when it fails.
"""

from catalog.imports.common import Progress
from catalog.imports.gguf import import_gguf_file
from catalog.imports.hf import import_archive, import_hf_folder
from catalog.imports.hub import hub_info, import_hub
from catalog.imports.server import import_server_path

__all__ = ["Progress", "hub_info", "import_archive", "import_gguf_file",
           "import_hf_folder", "import_hub", "import_server_path"]
