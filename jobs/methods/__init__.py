"""Job methods: one module per quantizer or evaluator, each behind the Method interface (base.py).

Adding a method means adding one module and one line in _MODULES.
"""

import importlib

from jobs.methods.base import JobError, Method

_MODULES = {
    "gguf": "jobs.methods.gguf",
    "imatrix": "jobs.methods.imatrix",
    "bnb-int8": "jobs.methods.bnb",
    "bnb-nf4": "jobs.methods.bnb",
    "gptq": "jobs.methods.gptq",
    "awq": "jobs.methods.awq",
    "hf-from-gguf": "jobs.methods.hf_from_gguf",
    "evaluate": "jobs.methods.evaluate",
    "tasks": "jobs.methods.tasks",
    "import-upload": "jobs.methods.imports",
    "import-hub": "jobs.methods.imports",
    "import-path": "jobs.methods.imports",
}


def get_method(name: str) -> Method:
    if name not in _MODULES:
        raise JobError.field("method", f"unknown method {name!r}; choose one of {sorted(_MODULES)}")
    module = importlib.import_module(_MODULES[name])
    return module.METHODS[name]


def method_names(*, device: str) -> list[str]:
    names = []
    for name in _MODULES:
        try:
            if device in get_method(name).devices:
                names.append(name)
        except (ImportError, AttributeError):
            continue  # a method module not present on this node
    return sorted(names)
