//! The wgpu device, on the graphics API the `SAL_WGPU_API` environment variable names: the one
//! place the trainer and every backend-parity test in the workspace get it from, so CI (and a
//! user whose GPU answers only through OpenGL) can run them on each adapter.
//!
//! Unset or `auto` is burn's own choice (`Device::wgpu`: Vulkan first, then the others);
//! `vulkan`, `gl`, `metal`, `dx12` pin that API and never fall back to another (burn-tensor
//! 0.22.1 `wgpu.rs`, `WgpuOptions::graphics_api`). The device is lazy, as `Device::wgpu` and
//! burn's `Device::vulkan` (the same wgpu device pinned to Vulkan) are: its runtime comes up on
//! first use, so every call returns the same device and tests may ask for it concurrently
//! (`Device::wgpu_options().init()` refuses a second initialisation).

use burn::backend::{WgpuBackend, WgpuDevice, WgpuDeviceKind};
use burn::tensor::Device;

/// The environment variable naming the graphics API of [`wgpu_device`].
pub const WGPU_API_VAR: &str = "SAL_WGPU_API";

/// `SAL_WGPU_API` holds a name that is not a graphics API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{WGPU_API_VAR}={value}: expected auto, vulkan, gl, metal or dx12")]
pub struct WgpuApiError {
    /// The variable's value.
    pub value: String,
}

/// The graphics API `value` names (case-insensitive); `auto` lets burn choose.
pub fn parse_wgpu_api(value: &str) -> Result<WgpuBackend, WgpuApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => Ok(WgpuBackend::Auto),
        "vulkan" => Ok(WgpuBackend::Vulkan),
        "gl" | "opengl" => Ok(WgpuBackend::Gl),
        "metal" => Ok(WgpuBackend::Metal),
        "dx12" => Ok(WgpuBackend::Dx12),
        _ => Err(WgpuApiError {
            value: value.to_owned(),
        }),
    }
}

/// The graphics API `SAL_WGPU_API` names; [`WgpuBackend::Auto`] when it is unset.
pub fn wgpu_api() -> Result<WgpuBackend, WgpuApiError> {
    match std::env::var(WGPU_API_VAR) {
        Ok(value) => parse_wgpu_api(&value),
        Err(std::env::VarError::NotPresent) => Ok(WgpuBackend::Auto),
        Err(std::env::VarError::NotUnicode(value)) => Err(WgpuApiError {
            value: value.to_string_lossy().into_owned(),
        }),
    }
}

/// The default wgpu adapter on the graphics API `SAL_WGPU_API` names (lazy: nothing is
/// acquired until a tensor lives there).
pub fn wgpu_device() -> Result<Device, WgpuApiError> {
    Ok(wgpu_device_on(wgpu_api()?))
}

/// The default wgpu adapter on `api`, lazily; with [`WgpuBackend::Auto`] this is
/// `Device::wgpu(DeviceKind::DefaultDevice)`.
pub fn wgpu_device_on(api: WgpuBackend) -> Device {
    Device::new(WgpuDevice::new(WgpuDeviceKind::DefaultDevice).on(api))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::DeviceKind;

    #[test]
    fn names_parse_to_apis() {
        let cases = [
            ("", WgpuBackend::Auto),
            ("auto", WgpuBackend::Auto),
            ("GL", WgpuBackend::Gl),
            ("opengl", WgpuBackend::Gl),
            (" vulkan ", WgpuBackend::Vulkan),
            ("metal", WgpuBackend::Metal),
            ("dx12", WgpuBackend::Dx12),
        ];
        for (name, api) in cases {
            assert_eq!(parse_wgpu_api(name), Ok(api), "{name:?}");
        }
        let error = parse_wgpu_api("cuda").unwrap_err();
        assert_eq!(
            error.to_string(),
            "SAL_WGPU_API=cuda: expected auto, vulkan, gl, metal or dx12"
        );
    }

    /// Constructing touches no adapter; `auto` is burn's own default device.
    #[test]
    fn devices_are_lazy_and_auto_is_burns_default() {
        assert_eq!(
            wgpu_device_on(WgpuBackend::Auto),
            Device::wgpu(DeviceKind::DefaultDevice)
        );
        assert_ne!(
            wgpu_device_on(WgpuBackend::Gl),
            wgpu_device_on(WgpuBackend::Vulkan)
        );
        assert_eq!(
            wgpu_device_on(WgpuBackend::Gl),
            wgpu_device_on(WgpuBackend::Gl)
        );
    }
}
