"""Hardware profiles: memory, bandwidth, compute.

Conventions (read before adding a profile):
* Memory is stored in bytes. A GPU sold as "N GB" is entered as N GiB (N × 2^30): nvidia-smi
  reports e.g. 81,920 MiB for an A100 80GB and 24,564 MiB for an RTX 4090, within 0.5 % of N GiB.
  The lent H100 showed about 78 GiB *free* after the CUDA context; we model that context as
  `overhead_bytes` in the estimate instead of shrinking the profile.
* Bandwidth is in bytes/s using decimal GB/s as vendors publish (1 GB/s = 1e9 B/s).
* `fp16_flops` is dense FP16/BF16 tensor throughput (no 2:4 sparsity), FLOP/s.
* `ram_bytes` (discrete GPUs): the host RAM of the machine such a card usually sits in, said in each
  profile's comment (a desktop 4090: 64 GiB; an 8-GPU H100 server: 2 TiB as a DGX H100); the
  planner's `ram_gb` input (page, API, CLI `--ram-gb`) replaces it. `device_count` does not change
  it: it is the machine's RAM.
* `device_memory_bytes`: one size per device when a box mixes cards; the fit solver gives each
  device its own capacity.
* Usable memory (`usable_memory_bytes`) depends on the kind:
  - gpu:   memory × device_count (tensor parallel; per-device CUDA context is in overhead_bytes).
  - apple: Metal's recommendedMaxWorkingSetSize, which macOS sets to about 2/3 of RAM on
           machines with ≤ 32 GiB and about 3/4 above (e.g. 8 GiB → 5.3 GiB, 64 GiB → 48 GiB;
           values reported by llama.cpp's Metal backend log "recommendedMaxWorkingSetSize").
  - phone: half of RAM (Android/iOS keep the OS and other apps resident; rule of thumb).
  - cpu:   90 % of RAM (the OS and the server process keep the rest).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .calibration import Calibration
from .errors import EstimatorError

GiB = 2**30
GB = 10**9
KINDS = ("gpu", "apple", "phone", "cpu")


@dataclass(frozen=True)
class Hardware:
    key: str
    name: str
    kind: str                      # "gpu" | "apple" | "phone" | "cpu"
    memory_bytes: int              # per device (VRAM, or unified/system RAM)
    bandwidth_bytes_per_s: float   # per device
    fp16_flops: float              # per device, dense
    ram_bytes: int = 0             # host RAM available for llama.cpp partial offload (gpu kind)
    ram_bandwidth: float = 0.0     # host RAM bandwidth, bytes/s
    device_count: int = 1
    # where its speed constants come from (calibration.py); None: speed.py's CITED figure, else no speed shown
    calibration: Calibration | None = None
    # per device when the devices differ (a box with a 24 GiB and a 12 GiB card); () when all are
    # memory_bytes. memory_bytes is then the largest.
    device_memory_bytes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise EstimatorError("kind", f"must be one of {', '.join(KINDS)}")
        if not isinstance(self.device_count, int) or isinstance(self.device_count, bool) \
                or not 1 <= self.device_count <= 64:
            raise EstimatorError("device_count", "must be an integer from 1 to 64")
        for field_name in ("memory_bytes", "bandwidth_bytes_per_s", "fp16_flops"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise EstimatorError(field_name, "must be a positive number")
        if self.memory_bytes > 64 * 2**40:
            raise EstimatorError("memory_bytes", "beyond 64 TiB per device")
        if self.device_memory_bytes and (
                len(self.device_memory_bytes) != self.device_count
                or any(isinstance(b, bool) or not isinstance(b, int) or not 0 < b <= 64 * 2**40
                       for b in self.device_memory_bytes)):
            raise EstimatorError("device_memory_gb", f"one size per device ({self.device_count}), each positive "
                                                     "and at most 64 TiB")
        if isinstance(self.ram_bytes, bool) or not isinstance(self.ram_bytes, int) or self.ram_bytes < 0:
            raise EstimatorError("ram_gb", "must be a non-negative number")

    @property
    def usable_fraction(self) -> float:
        if self.kind == "apple":
            return 2 / 3 if self.memory_bytes <= 32 * GiB else 3 / 4
        if self.kind == "phone":
            return 0.5
        if self.kind == "cpu":
            return 0.9
        return 1.0

    @property
    def usable_memory_bytes(self) -> int:
        if self.device_memory_bytes:
            return sum(int(size * self.usable_fraction) for size in self.device_memory_bytes)
        return int(self.memory_bytes * self.usable_fraction) * self.device_count

    @property
    def total_bandwidth(self) -> float:
        return self.bandwidth_bytes_per_s * self.device_count

    @property
    def total_flops(self) -> float:
        return self.fp16_flops * self.device_count

    @classmethod
    def custom(cls, name: str, memory_gb: float, bandwidth_gbs: float, tflops: float,
               kind: str = "gpu", device_count: int = 1, ram_gb: float = 64.0,
               ram_bandwidth_gbs: float = 50.0, key: str = "custom",
               device_memory_gb: list[float] | tuple[float, ...] | None = None) -> "Hardware":
        """A user-described machine. memory_gb is GiB (see module docstring); bandwidth in GB/s.
        device_memory_gb: one size per device when they differ (then memory_gb is ignored and
        device_count, if given, must match); ram_gb: the host RAM beside discrete GPUs."""
        sizes: tuple[int, ...] = ()
        if device_memory_gb is not None:
            if not isinstance(device_memory_gb, (list, tuple)) or not 1 <= len(device_memory_gb) <= 64 or any(
                    isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 65536
                    for v in device_memory_gb):
                raise EstimatorError("device_memory_gb", "must be 1 to 64 sizes in GiB, each above 0 and at most 65536")
            if device_count not in (1, len(device_memory_gb)):
                raise EstimatorError("device_count", f"is {device_count} but device_memory_gb lists "
                                                     f"{len(device_memory_gb)} devices")
            device_count, sizes = len(device_memory_gb), tuple(int(v * GiB) for v in device_memory_gb)
            memory_gb = max(device_memory_gb)
        for field_name, value, upper in (("memory_gb", memory_gb, 65536), ("bandwidth_gbs", bandwidth_gbs, 1e6),
                                         ("tflops", tflops, 1e6), ("ram_gb", ram_gb, 65536),
                                         ("ram_bandwidth_gbs", ram_bandwidth_gbs, 1e6)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= upper:
                raise EstimatorError(field_name, f"must be a number between 0 and {upper:g}")
        if memory_gb <= 0 or bandwidth_gbs <= 0 or tflops <= 0:
            raise EstimatorError("memory_gb" if memory_gb <= 0 else "bandwidth_gbs" if bandwidth_gbs <= 0 else "tflops",
                                 "must be positive")
        return cls(key=key, name=str(name)[:100] or "Custom", kind=kind, memory_bytes=int(memory_gb * GiB),
                   bandwidth_bytes_per_s=bandwidth_gbs * GB, fp16_flops=tflops * 1e12,
                   ram_bytes=int(ram_gb * GiB) if kind == "gpu" else 0,
                   ram_bandwidth=ram_bandwidth_gbs * GB if kind == "gpu" else 0.0, device_count=device_count,
                   device_memory_bytes=sizes if len(set(sizes)) > 1 else ())

    def with_devices(self, device_count: int) -> "Hardware":
        sizes = self.device_memory_bytes if len(self.device_memory_bytes) == device_count else ()
        return replace(self, device_count=device_count, device_memory_bytes=sizes)

    def with_ram(self, ram_gb: float) -> "Hardware":
        """The same machine with another amount of host RAM (GiB, as Hardware.custom)."""
        if isinstance(ram_gb, bool) or not isinstance(ram_gb, (int, float)) or not 0 <= ram_gb <= 65536:
            raise EstimatorError("ram_gb", "must be a number between 0 and 65536")
        if self.kind != "gpu":
            raise EstimatorError("ram_gb", f"system RAM is an input for GPU machines; on {self.kind} hardware the "
                                           "device memory is the RAM")
        return replace(self, ram_bytes=int(ram_gb * GiB))

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "name": self.name, "kind": self.kind,
            "memory_bytes": self.memory_bytes, "usable_memory_bytes": self.usable_memory_bytes,
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s, "fp16_flops": self.fp16_flops,
            "ram_bytes": self.ram_bytes, "ram_bandwidth": self.ram_bandwidth,
            "device_count": self.device_count,
            "device_memory_bytes": list(self.device_memory_bytes or (self.memory_bytes,) * self.device_count),
            "speed_source": self.calibration.source if self.calibration else None,
        }


def _gpu(key: str, name: str, gib: float, gbs: float, tflops: float, ram_gib: int) -> Hardware:
    # ram_gib: the host RAM of the machine such a card usually sits in (each profile says which);
    # the planner's `ram_gb` input overrides it. RAM bandwidth ≈ 64 GB/s effective unless customised.
    return Hardware(key, name, "gpu", int(gib * GiB), gbs * GB, tflops * 1e12, ram_gib * GiB, 64 * GB)


def _apple(key: str, name: str, gib: int, gbs: float, tflops: float) -> Hardware:
    return Hardware(key, name, "apple", gib * GiB, gbs * GB, tflops * 1e12)


# Sources: vendor spec sheets (memory, bandwidth, dense FP16 tensor TFLOPS).
_PROFILES: list[Hardware] = [
    _gpu("t4", "NVIDIA T4 16 GB", 16, 320, 65, 64),   # cloud VM such as AWS g4dn.4xlarge: 64 GiB RAM
    _gpu("l4", "NVIDIA L4 24 GB", 24, 300, 121, 64),   # cloud VM such as AWS g6.4xlarge: 64 GiB RAM
    _gpu("a10", "NVIDIA A10 24 GB", 24, 600, 125, 64),   # cloud VM such as AWS g5.4xlarge: 64 GiB RAM
    _gpu("rtx-3060", "GeForce RTX 3060 12 GB", 12, 360, 51, 32),   # desktop: 32 GiB RAM
    _gpu("rtx-3090", "GeForce RTX 3090 24 GB", 24, 936, 71, 64),   # desktop: 64 GiB RAM
    _gpu("rtx-4090", "GeForce RTX 4090 24 GB", 24, 1008, 165, 64),   # desktop: 64 GiB RAM
    _gpu("rtx-5090", "GeForce RTX 5090 32 GB", 32, 1792, 210, 64),   # desktop: 64 GiB RAM
    _gpu("a6000", "NVIDIA RTX A6000 48 GB", 48, 768, 155, 128),   # workstation: 128 GiB RAM
    _gpu("a100-40gb", "NVIDIA A100 40 GB", 40, 1555, 312, 1024),   # 8-GPU server as DGX A100 320GB: 1 TiB RAM
    _gpu("a100-80gb", "NVIDIA A100 80 GB", 80, 2039, 312, 2048),   # 8-GPU server as DGX A100 640GB: 2 TiB RAM
    _gpu("h100-80gb", "NVIDIA H100 80 GB SXM", 80, 3350, 989, 2048),   # 8-GPU server as DGX H100: 2 TiB RAM
    _gpu("h200", "NVIDIA H200 141 GB", 141, 4800, 989, 2048),   # 8-GPU server as DGX H200: 2 TiB RAM
    _apple("m1-8gb", "Apple M1 8 GB", 8, 68.25, 2.6),
    _apple("m1-16gb", "Apple M1 16 GB", 16, 68.25, 2.6),
    _apple("m2-pro-16gb", "Apple M2 Pro 16 GB", 16, 200, 6.8),
    _apple("m2-pro-32gb", "Apple M2 Pro 32 GB", 32, 200, 6.8),
    _apple("m2-max-32gb", "Apple M2 Max 32 GB", 32, 400, 13.6),
    _apple("m2-max-64gb", "Apple M2 Max 64 GB", 64, 400, 13.6),
    _apple("m2-max-96gb", "Apple M2 Max 96 GB", 96, 400, 13.6),
    _apple("m3-max-36gb", "Apple M3 Max 36 GB (30-core GPU)", 36, 300, 12.3),
    _apple("m3-max-48gb", "Apple M3 Max 48 GB", 48, 400, 16.4),
    _apple("m3-max-64gb", "Apple M3 Max 64 GB", 64, 400, 16.4),
    _apple("m3-max-96gb", "Apple M3 Max 96 GB (30-core GPU)", 96, 300, 12.3),   # 96 GB comes only with the 30-core GPU
    _apple("m3-max-128gb", "Apple M3 Max 128 GB", 128, 400, 16.4),
    _apple("m1-ultra-64gb", "Apple M1 Ultra 64 GB", 64, 800, 21),
    _apple("m1-ultra-128gb", "Apple M1 Ultra 128 GB", 128, 800, 21),
    _apple("m2-ultra-192gb", "Apple M2 Ultra 192 GB", 192, 800, 27.2),
    Hardware("phone-6gb", "Phone 6 GB (LPDDR5)", "phone", 6 * GiB, 50 * GB, 2e12),
    Hardware("phone-8gb", "Phone 8 GB (LPDDR5)", "phone", 8 * GiB, 50 * GB, 2e12),
    Hardware("cpu-ddr4-32gb", "CPU, 32 GB dual-channel DDR4-3200", "cpu", 32 * GiB, 51.2 * GB, 1e12),
    Hardware("cpu-ddr5-64gb", "CPU, 64 GB dual-channel DDR5-5600", "cpu", 64 * GiB, 89.6 * GB, 2e12),
    # This project's dev box: 2 AMD EPYC vCPUs, 24 GB RAM (MemTotal 24,683,656 kB). FLOPS from
    # llama-cpp-python 0.3.36 prefill of SmolLM2-135M Q4_K_M: 481 tokens in 7.45 s (≈ 17 GFLOP/s
    # achieved, with another process busy on the box) ÷ 0.4. Bandwidth is a guess (20 GB/s); neither
    # gives a speed: the planner shows one only from a node measurement (a worker here measures it).
    Hardware("cpu-2core-24gb", "Dev box: 2 vCPU, 24 GB RAM", "cpu", 24_683_656 * 1024, 20 * GB, 0.045e12),
]

HARDWARE_PROFILES: dict[str, Hardware] = {hw.key: hw for hw in _PROFILES}
