//! Runs a scenario file's assertions against a snapshot (`ticket-authz test`
//! and the console's playground, which must count alike).

use std::fmt;
use std::time::Instant;

use crate::core::{self, Context, Decision, TicketFilter};
use crate::dataset::{self, Assertion, DatasetError, Expect};
use crate::snapshot::Snapshot;
use crate::time::Timestamp;

/// A failed assertion: what was asked, expected and answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub index: usize,
    pub assertion: String,
    pub expected: String,
    pub actual: String,
    /// The explanation steps of a failing check's answer (empty for lists
    /// and for requests refused as malformed).
    pub explanation: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "assertions[{}]: {}: expected {}, got {}",
            self.index, self.assertion, self.expected, self.actual
        )
    }
}

/// A passed assertion: its position and what it asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub index: usize,
    pub assertion: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub passed: usize,
    pub failures: Vec<Failure>,
    /// Each passed assertion, in file order.
    pub passes: Vec<Pass>,
    /// Set when the deadline passed: how many assertions were evaluated;
    /// the rest were not.
    pub stopped_after: Option<usize>,
}

fn describe(decision: &Decision) -> String {
    let verdict = if decision.allowed { "allow" } else { "deny" };
    match decision.warning {
        Some(w) => format!("{verdict} {} (warning {w})", decision.reason),
        None => format!("{verdict} {}", decision.reason),
    }
}

/// Pages through a list with a small page size, so that resuming is
/// exercised too, and returns the ids in the order received.
const ASSERTION_PAGE: u32 = 2;

fn walk(
    mut page: impl FnMut(&str) -> Result<core::Page, core::ListError>,
) -> Result<Vec<String>, core::ListError> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let p = page(&token)?;
        out.extend(p.ids);
        match p.next_page_token {
            Some(next) => token = next,
            None => return Ok(out),
        }
    }
}

fn compare_sets(
    index: usize,
    what: String,
    expected: &[String],
    listed: Result<Vec<String>, core::ListError>,
) -> Result<(), Failure> {
    let mut want = expected.to_vec();
    want.sort_unstable();
    let actual = match listed {
        Ok(got) => {
            let mut sorted = got.clone();
            sorted.sort_unstable();
            if sorted == want && got == sorted {
                return Ok(());
            }
            format!("[{}]", got.join(", "))
        }
        Err(e) => format!("error {e}"),
    };
    Err(Failure {
        index,
        assertion: what,
        expected: format!("[{}]", want.join(", ")),
        actual,
        explanation: Vec::new(),
    })
}

/// Evaluates every assertion; `now` is the clock for ticket limits.
pub fn run(snap: &Snapshot, assertions: &[Assertion], now: Timestamp) -> Outcome {
    run_until(snap, assertions, now, None)
}

/// What was asked, for a passed assertion.
fn asked(assertion: &Assertion) -> String {
    match assertion {
        Assertion::Check { request, .. } => request.to_string(),
        Assertion::VisibleTickets { user, .. } => format!("visible tickets of {user}"),
        Assertion::Viewers { ticket, .. } => format!("viewers of {ticket}"),
        Assertion::VisibleResources { user, kind, .. } => {
            format!("visible {kind} resources of {user}")
        }
    }
}

/// [`run`], stopping before the next assertion once `deadline` has passed
/// (the playground's time bound); `stopped_after` then says so.
pub fn run_until(
    snap: &Snapshot,
    assertions: &[Assertion],
    now: Timestamp,
    deadline: Option<Instant>,
) -> Outcome {
    let mut outcome = Outcome::default();
    for (done, assertion) in assertions.iter().enumerate() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            outcome.stopped_after = Some(done);
            break;
        }
        let result = match assertion {
            Assertion::Check {
                index,
                request,
                expect,
                reason,
                warning,
            } => {
                let answer = core::check(snap, &request.as_request(), Context::at(now));
                let ok = match (&answer, expect) {
                    (Err(_), Expect::Invalid) => true,
                    (Ok(d), Expect::Allow | Expect::Deny) => {
                        d.allowed == (*expect == Expect::Allow)
                            && reason.is_none_or(|r| r == d.reason)
                            && *warning == d.warning
                    }
                    _ => false,
                };
                if ok {
                    Ok(())
                } else {
                    let mut expected = expect.name().to_owned();
                    if let Some(r) = reason {
                        expected.push(' ');
                        expected.push_str(r.name());
                    }
                    if let Some(w) = warning {
                        expected.push_str(&format!(" (warning {w})"));
                    }
                    Err(Failure {
                        index: *index,
                        assertion: request.to_string(),
                        expected,
                        explanation: match &answer {
                            Ok(_) => core::check(
                                snap,
                                &request.as_request(),
                                Context {
                                    explain: true,
                                    ..Context::at(now)
                                },
                            )
                            .map(|d| d.explanation)
                            .unwrap_or_default(),
                            Err(_) => Vec::new(),
                        },
                        actual: match answer {
                            Ok(d) => describe(&d),
                            Err(e) => format!("invalid ({e})"),
                        },
                    })
                }
            }
            Assertion::VisibleTickets {
                index,
                user,
                tickets,
            } => {
                let filter = TicketFilter::default();
                compare_sets(
                    *index,
                    format!("visible tickets of {user}"),
                    tickets,
                    walk(|token| {
                        core::list_visible_tickets(snap, user, &filter, ASSERTION_PAGE, token)
                    }),
                )
            }
            Assertion::Viewers {
                index,
                ticket,
                users,
            } => compare_sets(
                *index,
                format!("viewers of {ticket}"),
                users,
                walk(|token| core::list_ticket_viewers(snap, ticket, ASSERTION_PAGE, token)),
            ),
            Assertion::VisibleResources {
                index,
                user,
                kind,
                ids,
            } => compare_sets(
                *index,
                format!("visible {kind} resources of {user}"),
                ids,
                walk(|token| {
                    core::list_visible_resources(snap, user, *kind, ASSERTION_PAGE, token)
                }),
            ),
        };
        match result {
            Ok(()) => {
                outcome.passed += 1;
                outcome.passes.push(Pass {
                    index: assertion_index(assertion),
                    assertion: asked(assertion),
                });
            }
            Err(failure) => outcome.failures.push(failure),
        }
    }
    outcome
}

fn assertion_index(assertion: &Assertion) -> usize {
    match assertion {
        Assertion::Check { index, .. }
        | Assertion::VisibleTickets { index, .. }
        | Assertion::Viewers { index, .. }
        | Assertion::VisibleResources { index, .. } => *index,
    }
}

/// One file's result as `ticket-authz test` counts it: a file that does
/// not load or build counts as one failure.
#[derive(Debug)]
pub enum FileResult {
    /// The data loaded; its assertions ran.
    Ran(Outcome),
    /// The file has syntax or validation problems; nothing was loaded.
    Invalid(DatasetError),
    /// The data did not build into a snapshot (a dangling reference, a cycle).
    NotBuilt(String),
}

impl FileResult {
    /// (passed, failed), as `ticket-authz test` adds them up.
    pub fn counts(&self) -> (usize, usize) {
        match self {
            FileResult::Ran(o) => (
                o.passed,
                o.failures.len() + o.stopped_after.map_or(0, |_| 1),
            ),
            FileResult::Invalid(_) | FileResult::NotBuilt(_) => (0, 1),
        }
    }
}

/// Loads dataset text named `file`, builds a private snapshot of it (never
/// published anywhere) and runs its assertions up to `deadline`; the
/// clock is the file's `now`, else the wall clock.
pub fn run_text(file: &str, text: &str, deadline: Option<Instant>) -> FileResult {
    let loaded = match dataset::load_str(file, text) {
        Ok(loaded) => loaded,
        Err(e) => return FileResult::Invalid(e),
    };
    let snapshot = match Snapshot::build(&loaded.dataset) {
        Ok(s) => s,
        Err(e) => return FileResult::NotBuilt(format!("{file}: {e}")),
    };
    let now = snapshot.fixed_now().unwrap_or_else(Timestamp::now);
    FileResult::Ran(run_until(&snapshot, &loaded.assertions, now, deadline))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    const TWO: &str = "users:\n  - { id: ann, created_at: 2026-01-01T00:00:00Z }\ntickets:\n  - { id: t1, created_at: 2026-01-02T00:00:00Z, requester: ann }\nassertions:\n  - { user: ann, action: view, ticket: t1, expect: allow }\n  - { user: ann, action: delete, ticket: t1, expect: allow }\n";

    /// The playground's time bound: past the deadline nothing more runs,
    /// and the file counts as failed rather than passed.
    #[test]
    fn a_run_past_its_deadline_stops_and_counts_as_a_failure() {
        let past = Instant::now();
        let FileResult::Ran(outcome) = run_text("f.yaml", TWO, Some(past)) else {
            panic!("the file did not load");
        };
        assert_eq!(outcome.stopped_after, Some(0));
        assert_eq!(outcome.passed, 0);
        assert_eq!(FileResult::Ran(outcome).counts(), (0, 1));
        let later = Instant::now() + std::time::Duration::from_secs(60);
        let result = run_text("f.yaml", TWO, Some(later));
        assert_eq!(result.counts(), (1, 1));
        let FileResult::Ran(outcome) = result else {
            panic!("the file did not load");
        };
        assert_eq!(
            outcome.passes[0].assertion,
            "user=ann action=view ticket=t1"
        );
        assert!(
            outcome.failures[0]
                .explanation
                .iter()
                .any(|s| s.contains("NO_MATCHING_RULE")),
            "{:?}",
            outcome.failures[0]
        );
    }

    #[test]
    fn a_syntax_error_carries_its_line_and_column() {
        let FileResult::Invalid(DatasetError::Syntax { line, column, .. }) =
            run_text("f.yaml", "users:\n  - { id: ann\n    created_at: [\n", None)
        else {
            panic!("not a syntax error");
        };
        assert!(line.is_some_and(|l| l >= 2), "{line:?}");
        assert!(column.is_some());
    }
}
