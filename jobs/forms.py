from django import forms
from django.utils import timezone

from catalog.models import TaskSet
from catalog.selectors import imatrix_infos
from jobs.methods.base import JobError
from jobs.methods.gguf import GGML_TENSOR_TYPES, IMATRIX_TYPES, clean_tensor_types
from jobs.methods.gguf import TYPES as GGUF_TYPES
from jobs.methods.gptq import DEFAULT_SAMPLES as GPTQ_SAMPLES, DEFAULT_SEQ_LEN as GPTQ_SEQ_LEN
from jobs.methods.imatrix import (CHUNKS_RANGE, CONTEXT_RANGE, DEFAULT_CHUNKS, DEFAULT_CONTEXT,
                                  THREADS_RANGE)
from planner.templatetags.units import binary_size


METHOD_CHOICES = [
    ("gguf", "GGUF (llama.cpp)"),
    ("bnb-nf4", "bitsandbytes NF4 / FP4"),
    ("bnb-int8", "bitsandbytes LLM.int8"),
    ("gptq", "GPTQ (GPTQModel)"),
    ("awq", "AWQ (GPTQModel; GPU nodes only)"),
    ("evaluate", "Evaluate: perplexity, KL vs base, speed, memory"),
    ("tasks", "Score tasks: accuracy on task sets (lm-evaluation-harness)"),
]


class DatasetChoiceField(forms.ModelChoiceField):
    """A catalog dataset picked from a list (labelled by name and size), so a name can't be
    mistyped; the team is named too when the list spans several teams."""

    show_team = False

    def label_from_instance(self, dataset) -> str:
        team = f", team {dataset.team.name}" if self.show_team else ""
        return f"{dataset.name} ({binary_size(dataset.bytes)}{team})"


def gguf_type_group(name: str) -> str:
    """The family a llama.cpp file type belongs to, for grouping the form's type list."""
    name = name.upper()
    if name in ("F32", "F16", "BF16"):
        return "Float"
    if name.startswith("TQ"):
        return "Ternary"
    if name.startswith("IQ"):
        return "IQ (i-quants)"
    if "_K" in name:
        return "K-quants"
    return "Legacy"


GROUP_ORDER = ("Float", "K-quants", "Legacy", "IQ (i-quants)", "Ternary")


def gguf_type_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """jobs.methods.gguf.TYPES grouped by family; those needing an importance matrix say so."""
    groups: dict[str, list[tuple[str, str]]] = {group: [] for group in GROUP_ORDER}
    for t in GGUF_TYPES:
        label = f"{t} (needs an importance matrix)" if t in IMATRIX_TYPES else t
        groups[gguf_type_group(t)].append((t, label))
    return [(group, choices) for group, choices in groups.items() if choices]


class GGUFTypesWidget(forms.CheckboxSelectMultiple):
    """Marks the types that need an importance matrix (data-needs-imatrix), which the page's
    script disables until one is chosen; without the script they stay enabled and the server
    refuses them with a message on the field."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value in IMATRIX_TYPES:
            option["attrs"]["data-needs-imatrix"] = "true"
        return option


def variant_choice_label(variant) -> str:
    """A variant in a picker, told apart from identical-looking ones: its id, its parent and when
    it was made ("#12 SmolLM2-135M-Instruct [GGUF Q4_K_M] · from #5 · made 2026-12-07 09:03")."""
    made = timezone.localtime(variant.created_at).strftime("%Y-%m-%d %H:%M")
    parent = f"from #{variant.parent_id}" if variant.parent_id else "imported"
    return f"#{variant.pk} {variant} · {parent} · made {made}"


class VariantChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, variant) -> str:
        return variant_choice_label(variant)


class ImatrixChoiceField(forms.ModelChoiceField):
    """An importance matrix of the input's model, labelled by what it was computed from."""

    infos: dict = {}

    def label_from_instance(self, variant) -> str:
        info = self.infos.get(variant.pk)
        return info.choice_label if info else f"#{variant.pk}"


TENSOR_TYPE_CHOICES = [("", "llama.cpp's default")] + [(t, t) for t in GGML_TENSOR_TYPES]


def parse_tensor_types(text: str) -> list[str]:
    """The per-tensor overrides box, one pattern=type per line (blank lines skipped), checked
    line by line with the GGUF method's own rules (jobs.methods.gguf.clean_tensor_types: the
    pattern a regex over tensor names, lower-cased as llama-quantize does; the type a ggml type
    name). Raises ValidationError naming the first bad line."""
    overrides = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            overrides += clean_tensor_types([line])
        except JobError as exc:
            raise forms.ValidationError(f"line {number} “{line[:60]}”: {exc.errors['tensor_types']}")
    return overrides


def check_dataset_team(form: forms.Form, name: str, dataset, variant) -> None:
    """A dataset must be in the input variant's team (a user in two teams sees both)."""
    if dataset and variant and dataset.team_id != variant.model.team_id:
        form.add_error(name, f"{dataset.name} is in team {dataset.team.name}, the input "
                       f"variant in team {variant.model.team.name}")


class JobForm(forms.Form):
    """One form for every method; each method's validate() decides which fields matter."""

    variant = VariantChoiceField(queryset=None, label="Input variant",
                                 error_messages={"required": "choose an input variant"})
    method = forms.ChoiceField(choices=METHOD_CHOICES)
    another_copy = forms.BooleanField(
        required=False, label="Make another copy",
        help_text="when an identical job (same input sha256, method, parameters and tool versions) "
                  "already made these outputs; without it such a job is refused and the existing "
                  "variants are offered")
    types = forms.MultipleChoiceField(
        choices=gguf_type_choices, required=False, widget=GGUFTypesWidget,
        label="GGUF types", initial=["Q8_0", "Q4_K_M"])
    intermediate = forms.ChoiceField(choices=[("F16", "F16"), ("BF16", "BF16")], required=False,
                                     initial="F16", label="Intermediate GGUF (HF input)")
    imatrix = ImatrixChoiceField(
        queryset=None, required=False, label="Importance matrix", empty_label="— none —",
        error_messages={"invalid_choice": "no importance matrix %(value)s of this model in your teams"})
    imatrix_dataset = DatasetChoiceField(
        queryset=None, required=False, label="…or make one from a dataset",
        empty_label="— don't make one —",
        error_messages={"invalid_choice": "no text dataset %(value)s in your teams"})
    imatrix_chunks = forms.IntegerField(
        required=False, min_value=CHUNKS_RANGE[0], max_value=CHUNKS_RANGE[1], initial=DEFAULT_CHUNKS,
        label="Calibration chunks")
    imatrix_context = forms.IntegerField(
        required=False, min_value=CONTEXT_RANGE[0], max_value=CONTEXT_RANGE[1], initial=DEFAULT_CONTEXT,
        label="Calibration context (tokens per chunk)")
    tensor_types = forms.CharField(
        required=False, label="Per-tensor types", widget=forms.Textarea(attrs={"rows": 3}),
        help_text="one pattern=type per line, e.g. attn_v=q8_0 (the pattern is a regular "
                  "expression over tensor names)")
    output_tensor_type = forms.ChoiceField(choices=TENSOR_TYPE_CHOICES, required=False,
                                           label="output.weight type")
    token_embedding_type = forms.ChoiceField(choices=TENSOR_TYPE_CHOICES, required=False,
                                             label="Token embedding type")
    target_size = forms.CharField(
        required=False, max_length=40, label="Target size",
        help_text="e.g. 5.5 bpw or 0.09 GiB: one more file whose tensor groups get the types of "
                  "least measured error within that size (each group's KL cost is measured on the "
                  "calibration dataset above, which it needs)")
    target_chunks = forms.IntegerField(required=False, min_value=1, max_value=64, initial=8,
                                       label="Sensitivity chunks",
                                       help_text="calibration chunks each group's KL cost is measured on")
    bits = forms.TypedChoiceField(choices=[(4, 4), (8, 8), (3, 3), (2, 2)], coerce=int,
                                  required=False, label="GPTQ bits")
    group_size = forms.IntegerField(required=False, initial=128, label="Group size")
    desc_act = forms.BooleanField(required=False, label="desc_act (activation order)")
    zero_point = forms.BooleanField(required=False, initial=True, label="zero point (asymmetric)")
    dataset = DatasetChoiceField(
        queryset=None, required=False, label="Dataset", empty_label="— choose a text dataset —",
        error_messages={"invalid_choice": "no text dataset %(value)s in your teams"})
    dataset_path = forms.CharField(required=False, label="…or a text file on the worker (server path)")
    # GPTQ calibration: time grows with samples × sequence length (every layer runs over all of
    # them and accumulates its Hessian); quality gains flatten out. Defaults sized for a CPU node.
    samples = forms.IntegerField(
        required=False, min_value=1, max_value=1024, initial=GPTQ_SAMPLES,
        help_text="calibration windows; more calibrate more evenly but take longer. On 2 CPU "
                  "cores SmolLM2-135M took 2 min 52 s at 16 × 256 tokens and about 25 min at "
                  "128 × 512; on a GPU node 128 × 512 (GPTQModel's usual) is affordable")
    seq_len = forms.IntegerField(
        required=False, min_value=16, max_value=4096, initial=GPTQ_SEQ_LEN,
        label="Sequence length", help_text="tokens per calibration window (time grows with it too)")
    quant_type = forms.ChoiceField(choices=[("nf4", "nf4"), ("fp4", "fp4")], required=False,
                                   label="4-bit type")
    double_quant = forms.BooleanField(required=False, initial=True, label="Double quantization")
    llm_int8_threshold = forms.FloatField(required=False, initial=6.0, label="int8 outlier threshold")
    mode = forms.ChoiceField(choices=[("quick", "quick: 4 chunks × 256"), ("full", "full: all × 512")],
                             required=False, label="Evaluation mode")
    context = forms.IntegerField(required=False, min_value=16, label="Evaluation context")
    chunks = forms.IntegerField(required=False, min_value=0, label="Evaluation chunks (0 = all)")
    tasks = forms.ModelMultipleChoiceField(
        queryset=None, required=False, label="Task sets",
        error_messages={"invalid_choice": "no task set %(value)s in your teams"})
    builtin_tasks = forms.CharField(
        required=False, max_length=500, label="…or lm-eval built-in tasks",
        help_text="names such as arc_easy, comma-separated; their data comes from the Hugging Face "
                  "Hub, so they are refused on a server that can't reach it")
    num_fewshot = forms.IntegerField(required=False, min_value=0, max_value=25, initial=0,
                                     label="Few-shot examples")
    limit = forms.IntegerField(required=False, min_value=1, label="Items per task",
                               help_text="empty: all of them")
    seed = forms.IntegerField(required=False, min_value=0, initial=1234, label="Seed",
                              help_text="picks the few-shot examples")
    max_gen_toks = forms.IntegerField(required=False, min_value=1, max_value=256, initial=32,
                                      label="Answer length (tokens)",
                                      help_text="question/answer tasks: the most tokens generated")

    METHOD_FIELDS = {
        "gguf": ["types", "intermediate", "imatrix", "imatrix_dataset", "imatrix_chunks",
                 "imatrix_context", "tensor_types", "output_tensor_type", "token_embedding_type",
                 "target_size", "target_chunks"],
        "gptq": ["bits", "group_size", "desc_act", "dataset", "dataset_path", "samples", "seq_len"],
        "awq": ["group_size", "zero_point", "dataset", "dataset_path", "samples", "seq_len"],
        "bnb-nf4": ["quant_type", "double_quant"],
        "bnb-int8": ["llm_int8_threshold"],
        "evaluate": ["dataset", "dataset_path", "mode", "context", "chunks"],
        "tasks": ["tasks", "builtin_tasks", "num_fewshot", "limit", "seed", "max_gen_toks"],
    }

    def __init__(self, *args, variants, datasets, imatrices, tasksets=None, **kwargs):
        """`variants`, `datasets` and `imatrices` are what the user may see (team-scoped
        querysets): variants that are model weights, plain-text datasets (the only kind methods
        read), and the importance matrices of the input's model when it is known."""
        super().__init__(*args, **kwargs)
        self.fields["variant"].queryset = variants
        show_team = datasets.values("team").distinct().count() > 1
        for name in ("dataset", "imatrix_dataset"):
            self.fields[name].queryset = datasets.select_related("team")
            self.fields[name].show_team = show_team
        self.fields["imatrix"].queryset = imatrices
        self.fields["imatrix"].infos = imatrix_infos(list(imatrices))
        self.fields["tasks"].queryset = tasksets if tasksets is not None else TaskSet.objects.none()

    def clean_tensor_types(self) -> list[str]:
        return parse_tensor_types(self.cleaned_data.get("tensor_types") or "")

    def clean(self) -> dict:
        data = super().clean()
        method, variant = data.get("method"), data.get("variant")
        if method == "gguf":
            self._clean_imatrix(data, variant)
        if method == "tasks":
            self._clean_tasks(data, variant)
        if "dataset" not in self.METHOD_FIELDS.get(method, []):
            return data
        dataset = data.get("dataset")
        if dataset and data.get("dataset_path"):
            self.add_error("dataset_path", "choose a dataset or give a server path, not both")
        check_dataset_team(self, "dataset", dataset, variant)
        return data

    def _clean_imatrix(self, data: dict, variant) -> None:
        """An importance matrix is one of the input model's, or made from a dataset of its team,
        not both; the types that need one (IMATRIX_TYPES) are refused without one."""
        imatrix, dataset = data.get("imatrix"), data.get("imatrix_dataset")
        if imatrix and dataset:
            self.add_error("imatrix_dataset", "choose an importance matrix or a dataset to make "
                           "one from, not both")
        if imatrix and variant and imatrix.model_id != variant.model_id:
            self.add_error("imatrix", f"importance matrix #{imatrix.pk} is of {imatrix.model.name}, "
                           f"not of {variant.model.name}")
        check_dataset_team(self, "imatrix_dataset", dataset, variant)
        needing = [t for t in data.get("types") or [] if t in IMATRIX_TYPES]
        if needing and not imatrix and not dataset:
            self.add_error("types", f"{', '.join(needing)} need{'s' if len(needing) == 1 else ''} an "
                           "importance matrix: choose one, or a dataset to make one from")

    def _clean_tasks(self, data: dict, variant) -> None:
        """At least one task; task sets of the input variant's team (a user in two teams sees both)."""
        if not data.get("tasks") and not data.get("builtin_tasks"):
            self.add_error("tasks", "choose at least one task set (or name a built-in task)")
        for taskset in data.get("tasks") or []:
            if variant and taskset.team_id != variant.model.team_id:
                self.add_error("tasks", f"{taskset.name} is in team {taskset.team.name}, the input "
                               f"variant in team {variant.model.team.name}")

    def field_methods(self) -> dict[str, str]:
        """field name -> the methods it belongs to (space-separated), for showing only those."""
        owners: dict[str, list[str]] = {}
        for method, names in self.METHOD_FIELDS.items():
            for name in names:
                owners.setdefault(name, []).append(method)
        return {name: " ".join(methods) for name, methods in owners.items()}

    def params(self) -> dict:
        """The chosen method's parameters as job_submit takes them (a dataset or an importance
        matrix by its id; calibration chunks and context only with a dataset to make one from)."""
        data = self.cleaned_data
        params = {name: data[name] for name in self.METHOD_FIELDS[data["method"]]
                  if data.get(name) not in (None, "", [])}
        for name in ("dataset", "imatrix", "imatrix_dataset"):
            if name in params:
                params[name] = params[name].pk
        if "imatrix_dataset" not in params:
            params.pop("imatrix_chunks", None)
            params.pop("imatrix_context", None)
        if "target_size" not in params:
            params.pop("target_chunks", None)
        if data["method"] == "tasks":
            builtins = [n.strip() for n in params.pop("builtin_tasks", "").split(",") if n.strip()]
            params["tasks"] = [t.pk for t in params.get("tasks", [])] + [f"builtin:{n}" for n in builtins]
        return params


class ImatrixJobForm(forms.Form):
    """"Make importance matrix": an imatrix job (llama-imatrix over a text dataset) on a GGUF or
    HF variant; its output is a catalog artifact later GGUF jobs quantize with."""

    variant = VariantChoiceField(queryset=None, label="Input variant (GGUF or HF)",
                                 error_messages={"required": "choose an input variant"})
    method = forms.ChoiceField(choices=[("imatrix", "Importance matrix")], initial="imatrix",
                               widget=forms.HiddenInput)
    dataset = DatasetChoiceField(
        queryset=None, label="Calibration dataset", empty_label="— choose a text dataset —",
        error_messages={"required": "choose a text dataset",
                        "invalid_choice": "no text dataset %(value)s in your teams"})
    chunks = forms.IntegerField(min_value=CHUNKS_RANGE[0], max_value=CHUNKS_RANGE[1],
                                initial=DEFAULT_CHUNKS, label="Chunks")
    context = forms.IntegerField(min_value=CONTEXT_RANGE[0], max_value=CONTEXT_RANGE[1],
                                 initial=DEFAULT_CONTEXT, label="Context (tokens per chunk)")
    threads = forms.IntegerField(required=False, min_value=THREADS_RANGE[0], max_value=THREADS_RANGE[1],
                                 label="Threads (blank: the worker's cores)")

    def __init__(self, *args, variants, datasets, **kwargs):
        """As JobForm; `variants` should be GGUF and HF ones, the inputs llama-imatrix reads."""
        super().__init__(*args, **kwargs)
        self.fields["variant"].queryset = variants
        self.fields["dataset"].queryset = datasets.select_related("team")
        self.fields["dataset"].show_team = datasets.values("team").distinct().count() > 1

    def clean(self) -> dict:
        data = super().clean()
        check_dataset_team(self, "dataset", data.get("dataset"), data.get("variant"))
        return data

    def field_methods(self) -> dict[str, str]:
        return {}

    def params(self) -> dict:
        data = self.cleaned_data
        params = {"dataset": data["dataset"].pk, "chunks": data["chunks"], "context": data["context"]}
        if data.get("threads"):
            params["threads"] = data["threads"]
        return params
