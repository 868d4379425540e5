//! Change detection (being written).
