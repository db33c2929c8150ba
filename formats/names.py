"""File names refused wherever files arrive: pickle-based weights and code."""

from pathlib import Path

from formats import FormatError

# torch.save / pickle containers: loading any of them can run arbitrary code.
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz"}
# Code shipped next to weights is what trust_remote_code would import; never accepted.
CODE_SUFFIXES = {".py", ".pyc", ".so", ".dll", ".dylib", ".sh"}


def refuse_unsafe_name(name: str) -> None:
    """Raises FormatError for pickle weights and code files, named so the user knows why."""
    suffix = Path(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise FormatError(
            f"{name}: pickle-based weights ({suffix}) are refused because loading them can run "
            "arbitrary code; convert the model to .safetensors (or GGUF) and upload that"
        )
    if suffix in CODE_SUFFIXES:
        raise FormatError(
            f"{name}: code files are refused; quantdash never runs a model's own code "
            "(trust_remote_code is always off)"
        )
