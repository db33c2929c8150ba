"""A model's parameters from its own definition: transformers builds it from config.json on the
meta device and the tensor list is read off the built module.

No weights are read or allocated (every parameter lives on torch's "meta" device), nothing is
fetched from the Hub, and no remote code runs: the class comes from transformers' own registry for
the config's `model_type`, never from `auto_map`. The result is the ground truth the pure estimator
is checked against before a plan from a config is shown (`architecture_for_config`): a plan whose
parameters differ from what transformers creates for the same config is refused, never shown.

Costs (measured on the 2-core development machine, transformers 5.23, torch 2.14): importing torch
and transformers' model classes takes seconds once per process — opening the planner page starts
that import in a background thread (`warm_up`), so a config pasted there seldom waits for it — and building a model on the meta device takes tens to hundreds of milliseconds; built
definitions are kept per config (sha256 of its canonical JSON), so a repeat plan costs nothing.
"""

from __future__ import annotations

import ast
import functools
import gc
import hashlib
import importlib.util
import json
import re
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from planner.estimator import Architecture, EstimatorError

CACHE_SIZE = 128
# Beyond any published model: a config asking for more is refused before transformers builds it
# (meta parameters cost no memory, but every module still costs Python objects and time).
MAX_LAYERS = 1024
# Parameter names of the parts a multimodal checkpoint adds to its text decoder; the estimator
# plans the decoder and reports these apart (vision_params).
NON_TEXT = re.compile(r"(^|\.)(vision|visual|vision_tower|vision_model|multi_modal_projector|mm_projector|"
                      r"audio|audio_tower|embed_vision|embed_audio)(\.|_|$)")
# The decoder layer a parameter belongs to: model.layers.12.*, transformer.h.12.*, ...
LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks|block|decoder_layers)\.(\d+)\.")
# Keys of a config.json that must not reach the config class: remote code and quantizer settings
# (from_config never quantizes; the scheme is chosen by the planner).
IGNORED_KEYS = ("auto_map", "quantization_config", "compression_config")

# llama.cpp's HF -> GGUF converter, installed into the virtualenv by `make install` (the same one
# the GGUF jobs run): the HF classes it registers are the models a GGUF can be made of.
CONVERTER_DIR = Path(sys.prefix) / "opt" / "llama.cpp"

_lock = threading.Lock()
_cache: OrderedDict[str, "Definition"] = OrderedDict()
_libraries: dict[str, ModuleType] = {}


@dataclass(frozen=True)
class Definition:
    """What transformers builds for a config: its class, every parameter and persistent buffer
    (name, torch shape: what the checkpoint stores), and the config with the class defaults filled in (the dict the estimator reads)."""

    model_type: str
    class_name: str
    tensors: tuple[tuple[str, tuple[int, ...]], ...]
    config: dict[str, Any]
    build_seconds: float

    @property
    def total_params(self) -> int:
        return sum(_numel(shape) for _, shape in self.tensors)

    @property
    def non_text_params(self) -> int:
        """Vision/audio towers and projectors (reported apart by the estimator)."""
        return sum(_numel(shape) for name, shape in self.tensors if NON_TEXT.search(name))

    @property
    def text_params(self) -> int:
        return self.total_params - self.non_text_params

    def layer_params(self) -> dict[int, int]:
        """Text-decoder parameters per layer index."""
        per: dict[int, int] = {}
        for name, shape in self.tensors:
            m = LAYER.search(name)
            if m and not NON_TEXT.search(name):
                per[int(m.group(1))] = per.get(int(m.group(1)), 0) + _numel(shape)
        return per


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def load_libraries() -> dict[str, ModuleType]:
    """torch and transformers, imported once per process (seconds; see warm_up)."""
    with _lock:
        if not _libraries:
            import torch  # noqa: PLC0415  (heavy: imported on first use or by warm_up, not at Django start)
            import transformers  # noqa: PLC0415
            from transformers.models.auto import configuration_auto, modeling_auto  # noqa: PLC0415

            transformers.logging.set_verbosity_error()
            _libraries.update(torch=torch, transformers=transformers, configs=configuration_auto,
                              models=modeling_auto)
            # The imports leave ~400,000 objects that live as long as the process. Python's full
            # collection walks every one of them holding the GIL (measured 0.22-0.24 s here): in a
            # web process that stalls every request in flight, /healthz included. Frozen, they are
            # never walked again; collections see only what was made since.
            gc.freeze()
    return _libraries


_warm_up_started = threading.Event()


def warm_up() -> None:
    """Import torch and transformers in a background thread, once per process: the planner page
    calls this when it is opened, so a config pasted into it does not wait for the import (and a
    web process nobody plans in never pays for it)."""
    if _libraries or _warm_up_started.is_set():
        return
    _warm_up_started.set()
    threading.Thread(target=load_libraries, name="model-definition-warm-up", daemon=True).start()


def transformers_version() -> str:
    return load_libraries()["transformers"].__version__


def config_key(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()


def causal_lm_model_types() -> list[str]:
    """Every model_type the pinned transformers builds a text-generation model for."""
    return sorted(load_libraries()["models"].MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def model_definition(cfg: Any) -> Definition:
    """Build (or fetch from the cache) the definition of a config.json dict; EstimatorError names
    what is wrong when transformers can't build it."""
    if not isinstance(cfg, dict):
        raise EstimatorError("config", f"must be a JSON object, got {type(cfg).__name__}")
    key = config_key(cfg)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    definition = _build(cfg)
    with _lock:
        _cache[key] = definition
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return definition


def _build(cfg: dict) -> Definition:
    libs = load_libraries()
    torch, configs, models = libs["torch"], libs["configs"], libs["models"]
    version = libs["transformers"].__version__
    model_type = cfg.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise EstimatorError("model_type", "is required: transformers chooses the model's class by it")
    if model_type not in configs.CONFIG_MAPPING:
        raise EstimatorError("model_type", f"{model_type!r} is not an architecture transformers {version} knows "
                                           "(models that need remote code are not run)")
    if model_type in models.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:   # the whole checkpoint, towers too
        auto = models.AutoModelForImageTextToText
    elif model_type in models.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        auto = models.AutoModelForCausalLM
    else:
        raise EstimatorError("model_type", f"{model_type!r} has no text-generation model in transformers {version}")
    started = time.perf_counter()
    try:
        config = configs.CONFIG_MAPPING[model_type].from_dict(
            {k: v for k, v in cfg.items() if k not in IGNORED_KEYS})
        text = config.get_text_config()
        layers = getattr(text, "num_hidden_layers", None)
        if isinstance(layers, int) and layers > MAX_LAYERS:
            raise EstimatorError("num_hidden_layers", f"{layers:,} layers of {model_type!r} is beyond {MAX_LAYERS:,}")
        with _lock, torch.device("meta"):
            model = auto.from_config(config)
    except EstimatorError:
        raise
    except Exception as exc:  # the config class or the model's __init__ refused this config
        raise EstimatorError("config", f"transformers {version} cannot build a {model_type!r} model from it: "
                                       f"{type(exc).__name__}: {str(exc)[:300]}") from None
    tensors = tuple((name, tuple(p.shape)) for name, p in model.named_parameters()) + _persistent_buffers(model)
    full = config.to_dict()
    full.pop("quantization_config", None)
    return Definition(model_type=model_type, class_name=type(model).__name__, tensors=tensors, config=full,
                      build_seconds=time.perf_counter() - started)


def _persistent_buffers(model: Any) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Buffers saved with the weights (in the checkpoint, e.g. DeepSeek-V3's router bias
    e_score_correction_bias), not the ones recomputed at load (rotary inv_freq: non-persistent)."""
    out = []
    for prefix, module in model.named_modules():
        for name, buf in module._buffers.items():
            if buf is not None and name not in module._non_persistent_buffers_set:
                out.append((f"{prefix}.{name}" if prefix else name, tuple(buf.shape)))
    return tuple(out)


# Reading llama.cpp's sources happens once per process, one thread at a time: two web requests
# that arrive together would otherwise parse them at the same moment, and CPython 3.11's ast.parse
# is not safe in two threads at once (it can raise SystemError "AST constructor recursion depth
# mismatch").
_SOURCES_LOCK = threading.Lock()


def _one_at_a_time(read):
    cached = functools.cache(read)

    @functools.wraps(read)
    def wrapper():
        with _SOURCES_LOCK:
            return cached()
    wrapper.cache_clear = cached.cache_clear
    return wrapper


@_one_at_a_time
def llama_cpp_convertible() -> frozenset[str]:
    """The HF architecture classes llama.cpp's converter registers (`@ModelBase.register("...")` in
    convert_hf_to_gguf.py and conversion/*.py), read from its source without running it; empty when
    the converter is not installed."""
    files = [CONVERTER_DIR / "convert_hf_to_gguf.py", *sorted((CONVERTER_DIR / "conversion").glob("*.py"))]
    names: set[str] = set()
    for path in files:
        if not path.is_file():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "register"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in ("ModelBase", "TextModel", "MmprojModel")):
                names.update(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return frozenset(names)


@_one_at_a_time
def llama_cpp_tensor_names() -> dict[str, frozenset[str]]:
    """llama.cpp architecture name -> the tensor names its gguf-py declares for it (`blk.{bid}.attn_q`
    style, without .weight/.bias): the vendored gguf-py/gguf/constants.py beside the converter,
    standard library only, loaded on its own. Empty when the converter is not installed."""
    path = CONVERTER_DIR / "gguf-py" / "gguf" / "constants.py"
    if not path.is_file():
        return {}
    spec = importlib.util.spec_from_file_location("llama_cpp_gguf_constants", path)
    constants = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(constants)
    return {name: frozenset(constants.TENSOR_NAMES[t] for t in constants.MODEL_TENSORS.get(arch, ())
                            if t in constants.TENSOR_NAMES)
            for arch, name in constants.MODEL_ARCH_NAMES.items()}


def undeclared_tensors(arch: Architecture) -> list[str]:
    """The estimator's GGUF tensor names that llama.cpp does not declare for its architecture."""
    declared = llama_cpp_tensor_names().get(arch.arch)
    if declared is None:
        return [f"(architecture {arch.arch!r})"]
    out = []
    for name, _, _ in arch.gguf_tensors():
        base = re.sub(r"^blk\.\d+\.", "blk.{bid}.", name).removesuffix(".weight").removesuffix(".bias")
        if base not in declared:
            out.append(name)
    return out


def gguf_refusal(definition: Definition, cfg: dict) -> str:
    """Why no GGUF can be made of this model ("" when llama.cpp's converter registers its class)."""
    registered = llama_cpp_convertible()
    if not registered:
        return (f"llama.cpp's converter is not installed here ({CONVERTER_DIR}; `make install` puts it there), "
                f"so whether it converts {definition.class_name} is unknown")
    declared = cfg.get("architectures") if isinstance(cfg.get("architectures"), list) else []
    if definition.class_name in registered or any(a in registered for a in declared if isinstance(a, str)):
        return ""
    return f"llama.cpp cannot convert {definition.class_name}: its converter does not register that class"


def check_architecture(arch: Architecture, definition: Definition) -> None:
    """Refuse unless the estimator's parameters equal transformers' for the same config: the text
    decoder's total and each layer's, and the vision/audio part reported apart."""
    cls = definition.class_name
    if arch.total_params != definition.text_params:
        raise EstimatorError("config", f"the estimator counts {arch.total_params:,} parameters where transformers' "
                                       f"{cls} has {definition.text_params:,} in its text model: this layout is "
                                       "not modelled exactly, so it is not planned")
    if arch.vision_params != definition.non_text_params:
        raise EstimatorError("config", f"the estimator counts {arch.vision_params:,} vision/audio parameters where "
                                       f"transformers' {cls} has {definition.non_text_params:,}: not planned")
    per = definition.layer_params()
    if per and sorted(per) == list(range(arch.n_layers)):
        for i, n in enumerate(arch.layer_params):
            if n != per[i]:
                raise EstimatorError("config", f"layer {i}: the estimator counts {n:,} parameters where "
                                               f"transformers' {cls} has {per[i]:,}: not planned")


def architecture_for_config(cfg: Any, name: str = "") -> Architecture:
    """The estimator's architecture for a config.json, checked against the model's own definition.

    transformers fills in its class defaults (the config the estimator reads is the complete one)
    and builds the model on the meta device; the estimator refuses layouts it does not model, and
    any difference between its count and transformers' is a refusal naming both numbers."""
    try:
        definition = model_definition(cfg)
    except EstimatorError as exc:
        if exc.field == "config" and isinstance(cfg, dict):
            Architecture.from_config(cfg, name=name)   # a field-named refusal, where the estimator has one
        raise
    try:
        arch = Architecture.from_config(definition.config, name=name)
    except EstimatorError as exc:
        raise EstimatorError(exc.field, f"{exc.message} (transformers' {definition.class_name} has "
                                        f"{definition.total_params:,} parameters)") from None
    check_architecture(arch, definition)
    note = (f"parameters checked against transformers' {definition.class_name} built from this config on the "
            f"meta device: {definition.text_params:,} (text model), equal per layer")
    why = arch.gguf_unsupported or gguf_refusal(definition, cfg)
    if not why and (undeclared := undeclared_tensors(arch)):
        why = (f"the estimator's GGUF tensor {undeclared[0]} is not one llama.cpp declares for {arch.arch!r}, so "
               "its GGUF plan is not trusted")
    return replace(arch, notes=arch.notes + (note,), gguf_unsupported=why)
