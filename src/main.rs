//! The `ticket-authz` binary: everything lives in the library.

/// mimalloc returns freed pages to the system, so a snapshot's resident
/// memory follows its live size after loads and refreshes.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ticket_authz::cli::main()
}
