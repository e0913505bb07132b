//! The three engines agree on a small generated dataset: every compared
//! question for `view` and `comment`, and whole visible-ticket lists. The
//! benchmark makes the same check on its own data before timing anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ticket_authz::core::Context;
use ticket_authz::generate::{AGENT_USER, NARROW_USER, Spec, WIDE_USER, generate};
use ticket_authz::snapshot::Snapshot;
use ticket_authz::time::Timestamp;
use ticket_authz_peers::{
    CedarPeer, Facts, Kind, PeerList, RegoPeer, agree_on_checks, agree_on_list, listing, sample,
};

#[test]
fn cedar_rego_and_the_core_agree() {
    let data = generate(&Spec::scaled(5_000));
    let snap = Snapshot::build(&data).unwrap();
    let ctx = Context::at(snap.fixed_now().unwrap_or_else(Timestamp::now));
    let facts = Facts::derive(&data);
    let cedar = CedarPeer::build(&data, &facts).unwrap();
    let mut rego = RegoPeer::build(&data, &facts).unwrap();

    let probes = sample(&data, &facts, 3_200, 11);
    let tally = match agree_on_checks(&snap, ctx, &cedar, &mut rego, &probes) {
        Ok(tally) => tally,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(tally.questions(), 6_400);
    // Allows and denies both well represented, and every kind drawn.
    let allowed = tally.allow_fraction();
    assert!((0.25..=0.75).contains(&allowed), "allow fraction {allowed}");
    for kind in Kind::ALL {
        assert!(
            tally.by_kind.contains_key(&kind),
            "no pair of kind {kind:?}"
        );
    }
    for reason in [
        "SUPERADMIN",
        "REQUESTER",
        "ASSIGNEE",
        "CC",
        "PARTICIPANT",
        "GROUP_FLAG",
        "ORGANISATION",
        "SUSPENDED",
        "NO_MATCHING_RULE",
    ] {
        assert!(
            tally.reasons.contains_key(reason),
            "no decision by {reason}"
        );
    }

    // Whole lists: the peers check every ticket of this small dataset.
    let every = listing::spread(&data, data.tickets.len());
    let member = probes
        .iter()
        .find(|p| p.kind == Kind::OrgMember)
        .map(|p| p.user.clone())
        .unwrap();
    for user in [WIDE_USER, AGENT_USER, NARROW_USER, member.as_str()] {
        let list = PeerList::new(&cedar, user, every.clone()).unwrap();
        if let Err(e) = agree_on_list(&snap, &cedar, &mut rego, &list) {
            panic!("{e}");
        }
    }
}

#[test]
fn a_wrong_answer_is_caught() {
    // Rego given a dataset where one user is suspended that the core's
    // snapshot does not suspend: the check must report it, not pass.
    let data = generate(&Spec::scaled(1_000));
    let snap = Snapshot::build(&data).unwrap();
    let ctx = Context::at(snap.fixed_now().unwrap_or_else(Timestamp::now));
    let facts = Facts::derive(&data);
    let cedar = CedarPeer::build(&data, &facts).unwrap();
    let mut altered = data.clone();
    let requester = altered.tickets[0].requester.clone();
    for user in &mut altered.users {
        if user.id == requester {
            user.suspended = true;
        }
    }
    let mut rego = RegoPeer::build(&altered, &Facts::derive(&altered)).unwrap();
    let probe = ticket_authz_peers::Probe {
        user: requester,
        ticket: altered.tickets[0].id.clone(),
        kind: Kind::Requester,
    };
    match agree_on_checks(&snap, ctx, &cedar, &mut rego, &[probe]) {
        Err(ticket_authz_peers::Error::Disagreement(d)) => {
            assert_eq!(d.rego, "deny", "{d}");
            assert!(d.ours.starts_with("allow"), "{d}");
        }
        other => panic!("expected a disagreement, got {other:?}"),
    }
}
