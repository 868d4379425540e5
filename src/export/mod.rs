//! Outputs (being written).
