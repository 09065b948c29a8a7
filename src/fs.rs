//! Files (placeholder, filled below).
