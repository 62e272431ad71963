//! sal-models
