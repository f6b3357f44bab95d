//! Physical frame allocator (placeholder; being written).
