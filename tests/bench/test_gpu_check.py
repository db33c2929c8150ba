"""bench/gpu_check.py runs anywhere: on a machine without a GPU every path is asked to run on
cuda and must refuse before loading anything (never computing on the CPU instead)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATHS = ["method bnb-nf4", "method bnb-int8", "method gptq", "method awq", "engine transformers (f16)",
         "engine transformers (bnb-nf4)", "engine transformers (bnb-int8)", "engine transformers (gptq)",
         "engine transformers (awq)", "engine llama.cpp (demo Q4_1 GGUF)"]


def test_gpu_check_prints_one_row_per_path_and_refuses_cuda_without_a_gpu():
    import torch

    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| path")}
    assert list(rows) == PATHS
    if torch.cuda.is_available():   # the real run: every path on the GPU
        assert all(" cuda " in row for row in rows.values()), done.stdout
        return
    for path, row in rows.items():
        assert "(skipped)" in row, row
        if path.startswith("method") or path in (PATHS[4], PATHS[-1]):
            assert "refused (skipped)" in row and "refused as it must: node gpu-check" in row, row
