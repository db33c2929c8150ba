"""Engines by variant format: `engine_for(format)` is the class, `open_engine` a loaded one."""

from pathlib import Path

from engines.base import ContextTooLong, Engine, EngineError, Prepared, SamplingParams

ENGINE_BY_FORMAT = {
    "gguf": "engines.llamacpp.LlamaCppEngine",
    "hf": "engines.transformers_engine.TransformersEngine",
    "bnb-int8": "engines.transformers_engine.TransformersEngine",
    "bnb-nf4": "engines.transformers_engine.TransformersEngine",
    "gptq": "engines.transformers_engine.TransformersEngine",
    "awq": "engines.transformers_engine.TransformersEngine",
}


def gpu_available() -> bool:
    """Whether torch sees a CUDA device (False where torch isn't installed)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def engine_for(format: str) -> type[Engine]:
    from importlib import import_module

    try:
        module, _, cls = ENGINE_BY_FORMAT[format].rpartition(".")
    except KeyError:
        raise EngineError(f"no engine runs the {format!r} format", code="unsupported_format",
                          status=400) from None
    return getattr(import_module(module), cls)


def open_engine(format: str, files: list[Path], *, n_ctx: int, threads: int,
                device: str | None = None, node: str = "", placement: dict | None = None) -> Engine:
    """The engine for a variant's format with its files loaded: how chat, /v1 and the
    evaluation jobs all open a variant. `device` "cuda" puts the model on the GPU (or fails
    naming `node` when there is none), "cpu" keeps it off any GPU, None takes what is visible.
    `placement`: on "cuda", how a GGUF's layers are split between GPU and RAM
    (jobs/methods/gpu_placement.py); without one every layer goes on the GPU."""
    engine = engine_for(format)(files=list(files), n_ctx=n_ctx, threads=threads, device=device,
                                node=node, placement=placement)
    engine.load()
    return engine


__all__ = ["ContextTooLong", "Engine", "EngineError", "Prepared", "SamplingParams", "engine_for",
           "gpu_available", "open_engine"]
