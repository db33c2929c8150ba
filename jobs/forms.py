from django import forms

from jobs.methods.gguf import TYPES as GGUF_TYPES
from planner.templatetags.units import binary_size

METHOD_CHOICES = [
    ("gguf", "GGUF (llama.cpp)"),
    ("bnb-nf4", "bitsandbytes NF4 / FP4"),
    ("bnb-int8", "bitsandbytes LLM.int8"),
    ("gptq", "GPTQ (GPTQModel)"),
    ("evaluate", "Evaluate: perplexity, KL vs base, speed, memory"),
]


class DatasetChoiceField(forms.ModelChoiceField):
    """A catalog dataset picked from a list (labelled by name and size), so a name can't be
    mistyped; the team is named too when the list spans several teams."""

    show_team = False

    def label_from_instance(self, dataset) -> str:
        team = f", team {dataset.team.name}" if self.show_team else ""
        return f"{dataset.name} ({binary_size(dataset.bytes)}{team})"


class JobForm(forms.Form):
    """One form for every method; each method's validate() decides which fields matter."""

    variant = forms.ModelChoiceField(queryset=None, label="Input variant",
                                     error_messages={"required": "choose an input variant"})
    method = forms.ChoiceField(choices=METHOD_CHOICES)
    types = forms.MultipleChoiceField(
        choices=[(t, t) for t in GGUF_TYPES], required=False, widget=forms.CheckboxSelectMultiple,
        label="GGUF types", initial=["Q8_0", "Q4_K_M"])
    bits = forms.TypedChoiceField(choices=[(4, 4), (8, 8), (3, 3), (2, 2)], coerce=int,
                                  required=False, label="GPTQ bits")
    group_size = forms.IntegerField(required=False, initial=128, label="Group size")
    desc_act = forms.BooleanField(required=False, label="desc_act (activation order)")
    dataset = DatasetChoiceField(
        queryset=None, required=False, label="Dataset", empty_label="— choose a text dataset —",
        error_messages={"invalid_choice": "no text dataset %(value)s in your teams"})
    dataset_path = forms.CharField(required=False, label="…or a text file on the worker (server path)")
    samples = forms.IntegerField(required=False, min_value=1, max_value=1024, initial=128)
    seq_len = forms.IntegerField(required=False, min_value=16, max_value=4096, initial=512)
    quant_type = forms.ChoiceField(choices=[("nf4", "nf4"), ("fp4", "fp4")], required=False,
                                   label="4-bit type")
    double_quant = forms.BooleanField(required=False, initial=True, label="Double quantization")
    llm_int8_threshold = forms.FloatField(required=False, initial=6.0, label="int8 outlier threshold")
    mode = forms.ChoiceField(choices=[("quick", "quick: 4 chunks × 256"), ("full", "full: all × 512")],
                             required=False, label="Evaluation mode")
    context = forms.IntegerField(required=False, min_value=16, label="Evaluation context")
    chunks = forms.IntegerField(required=False, min_value=0, label="Evaluation chunks (0 = all)")

    METHOD_FIELDS = {
        "gguf": ["types"],
        "gptq": ["bits", "group_size", "desc_act", "dataset", "dataset_path", "samples", "seq_len"],
        "bnb-nf4": ["quant_type", "double_quant"],
        "bnb-int8": ["llm_int8_threshold"],
        "evaluate": ["dataset", "dataset_path", "mode", "context", "chunks"],
    }

    def __init__(self, *args, variants, datasets, **kwargs):
        """`variants` and `datasets` are what the user may see (team-scoped querysets);
        `datasets` should hold only plain-text ones, the only kind methods read."""
        super().__init__(*args, **kwargs)
        self.fields["variant"].queryset = variants
        self.fields["dataset"].queryset = datasets.select_related("team")
        self.fields["dataset"].show_team = datasets.values("team").distinct().count() > 1

    def clean(self) -> dict:
        data = super().clean()
        if "dataset" not in self.METHOD_FIELDS.get(data.get("method"), []):
            return data
        dataset, variant = data.get("dataset"), data.get("variant")
        if dataset and data.get("dataset_path"):
            self.add_error("dataset_path", "choose a dataset or give a server path, not both")
        if dataset and variant and dataset.team_id != variant.model.team_id:
            self.add_error("dataset", f"{dataset.name} is in team {dataset.team.name}, the input "
                           f"variant in team {variant.model.team.name}")
        return data

    def field_methods(self) -> dict[str, str]:
        """field name -> the methods it belongs to (space-separated), for showing only those."""
        owners: dict[str, list[str]] = {}
        for method, names in self.METHOD_FIELDS.items():
            for name in names:
                owners.setdefault(name, []).append(method)
        return {name: " ".join(methods) for name, methods in owners.items()}

    def params(self) -> dict:
        """The chosen method's parameters as job_submit takes them (a dataset by its id)."""
        data = self.cleaned_data
        params = {name: data[name] for name in self.METHOD_FIELDS[data["method"]]
                  if data.get(name) not in (None, "", [])}
        if "dataset" in params:
            params["dataset"] = params["dataset"].pk
        return params
