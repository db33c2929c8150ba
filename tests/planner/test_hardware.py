"""Hardware profiles and custom hardware."""

import pytest

from planner.estimator import HARDWARE_PROFILES, EstimatorError, Hardware

GiB = 2**30


def test_required_profiles_exist_with_spec_numbers():
    h100 = HARDWARE_PROFILES["h100-80gb"]
    assert (h100.memory_bytes, h100.bandwidth_bytes_per_s, h100.fp16_flops) == (80 * GiB, 3350e9, 989e12)
    assert HARDWARE_PROFILES["rtx-4090"].bandwidth_bytes_per_s == 1008e9
    assert HARDWARE_PROFILES["t4"].memory_bytes == 16 * GiB
    assert HARDWARE_PROFILES["h200"].memory_bytes == 141 * GiB
    assert HARDWARE_PROFILES["m3-max-36gb"].bandwidth_bytes_per_s == 300e9
    assert HARDWARE_PROFILES["m3-max-64gb"].bandwidth_bytes_per_s == 400e9
    assert HARDWARE_PROFILES["cpu-ddr5-64gb"].bandwidth_bytes_per_s == 89.6e9
    kinds = {hw.kind for hw in HARDWARE_PROFILES.values()}
    assert kinds == {"gpu", "apple", "phone", "cpu"}
    assert all(key == hw.key for key, hw in HARDWARE_PROFILES.items())


def test_apple_working_set_rule():
    assert HARDWARE_PROFILES["m1-8gb"].usable_memory_bytes == int(8 * GiB * 2 / 3)
    assert HARDWARE_PROFILES["m2-pro-32gb"].usable_memory_bytes == int(32 * GiB * 2 / 3)
    assert HARDWARE_PROFILES["m2-max-64gb"].usable_memory_bytes == 48 * GiB


def test_device_count_multiplies_memory_and_bandwidth():
    one = Hardware.custom(name="x", memory_gb=24, bandwidth_gbs=1000, tflops=100)
    two = Hardware.custom(name="x", memory_gb=24, bandwidth_gbs=1000, tflops=100, device_count=2)
    assert two.usable_memory_bytes == 2 * one.usable_memory_bytes == 48 * GiB
    assert two.total_bandwidth == 2e12


@pytest.mark.parametrize("kwargs,field", [
    (dict(memory_gb=-1, bandwidth_gbs=100, tflops=10), "memory_gb"),
    (dict(memory_gb="24", bandwidth_gbs=100, tflops=10), "memory_gb"),
    (dict(memory_gb=24, bandwidth_gbs=0, tflops=10), "bandwidth_gbs"),
    (dict(memory_gb=24, bandwidth_gbs=100, tflops=10, kind="tpu"), "kind"),
    (dict(memory_gb=24, bandwidth_gbs=100, tflops=10, device_count=0), "device_count"),
])
def test_custom_hardware_validation(kwargs, field):
    with pytest.raises(EstimatorError) as info:
        Hardware.custom(name="bad", **kwargs)
    assert info.value.field == field
