//! The `analytics` binary: picks the front-end and hands over to the library.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: writing Parquet grows and frees
/// large buffers all the time, which glibc answers with fresh, zeroed pages
/// (a third of the write time in profiles).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // In a container action GitHub starts the image with no arguments (or
    // `action`, from action.yml's `args`); that front-end sets up its own,
    // secret-redacting, logging.
    let action = std::env::args_os().nth(1).is_some_and(|a| a == "action");
    if action || analytics::actions::invoked_implicitly() {
        return analytics::actions::main();
    }
    analytics::cli::main()
}
