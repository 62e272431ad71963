//! The classic sal-saliency detectors behind SaliencyMix's `detector` names.

use crate::ConfigError;
use crate::detector::{DetectorChoice, HostDetector};

/// The host detector for a classic `detector` choice.
pub(crate) fn host_detector(choice: DetectorChoice) -> Result<HostDetector, ConfigError> {
    Err(ConfigError::Invalid {
        field: "detector",
        value: format!("{choice:?}"),
        expected: "a detector available in this build (sal-saliency's detectors are pending)",
    })
}
