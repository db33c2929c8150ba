from pathlib import Path

from django import forms

from catalog.datasets import KINDS as DATASET_KINDS
from catalog.models import Variant
from catalog.selectors import SORTS, CatalogFilters
from planner.estimator import EstimatorError, parse_param_count


class ParamCountField(forms.CharField):
    """A parameter count as the planner reads it ('135M', '7b', '1.5B', '7e9'); blank means no filter.

    planner.estimator is pure Python (no Django), so catalog may use it. No 1M floor here: a filter
    may start at 0 parameters.
    """

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_param_count(text, minimum=0)
        except EstimatorError as exc:
            raise forms.ValidationError(exc.message) from None


class CatalogFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search")
    format = forms.ChoiceField(required=False, choices=[("", "any format"), *Variant.Format.choices])
    team = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    tag = forms.CharField(required=False)
    min_params = ParamCountField(required=False, label="Min size", help_text="parameters, e.g. 100M")
    max_params = ParamCountField(required=False, label="Max size", help_text="parameters, e.g. 7B")
    sort = forms.ChoiceField(required=False, choices=[
        ("name", "Name"), ("-params", "Largest"), ("params", "Smallest"), ("-size", "Most disk"),
        ("newest", "Newest"), ("oldest", "Oldest"),
    ])

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "all my teams"),
                                       *((t.pk, t.name) for t in user.teams.all())]

    def filters(self) -> CatalogFilters:
        data = self.cleaned_data if self.is_valid() else {}
        sort = data.get("sort") or "name"
        return CatalogFilters(
            q=(data.get("q") or "").strip(), format=data.get("format") or "",
            team=data.get("team"), tag=(data.get("tag") or "").strip(),
            min_params=data.get("min_params"), max_params=data.get("max_params"),
            sort=sort if sort in SORTS else "name",
        )


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


class ModelImportForm(forms.Form):
    SOURCES = [("upload", "Upload files"), ("hub", "Hugging Face Hub"), ("path", "Path on the server")]

    source = forms.ChoiceField(choices=SOURCES, initial="upload", widget=forms.RadioSelect)
    team = forms.TypedChoiceField(coerce=int)
    name = forms.CharField(required=False, max_length=200,
                           help_text="defaults to the name in the file's metadata")
    files = MultipleFileField(
        required=False, label="Files",
        help_text="one .gguf; or an HF folder's files (config.json, tokenizer, *.safetensors, "
                  "index); or a .zip / .tar / .tar.gz of that folder",
    )
    repo_id = forms.CharField(required=False, label="Hub repository", help_text="owner/name")
    revision = forms.CharField(required=False, initial="main")
    server_path = forms.CharField(required=False, label="Server path", help_text="staff only")
    convert_to_hf = forms.BooleanField(
        required=False, label="Also make an HF safetensors variant (GGUF only; dequantizes, slow)"
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["team"].choices = [(t.pk, t.name) for t in user.teams.all()]
        if not user.is_staff:
            self.fields["source"].choices = self.SOURCES[:2]
            del self.fields["server_path"]

    def clean(self):
        data = super().clean()
        source = data.get("source")
        if source == "upload" and not data.get("files"):
            self.add_error("files", "choose the files to upload")
        if source == "hub" and not data.get("repo_id"):
            self.add_error("repo_id", "give a repository id like HuggingFaceTB/SmolLM2-135M")
        if source == "path" and not data.get("server_path"):
            self.add_error("server_path", "give an absolute path on the server")
        return data


class DatasetForm(forms.Form):
    team = forms.TypedChoiceField(coerce=int)
    name = forms.CharField(required=False, max_length=200, help_text="defaults to the file name")
    file = forms.FileField(required=False, help_text=".txt, .jsonl or .parquet")
    hub_id = forms.CharField(required=False, label="or a Hub dataset id", help_text="owner/name")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [(t.pk, t.name) for t in user.teams.all()]

    def clean_file(self):
        """Refuses a file that can't be a dataset by its name alone, saying what this one is."""
        upload = self.cleaned_data.get("file")
        if upload:
            suffix = Path(upload.name or "").suffix.lower()
            if suffix not in DATASET_KINDS:
                what = f"a {suffix} file" if suffix else "a file without an extension"
                raise forms.ValidationError(
                    f"{Path(upload.name).name} is {what}, not a dataset: upload UTF-8 text (.txt), "
                    "JSON lines (.jsonl) or Parquet (.parquet)")
        return upload

    def clean(self):
        data = super().clean()
        if bool(data.get("file")) == bool(data.get("hub_id")):
            raise forms.ValidationError("upload a file or give a Hub dataset id (one of them)")
        return data


class TaskSetForm(forms.Form):
    """A task file for "tasks" jobs: multiple-choice or question/answer JSONL with the names of
    its fields, or an lm-eval task YAML with its data file (catalog/tasksets.py checks the content)."""

    KINDS = [("mc", "Multiple choice (JSONL)"), ("qa", "Question / answer (JSONL)"),
             ("yaml", "lm-eval task YAML + its data file")]

    team = forms.TypedChoiceField(coerce=int)
    name = forms.CharField(required=False, max_length=200, help_text="defaults to the file name")
    kind = forms.ChoiceField(choices=KINDS, initial="mc")
    file = forms.FileField(label="Items (.jsonl)", help_text="one JSON object per line")
    question_field = forms.CharField(initial="question", max_length=100,
                                     help_text="the field holding the question text")
    choices_field = forms.CharField(initial="choices", max_length=100, required=False,
                                    help_text="multiple choice: a list of at least 2 strings")
    answer_field = forms.CharField(
        initial="answer", max_length=100,
        help_text="multiple choice: an index, a letter A.. or the text of one choice; "
                  "question/answer: a string or a list of accepted strings")
    yaml_file = forms.FileField(required=False, label="lm-eval task YAML",
                                help_text="only with kind lm-eval task: Jinja templates, no !function")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [(t.pk, t.name) for t in user.teams.all()]

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == "mc" and not data.get("choices_field"):
            self.add_error("choices_field", "name the field holding the choices")
        if kind == "yaml" and not data.get("yaml_file"):
            self.add_error("yaml_file", "upload the task's YAML beside its data file")
        if kind != "yaml" and data.get("yaml_file"):
            self.add_error("yaml_file", "a YAML file goes only with kind lm-eval task YAML")
        return data
