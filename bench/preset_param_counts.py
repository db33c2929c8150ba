"""Ground truth for the presets: transformers builds each preset's config.json on the meta device
(no memory is allocated) and its tensors are counted; printed beside the estimator's total.

    python bench/preset_param_counts.py [KEY ...]
    python bench/preset_param_counts.py --file config.json [...]   # a published file as it is


Columns: `text` is the language model (what the estimator counts), `full` adds the vision tower
and projector of multimodal checkpoints (the scope of most model cards). The count is the
checkpoint's: parameters (tied weights once) plus persistent buffers (DeepSeek-V3's router
`e_score_correction_bias`). tests/planner/test_presets.py pins these numbers. The 235B..1T
configs take 5-30 s each on two cores. `--file` counts a config.json the estimator refuses whole
(google/gemma-4-26B-A4B's multimodal file: text 25,233,141,790, full 25,805,936,206 in transformers 5.23).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.presets import PRESETS, preset_architecture  # noqa: E402

# model_type the hub file declares -> the transformers config class that reads it
ALIASES = {"kimi_k2": "deepseek_v3"}


def checkpoint_count(model) -> int:
    names = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(t.numel() for k, t in model.state_dict().items() if k not in names)
    return params + buffers


def transformers_counts(cfg: dict) -> tuple[int, int | None]:
    """(text model count, full multimodal count or None)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    def config(fields: dict):
        fields = dict(fields)
        model_type = ALIASES.get(fields.get("model_type"), fields.pop("model_type"))
        fields.pop("model_type", None)
        fields.pop("quantization_config", None)  # describes the checkpoint's storage, not the shapes
        return AutoConfig.for_model(model_type, **fields)

    with torch.device("meta"):
        if "text_config" in cfg:
            text = checkpoint_count(AutoModelForCausalLM.from_config(config(cfg["text_config"])))
            full = checkpoint_count(AutoModelForImageTextToText.from_config(config(cfg)))
            return text, full
        return checkpoint_count(AutoModelForCausalLM.from_config(config(cfg))), None


def main(keys: list[str]) -> None:
    print(f"{'preset':24} {'transformers text':>20} {'full (vision)':>20} {'estimator':>20}  ok")
    for key in keys or list(PRESETS):
        text, full = transformers_counts(PRESETS[key]["config"])
        ours = preset_architecture(key).total_params
        print(f"{key:24} {text:>20,} {full or 0:>20,} {ours:>20,}  {'ok' if ours == text else f'{ours - text:+,}'}",
              flush=True)


def count_files(paths: list[str]) -> None:
    print(f"{'file':40} {'transformers text':>20} {'full (vision)':>20}")
    for path in paths:
        text, full = transformers_counts(json.loads(Path(path).read_text()))
        print(f"{Path(path).name:40} {text:>20,} {full or 0:>20,}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--file"]:
        count_files(sys.argv[2:])
    else:
        main(sys.argv[1:])
