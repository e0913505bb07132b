//! The `ticket-authz` command line: its eleven commands (`test`, `serve`,
//! `relay`, `check`, `list`, `migrate`, `import`, `prune`, `import-csv`, `loadtest`,
//! `generate`), each dispatched to its module; `test` and `generate` run here.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::dataset;
use crate::generate::{Spec, generate};
use crate::scenario;

#[derive(Debug, Parser)]
#[command(
    name = "ticket-authz",
    version,
    about = "Authorisation sidecar for helpdesk and ticketing systems"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every assertion of dataset files; prints each failure and a
    /// closing `N passed, N failed` line; exits 1 on any failure.
    Test {
        /// Dataset/scenario files (YAML or JSON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the gRPC service.
    Serve(Box<crate::serve_cmd::ServeArgs>),
    /// Follow the database and publish every committed transaction to a
    /// NATS JetStream stream, and snapshots to its object store, for
    /// `serve --nats-url` sidecars; run two or more, one publishes.
    Relay(Box<crate::fleet_cmd::RelayArgs>),
    /// Ask a running service one access question; prints the answer as JSON.
    Check(crate::grpc::client::CheckArgs),
    /// List a user's visible tickets or a ticket's viewers from a running
    /// service (every page); prints JSON.
    List(crate::grpc::client::ListArgs),
    /// Create or update the database schema; with --mapping, install the
    /// change capture beside a helpdesk's own tables instead.
    Migrate {
        /// postgres://… or sqlite://PATH (a missing SQLite file is created);
        /// with --mapping, the helpdesk's database (mysql://…).
        #[arg(long, env = "TICKET_AUTHZ_DATABASE_URL")]
        database_url: String,
        /// A source mapping: a preset (`integria`) or a mapping file. Its
        /// tables, columns and queries are checked against the database
        /// before anything is created.
        #[arg(long, env = "TICKET_AUTHZ_MAPPING")]
        mapping: Option<String>,
        /// With --mapping: remove every trigger and table the capture
        /// installed (the helpdesk's tables are not touched).
        #[arg(long, requires = "mapping")]
        uninstall: bool,
    },
    /// Load a dataset file into the database in one transaction (all or
    /// nothing); prints the revision after the load.
    Import {
        #[arg(long, env = "TICKET_AUTHZ_DATABASE_URL")]
        database_url: String,
        /// Delete all data first.
        #[arg(long)]
        replace: bool,
        file: PathBuf,
    },
    /// Delete the change log older than --older-than (keeping the latest
    /// revision). A service that had not applied the deleted changes
    /// reloads in full; run it as a periodic job.
    Prune {
        #[arg(long, env = "TICKET_AUTHZ_DATABASE_URL")]
        database_url: String,
        /// Keep changes younger than this (e.g. 7d, 24h).
        #[arg(long, value_parser = parse_age)]
        older_than: std::time::Duration,
    },
    /// Upsert a helpdesk CSV export (portal users or organisations, service
    /// desk users) into the database by id, all or nothing; prints counts
    /// of new, changed and unchanged rows.
    ImportCsv(Box<crate::csv_import::ImportCsvArgs>),
    /// Load a service with concurrent gRPC calls over the generated dataset
    /// and report throughput and latency percentiles, optionally against a
    /// no-op service with the same messages in the same run.
    Loadtest(Box<crate::loadtest::LoadArgs>),
    /// One load target in a process of its own (`loadtest --noop-process`
    /// starts it).
    #[command(hide = true)]
    LoadtestTarget(crate::loadtest::TargetArgs),
    /// Write a deterministic synthetic dataset (the benchmark data) as YAML.
    Generate {
        /// Number of tickets; users, organisations and companies scale with it.
        #[arg(long, default_value_t = 10_000)]
        tickets: usize,
        /// Random seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Service-desk section resources to add in total (projects with
        /// task trees, wiki pages, inventory, invoices, leads, agenda
        /// events, downloads); 0 adds none and leaves the output as it was.
        #[arg(long, default_value_t = 0)]
        sections: usize,
        /// Output file (standard output when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 7d, 24h, 30m)"))
}

/// Runs the `test` command and returns its exit code.
pub fn run_test(files: &[PathBuf], out: &mut impl std::io::Write) -> std::io::Result<ExitCode> {
    let mut passed = 0usize;
    let mut failed = 0usize;
    for path in files {
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(source) => {
                writeln!(out, "{}", dataset::DatasetError::Read { file, source })?;
                failed += 1;
                continue;
            }
        };
        let result = scenario::run_text(&file, &text, None);
        match &result {
            scenario::FileResult::Ran(outcome) => {
                for failure in &outcome.failures {
                    writeln!(out, "FAIL {file}: {failure}")?;
                }
            }
            scenario::FileResult::Invalid(e) => writeln!(out, "{e}")?,
            scenario::FileResult::NotBuilt(e) => writeln!(out, "{e}")?,
        }
        let (p, f) = result.counts();
        passed += p;
        failed += f;
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_generate(
    tickets: usize,
    seed: u64,
    sections: usize,
    out: Option<PathBuf>,
) -> Result<(), String> {
    let mut data = generate(&Spec {
        seed,
        ..Spec::scaled(tickets)
    });
    crate::generate::add_sections(&mut data, sections, seed);
    let raw = crate::dataset::raw::from_dataset(&data);
    let text =
        serde_yaml_ng::to_string(&raw).map_err(|e| format!("cannot render the dataset: {e}"))?;
    match out {
        Some(path) => std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display())),
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string()),
    }
}

/// Runs one async command on a small runtime; prints its result line.
fn pruned_line(pruned: crate::db::Pruned) -> String {
    format!(
        "pruned {} change-log entries; revisions up to {} may no longer be caught up from the log",
        pruned.deleted, pruned.floor
    )
}

/// `migrate --mapping`: the capture installed (or removed) beside the
/// helpdesk's tables, after the mapping was checked against them.
async fn migrate_mapping(url: String, name: String, uninstall: bool) -> Result<String, String> {
    let mapping = crate::mapping::Mapping::load(&name).map_err(|e| e.to_string())?;
    let db = crate::mapped::MappedDb::connect(&url, &mapping)
        .await
        .map_err(|e| e.to_string())?;
    let url = crate::db::redact(&url);
    let line = if uninstall {
        let removed = db.uninstall().await.map_err(|e| e.to_string())?;
        format!(
            "removed the change capture from {url}: {} triggers, {} tables",
            removed.triggers, removed.tables
        )
    } else {
        let done = db.install(&mapping).await.map_err(|e| e.to_string())?;
        format!(
            "installed the change capture of mapping {} on {url}: {} tables followed, {} triggers ({} stale ones dropped); revision {} (followers reload once)",
            mapping.file, done.tables, done.triggers, done.dropped, done.revision
        )
    };
    db.close().await;
    Ok(line)
}

fn run_async(
    name: &str,
    work: impl std::future::Future<Output = Result<String, String>>,
) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(work));
    match outcome {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ticket-authz {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The program: parses arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Test { files } => {
            let stdout = std::io::stdout();
            run_test(&files, &mut stdout.lock()).unwrap_or(ExitCode::FAILURE)
        }
        Command::Serve(args) => crate::serve_cmd::main(*args),
        Command::Relay(args) => crate::fleet_cmd::main(*args),
        Command::Check(args) => crate::grpc::client::main_check(args),
        Command::List(args) => crate::grpc::client::main_list(args),
        Command::Loadtest(args) => crate::loadtest::main(*args),
        Command::LoadtestTarget(args) => match crate::loadtest::serve_target(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ticket-authz loadtest-target: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Migrate {
            database_url,
            mapping: Some(mapping),
            uninstall,
        } => run_async("migrate", migrate_mapping(database_url, mapping, uninstall)),
        Command::Migrate { database_url, .. } => run_async("migrate", async move {
            let db = crate::db::Database::connect(&database_url)
                .await
                .map_err(|e| e.to_string())?;
            db.migrate().await.map_err(|e| e.to_string())?;
            Ok(format!("migrated {}", crate::db::redact(&database_url)))
        }),
        Command::Import {
            database_url,
            replace,
            file,
        } => run_async("import", async move {
            let loaded = dataset::load_file(&file).map_err(|e| e.to_string())?;
            let db = crate::db::Database::connect(&database_url)
                .await
                .map_err(|e| e.to_string())?;
            db.migrate().await.map_err(|e| e.to_string())?;
            let revision = db
                .import(&loaded.dataset, replace)
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "imported {} ({} users, {} tickets) at revision {revision}",
                file.display(),
                loaded.dataset.users.len(),
                loaded.dataset.tickets.len()
            ))
        }),
        Command::Prune {
            database_url,
            older_than,
        } => run_async("prune", async move {
            // A helpdesk's database with a mapping's capture: its log is
            // pruned where it is, and nothing of our schema is created.
            if crate::mapped::url_database(&database_url).is_some() {
                let db = crate::mapped::MappedDb::connect_url(&database_url)
                    .await
                    .map_err(|e| e.to_string())?;
                if db.has_capture().await.map_err(|e| e.to_string())? {
                    let pruned = db.prune(older_than).await.map_err(|e| e.to_string())?;
                    db.close().await;
                    return Ok(pruned_line(pruned));
                }
                db.close().await;
            }
            let db = crate::db::Database::connect(&database_url)
                .await
                .map_err(|e| e.to_string())?;
            db.migrate().await.map_err(|e| e.to_string())?;
            let pruned = db.prune(older_than).await.map_err(|e| e.to_string())?;
            Ok(pruned_line(pruned))
        }),
        Command::ImportCsv(args) => crate::csv_import::main(*args),
        Command::Generate {
            tickets,
            seed,
            sections,
            out,
        } => match run_generate(tickets, seed, sections, out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ticket-authz generate: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
