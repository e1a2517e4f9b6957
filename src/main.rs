//! The `tame` binary: parse the command line and hand over to the library.

/// mimalloc rather than the system allocator: the server allocates small,
/// short-lived values on several threads, which mimalloc serves faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tame::cli::main()
}
