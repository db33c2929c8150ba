"""Task sets: the questions a "tasks" job scores variants on with lm-evaluation-harness.

Three kinds of upload, each stored as ARTIFACT_ROOT/tasks/<id>/items.jsonl:
- "mc": JSONL with a question, a list of choices and the answer (an index, a letter A.., or the
  exact text of one choice), in fields the uploader names; stored as
  {"question": str, "choices": [str, ...], "answer": int}.
- "qa": JSONL with a question and the accepted answer(s); stored as
  {"question": str, "answers": [str, ...]}.
- "yaml": an lm-eval task YAML and its data file (stored unchanged). The YAML is read with
  yaml.safe_load, so `!function` (custom Python) is refused, as are the keys that run code or
  pull in other files; only Jinja templates and lm-eval's own metrics and filters remain.

Every refusal names the line and the field. `config` is the lm-eval task config without any data
location: the job adds dataset_path/dataset_kwargs/test_split pointing at items.jsonl. `spec()`
is what the job receives for each task.
"""

import json
import re
import shutil
from pathlib import Path

import yaml
from django.contrib.auth import get_user_model
from django.utils.text import slugify

from accounts.models import Team
from catalog.datasets import jsonl_objects
from catalog.imports.common import disk_full_is_an_error, staging
from catalog.imports.hub import UNREACHABLE, hub_reachable
from catalog.models import TaskSet
from catalog.safety import require_free_disk
from catalog.services import CatalogError, create_in_place, delete_with_folder
from formats.digest import file_sha256

QUESTION_TEMPLATE = "Question: {{question}}\nAnswer:"
OUTPUT_TYPES = ("multiple_choice", "generate_until")
# lm-eval TaskConfig keys an uploaded YAML may set: templates, delimiters, metrics and filters by
# name. Everything else either runs code, reads other files, or is the data location the job sets.
YAML_ALLOWED = {"task", "task_alias", "output_type", "doc_to_text", "doc_to_target",
                "doc_to_choice", "description", "target_delimiter", "fewshot_delimiter",
                "num_fewshot", "metric_list", "generation_kwargs", "repeats", "filter_list",
                "should_decontaminate", "doc_to_decontamination_query", "gen_prefix", "metadata"}
# Each item is generated `repeats` times and shown `num_fewshot` solved examples: bounded so one
# upload cannot make a job run for days (lm-eval's own self-consistency tasks repeat 64 times).
MAX_REPEATS, MAX_FEWSHOT = 64, 64
# Where the data lives: the uploaded data file is the only split, so these are dropped.
YAML_DATA_KEYS = {"dataset_path", "dataset_name", "dataset_kwargs", "training_split",
                  "validation_split", "test_split", "fewshot_split", "tag"}
YAML_REFUSED = {
    "include": "it pulls in another YAML file; upload one self-contained task",
    "process_docs": "it runs custom Python, which this server does not run",
    "process_results": "it runs custom Python, which this server does not run",
    "class": "it names a Python class, which this server does not run",
    "custom_dataset": "it runs custom Python, which this server does not run",
    "unsafe_code": "tasks that execute generated code are not run here",
    "group": "a group of tasks is not supported; upload each task on its own",
}


class TaskYamlError(CatalogError):
    """A refusal about the task YAML (not its data file), so a form shows it on that field."""


JSON_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}
MAX_YAML_BYTES = 1024**2  # a task YAML is a few dozen lines
BUILTIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")


def _type_name(value) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "int",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def _error(number: int, field: str, message: str) -> CatalogError:
    return CatalogError(f"line {number}: field {field!r}: {message}")


def _get(obj: dict, number: int, field: str):
    if field not in obj:
        have = ", ".join(map(str, list(obj)[:12])) or "no fields"
        raise _error(number, field, f"missing (the line has {have})")
    return obj[field]


def _text(value, number: int, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        got = "an empty string" if isinstance(value, str) else _type_name(value)
        raise _error(number, field, f"expected a non-empty string, got {got}")
    return value


def mc_item(obj: dict, number: int, *, question: str, choices: str, answer: str) -> dict:
    """One multiple-choice line, normalized; the answer becomes an index into the choices."""
    text = _text(_get(obj, number, question), number, question)
    options = _get(obj, number, choices)
    if (not isinstance(options, list) or len(options) < 2
            or not all(isinstance(o, str) for o in options)):
        got = (f"a list of {len(options)}" if isinstance(options, list) and len(options) < 2
               else "a list with a non-string element" if isinstance(options, list)
               else _type_name(options))
        raise _error(number, choices, f"expected a list of at least 2 strings, got {got}")
    return {"question": text, "choices": options,
            "answer": _answer_index(_get(obj, number, answer), options, number, answer)}


def _answer_index(value, options: list[str], number: int, field: str) -> int:
    """An int index, a letter A.. or the exact text of one choice. A string that reads both as a
    letter and as a different choice's text is refused rather than guessed."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _error(number, field, "expected a choice index (int), a letter A.. or the text of "
                     f"one choice, got {_type_name(value)}")
    if isinstance(value, int):
        if not 0 <= value < len(options):
            raise _error(number, field, f"index {value} is out of range for {len(options)} "
                         f"choices (0..{len(options) - 1})")
        return value
    matches = [i for i, o in enumerate(options) if o == value]
    if len(matches) > 1:
        raise _error(number, field, f"{value!r} is the text of {len(matches)} choices")
    letter = (ord(value) - ord("A")) if len(value) == 1 and "A" <= value <= "Z" else None
    if letter is not None and letter >= len(options):
        letter = None
    if matches and letter is not None and matches[0] != letter:
        raise _error(number, field, f"{value!r} is ambiguous: the text of choice {matches[0]} "
                     f"and the letter of choice {letter}")
    if matches:
        return matches[0]
    if letter is not None:
        return letter
    last = chr(ord("A") + min(len(options), 26) - 1)
    raise _error(number, field, f"{value[:80]!r} is not among the choices (nor a letter A..{last})")


def qa_item(obj: dict, number: int, *, question: str, answer: str) -> dict:
    text = _text(_get(obj, number, question), number, question)
    value = _get(obj, number, answer)
    answers = [value] if isinstance(value, str) else value
    if not isinstance(answers, list):
        got = _type_name(value)
    elif not answers:
        got = "an empty list"
    elif not all(isinstance(a, str) and a.strip() for a in answers):
        got = "an empty string" if isinstance(value, str) else "a list with a non-string or empty element"
    else:
        return {"question": text, "answers": answers}
    raise _error(number, answer, f"expected a non-empty string or a list of them, got {got}")


def task_slug(name: str) -> str:
    """The lm-eval task name for a task set: letters, digits and underscores."""
    return slugify(name).replace("-", "_") or "task"


def mc_config(name: str) -> dict:
    return {"task": task_slug(name), "output_type": "multiple_choice",
            "doc_to_text": QUESTION_TEMPLATE, "doc_to_choice": "{{choices}}",
            "doc_to_target": "{{answer}}", "target_delimiter": " ", "fewshot_delimiter": "\n\n",
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}]}


def qa_config(name: str) -> dict:
    """Greedy generation to the end of the line, leading whitespace stripped (the answer follows
    "Answer:" and a space), exact match against any accepted answer: lm-eval reads the rendered
    list as several targets, and a few-shot example shows the first."""
    return {"task": task_slug(name), "output_type": "generate_until",
            "doc_to_text": QUESTION_TEMPLATE, "doc_to_target": "{{answers}}",
            "generation_kwargs": {"until": ["\n"], "do_sample": False},
            "filter_list": [{"name": "strip", "filter": [{"function": "remove_whitespace"},
                                                         {"function": "take_first"}]}],
            "metric_list": [{"metric": "exact_match", "aggregation": "mean",
                             "higher_is_better": True, "ignore_case": True,
                             "ignore_punctuation": True}]}


def _normalize(src: Path, target: Path, item) -> int:
    """Writes item(obj, line number) of every object in `src` to `target` as JSON lines."""
    records = 0
    with disk_full_is_an_error(f"writing {target.name}"), open(target, "x", encoding="utf-8") as out:
        for number, obj in jsonl_objects(src):
            out.write(json.dumps(item(obj, number), ensure_ascii=False) + "\n")
            records += 1
    if not records:
        raise CatalogError(f"{src.name} has no items (no JSON objects)")
    return records


def _yaml_nodes(node, path: str = "", seen: set | None = None, line: int = 1):
    """(dotted key path, node) for every node under a composed YAML document. An alias shares
    its anchor's node; it is refused, since nested aliases expand exponentially (in this walk,
    and in the JSON the config is stored as). `line` is where the value is used (an alias's
    node keeps its anchor's position)."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        raise _error(line, path, "YAML aliases (*name) are not accepted; write the value out")
    seen.add(id(node))
    yield path, node
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _yaml_nodes(value, f"{path}.{key.value}" if path else str(key.value), seen,
                                   key.start_mark.line + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            yield from _yaml_nodes(value, f"{path}[{i}]", seen, line)


def yaml_config(text: str, name: str) -> dict:
    """The lm-eval config of an uploaded task YAML, or CatalogError naming the line and field."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise CatalogError(f"{where}not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(root, yaml.MappingNode):
        raise CatalogError("line 1: an lm-eval task YAML is a mapping of options (task:, "
                           "output_type:, doc_to_text: ...)")
    for path, node in _yaml_nodes(root):
        if node.tag.startswith("!"):
            raise _error(node.start_mark.line + 1, path, f"{node.tag} runs custom Python, which "
                         "this server does not run; use Jinja templates and lm-eval's own metrics")
        if node.tag not in JSON_TAGS:  # dates, binary, python/...: not storable as JSON, or code
            kind = node.tag.removeprefix("tag:yaml.org,2002:")
            raise _error(node.start_mark.line + 1, path, f"a {kind} value is not accepted; quote "
                         "it as a string")
    lines = {key.value: key.start_mark.line + 1 for key, _ in root.value}
    config = yaml.safe_load(text)
    for key, value in config.items():
        number = lines.get(key, 1)
        if key in YAML_REFUSED:
            raise _error(number, key, YAML_REFUSED[key])
        if key not in YAML_ALLOWED | YAML_DATA_KEYS:
            raise _error(number, key, "not an lm-eval task option this server accepts")
    kept = {k: v for k, v in config.items() if k in YAML_ALLOWED}
    output_type = kept.get("output_type")
    if output_type not in OUTPUT_TYPES:
        raise _error(lines.get("output_type", 1), "output_type",
                     f"expected multiple_choice or generate_until, got {output_type!r}")
    if "task" in kept and not isinstance(kept["task"], str):
        raise _error(lines["task"], "task", "a group of tasks is not supported; upload one task")
    for key in ("doc_to_text", "doc_to_target", "doc_to_choice"):
        value = kept.get(key)
        ok = (isinstance(value, (str, int)) and not isinstance(value, bool)) or (
            key == "doc_to_choice" and isinstance(value, list) and all(isinstance(v, str) for v in value))
        if value is not None and not ok:
            raise _error(lines[key], key, f"expected a Jinja template (a string), got {_type_name(value)}")
    if "doc_to_text" not in kept:
        raise _error(1, "doc_to_text", "missing: the prompt template of each item")
    if "doc_to_target" not in kept:
        raise _error(1, "doc_to_target", "missing: the expected answer of each item")
    if output_type == "multiple_choice" and "doc_to_choice" not in kept:
        raise _error(1, "doc_to_choice", "missing: a multiple_choice task needs its choices")
    for key, top in (("repeats", MAX_REPEATS), ("num_fewshot", MAX_FEWSHOT)):
        value = kept.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top
                                  or (key == "repeats" and value < 1)):
            low = 1 if key == "repeats" else 0
            raise _error(lines[key], key, f"expected a whole number from {low} to {top}, got {value!r}")
    for key, kind in (("metric_list", list), ("filter_list", list), ("generation_kwargs", dict),
                      ("metadata", dict)):
        if key in kept and not isinstance(kept[key], kind):
            raise _error(lines[key], key, f"expected a {_type_name(kind())}, got {_type_name(kept[key])}")
    for i, metric in enumerate(kept.get("metric_list", [])):
        if not isinstance(metric, dict) or not isinstance(metric.get("metric"), str):
            raise _error(lines["metric_list"], f"metric_list[{i}]", "expected {metric: <name>, ...}")
    kept["task"] = task_slug(name)
    return kept


def _create(*, team_id: int, user_id: int | None, name: str, **fields) -> TaskSet:
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise CatalogError(f"team {team_id} does not exist")
    if TaskSet.objects.filter(team=team, name=name).exists():
        raise CatalogError(f"team {team.name} already has a task set named {name!r}")
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return TaskSet.objects.create(team=team, name=name, created_by=user, **fields)


def taskset_upload(*, team_id: int, user_id: int | None, kind: str, path: str, name: str = "",
                   filename: str = "", question_field: str = "question",
                   choices_field: str = "choices", answer_field: str = "answer",
                   yaml_path: str = "") -> TaskSet:
    """Validates and registers a task file (for kind "yaml", `path` is the data file and
    `yaml_path` the task YAML). Nothing is kept unless everything passes."""
    src = Path(path)
    filename = Path(filename or src.name).name
    name = (name or Path(filename).stem).strip()
    if not name:
        raise CatalogError("a task set needs a name")
    if kind not in TaskSet.Kind.values:
        raise CatalogError(f"kind must be one of {', '.join(TaskSet.Kind.values)}, not {kind!r}")
    require_free_disk(needed_bytes=src.stat().st_size)
    with staging("tasks") as staged:
        items = staged / TaskSet.ITEMS
        if kind == TaskSet.Kind.MC:
            fields = {"question": question_field, "choices": choices_field, "answer": answer_field}
            records = _normalize(src, items, lambda obj, n: mc_item(obj, n, **fields))
            config = mc_config(name)
        elif kind == TaskSet.Kind.QA:
            fields = {"question": question_field, "answer": answer_field}
            records = _normalize(src, items, lambda obj, n: qa_item(obj, n, **fields))
            config = qa_config(name)
        else:
            if not yaml_path:
                raise CatalogError("an lm-eval task needs its YAML file and its data file")
            if Path(yaml_path).stat().st_size > MAX_YAML_BYTES:
                raise TaskYamlError(f"{Path(yaml_path).name} is over {MAX_YAML_BYTES // 1024**2} MiB; "
                                    "an lm-eval task YAML is a few dozen lines")
            try:
                text = Path(yaml_path).read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise TaskYamlError(f"{Path(yaml_path).name} is not UTF-8 text") from None
            try:
                config = yaml_config(text, name)
            except CatalogError as exc:
                raise TaskYamlError(f"{Path(yaml_path).name} {exc}") from None
            records = sum(1 for _ in jsonl_objects(src))
            if not records:
                raise CatalogError(f"{filename} has no items (no JSON objects)")
            with disk_full_is_an_error(f"copying {filename}"):
                shutil.copyfile(src, items)
        sha = file_sha256(items)
        taskset = create_in_place(
            lambda: _create(team_id=team_id, user_id=user_id, name=name, kind=kind, sha256=sha,
                            records=records, bytes=items.stat().st_size, config=config),
            staged, "task set")
    return taskset


def taskset_delete(*, taskset: TaskSet, user) -> None:
    delete_with_folder(taskset)


def spec(taskset: TaskSet) -> dict:
    """What a "tasks" job receives for one catalog task (JSON-serializable)."""
    return {"name": taskset.name, "source": "catalog", "taskset_id": taskset.pk,
            "kind": taskset.kind, "sha256": taskset.sha256,
            "data_path": str(taskset.items_path.resolve()), "config": taskset.config}


def builtin_spec(name: str) -> dict:
    """An lm-eval built-in task by name. Its data comes from the Hugging Face Hub, so it is
    refused at once (no job queued to fail later) when the Hub can't be reached."""
    if not BUILTIN_NAME.match(name or ""):
        raise CatalogError(f"{name!r} is not an lm-eval task name")
    try:
        hub_reachable()
    except CatalogError as exc:
        reason = str(exc).removeprefix(UNREACHABLE).strip().removeprefix("(").removesuffix(")")
        raise CatalogError(f"lm-eval's built-in task {name!r} needs the Hugging Face Hub, which "
                           f"this server cannot reach ({reason}); upload the task as a file "
                           "instead") from None
    return {"name": name, "source": "builtin"}
