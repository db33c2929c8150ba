"""python manage.py estimate (--preset NAME | --config PATH | --params N) [--hardware NAME] ... [--json]"""

import json
from argparse import BooleanOptionalAction
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from planner.estimator import (Architecture, EstimatorError, Workload, estimate,
                               format_decimal_bytes)
from planner.estimator.fit import fit_estimate
from planner.estimator.vllm_fit import vllm_fit_estimate
from planner.estimator.workload import KV_DTYPES, MODES, RUNTIMES
from planner.cli_hardware import add_hardware_arguments, hardware_from_options
from planner.forms import MAX_CONFIG_BYTES, parse_config_text
from planner.model_definition import architecture_for_config
from planner.presentation import human_bytes, speed_provenance, status_of
from planner.presets import PRESETS, preset_architecture


class Command(BaseCommand):
    help = "Estimate the memory a model needs for every quantization scheme on one hardware profile."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--preset", choices=sorted(PRESETS), help="a built-in model")
        source.add_argument("--config", type=Path, help="path to a Hugging Face config.json (≤ 1 MiB)")
        source.add_argument("--params", help="a bare parameter count, e.g. 7.3B (quick mode)")
        add_hardware_arguments(parser, default="rtx-4090")
        parser.add_argument("--runtime", default="llama.cpp", choices=RUNTIMES)
        parser.add_argument("--context", type=int, default=4096)
        parser.add_argument("--batch", "--n-seq", "-np", dest="batch", type=int, default=1,
                            help="parallel sequences (llama.cpp n_seq_max / -np, vLLM and transformers batch)")
        parser.add_argument("--kv-dtype", default="f16", choices=KV_DTYPES)
        parser.add_argument("--mode", default="inference", choices=MODES)
        parser.add_argument("--flash-attn", "-fa", action=BooleanOptionalAction, default=False,
                            help="flash attention (llama.cpp -fa; needed for a quantized V cache)")
        parser.add_argument("--swa-full", action=BooleanOptionalAction, default=True,
                            help="llama.cpp full-size sliding-window cache (llama-cpp-python's default: on)")
        parser.add_argument("--ubatch", "--n-ubatch", "-ub", dest="n_ubatch", type=int, default=512,
                            help="llama.cpp physical batch (-ub)")
        parser.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vLLM's fraction of GPU memory")
        parser.add_argument("--repo", default="",
                            help="the Hub id or local folder the vllm serve command names (default: the "
                                 "preset's repo, the config's folder when it holds .safetensors, else its "
                                 "_name_or_path, else a placeholder to fill)")
        parser.add_argument("--scheme", action="append", help="only these schemes (repeatable)")
        parser.add_argument("--fit-scheme", default="", help="GGUF scheme for the llama.cpp fit (default: auto)")
        parser.add_argument("--n-cpu-moe", type=int, default=None, help="override the fit's expert offload")
        parser.add_argument("--json", action="store_true", help="print the estimate as JSON")

    def handle(self, *args, **opts):
        try:
            arch, model_id = self._architecture(opts)
            hw = hardware_from_options(opts)
            wl = Workload(runtime=opts["runtime"], context=opts["context"], batch=opts["batch"],
                          kv_dtype=opts["kv_dtype"], mode=opts["mode"], flash_attn=opts["flash_attn"],
                          swa_full=opts["swa_full"], n_ubatch=opts["n_ubatch"],
                          gpu_memory_utilization=opts["gpu_memory_utilization"])
            est = estimate(arch, hw, wl, schemes=opts["scheme"])
            fit = fit_estimate(est, opts["fit_scheme"], opts["n_cpu_moe"])
            vllm = vllm_fit_estimate(est, opts["repo"] or model_id, opts["fit_scheme"] if wl.runtime == "vllm" else "")
        except EstimatorError as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from None
        if opts["json"]:
            self.stdout.write(json.dumps({**est.to_dict(), "fit": fit.to_dict() if fit else None,
                                          "vllm_fit": vllm.to_dict() if vllm else None}, indent=2))
            return
        self.stdout.write(f"{arch.name}: {arch.total_params:,} parameters · {hw.name} × {hw.device_count} · "
                          + (f"system RAM {human_bytes(hw.ram_bytes)} · " if hw.kind == "gpu" else "")
                          + f"{wl.runtime}, context {wl.context}, batch {wl.batch}, KV {wl.kv_dtype}, {wl.mode}, "
                          f"flash attention {'on' if wl.flash_attn else 'off'}, swa_full {wl.swa_full}, "
                          f"ubatch {wl.n_ubatch}\n")
        hybrid = arch.hybrid is not None   # a hybrid's recurrent state gets its own column
        header = (f"{'scheme':<16} {'bpw':>6} {'weights':>11} {'KV':>11} " + (f"{'state':>11} " if hybrid else "")
                  + f"{'compute':>11} {'overhead':>11} {'total':>11} {'thumb':>9} {'capacity':>11}  status")
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for r in (r for r in est.rows if r.applies):
            status = status_of(r)[1] + ("" if r.supported else f" (not loadable by {wl.runtime})")
            self.stdout.write(
                f"{r.scheme:<16} {r.bits_per_weight:>6.2f} {human_bytes(r.weights_bytes):>11} "
                f"{human_bytes(r.kv_cache_bytes):>11} "
                + (f"{human_bytes(r.recurrent_state_bytes):>11} " if hybrid else "")
                + f"{human_bytes(r.compute_bytes):>11} "
                f"{human_bytes(r.overhead_bytes + r.training_bytes):>11} {human_bytes(r.total_bytes):>11} "
                f"{format_decimal_bytes(r.rule_of_thumb_bytes):>9} {human_bytes(r.capacity_bytes):>11}  {status}")
        for r in (r for r in est.rows if not r.applies):   # a duplicate row would only confuse
            self.stdout.write(f"{r.scheme:<16} not useful for this model: {r.applies_note}")
        self.stdout.write("\nthumb: parameters × bytes per parameter (decimal GB), the figure usually quoted; "
                          "--json gives each row's rule_of_thumb_note saying what the estimate adds")
        # speeds are shown only from a measured or cited llama-bench figure; --json has them per row
        self.stdout.write(f"speeds (decode tok/s, prefill s): {speed_provenance(hw, wl.runtime)['speed_source']}")
        if fit is not None:
            self.stdout.write(f"\nfit ({fit.scheme}): {fit.command}")
            if fit.command_note:
                self.stdout.write(f"  note: {fit.command_note}")
            for reason in fit.reasons:
                self.stdout.write(f"  - {reason}")
        if vllm is not None:
            self.stdout.write(f"\nvLLM ({vllm.scheme}{'' if vllm.fits else ', does not fit'}): {vllm.command}")
            if vllm.command_note:
                self.stdout.write(f"  note: {vllm.command_note}")
            for reason in vllm.reasons:
                self.stdout.write(f"  - {reason}")

    def _architecture(self, opts) -> tuple[Architecture, str]:
        """The model, and the Hub id or folder `vllm serve` can load it from ("" when unknown)."""
        if opts["preset"]:
            return preset_architecture(opts["preset"]), PRESETS[opts["preset"]]["repo"]
        if opts["params"]:
            return Architecture.from_param_count(opts["params"]), ""
        path: Path = opts["config"]
        try:
            if path.stat().st_size > MAX_CONFIG_BYTES:
                raise EstimatorError("config", f"{path} is over the 1 MiB limit")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise EstimatorError("config", f"cannot read {path}: {exc}") from None
        cfg = parse_config_text(text)
        folder = path.resolve().parent
        # vLLM loads a local folder of config.json and .safetensors as printed; else the id the
        # config was saved from (save_pretrained's _name_or_path)
        model_id = str(path.parent) if any(folder.glob("*.safetensors")) else cfg.get("_name_or_path")
        model_id = model_id.strip() if isinstance(model_id, str) else ""
        return architecture_for_config(cfg, name=folder.name or path.name), model_id
