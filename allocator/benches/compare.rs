//! Allocator comparison benchmark (placeholder).
fn main() {}
