//! glibc malloc settings for tensor work.
//!
//! candle allocates a fresh buffer for every op result, and a training step
//! frees and reallocates hundreds of megabytes of them. With glibc's defaults,
//! buffers above the mmap threshold are mapped and unmapped each time, and the
//! top of the heap is trimmed, so every step page-faults its way through
//! freshly zeroed memory again (about 1.6 GB of page faults per step of
//! MiniLM, a third of the step). Keeping such buffers in the heap lets them be
//! reused instead.

/// Raises the mmap threshold to its maximum (32 MiB) and stops heap trimming,
/// unless the user set malloc tunables in the environment. Process-wide;
/// call once at start-up. A no-op outside Linux/glibc.
pub fn tune_for_tensors() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_set = std::env::vars()
            .any(|(k, v)| k.starts_with("MALLOC_") || (k == "GLIBC_TUNABLES" && v.contains("glibc.malloc")));
        if user_set {
            return;
        }
        // SAFETY: mallopt only changes allocator parameters; it is called before
        // the heavy allocations and with values glibc accepts.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        }
    }
}
