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
}

/// The device of `kind`: flex for the CPU; the default adapter for wgpu; GPU 0 for CUDA.
pub fn device(kind: BackendKind) -> Result<Device, BackendError> {
    match kind {
        BackendKind::Cpu => Ok(Device::flex()),
        BackendKind::Wgpu => wgpu_device(),
        BackendKind::Cuda => cuda_device(),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device, BackendError> {
    Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
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
