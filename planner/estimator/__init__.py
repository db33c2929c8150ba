"""Pure-Python LLM memory estimator (no Django imports).

    from planner.estimator import Architecture, Hardware, Workload, estimate, HARDWARE_PROFILES
    est = estimate(Architecture.from_config(cfg), HARDWARE_PROFILES["rtx-4090"], Workload())
"""

from .architecture import Architecture
from .errors import EstimatorError
from .estimate import Estimate, estimate
from .hardware import HARDWARE_PROFILES, Hardware
from .param_count import format_decimal_bytes, format_param_count, parse_param_count
from .scheme_row import SchemeRow
from .schemes import SCHEME_NAMES, scheme_names
from .workload import Workload

__all__ = [
    "Architecture", "Hardware", "Workload", "Estimate", "EstimatorError", "SchemeRow", "estimate",
    "HARDWARE_PROFILES", "SCHEME_NAMES", "scheme_names", "parse_param_count",
    "format_param_count", "format_decimal_bytes",
]
