"""Job methods: one module per quantizer or evaluator, each behind the same small interface."""

# name -> devices it runs on. Filled in as methods land (see the Jobs issue).
METHOD_DEVICES: dict[str, tuple[str, ...]] = {}


def method_names(*, device: str) -> list[str]:
    return sorted(name for name, devices in METHOD_DEVICES.items() if device in devices)
