//! Load targets in processes of their own (`--noop-process`), and the CPU
//! time a server process spends, read from `/proc`, so that a run reports
//! server CPU per request: the service and the no-op each pay only for
//! themselves, not for the load generator beside them.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use clap::Args;

use super::InProcess;
use crate::generate::{Spec, generate};
use crate::serve::Loader;
use crate::snapshot::Snapshot;

/// `/proc/PID/stat` counts CPU in clock ticks of `USER_HZ`, which Linux
/// fixes at 100 on every architecture it exports to user space.
const TICKS_PER_SECOND: u64 = 100;

/// User plus system CPU time of a whole process (every thread), so far.
pub fn cpu_time(pid: u32) -> Result<Duration, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) is in parentheses and may hold spaces;
    // utime and stime are fields 14 and 15, the 12th and 13th after it.
    let after_name = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 1..))
        .ok_or_else(|| format!("{path}: no command name"))?;
    let mut fields = after_name.split_whitespace().skip(11);
    let mut ticks = || -> Result<u64, String> {
        fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("{path}: no utime/stime"))
    };
    let total = ticks()? + ticks()?;
    Ok(Duration::from_millis(total * 1000 / TICKS_PER_SECOND))
}

/// The hidden `loadtest-target` command: one server, as a child of
/// `loadtest --noop-process`.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// `service` (the generated dataset) or `noop`.
    #[arg(long, value_parser = ["service", "noop"])]
    pub target: String,
    #[arg(long, default_value_t = 1_000_000)]
    pub tickets: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Worker threads of the server's runtime.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Serves one target, prints `listening ADDRESS`, and stops when standard
/// input closes (the parent ended, however it ended).
pub fn serve_target(args: &TargetArgs) -> Result<(), String> {
    let service = if args.target == "service" {
        let data = generate(&Spec {
            seed: args.seed,
            ..Spec::scaled(args.tickets)
        });
        let snapshot = Snapshot::build(&data).map_err(|e| format!("generated data: {e}"))?;
        let load: Loader = Box::pin(async move { Ok(snapshot) });
        Some((load, None))
    } else {
        None
    };
    let noop = service.is_none();
    let servers = InProcess::start(service, noop, args.threads)?;
    let addr = servers
        .service
        .or(servers.noop)
        .ok_or_else(|| "no server started".to_owned())?;
    println!("listening {addr}");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(servers);
    Ok(())
}

/// A target served by a child process; killed when dropped.
#[derive(Debug)]
pub struct TargetProcess {
    child: Child,
    /// Held open: the child stops when it closes.
    _stdin: Option<ChildStdin>,
    /// Held open too, so that the child's later writes do not fail.
    _stdout: Option<BufReader<ChildStdout>>,
    pub url: String,
    pub pid: u32,
}

impl TargetProcess {
    /// Starts `ticket-authz loadtest-target` (this same binary) and waits
    /// for its address.
    pub fn start(
        target: &str,
        tickets: usize,
        seed: u64,
        threads: Option<usize>,
    ) -> Result<TargetProcess, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let mut command = Command::new(exe);
        command
            .args(["loadtest-target", "--target", target])
            .args([
                "--tickets",
                &tickets.to_string(),
                "--seed",
                &seed.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(n) = threads {
            command.args(["--threads", &n.to_string()]);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start the {target} process: {e}"))?;
        let stdin = child.stdin.take();
        let pid = child.id();
        let mut line = String::new();
        let mut stdout = child.stdout.take().map(BufReader::new);
        if let Some(out) = stdout.as_mut() {
            let _ = out.read_line(&mut line);
        }
        let Some(addr) = line.trim().strip_prefix("listening ") else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the {target} process did not start"));
        };
        Ok(TargetProcess {
            url: format!("http://{addr}"),
            child,
            _stdin: stdin,
            _stdout: stdout,
            pid,
        })
    }
}

impl Drop for TargetProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn reads_this_process_cpu_time() {
        let before = super::cpu_time(std::process::id()).unwrap();
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let after = super::cpu_time(std::process::id()).unwrap();
        assert!(after > before, "{before:?} → {after:?}");
    }
}
