//! The `tame` binary: parse the command line and hand over to the library.

/// mimalloc rather than the system allocator: the server allocates small,
/// short-lived values on several threads, which mimalloc serves faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_t`, the same
/// in the v2 and v3 headers of libmimalloc-sys 0.1.49).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Memory freed and left unused goes back to the system after a second
    // rather than mimalloc's 10 ms: under steady load the same memory is freed
    // and taken again many times a second, and each time it came back it was
    // faulted in and zeroed anew. MIMALLOC_PURGE_DELAY, if set, still decides.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options before any other thread runs.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    }
    tame::cli::main()
}
