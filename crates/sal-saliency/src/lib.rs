//! sal-saliency
