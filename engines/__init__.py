"""Engines by variant format. The runtime server picks one with `engine_for(format)`."""

from engines.base import ContextTooLong, Engine, EngineError, Prepared, SamplingParams

ENGINE_BY_FORMAT = {
    "gguf": "engines.llamacpp.LlamaCppEngine",
    "hf": "engines.transformers_engine.TransformersEngine",
    "bnb-int8": "engines.transformers_engine.TransformersEngine",
    "bnb-nf4": "engines.transformers_engine.TransformersEngine",
    "gptq": "engines.transformers_engine.TransformersEngine",
    "awq": "engines.transformers_engine.TransformersEngine",
}


def engine_for(format: str) -> type[Engine]:
    from importlib import import_module

    try:
        module, _, cls = ENGINE_BY_FORMAT[format].rpartition(".")
    except KeyError:
        raise EngineError(f"no engine runs the {format!r} format", code="unsupported_format",
                          status=400) from None
    return getattr(import_module(module), cls)


__all__ = ["ContextTooLong", "Engine", "EngineError", "Prepared", "SamplingParams", "engine_for"]
