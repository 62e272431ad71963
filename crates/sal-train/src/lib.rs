//! sal-train
//!
//! - [`data`]: readers of the data sets' original files (IDX, CIFAR binary, image folders) as
//!   burn `Dataset`s with typed errors, and [`data::fashion_mnist::ensure`] for the embedded
//!   default data set.

pub mod data;
