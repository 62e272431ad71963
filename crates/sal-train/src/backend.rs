//! From the config's backend choice to a burn `Device`. One code path for every backend: the
//! trainer only ever sees the `Device`.

use crate::config::BackendKind;
use burn::tensor::Device;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "backend `{backend}` is not compiled into this binary: build with the cargo feature, \
         e.g. `cargo run --release -p xtask --features {backend} -- train ...`"
    )]
    NotBuilt { backend: &'static str },
    /// `SAL_WGPU_API` names no graphics API.
    #[cfg(feature = "wgpu")]
    #[error(transparent)]
    WgpuApi(#[from] sal_models::WgpuApiError),
}

/// The device of `kind`: flex for the CPU; for wgpu the default adapter, on the graphics API
/// the `SAL_WGPU_API` environment variable names (burn's choice when unset:
/// `sal_models::wgpu_device`); GPU 0 for CUDA.
pub fn device(kind: BackendKind) -> Result<Device, BackendError> {
    match kind {
        BackendKind::Cpu => Ok(Device::flex()),
        BackendKind::Wgpu => wgpu_device(),
        BackendKind::Cuda => cuda_device(),
    }
}

/// The `count` devices of a data-parallel run on `kind` (`[distributed] devices`): for one,
/// [`device`]; for more, the first `count` CUDA GPUs, the first `count` wgpu adapters (or, with
/// fewer adapters than that, the default adapter `count` times), or the one flex device `count`
/// times. A device repeated is threads stepping one device: it runs the strategy for real (the
/// tests do, on flex and on lavapipe) but adds no compute.
pub fn devices(kind: BackendKind, count: usize) -> Result<Vec<Device>, BackendError> {
    if count <= 1 {
        return Ok(vec![device(kind)?]);
    }
    match kind {
        BackendKind::Cpu => Ok(vec![Device::flex(); count]),
        BackendKind::Wgpu => wgpu_devices(count),
        BackendKind::Cuda => cuda_devices(count),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_devices(count: usize) -> Result<Vec<Device>, BackendError> {
    // Every adapter once, on the graphics API wgpu settles on (burn's enumeration).
    let adapters = Device::enumerate(burn::tensor::DeviceType::Wgpu);
    if adapters.len() >= count {
        return Ok(adapters[..count].to_vec());
    }
    Ok(vec![wgpu_device()?; count])
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_devices(_count: usize) -> Result<Vec<Device>, BackendError> {
    Err(BackendError::NotBuilt { backend: "wgpu" })
}

#[cfg(feature = "cuda")]
fn cuda_devices(count: usize) -> Result<Vec<Device>, BackendError> {
    Ok((0..count).map(Device::cuda).collect())
}

#[cfg(not(feature = "cuda"))]
fn cuda_devices(_count: usize) -> Result<Vec<Device>, BackendError> {
    Err(BackendError::NotBuilt { backend: "cuda" })
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device, BackendError> {
    Ok(sal_models::wgpu_device()?)
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Device, BackendError> {
    Err(BackendError::NotBuilt { backend: "wgpu" })
}

#[cfg(feature = "cuda")]
fn cuda_device() -> Result<Device, BackendError> {
    Ok(Device::cuda(0))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device() -> Result<Device, BackendError> {
    Err(BackendError::NotBuilt { backend: "cuda" })
}
