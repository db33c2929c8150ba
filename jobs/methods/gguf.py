"""GGUF quantization with llama.cpp's llama-quantize.

An HF safetensors input is first converted to one F16 (or BF16) GGUF with llama.cpp's own
convert_hf_to_gguf.py (installed into the virtualenv by `make install`); every requested type is
then made from that one intermediate by the llama-quantize binary (jobs.llama_tools), the one
path for every type. A GGUF input is requantized directly (--allow-requantize), which compounds
the error of its own quantization: the job records a warning.

The low-bit types in IMATRIX_TYPES need an importance matrix: a catalog `imatrix` variant of the
same model (`imatrix`), or one made in this job from a calibration text (`imatrix_dataset`,
registered as an output too). `tensor_types` (pattern=type, llama-quantize --tensor-type),
`output_tensor_type` and `token_embedding_type` override llama.cpp's per-tensor choices.

`target_size` ("<n> GiB" or "<n> bpw", GGUF input, calibration text required) adds one file whose
every tensor group's type is chosen by jobs.methods.size_target: each group's mean-KLD increase is
measured on the calibration text against the input, then the mix of least error within the size
is made; the recipe and the sensitivity table are recorded on it.
"""

import math
import os
import re
import sys
from pathlib import Path

from formats.digest import file_sha256
from formats.gguf_header import read_gguf_header_from_path
from jobs import llama_tools
from jobs.methods import hf_common, size_target
from jobs.methods import imatrix as imatrix_tool
from jobs.methods.base import JobError, Method, Output, RunContext

# llama-quantize's file types: tools/quantize/quantize.cpp QUANT_OPTIONS without COPY and the
# aliases Q3_K / Q4_K / Q5_K. Q2_0 is left out: gguf-py 0.19 (our header reader's type table)
# doesn't know its ggml type 42, so its files couldn't be registered.
TYPES = ("F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M",
         "Q4_K_S", "Q4_1", "Q4_0", "IQ4_XS", "IQ4_NL", "MXFP4_MOE", "Q3_K_L", "Q3_K_M", "Q3_K_S",
         "IQ3_M", "IQ3_S", "IQ3_XS", "IQ3_XXS", "Q2_K", "Q2_K_S", "IQ2_M", "IQ2_S", "IQ2_XS",
         "IQ2_XXS", "TQ2_0", "TQ1_0", "IQ1_M", "IQ1_S", "Q1_0")
# File types whose tensors need an importance matrix (src/llama-quant.cpp,
# tensor_requires_imatrix: iq3_xxs, iq2_xxs, iq2_xs, iq2_s, iq1_m, iq1_s and the q2_K tensors of
# a Q2_K_S file; llama_tensor_get_type_impl gives IQ3_XS files iq3_xxs tensors, IQ2_M iq2_s).
IMATRIX_TYPES = ("IQ3_XXS", "IQ3_XS", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M",
                 "Q2_K_S")
# ggml type names llama-quantize takes in --tensor-type / --output-tensor-type /
# --token-embedding-type (parse_ggml_type: any ggml_type_name) that ggml_quantize_chunk can
# produce (ggml/src/ggml.c); q2_0 is left out as above.
GGML_TENSOR_TYPES = ("f32", "f16", "bf16", "q8_0", "q6_K", "q5_K", "q5_1", "q5_0", "q4_K", "q4_1",
                     "q4_0", "iq4_xs", "iq4_nl", "mxfp4", "nvfp4", "q3_K", "iq3_s", "iq3_xxs",
                     "q2_K", "iq2_s", "iq2_xs", "iq2_xxs", "tq2_0", "tq1_0", "iq1_m", "iq1_s",
                     "q1_0")
# tensor_requires_imatrix again, for --tensor-type targets (token_embd / output are exempt).
IMATRIX_TENSOR_TYPES = {"iq3_xxs", "iq2_xxs", "iq2_xs", "iq2_s", "iq1_m", "iq1_s"}
FLOAT_TYPES = {"F16", "BF16", "F32"}
MAX_TYPES = 12
MAX_TENSOR_TYPES = 64
# A --tensor-type pattern is a std::regex searched in tensor names (llama-quant.cpp): letters,
# digits and regex punctuation only; no "=", ",", spaces, and no "(?" extensions std::regex lacks.
PATTERN_CHARS = re.compile(r"^[A-Za-z0-9_.*+?^$|()\[\]{}\\-]{1,120}$")
_TYPE_BY_NAME = {t.lower(): t for t in GGML_TENSOR_TYPES}
# ggml type ids (ggml.h enum ggml_type) of the types a size target chooses, to check its header.
GGML_TYPE_IDS = {"q5_0": 6, "q8_0": 8, "q3_K": 11, "q4_K": 12, "q5_K": 13, "q6_K": 14,
                 "iq4_nl": 20}


def _gguf_bits_per_weight(path: Path) -> float:
    header = read_gguf_header_from_path(path)
    n_weights = sum(math.prod(t.shape) for t in header.tensors)
    return round((path.stat().st_size - header.data_offset) * 8 / n_weights, 3)


def clean_tensor_type(name: str, value) -> str:
    """A ggml type name as ggml_type_name spells it, or JobError naming the field."""
    found = _TYPE_BY_NAME.get(str(value).strip().lower())
    if found is None:
        raise JobError.field(name, f"unknown ggml type {str(value)[:40]!r}; choose from "
                             f"{', '.join(GGML_TENSOR_TYPES)}")
    return found


def clean_tensor_types(value) -> list[str]:
    """`pattern=type` entries (a list, or one per line / comma) as llama-quantize --tensor-type
    takes them, patterns lower-cased as it does."""
    entries = value.replace("\n", ",").split(",") if isinstance(value, str) else value
    if not isinstance(entries, (list, tuple)):
        raise JobError.field("tensor_types", "a list of pattern=type entries")
    entries = [str(e).strip() for e in entries if str(e).strip()]
    if len(entries) > MAX_TENSOR_TYPES:
        raise JobError.field("tensor_types", f"at most {MAX_TENSOR_TYPES} entries")
    cleaned = []
    for entry in entries:
        pattern, sep, type_name = entry.partition("=")
        pattern = pattern.strip().lower()
        if not sep or not pattern or not type_name.strip():
            raise JobError.field("tensor_types", f"{entry[:60]!r} is not pattern=type "
                                 "(e.g. attn_v=q8_0)")
        if not PATTERN_CHARS.match(pattern) or "(?" in pattern:
            raise JobError.field("tensor_types", f"pattern {pattern[:60]!r}: up to 120 letters, "
                                 "digits and regex punctuation (. * + ? ^ $ | ( ) [ ] { } \\ -)")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise JobError.field("tensor_types", f"pattern {pattern!r} is not a regex: {exc}")
        cleaned.append(f"{pattern}={clean_tensor_type('tensor_types', type_name)}")
    return cleaned


def _clean_imatrix(params: dict, variant, needing: list[str]) -> dict:
    """The importance matrix: a catalog variant (`imatrix`) or a text to make one from."""
    chosen, text = params.get("imatrix"), params.get("imatrix_dataset_path")
    if chosen not in (None, "") and text:
        raise JobError.field("imatrix", "choose a catalog importance matrix or a dataset to make "
                             "one (imatrix_dataset), not both")
    if chosen not in (None, ""):
        return _catalog_imatrix(chosen, variant)
    if text:
        return {"imatrix_dataset": params.get("imatrix_dataset"),
                "imatrix_dataset_path": str(text),
                "imatrix_dataset_name": imatrix_tool.dataset_record(
                    team_id=variant.model.team_id, path=str(text))["name"],
                **imatrix_tool.clean_options(params, prefix="imatrix_")}
    if needing:
        raise JobError.field("types", f"{', '.join(needing)} need an importance matrix (imatrix): "
                             "choose one in `imatrix` (an imatrix job's output for this model) or "
                             "a calibration text in `imatrix_dataset` to make one in this job")
    return {}


def _catalog_imatrix(value, variant) -> dict:
    from catalog.models import Variant

    found = None
    if isinstance(value, int) or str(value).isdigit():
        found = Variant.objects.filter(pk=int(value), model=variant.model, format="imatrix").first()
    if found is None:
        raise JobError.field("imatrix", f"no importance matrix {str(value)[:40]} for "
                             f"{variant.model.name} in this team")
    files = [f for f in found.files.all() if f.path.endswith(".gguf")]
    if len(files) != 1:
        raise JobError.field("imatrix", f"importance matrix {found.pk} has no single .gguf file")
    return {"imatrix": found.pk, "imatrix_path": str(files[0].absolute_path),
            "imatrix_record": {"variant": found.pk, "dataset": found.params.get("dataset"),
                               "chunks_used": found.params.get("chunks_used"),
                               "context": found.params.get("context")}}


def _clean_target(params: dict, variant, cleaned: dict) -> dict:
    """target_size against what this model's tensor groups can reach, from the input's header."""
    if variant.format != "gguf":
        raise JobError.field("target_size", "a size target needs a GGUF input (its tensor shapes "
                             "set the reachable sizes): quantize to F16 GGUF first")
    chosen = [k for k in ("tensor_types", "output_tensor_type", "token_embedding_type")
              if k in cleaned]
    if chosen:
        raise JobError.field("target_size", f"a size target chooses every tensor's type itself; "
                             f"leave {', '.join(chosen)} empty")
    if not cleaned.get("imatrix_dataset_path"):
        raise JobError.field("target_size", "a size target measures sensitivity on a calibration "
                             "text: choose one in imatrix_dataset")
    files = [f for f in variant.files.all() if f.path.endswith(".gguf")]
    if len(files) != 1:
        raise JobError.field("target_size", "the input has no single .gguf file to read the "
                             "tensor shapes from")
    header = read_gguf_header_from_path(files[0].absolute_path)
    try:
        amount, unit = size_target.parse_target(params["target_size"])
        layout = size_target.layout_of([(t.name, tuple(t.shape), t.nbytes) for t in header.tensors],
                                       header.data_offset)
        costs = size_target.group_costs([(t.name, tuple(t.shape)) for t in header.tensors])
        low, high = size_target.reachable_bytes(
            {g: [size_target.Option(t, b, 0.0) for t, b in by_type.items()]
             for g, by_type in costs.items()})
    except size_target.BudgetError as exc:
        raise JobError.field("target_size", str(exc))
    budget = layout.budget(amount, unit)
    if not low <= budget <= high:
        raise JobError.field("target_size", f"{amount:g} {unit} is outside what this model's types "
                             f"reach: {layout.in_unit(low, unit):.4f} to "
                             f"{layout.in_unit(high, unit):.4f} {unit}")
    chunks = hf_common.clean_number(params, "target_chunks", 8, kind=int, low=1, high=64)
    # llama-perplexity scores the second half of each chunk (n_ctx/2 - 1 tokens) and prints no KL
    # statistics under 100 scored tokens, which the sensitivity table is made of.
    context = cleaned.get("imatrix_context") or imatrix_tool.DEFAULT_CONTEXT
    scored = chunks * (context - 1 - context // 2)
    if scored < 100:
        raise JobError.field("target_chunks", f"{chunks} chunks of {context} tokens score {scored} tokens; "
                             "llama-perplexity gives KL statistics from 100: use more chunks or a longer "
                             "imatrix_context")
    return {"target_size": f"{amount:g} {unit}", "target_budget_bytes": budget, "target_chunks": chunks}


class GGUFMethod(Method):
    name = "gguf"
    kind = "quantize"
    devices = ("cpu", "cuda")
    input_formats = ("hf", "gguf")
    soft_time_limit = 2 * 3600
    hard_time_limit = 3 * 3600

    def validate(self, params: dict, variant) -> dict:
        types = params.get("types") or []
        if isinstance(types, str):
            types = [t.strip() for t in types.split(",") if t.strip()]
        types = [str(t).upper() for t in types]
        targeted = params.get("target_size") not in (None, "")
        if not types and not targeted:
            raise JobError.field("types", "choose at least one GGUF type (or a target_size)")
        unknown = [t for t in types if t not in TYPES]
        if unknown:
            raise JobError.field("types", f"unknown or unsupported type {', '.join(unknown)}; "
                                 f"choose from {', '.join(TYPES)}")
        if len(set(types)) > MAX_TYPES:
            raise JobError.field("types", f"at most {MAX_TYPES} types in one job")
        outtype = str(params.get("intermediate", "F16")).upper()
        if outtype not in ("F16", "BF16"):
            raise JobError.field("intermediate", "the intermediate must be F16 or BF16")
        cleaned = {"types": list(dict.fromkeys(types)), "intermediate": outtype}
        overrides = clean_tensor_types(params.get("tensor_types") or [])
        if overrides:
            cleaned["tensor_types"] = overrides
        for name in ("output_tensor_type", "token_embedding_type"):
            if params.get(name) not in (None, ""):
                cleaned[name] = clean_tensor_type(name, params[name])
        needing = [t for t in cleaned["types"] if t in IMATRIX_TYPES]
        needing += [o for o in overrides if o.split("=")[1] in IMATRIX_TENSOR_TYPES]
        cleaned.update(_clean_imatrix(params, variant, needing))
        if targeted:
            cleaned.update(_clean_target(params, variant, cleaned))
        if variant.format == "gguf" and variant.quant_type.upper() not in FLOAT_TYPES:
            cleaned["warning"] = (
                f"requantizing a {variant.quant_type} GGUF: errors compound; quantize from F16 "
                "or HF weights when you have them")
        return cleaned

    def estimate(self, params: dict, variant) -> dict:
        from jobs.estimates import gguf_job_estimate

        return gguf_job_estimate(params=params, variant=variant)

    def run(self, ctx: RunContext) -> list[Output]:
        p, work = ctx.params, Path(ctx.workdir)
        outputs: list[Output] = []
        types = list(p["types"])
        on_the_fly = bool(p.get("imatrix_dataset_path"))
        targeted = bool(p.get("target_size"))
        n_steps = len(types) + (1 if ctx.input_format == "hf" else 0) + on_the_fly + targeted
        versions = {"llama-cpp-python": llama_tools.LLAMA_CPP_VERSION, "llama.cpp": llama_tools.version()}
        step = 0
        if ctx.input_format == "hf":
            source = work / "intermediate" / f"model-{p['intermediate']}.gguf"
            ctx.progress(0.0, "convert")
            versions["convert_hf_to_gguf"] = llama_tools.convert_hf(ctx.input_dir, source,
                                                                    p["intermediate"])
            outputs.append(Output(
                key="intermediate", format="gguf", quant_type=p["intermediate"],
                directory=str(source.parent), bits_per_weight=_gguf_bits_per_weight(source),
                params={"intermediate_of": types}, tool_versions=versions))
            step = 1
        else:
            source = ctx.input_path(".gguf")
        source_key = "intermediate" if ctx.input_format == "hf" else None
        matrix, record = p.get("imatrix_path"), p.get("imatrix_record")
        if on_the_fly:
            matrix, record, made = self._make_imatrix(ctx, source, work, step, n_steps)
            outputs.append(Output(key="imatrix", format="imatrix", quant_type="imatrix",
                                  directory=str(Path(matrix).parent), params=made,
                                  tool_versions=versions, parent_key=source_key))
            step += 1
        stem = source.name.rsplit(".", 2)[0] if ctx.input_format == "gguf" else "model"
        extra = {k: p[k] for k in ("warning", "tensor_types", "output_tensor_type",
                                   "token_embedding_type") if k in p}
        if record:
            extra["imatrix"] = record
        for qtype in types:
            if ctx.input_format == "hf" and qtype == p["intermediate"]:
                step += 1
                continue  # the intermediate itself is already an output
            target = work / qtype / f"{stem}-{qtype}.gguf"
            target.parent.mkdir(parents=True)
            self._quantize(ctx, source, target, qtype, matrix, step, n_steps)
            step += 1
            outputs.append(Output(
                key=qtype, format="gguf", quant_type=qtype, directory=str(target.parent),
                bits_per_weight=_gguf_bits_per_weight(target), params={"type": qtype, **extra},
                tool_versions=versions, parent_key=source_key))
        if targeted:
            outputs.append(self._size_targeted(ctx, source, Path(matrix), stem, record, versions,
                                               step, n_steps))
        ctx.progress(1.0, "done")
        return outputs

    def _size_targeted(self, ctx: RunContext, source: Path, matrix: Path, stem: str, record: dict,
                       versions: dict, step: int, n_steps: int) -> Output:
        p, work = ctx.params, Path(ctx.workdir)
        tensors = [(t.name, tuple(t.shape)) for t in read_gguf_header_from_path(source).tensors]
        tools = size_target.Tools(
            source=source, matrix=matrix, text=Path(p["imatrix_dataset_path"]),
            chunks=p["target_chunks"], context=p["imatrix_context"], threads=os.cpu_count() or 1,
            workdir=work / "sensitivity", requantize=ctx.input_format == "gguf", log=ctx.log)
        ctx.progress(step / n_steps, "size target")
        base_kld, options = size_target.measure_sensitivity(
            tools, tensors,
            lambda done: ctx.progress((step + 0.95 * done) / n_steps, "size target"))
        choice = size_target.choose_types(options, p["target_budget_bytes"])
        upgrades = size_target.fill_layers(options, choice, tensors, p["target_budget_bytes"])
        overrides = size_target.override_args(choice.types, upgrades)
        target = work / "targeted" / f"{stem}-targeted.gguf"
        target.parent.mkdir(parents=True)
        tools.quantize(target, overrides)
        written = {t.name: t.ggml_type for t in read_gguf_header_from_path(target).tensors}
        planned = size_target.tensor_plan(tensors, choice.types, upgrades)
        wrong = [n for n, t in planned.items() if GGML_TYPE_IDS[t] != written.get(n)]
        if wrong:
            raise JobError("llama-quantize did not write the planned types for "
                           f"{', '.join(wrong[:3])}")
        predicted = round(choice.error + sum(u.error for u in upgrades), 6)
        params = {
            "target_size": p["target_size"], "budget_bytes": p["target_budget_bytes"],
            "file_bytes": target.stat().st_size, "recipe": {
                "group_types": choice.types,
                "layer_types": [{"group": u.group, "type": u.type, "layers": list(u.layers)}
                                for u in upgrades],
                "llama_quantize_args": overrides,
                "predicted_mean_kld_increase": predicted},
            "sensitivity": {
                "measure": "mean KLD increase over the base file (every group at its dearest type) "
                           "when the group alone takes the type; llama-perplexity --kl-divergence",
                "reference": f"the input GGUF ({ctx.input_quant_type})", "base_mean_kld": base_kld,
                "chunks": p["target_chunks"], "context": p["imatrix_context"],
                "table": size_target.sensitivity_table(options)}}
        if record:
            params["imatrix"] = record
            params["sensitivity"]["dataset"] = record.get("dataset")
        ctx.progress((step + 1) / n_steps, "size target")
        return Output(key="targeted", format="gguf", quant_type=f"targeted {p['target_size']}",
                      directory=str(target.parent), bits_per_weight=_gguf_bits_per_weight(target),
                      params=params, tool_versions=versions)

    def _make_imatrix(self, ctx: RunContext, source: Path, work: Path, step: int, n_steps: int):
        p = ctx.params
        target = work / "imatrix" / "imatrix.gguf"
        text = Path(p["imatrix_dataset_path"])
        ctx.progress(step / n_steps, "imatrix")
        made = imatrix_tool.make_imatrix(
            model=source, text=text, target=target, chunks=p["imatrix_chunks"],
            context=p["imatrix_context"], threads=None, log=ctx.log,
            progress=lambda done, total: ctx.progress((step + done / total) / n_steps, "imatrix"))
        dataset = {"id": p.get("imatrix_dataset"), "name": p.get("imatrix_dataset_name"),
                   "sha256": file_sha256(text)}
        params = imatrix_tool.imatrix_params(made, dataset=dataset, chunks=p["imatrix_chunks"],
                                             context=p["imatrix_context"])
        record = {"variant": None, "made_in_job": True, "dataset": dataset,
                  "chunks_used": made["chunks_used"], "context": p["imatrix_context"]}
        return str(target), record, params

    def _quantize(self, ctx: RunContext, source: Path, target: Path, qtype: str,
                  matrix: str | None, step: int, n_steps: int) -> None:
        p = ctx.params
        args = ["--allow-requantize"] if ctx.input_format == "gguf" else []
        if matrix:
            args += ["--imatrix", matrix]
        for entry in p.get("tensor_types", []):
            args += ["--tensor-type", entry]
        if p.get("output_tensor_type"):
            args += ["--output-tensor-type", p["output_tensor_type"]]
        if p.get("token_embedding_type"):
            args += ["--token-embedding-type", p["token_embedding_type"]]
        args += [str(source), str(target), qtype, str(os.cpu_count() or 1)]
        stage = f"quantize {qtype}"
        ctx.progress(step / n_steps, stage)
        report = llama_tools.tensor_progress(
            lambda i, n: ctx.progress((step + i / n) / n_steps, stage))

        def on_output(piece: str) -> None:
            sys.stdout.write(piece)
            sys.stdout.flush()
            report(piece)

        llama_tools.run("llama-quantize", args, on_output=on_output, log=ctx.log)


METHODS = {"gguf": GGUFMethod()}
