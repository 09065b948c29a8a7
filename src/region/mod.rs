//! Generational regions (placeholder, being written).
