//! sal-train
