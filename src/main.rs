//! The `analytics` binary: parse the command line and hand over to the library.

/// mimalloc instead of the system allocator: writing Parquet grows and frees
/// large buffers all the time, which glibc answers with fresh, zeroed pages
/// (a third of the write time in profiles).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    analytics::cli::main()
}
