//! What the integration tests share.

use std::path::{Path, PathBuf};

/// The Fashion-MNIST files: `datasets/fashion-mnist/` or the Debian package's (CI installs it).
pub fn fashion_mnist() -> PathBuf {
    sal_train::data::FashionMnist::locate(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/fashion-mnist"),
    )
    .expect("Fashion-MNIST: install the Debian package dataset-fashion-mnist")
}

/// A small experiment's config text: `head` (name, epochs, batch_size, ...), its run directory
/// `out`, the Fashion-MNIST files with the `dataset` keys added (limits, subsets), a CIFAR
/// ResNet-18 of width 4 at 32x32, SGD at lr 0.05, then the `tables` (`[augmentation]`, ...).
// Every test binary compiles this module; not all of them build configs from text.
#[allow(dead_code)]
pub fn tiny_config(head: &str, out: &Path, dataset: &str, tables: &str) -> String {
    format!(
        r#"
{head}
output_dir = "{out}"

[dataset]
name = "fashion-mnist"
path = "{data}"
{dataset}

[model]
architecture = "cifar-resnet18"
base_width = 4

[transform]
pad_to = 32

[optimizer]
lr = 0.05

{tables}
"#,
        out = out.display(),
        data = fashion_mnist().display(),
    )
}
