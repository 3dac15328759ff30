//! Process settings for tensor work, applied once at start-up by the CLI
//! (and the benches): [`init`].
//!
//! **Memory.** candle allocates a fresh buffer for every op result, and a training step
//! frees and reallocates hundreds of megabytes of them. With glibc's defaults,
//! buffers above the mmap threshold are mapped and unmapped each time, and the
//! top of the heap is trimmed, so every step page-faults its way through
//! freshly zeroed memory again (250 000 page faults, about 1 GB, per step
//! of MiniLM, a fifth of the step). Keeping such buffers in the heap lets them be
//! reused instead.
//!
//! **Threads.** Unless `RAYON_NUM_THREADS` is set, candle works out its thread
//! count again on every matmul, and on Linux that means parsing
//! `/proc/cpuinfo` each time (8% of a two-thread training step in a
//! profile). Pinning the variable to the value candle would compute makes the
//! look-up an environment read; candle and rayon then agree on it as before.
//!
//! **Spinning.** candle's elementwise ops run on its own pool, whose workers
//! spin up to 25 000 times after each op before sleeping, while the matmuls
//! run on rayon's threads: on two cores the spinning worker takes a core from
//! the next matmul. Unless `CANDLE_BARRIER_POOL_SPIN_LIMIT` is set, it is set
//! to 0 (park at once). On the project's 2-core machine this made a two-thread
//! training step about 8% faster (shared notes/perf-baseline.md saw the same
//! direction for inference).

/// Applies all three settings. Call first thing in `main`, before any thread
/// starts (it sets environment variables).
pub fn init() {
    tune_malloc();
    pin_thread_count();
    park_idle_workers();
}

/// Sets `CANDLE_BARRIER_POOL_SPIN_LIMIT=0` when unset; read when candle's pool
/// starts, so call before the first tensor op.
pub fn park_idle_workers() {
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0");
    }
}

/// Sets `RAYON_NUM_THREADS` to candle's default thread count when it is unset.
pub fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let threads = candle_core::utils::get_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
}

/// What [`tune_malloc`] sets: (`mallopt` parameter, glibc tunable, value).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_SETTINGS: [(libc::c_int, &str, libc::c_int); 5] = [
    (libc::M_MMAP_THRESHOLD, "mmap_threshold", 32 << 20),
    (libc::M_MMAP_MAX, "mmap_max", 0),
    (libc::M_TRIM_THRESHOLD, "trim_threshold", 1 << 30),
    (libc::M_TOP_PAD, "top_pad", 64 << 20),
    (libc::M_ARENA_MAX, "arena_max", 1),
];

/// Serves every block from the heap (no `mmap`, whose threshold cannot go above
/// 32 MiB while the word-embedding gradient alone is 45 MiB) and stops heap
/// trimming. One
/// arena: untrimmed, each thread's arena (the tokenizer's, candle's and
/// rayon's workers') would keep its own high-water mark; with one, MPNet
/// `predict` peaked at 279–293 MB in int8 and 586–591 MB in f32 instead of
/// 325–353 and 665–667, at the same speed, and a training epoch took as long
/// (2,048 sentences, 2 threads, two runs each).
///
/// A setting the user gave for one of these parameters (`MALLOC_ARENA_MAX=2`,
/// as some hosts set, or `GLIBC_TUNABLES=glibc.malloc.arena_max=2`) wins for
/// that parameter (the two mmap ones together); the others are still set.
/// Process-wide. A no-op outside Linux/glibc.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let environment: Vec<(String, String)> = std::env::vars().collect();
        for (param, name, value) in MALLOC_SETTINGS {
            if chosen_by_user(&environment, name) {
                continue;
            }
            // SAFETY: mallopt only changes allocator parameters; it is called before
            // the heavy allocations and with values glibc accepts.
            unsafe { libc::mallopt(param, value) };
        }
    }
}

/// Whether `environment` sets glibc's malloc parameter `name` (a tunable's
/// name, `arena_max`): as `MALLOC_ARENA_MAX` (or `MALLOC_MMAP_THRESHOLD_`,
/// glibc's older spelling with a trailing underscore) or in `GLIBC_TUNABLES`.
/// The mmap threshold and the mmap count go together: `mmap_max=0` would
/// make a threshold the user chose mean nothing.
fn chosen_by_user(environment: &[(String, String)], name: &str) -> bool {
    const MMAP: [&str; 2] = ["mmap_threshold", "mmap_max"];
    if MMAP.contains(&name) {
        return MMAP.iter().any(|n| set_by_user(environment, n));
    }
    set_by_user(environment, name)
}

fn set_by_user(environment: &[(String, String)], name: &str) -> bool {
    let variable = format!("MALLOC_{}", name.to_uppercase());
    let tunable = format!("glibc.malloc.{name}=");
    environment.iter().any(|(k, v)| {
        *k == variable
            || *k == format!("{variable}_")
            || (k == "GLIBC_TUNABLES" && v.split(':').any(|t| t.starts_with(&tunable)))
    })
}

/// [`tune_malloc`]'s settings as a `GLIBC_TUNABLES` value, so that another
/// process (the PyTorch side of a benchmark) can run with the same allocator.
/// Empty outside Linux/glibc.
pub fn malloc_tunables() -> String {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    return MALLOC_SETTINGS
        .iter()
        .map(|(_, name, value)| format!("glibc.malloc.{name}={value}"))
        .collect::<Vec<_>>()
        .join(":");
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    String::new()
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// The user's own setting of one parameter leaves the others to stancekit.
    #[test]
    fn a_parameter_the_user_set_is_theirs_alone() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let host = env(&[("MALLOC_ARENA_MAX", "2"), ("PATH", "/bin")]);
        assert!(super::chosen_by_user(&host, "arena_max"));
        assert!(!super::chosen_by_user(&host, "mmap_threshold"));
        let threshold = env(&[("MALLOC_MMAP_THRESHOLD_", "65536")]);
        assert!(super::chosen_by_user(&threshold, "mmap_max"), "mmap_max=0 would undo the user's threshold");
        let old_spelling = env(&[("MALLOC_TOP_PAD_", "0")]);
        assert!(super::chosen_by_user(&old_spelling, "top_pad") && !super::chosen_by_user(&old_spelling, "mmap_max"));
        let tunables = env(&[("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0:glibc.malloc.arena_max=4")]);
        assert!(super::chosen_by_user(&tunables, "arena_max") && super::chosen_by_user(&tunables, "trim_threshold"));
        assert!(!super::chosen_by_user(&tunables, "mmap_threshold"), "trim_threshold is not mmap_threshold");
    }

    #[test]
    fn tunables_spell_out_the_mallopt_settings() {
        assert_eq!(
            super::malloc_tunables(),
            "glibc.malloc.mmap_threshold=33554432:glibc.malloc.mmap_max=0:\
             glibc.malloc.trim_threshold=1073741824:glibc.malloc.top_pad=67108864:\
             glibc.malloc.arena_max=1"
        );
    }
}
