"""The hardware options `manage.py estimate` and `manage.py recommend` share: a built-in profile,
one of our measured nodes (node:<hostname>), a team's saved profile (team:<id>) or a machine
described by hand (custom), with its device count and host RAM."""

from __future__ import annotations

from planner.estimator import HARDWARE_PROFILES, EstimatorError
from planner.estimator.hardware import KINDS, Hardware
from planner.forms import device_sizes
from planner.models import HardwareProfile
from planner.nodes import NODE_PREFIX, node_hardware_by_key
from planner.services import hardware_from_profile


def add_hardware_arguments(parser, **hardware) -> None:
    """--hardware (its default/required as given), --devices, --ram-gb and the custom machine's."""
    parser.add_argument("--hardware", help=f"a profile ({', '.join(sorted(HARDWARE_PROFILES))}), node:<hostname> "
                                           "(one of our measured nodes, the Workers page), team:<id> or custom",
                        **hardware)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--ram-gb", type=float, default=None,
                        help="host RAM in GiB beside the GPU(s) (default: the profile's)")
    custom = parser.add_argument_group("--hardware custom", "a machine described by hand")
    custom.add_argument("--kind", default="gpu", choices=KINDS)
    custom.add_argument("--memory-gb", type=float, default=None, help="GiB per device")
    custom.add_argument("--device-memory-gb", default=None,
                        help="GiB per device when they differ, comma-separated (e.g. 24,24,12)")
    custom.add_argument("--bandwidth-gbs", type=float, default=1000.0, help="GB/s per device")
    custom.add_argument("--tflops", type=float, default=100.0, help="dense FP16 TFLOPS per device")


def hardware_from_options(opts) -> Hardware:
    """The Hardware the options describe; EstimatorError naming the option otherwise."""
    key, devices = opts["hardware"], opts["devices"]
    if key == "custom":
        sizes = device_sizes(opts["device_memory_gb"])
        if sizes is None and opts["memory_gb"] is None:
            raise EstimatorError("memory_gb", "--hardware custom needs --memory-gb or --device-memory-gb")
        hw = Hardware.custom("Custom", max(sizes) if sizes else opts["memory_gb"], opts["bandwidth_gbs"],
                             opts["tflops"], kind=opts["kind"], device_count=devices, device_memory_gb=sizes)
    elif key.startswith(NODE_PREFIX):
        hw = node_hardware_by_key(key, devices)
    elif key.startswith("team:"):
        profile = next((p for p in HardwareProfile.objects.all() if p.key == key), None)
        if profile is None:
            raise EstimatorError("hardware", f"no saved hardware profile {key!r}")
        hw = hardware_from_profile(profile, devices)
    elif key in HARDWARE_PROFILES:
        hw = HARDWARE_PROFILES[key].with_devices(devices)
    else:
        raise EstimatorError("hardware", f"unknown profile {key!r}: one of {', '.join(sorted(HARDWARE_PROFILES))}, "
                                         "node:<hostname>, team:<id> or custom")
    return hw.with_ram(opts["ram_gb"]) if opts["ram_gb"] is not None else hw
