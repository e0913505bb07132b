//! Runs a scenario file's assertions against a snapshot (`ticket-authz test`).

use std::fmt;

use crate::core::{self, Context, Decision, TicketFilter};
use crate::dataset::{Assertion, Expect};
use crate::snapshot::Snapshot;
use crate::time::Timestamp;

/// A failed assertion: what was asked, expected and answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub index: usize,
    pub assertion: String,
    pub expected: String,
    pub actual: String,
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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub passed: usize,
    pub failures: Vec<Failure>,
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
    })
}

/// Evaluates every assertion; `now` is the clock for ticket limits.
pub fn run(snap: &Snapshot, assertions: &[Assertion], now: Timestamp) -> Outcome {
    let mut outcome = Outcome::default();
    for assertion in assertions {
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
            Ok(()) => outcome.passed += 1,
            Err(failure) => outcome.failures.push(failure),
        }
    }
    outcome
}
