//! The `ticket-authz` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    ticket_authz::cli::main()
}
