//! What the integration tests share.

use std::path::{Path, PathBuf};

/// The Fashion-MNIST files: `datasets/fashion-mnist/` or the Debian package's (CI installs it).
pub fn fashion_mnist() -> PathBuf {
    sal_train::data::FashionMnist::locate(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/fashion-mnist"),
    )
    .expect("Fashion-MNIST: install the Debian package dataset-fashion-mnist")
}
