//! sal-core
