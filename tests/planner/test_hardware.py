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


def test_profiles_carry_the_ram_of_the_machine_they_usually_sit_in():
    """NVIDIA's DGX datasheets: DGX H100 and DGX H200 2 TB of system memory, DGX A100 320GB 1 TB,
    DGX A100 640GB 2 TB (stored as TiB); a desktop RTX 4090 box: 64 GiB (the profile's stated
    assumption); Apple silicon and CPUs have no RAM beside the device memory."""
    ram = {key: hw.ram_bytes for key, hw in HARDWARE_PROFILES.items()}
    assert ram["h100-80gb"] == ram["h200"] == ram["a100-80gb"] == 2 * 2**40 and ram["a100-40gb"] == 2**40
    assert ram["rtx-4090"] == 64 * GiB and ram["rtx-3060"] == 32 * GiB
    assert ram["m2-max-64gb"] == ram["cpu-ddr5-64gb"] == 0
    assert HARDWARE_PROFILES["h100-80gb"].with_devices(8).ram_bytes == 2 * 2**40   # the server's, whatever the count


def test_ram_is_an_input_for_gpu_machines_only():
    h100 = HARDWARE_PROFILES["h100-80gb"].with_devices(2).with_ram(128)
    assert (h100.ram_bytes, h100.device_count, h100.memory_bytes) == (128 * GiB, 2, 80 * GiB)
    assert h100.to_dict()["ram_bytes"] == 128 * GiB
    assert HARDWARE_PROFILES["rtx-4090"].with_ram(0).ram_bytes == 0
    for bad in (-1, 70000, True, "64", float("nan")):
        with pytest.raises(EstimatorError) as info:
            HARDWARE_PROFILES["rtx-4090"].with_ram(bad)
        assert info.value.field == "ram_gb"
    with pytest.raises(EstimatorError) as info:
        HARDWARE_PROFILES["m2-max-64gb"].with_ram(32)
    assert info.value.field == "ram_gb" and "device memory is the RAM" in info.value.message


def test_a_custom_box_with_devices_of_different_sizes():
    box = Hardware.custom(name="box", memory_gb=1, bandwidth_gbs=1000, tflops=100, device_memory_gb=[24, 24, 12],
                          ram_gb=96)
    assert (box.device_count, box.memory_bytes, box.device_memory_bytes) == (3, 24 * GiB, (24 * GiB, 24 * GiB, 12 * GiB))
    assert box.usable_memory_bytes == 60 * GiB and box.ram_bytes == 96 * GiB
    assert box.to_dict()["device_memory_bytes"] == [24 * GiB, 24 * GiB, 12 * GiB]
    same = Hardware.custom(name="box", memory_gb=1, bandwidth_gbs=1000, tflops=100, device_memory_gb=[24, 24])
    assert (same.device_count, same.device_memory_bytes, same.memory_bytes) == (2, (), 24 * GiB)
    assert box.with_devices(2).device_memory_bytes == () and box.with_devices(3) == box


@pytest.mark.parametrize("kwargs,field", [
    (dict(device_memory_gb=[24, 0]), "device_memory_gb"),
    (dict(device_memory_gb=[]), "device_memory_gb"),
    (dict(device_memory_gb=["24"]), "device_memory_gb"),
    (dict(device_memory_gb=[24, 12], device_count=3), "device_count"),
    (dict(ram_gb=-1), "ram_gb"),
])
def test_custom_box_validation(kwargs, field):
    with pytest.raises(EstimatorError) as info:
        Hardware.custom(name="bad", memory_gb=24, bandwidth_gbs=100, tflops=10, **kwargs)
    assert info.value.field == field
