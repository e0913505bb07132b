//! The `import-csv` subcommand: flags, then notes on stderr and one
//! summary line on stdout (problems on stderr and exit code 1).

use std::path::PathBuf;
use std::process::ExitCode;

use super::{CsvError, Format, GlobalProfile, Level, Options, Progress, Report, RowGrant};

/// Notes printed at most; the rest are counted.
const MAX_NOTES: usize = 100;

#[derive(Debug, clap::Args)]
pub struct ImportCsvArgs {
    /// postgres://… or sqlite://PATH (a missing SQLite file is created).
    #[arg(long, env = "TICKET_AUTHZ_DATABASE_URL")]
    pub database_url: String,
    /// Which export the file is.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Check the file and count new, changed and unchanged rows; write
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// itsm-users: a grant in this group (`*`: every group) for every row,
    /// with --profile.
    #[arg(long, requires = "profile")]
    pub group: Option<String>,
    /// itsm-users: the profile of that grant, with --group.
    #[arg(long, requires = "group")]
    pub profile: Option<String>,
    /// itsm-users: standard (agents) or external (end-users) for every
    /// row; without it existing users keep their kind and new ones are
    /// end-users.
    #[arg(long, value_enum)]
    pub global_profile: Option<GlobalProfile>,
    /// The CSV file (UTF-8, with or without BOM; `,` or `;`).
    pub file: PathBuf,
}

impl ImportCsvArgs {
    fn options(&self) -> Options {
        let grant = match (&self.group, &self.profile) {
            (Some(group), Some(profile)) => Some(RowGrant {
                profile: profile.clone(),
                group: group.clone(),
            }),
            _ => None,
        };
        Options {
            dry_run: self.dry_run,
            grant,
            global_profile: self.global_profile,
            ..Options::new(self.format)
        }
    }
}

fn print_notes(report: &Report) {
    for note in report.notes.iter().take(MAX_NOTES) {
        let level = match note.level {
            Level::Notice => "notice",
            Level::Warning => "warning",
        };
        eprintln!("{level}: {}:{}: {}", report.file, note.place, note.message);
    }
    if report.notes.len() > MAX_NOTES {
        eprintln!(
            "notice: {}: {} more notes not shown",
            report.file,
            report.notes.len() - MAX_NOTES
        );
    }
}

/// The summary line: counts, then what happened.
pub(crate) fn summary(report: &Report, dry_run: bool) -> String {
    let outcome = if dry_run {
        format!("dry run, nothing written (revision {})", report.revision)
    } else if !report.written {
        format!("nothing to write (revision {})", report.revision)
    } else if report.bulk {
        format!("written as one bulk change at revision {}", report.revision)
    } else {
        format!("written at revision {}", report.revision)
    };
    format!(
        "{}: {} rows: {} new, {} changed, {} unchanged; {outcome}",
        report.file, report.rows, report.new, report.changed, report.unchanged
    )
}

async fn run(args: &ImportCsvArgs) -> Result<Report, CsvError> {
    let db = crate::db::Database::connect(&args.database_url).await?;
    db.migrate().await?;
    let report = super::import_file(&db, &args.file, &args.options(), &Progress::stderr()).await;
    db.close().await;
    report
}

/// Runs `ticket-authz import-csv`.
pub fn main(args: ImportCsvArgs) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .map(|rt| rt.block_on(run(&args)));
    match outcome {
        Ok(Ok(report)) => {
            print_notes(&report);
            println!("{}", summary(&report, args.dry_run));
            ExitCode::SUCCESS
        }
        // Each problem line already names the file.
        Ok(Err(e @ CsvError::Invalid { .. })) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("ticket-authz import-csv: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("ticket-authz import-csv: {e}");
            ExitCode::FAILURE
        }
    }
}
