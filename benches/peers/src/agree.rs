//! The agreement check: every compared question is put to the decision
//! core, Cedar and Rego, and the first answer on which they differ is an
//! error, so that a disagreeing comparison is never reported. Cedar's
//! matching policies are also held to the reason the core reports.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ticket_authz::core::{Action, Context, Decision, Reason};
use ticket_authz::snapshot::Snapshot;

use crate::Error;
use crate::cedar::{CedarAnswer, CedarPeer};
use crate::listing::PeerList;
use crate::ours;
use crate::probes::{Kind, Probe};
use crate::rego::RegoPeer;

/// The compared actions.
pub const ACTIONS: [Action; 2] = [Action::View, Action::Comment];

/// Allow rules in the order the access model reports them (§3).
const REPORTING_ORDER: [Reason; 7] = [
    Reason::Superadmin,
    Reason::Requester,
    Reason::Assignee,
    Reason::Cc,
    Reason::Participant,
    Reason::GroupFlag,
    Reason::Organisation,
];

/// The first answer on which the engines differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    pub user: String,
    pub ticket: String,
    pub action: Action,
    /// The core's decision and reason.
    pub ours: String,
    /// Cedar's decision and the reasons of its matching policies.
    pub cedar: String,
    pub rego: String,
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "engines disagree on {} of ticket {} by user {}: ours {}, Cedar {}, Rego {}",
            self.action, self.ticket, self.user, self.ours, self.cedar, self.rego
        )
    }
}

/// Counts of an agreed run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Per action: (questions, allowed).
    pub by_action: BTreeMap<&'static str, (usize, usize)>,
    /// Per kind of pair, both actions: (questions, allowed).
    pub by_kind: BTreeMap<Kind, (usize, usize)>,
    /// The reasons the core gave, both actions.
    pub reasons: BTreeMap<&'static str, usize>,
}

impl Tally {
    pub fn questions(&self) -> usize {
        self.by_action.values().map(|(n, _)| n).sum()
    }

    pub fn allowed(&self) -> usize {
        self.by_action.values().map(|(_, a)| a).sum()
    }

    /// The share of questions allowed, 0 to 1.
    pub fn allow_fraction(&self) -> f64 {
        let n = self.questions();
        if n == 0 {
            0.0
        } else {
            self.allowed() as f64 / n as f64
        }
    }

    fn count(&mut self, kind: Kind, action: Action, decision: &Decision) {
        let allowed = usize::from(decision.allowed);
        let a = self.by_action.entry(action.name()).or_default();
        a.0 += 1;
        a.1 += allowed;
        let k = self.by_kind.entry(kind).or_default();
        k.0 += 1;
        k.1 += allowed;
        *self.reasons.entry(decision.reason.name()).or_default() += 1;
    }
}

/// Whether Cedar's matching policies tell the same story as the core's
/// reason: on an allow, the first matching rule in reporting order is the
/// core's; on a denial, only the suspension `forbid` matched, or nothing.
fn reasons_agree(ours: &Decision, cedar: &CedarAnswer) -> bool {
    let matched: BTreeSet<&str> = cedar.reasons.iter().map(String::as_str).collect();
    if ours.allowed {
        REPORTING_ORDER
            .iter()
            .find(|r| matched.contains(r.name()))
            .is_some_and(|first| *first == ours.reason)
    } else if ours.reason == Reason::Suspended {
        matched.len() == 1 && matched.contains(Reason::Suspended.name())
    } else {
        matched.is_empty()
    }
}

fn describe(decision: &Decision) -> String {
    let verdict = if decision.allowed { "allow" } else { "deny" };
    format!("{verdict} ({})", decision.reason)
}

fn verdict(allowed: bool) -> &'static str {
    if allowed { "allow" } else { "deny" }
}

/// Puts every probe to the three engines, for `view` and `comment`.
pub fn agree_on_checks(
    snap: &Snapshot,
    ctx: Context,
    cedar: &CedarPeer,
    rego: &mut RegoPeer,
    probes: &[Probe],
) -> Result<Tally, Error> {
    let mut tally = Tally::default();
    for probe in probes {
        let input = RegoPeer::input(&probe.user, &probe.ticket);
        for action in ACTIONS {
            let ours = ours::check(snap, ctx, &probe.user, action, &probe.ticket)?;
            let request = cedar.request(&probe.user, action, &probe.ticket)?;
            let by_cedar = cedar.decide(&request)?;
            let by_rego = rego.is_allowed(action, &input)?;
            let agreed = ours.allowed == by_cedar.allowed
                && ours.allowed == by_rego
                && reasons_agree(&ours, &by_cedar);
            if !agreed {
                return Err(Error::Disagreement(Box::new(Disagreement {
                    user: probe.user.clone(),
                    ticket: probe.ticket.clone(),
                    action,
                    ours: describe(&ours),
                    cedar: format!(
                        "{} (matching: {})",
                        verdict(by_cedar.allowed),
                        by_cedar.reasons.join(", ")
                    ),
                    rego: verdict(by_rego).to_owned(),
                })));
            }
            tally.count(probe.kind, action, &ours);
        }
    }
    Ok(tally)
}

/// Checks that the peers, asked ticket by ticket, see exactly the tickets
/// of the list that the core's visible-ticket list holds. Returns how many
/// of the list's tickets are visible.
pub fn agree_on_list(
    snap: &Snapshot,
    cedar: &CedarPeer,
    rego: &mut RegoPeer,
    list: &PeerList,
) -> Result<usize, Error> {
    let all: BTreeSet<String> = ours::visible_tickets(snap, &list.user)?
        .into_iter()
        .collect();
    let by_cedar: BTreeSet<&str> = list.cedar_visible(cedar).into_iter().collect();
    let by_rego: BTreeSet<&str> = list.rego_visible(rego)?.into_iter().collect();
    let mut visible = 0;
    for ticket in &list.tickets {
        let ours = all.contains(ticket);
        let c = by_cedar.contains(ticket.as_str());
        let r = by_rego.contains(ticket.as_str());
        if ours != c || ours != r {
            return Err(Error::Disagreement(Box::new(Disagreement {
                user: list.user.clone(),
                ticket: ticket.clone(),
                action: Action::View,
                ours: format!("{} (visible-ticket list)", verdict(ours)),
                cedar: verdict(c).to_owned(),
                rego: verdict(r).to_owned(),
            })));
        }
        visible += usize::from(ours);
    }
    Ok(visible)
}
