//! Dataset files: every kind of bad input is reported with the file, the
//! entity and the field, and a file with any problem loads nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ticket_authz::dataset::{self, DatasetError};

const BASE: &str = "
organisations: [ { id: acme, name: Acme } ]
companies: [ { id: co, name: Co } ]
groups: [ { id: g, name: G } ]
profiles: [ { id: p, name: P, flags: [IR] } ]
users: [ { id: ann, created_at: 2026-01-01T00:00:00Z } ]
tickets: [ { id: t, created_at: 2026-01-02T00:00:00Z, requester: ann } ]
";

/// The error text of loading `yaml`, which must fail.
fn error_of(yaml: &str) -> String {
    match dataset::load_str("data.yaml", yaml) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

fn assert_reports(yaml: &str, expected: &str) {
    let text = error_of(yaml);
    assert!(text.contains(expected), "expected `{expected}` in:\n{text}");
}

#[test]
fn the_base_dataset_is_valid() {
    let loaded = dataset::load_str("data.yaml", BASE).unwrap();
    assert_eq!(loaded.dataset.tickets.len(), 1);
}

#[test]
fn unknown_references_name_file_entity_and_field() {
    let cases = [
        (
            "tickets: [ { id: t2, created_at: 2026-01-02T00:00:00Z, requester: bob } ]",
            "data.yaml: ticket `t2`: field requester: unknown user `bob`",
        ),
        (
            "tickets: [ { id: t2, created_at: 2026-01-02T00:00:00Z, requester: ann, organisation: nope } ]",
            "ticket `t2`: field organisation: unknown organisation `nope`",
        ),
        (
            "tickets: [ { id: t2, created_at: 2026-01-02T00:00:00Z, requester: ann, group: nope } ]",
            "ticket `t2`: field group: unknown group `nope`",
        ),
        (
            "tickets: [ { id: t2, created_at: 2026-01-02T00:00:00Z, requester: ann, ccs: [zed] } ]",
            "ticket `t2`: field ccs: unknown user `zed`",
        ),
        (
            "tickets: [ { id: t2, created_at: 2026-01-02T00:00:00Z, requester: ann, participants: [zed] } ]",
            "ticket `t2`: field participants: unknown user `zed`",
        ),
        (
            "tickets: [ { id: t2, created_at: 2026-01-02T00:00:00Z, requester: ann, assignee: zed } ]",
            "ticket `t2`: field assignee: unknown user `zed`",
        ),
        (
            "users: [ { id: bo, created_at: 2026-01-01T00:00:00Z, grants: [ { profile: nope, group: g } ] } ]",
            "user `bo`: field grants.profile: unknown profile `nope`",
        ),
        (
            "users: [ { id: bo, created_at: 2026-01-01T00:00:00Z, grants: [ { profile: p, group: nope } ] } ]",
            "user `bo`: field grants.group: unknown group `nope`",
        ),
        (
            "users: [ { id: bo, created_at: 2026-01-01T00:00:00Z, organisations: [nope] } ]",
            "user `bo`: field organisations: unknown organisation `nope`",
        ),
        (
            "users: [ { id: bo, created_at: 2026-01-01T00:00:00Z, company: nope } ]",
            "user `bo`: field company: unknown company `nope`",
        ),
        (
            "users: [ { id: bo, created_at: 2026-01-01T00:00:00Z, default_organisation: nope } ]",
            "user `bo`: field default_organisation: unknown organisation `nope`",
        ),
        (
            "groups: [ { id: g2, name: G2, parent: nope } ]",
            "group `g2`: field parent: unknown group `nope`",
        ),
        (
            "companies: [ { id: c2, name: C2, owner: nope } ]",
            "company `c2`: field owner: unknown user `nope`",
        ),
        (
            "organisations: [ { id: o2, name: O2, access_managers: [nope] } ]",
            "organisation `o2`: field access_managers: unknown user `nope`",
        ),
        (
            "partnerships: [ { partner: acme, client: nope, since: 2026-01-01T00:00:00Z } ]",
            "partnerships[0] (acme → nope): field client: unknown organisation `nope`",
        ),
    ];
    for (extra, expected) in cases {
        // Append to the base lists by replacing the whole list of that kind.
        let key = extra.split(':').next().unwrap();
        let base: String = BASE
            .lines()
            .filter(|l| !l.starts_with(&format!("{key}:")) || key == "partnerships")
            .collect::<Vec<_>>()
            .join("\n");
        let merged = merge(&base, extra, key);
        assert_reports(&merged, expected);
    }
}

/// Puts `extra`'s entries after the base entries of `key`.
fn merge(base: &str, extra: &str, key: &str) -> String {
    let original = BASE.lines().find(|l| l.starts_with(&format!("{key}:")));
    let extra_items = extra.trim_start_matches(&format!("{key}:")).trim();
    let extra_items = extra_items
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim();
    match original {
        Some(line) => {
            let items = line.trim_start_matches(&format!("{key}:")).trim();
            let items = items.trim_start_matches('[').trim_end_matches(']').trim();
            format!("{base}\n{key}: [ {items}, {extra_items} ]\n")
        }
        None => format!("{base}\n{key}: [ {extra_items} ]\n"),
    }
}

#[test]
fn duplicate_ids_are_reported() {
    let user = "{ id: ann, created_at: 2026-01-01T00:00:00Z }";
    assert_reports(
        &BASE.replace(
            &format!("users: [ {user} ]"),
            &format!("users: [ {user}, {user} ]"),
        ),
        "user `ann`: field id: duplicate id",
    );
    assert_reports(
        &BASE.replace(
            "groups: [ { id: g, name: G } ]",
            "groups: [ { id: g, name: G }, { id: g, name: Again } ]",
        ),
        "group `g`: field id: duplicate id",
    );
}

#[test]
fn parent_cycles_are_reported() {
    let yaml = format!("{BASE}\n").replace(
        "groups: [ { id: g, name: G } ]",
        "groups: [ { id: g, name: G, parent: h }, { id: h, name: H, parent: g } ]",
    );
    assert_reports(&yaml, "field parent: parent cycle: g → h → g");
    let yaml = BASE.replace(
        "companies: [ { id: co, name: Co } ]",
        "companies: [ { id: co, name: Co, parent: co } ]",
    );
    assert_reports(&yaml, "company `co`: field parent: parent cycle: co → co");
}

#[test]
fn unknown_flags_and_enum_values_are_reported() {
    assert_reports(
        &BASE.replace("flags: [IR]", "flags: [IR, ir, XX]"),
        "profile `p`: field flags: unknown flag `ir`",
    );
    assert_reports(
        &BASE.replace("flags: [IR]", "flags: [XX]"),
        "profile `p`: field flags: unknown flag `XX`",
    );
    assert_reports(
        &BASE.replace(
            "{ id: acme, name: Acme }",
            "{ id: acme, name: Acme, ticket_access: everyone }",
        ),
        "organisation `acme`: field ticket_access: unknown value `everyone`, expected one of own, view_all, comment_all",
    );
    assert_reports(
        &BASE.replace(
            "created_at: 2026-01-01T00:00:00Z }",
            "created_at: 2026-01-01T00:00:00Z, kind: admin }",
        ),
        "user `ann`: field kind: unknown value `admin`",
    );
    assert_reports(
        &BASE.replace(
            "created_at: 2026-01-01T00:00:00Z }",
            "created_at: 2026-01-01T00:00:00Z, ticket_access: all }",
        ),
        "user `ann`: field ticket_access: unknown value `all`",
    );
    assert_reports(
        &BASE.replace("requester: ann }", "requester: ann, status: done }"),
        "ticket `t`: field status: unknown value `done`",
    );
}

#[test]
fn bad_timestamps_and_emails_are_reported() {
    assert_reports(
        &BASE.replace("2026-01-02T00:00:00Z", "2026-01-02"),
        "ticket `t`: field created_at: `2026-01-02` is not an RFC 3339 timestamp",
    );
    assert_reports(
        &BASE.replace("2026-01-02T00:00:00Z", "yesterday"),
        "ticket `t`: field created_at: `yesterday` is not an RFC 3339 timestamp",
    );
    assert_reports(
        &format!("now: 2026-13-01T00:00:00Z\n{BASE}"),
        "dataset: field now: `2026-13-01T00:00:00Z` is not an RFC 3339 timestamp",
    );
    assert_reports(
        &BASE.replace(
            "{ id: ann, created_at",
            "{ id: ann, email: ann.acme.example, created_at",
        ),
        "user `ann`: field email: `ann.acme.example` is not an email address",
    );
    assert_reports(
        &BASE.replace("{ id: acme, name: Acme }", "{ id: acme, name: Acme, domains: [ { domain: bad_domain, added_at: 2026-01-01T00:00:00Z } ] }"),
        "organisation `acme`: field domains.domain: `bad_domain` is not a domain name",
    );
    assert_reports(
        &BASE.replace(
            "{ id: ann, created_at: 2026-01-01T00:00:00Z }",
            "{ id: ann }",
        ),
        "user `ann`: field created_at: required",
    );
}

#[test]
fn ids_are_strings_or_integers_and_never_the_all_group() {
    let loaded = dataset::load_str("data.yaml", &BASE.replace("{ id: t,", "{ id: 1001,")).unwrap();
    assert_eq!(loaded.dataset.tickets[0].id, "1001");
    assert_reports(
        &BASE.replace("{ id: t,", "{ id: 10.5,"),
        "data.yaml: tickets[0].id: invalid type: floating point `10.5`, expected an id",
    );
    assert_reports(
        &BASE.replace("{ id: t,", "{ id: true,"),
        "expected an id (a string or an integer)",
    );
    assert_reports(
        &BASE.replace("{ id: g, name: G }", "{ id: \"*\", name: All }"),
        "groups[0]: field id: `*` is reserved",
    );
    assert_reports(
        &BASE.replace("requester: ann }", "requester: ann, group: \"*\" }"),
        "ticket `t`: field group: `*` is reserved",
    );
    assert_reports(
        &BASE.replace("{ id: t,", "{ id: \"\","),
        "tickets[0]: field id: must not be empty",
    );
    let long = "x".repeat(129);
    assert_reports(
        &BASE.replace("{ id: t,", &format!("{{ id: {long},")),
        "tickets[0]: field id: is 129 bytes long",
    );
}

#[test]
fn unknown_fields_and_syntax_errors_name_the_file() {
    assert_reports(
        &BASE.replace("{ id: ann,", "{ id: ann, emial: a@b.example,"),
        "data.yaml: users[0]: unknown field `emial`",
    );
    assert_reports("users: [ { id: ann", "data.yaml:");
}

#[test]
fn every_problem_is_reported_and_nothing_is_loaded() {
    let yaml = BASE
        .replace("requester: ann }", "requester: bob, status: done }")
        .replace("flags: [IR]", "flags: [ZZ]");
    match dataset::load_str("data.yaml", &yaml) {
        Err(DatasetError::Invalid { file, problems }) => {
            assert_eq!(file, "data.yaml");
            let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
            assert_eq!(fields, ["flags", "requester", "status"], "{problems:?}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn assertions_are_validated() {
    assert_reports(
        &format!("{BASE}assertions: [ {{ user: ann, action: view, ticket: t, expect: maybe }} ]"),
        "assertions[0]: field expect: unknown value `maybe`",
    );
    assert_reports(
        &format!("{BASE}assertions: [ {{ user: ann, action: view, ticket: t }} ]"),
        "assertions[0]: field expect: required",
    );
    assert_reports(
        &format!(
            "{BASE}assertions: [ {{ user: ann, action: view, ticket: t, expect: allow, reason: OK }} ]"
        ),
        "assertions[0]: field reason: unknown reason `OK`",
    );
    assert_reports(
        &format!("{BASE}assertions: [ {{ visible_tickets: [t] }} ]"),
        "assertions[0]: field user: required with visible_tickets",
    );
}

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let err = dataset::load_file(std::path::Path::new("/nonexistent/data.yaml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/data.yaml: cannot read"),
        "{err}"
    );
}
