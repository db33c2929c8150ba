"""A sweep's parameters (jobs/sweeps.py): the candidates, the calibration and held-out texts and
the evaluation protocol, cleaned or refused naming the field; and why the HF methods are on or
off by default on this installation's nodes."""

from __future__ import annotations

from accounts.models import Team
from catalog.models import Dataset, Variant
from formats.digest import file_sha256
from jobs import services
from jobs.methods import gguf, hf_common
from jobs.methods import imatrix as imatrix_method
from jobs.methods.base import JobError
from jobs.models import Job, Worker
from jobs.presentation import duration_text

S = Job.Status
DEFAULT_TYPES = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "IQ3_XXS", "Q2_K")
HF_METHODS = {"bnb-nf4": "bitsandbytes NF4", "bnb-int8": "bitsandbytes INT8",
              "gptq": "GPTQ 4-bit"}
MAX_TYPES = 16
# Evaluation protocol defaults: 100 windows of 512 tokens (51,200 tokens, the same amount of
# text as the importance matrix's default), so the candidates' numbers differ by more than noise.
DEFAULT_CONTEXT, DEFAULT_CHUNKS = 512, 100


def _dataset(team: Team, value, name: str) -> Dataset:
    if value in (None, ""):
        raise JobError.field(name, "choose a text dataset")
    if not str(value).isdigit() or len(str(value)) > 18:
        raise JobError.field(name, f"must be a dataset id; got {str(value)[:40]!r}")
    return services.text_dataset(team, value, field=name)


def dataset_sha256(dataset: Dataset) -> str:
    return dataset.sha256 or file_sha256(dataset.absolute_path)


def _types(value) -> list[str]:
    types = value.split(",") if isinstance(value, str) else list(value or [])
    types = list(dict.fromkeys(str(t).strip().upper() for t in types if str(t).strip()))
    unknown = [t for t in types if t not in gguf.TYPES]
    if unknown:
        raise JobError.field("types", f"unknown GGUF type {', '.join(unknown)}; choose from "
                             f"{', '.join(gguf.TYPES)}")
    if len(types) > MAX_TYPES:
        raise JobError.field("types", f"at most {MAX_TYPES} types in one sweep")
    return types


def uses_matrix(qtype: str) -> bool:
    """The IQ types (and the others llama.cpp refuses without one) are made with the matrix."""
    return qtype.startswith("IQ") or qtype in gguf.IMATRIX_TYPES


def hf_default_on(method: str) -> bool:
    """bitsandbytes and GPTQ run by default only where a live GPU worker takes them."""
    return any(w.is_alive and w.device == "cuda" and method in (w.methods or [])
               for w in Worker.objects.all())


def hf_method_notes(team: Team) -> dict[str, str]:
    """Why each HF method is off by default on CPU nodes, with how long it took on one here
    (the last succeeded job of that method on a CPU worker; measured, with the model it ran
    on). The planner has no CPU speed for bitsandbytes or GPTQ kernels to go by (its
    transformers CPU figures are assumed, not measured), so only a measured duration is given."""
    cpu_workers = set(Worker.objects.filter(device="cpu").values_list("hostname", flat=True))
    notes = {}
    for method, name in HF_METHODS.items():
        if hf_default_on(method):
            notes[method] = f"on: a GPU worker runs {name}"
            continue
        last = (Job.objects.filter(team=team, method=method, status=S.SUCCEEDED,
                                   worker__in=cpu_workers, started_at__isnull=False)
                .select_related("input_variant__model").order_by("-finished_at").first())
        if last is None:
            notes[method] = (f"off: no GPU worker is up; {name} on a CPU node is slow "
                             "(not measured on this installation yet)")
            continue
        model = last.input_variant.model if last.input_variant else None
        params = f", {model.param_count:,} parameters" if model and model.param_count else ""
        notes[method] = (f"off: no GPU worker is up; on a CPU node it is slow: job {last.pk} took "
                         f"{duration_text((last.finished_at - last.started_at).total_seconds())} "
                         f"on {model.name if model else 'a deleted model'}{params} ({last.worker})")
    return notes


def sweep_clean(*, team: Team, base: Variant, params: dict) -> dict:
    """The sweep's parameters, cleaned, or JobError naming the field."""
    if base.model.team_id != team.pk:
        raise JobError.field("base", "that variant is not in this team")
    if base.format not in (Variant.Format.GGUF, Variant.Format.HF):
        raise JobError.field("base", f"a sweep quantizes a GGUF or HF base, not "
                             f"{base.get_format_display()}")
    types = _types(params.get("types", DEFAULT_TYPES))
    hf_methods = params.get("hf_methods")
    if hf_methods is None:
        hf_methods = [m for m in HF_METHODS if hf_default_on(m)] if base.format == "hf" else []
    if isinstance(hf_methods, str):
        hf_methods = [m.strip() for m in hf_methods.split(",") if m.strip()]
    unknown = [str(m) for m in hf_methods if m not in HF_METHODS]
    if unknown:
        raise JobError.field("hf_methods", f"unknown {', '.join(unknown)}; choose from "
                             f"{', '.join(HF_METHODS)}")
    if hf_methods and base.format != "hf":
        raise JobError.field("hf_methods", "bitsandbytes and GPTQ quantize an HF base; this base "
                             "is a GGUF")
    if not types and not hf_methods:
        raise JobError.field("types", "choose at least one candidate")
    evaluation = _dataset(team, params.get("evaluation"), "evaluation")
    calibration = None
    if any(uses_matrix(t) for t in types) or "gptq" in hf_methods or params.get("calibration"):
        calibration = _dataset(team, params.get("calibration"), "calibration")
        if calibration.pk == evaluation.pk or dataset_sha256(calibration) == dataset_sha256(evaluation):
            raise JobError.field("evaluation", f"{evaluation.name} is the calibration text "
                                 f"({calibration.name}, same sha256): evaluate on held-out text")
    context = hf_common.clean_number(params, "context", DEFAULT_CONTEXT, kind=int, low=16,
                                     high=32768)
    if context % 2:
        raise JobError.field("context", f"must be even (half of it is scored); got {context}")
    cleaned = {"types": types, "hf_methods": [m for m in HF_METHODS if m in hf_methods],
               "calibration": calibration.pk if calibration else None,
               "evaluation": evaluation.pk, "context": context,
               "chunks": hf_common.clean_number(params, "chunks", DEFAULT_CHUNKS, kind=int, low=1,
                                                high=100_000),
               # Speed (prefill/decode) beside quality; off, an evaluation is perplexity, KL and
               # memory only (speed on a busy node is noise, and it takes up to 30 s each).
               "speed": hf_common.clean_bool(params, "speed", True)}
    return cleaned | imatrix_method.clean_options(params, prefix="imatrix_")
