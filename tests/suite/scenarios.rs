//! Every shared scenario file passes, through the library and through the
//! `ticket-authz test` command.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Command;

use ticket_authz::dataset;
use ticket_authz::scenario;
use ticket_authz::snapshot::Snapshot;

#[test]
fn every_shared_scenario_passes_through_the_library() {
    let mut files = common::scenario_files();
    files.extend(common::section_scenario_files());
    for file in files {
        let loaded = dataset::load_file(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !loaded.assertions.is_empty(),
            "{} has no assertions",
            file.display()
        );
        let snap = Snapshot::build(&loaded.dataset).unwrap();
        let outcome = scenario::run(&snap, &loaded.assertions, common::now(&snap));
        let failures: Vec<String> = outcome.failures.iter().map(ToString::to_string).collect();
        assert!(
            failures.is_empty(),
            "{}:\n{}",
            file.display(),
            failures.join("\n")
        );
        assert_eq!(outcome.passed, loaded.assertions.len());
    }
}

#[test]
fn every_shared_scenario_passes_through_the_test_command() {
    let mut files = common::scenario_files();
    files.extend(common::section_scenario_files());
    let output = Command::new(env!("CARGO_BIN_EXE_ticket-authz"))
        .arg("test")
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let total: usize = files
        .iter()
        .map(|f| dataset::load_file(f).unwrap().assertions.len())
        .sum();
    assert_eq!(
        stdout.trim_end().lines().last(),
        Some(format!("{total} passed, 0 failed").as_str())
    );
}

#[test]
fn the_test_command_reports_failures_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("ticket-authz-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("wrong.yaml");
    std::fs::write(
        &file,
        "users: [ { id: ann, created_at: 2026-01-01T00:00:00Z } ]\n\
         tickets: [ { id: t1, created_at: 2026-01-02T00:00:00Z, requester: ann } ]\n\
         assertions:\n\
           - { user: ann, action: view, ticket: t1, expect: allow, reason: REQUESTER }\n\
           - { user: ann, action: edit, ticket: t1, expect: allow }\n\
           - { user: ann, visible_tickets: [] }\n",
    )
    .unwrap();
    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, "users: [ { id: ann } ]\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ticket-authz"))
        .arg("test")
        .arg(&file)
        .arg(&broken)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("assertions[1]: user=ann action=edit ticket=t1: expected allow, got deny NO_MATCHING_RULE"),
        "{stdout}"
    );
    assert!(
        stdout.contains("assertions[2]: visible tickets of ann: expected [], got [t1]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("broken.yaml: user `ann`: field created_at: required"),
        "{stdout}"
    );
    assert_eq!(stdout.trim_end().lines().last(), Some("1 passed, 3 failed"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_demo_dataset_passes_its_own_assertions() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml");
    let loaded = dataset::load_file(&file).unwrap_or_else(|e| panic!("{e}"));
    let snap = Snapshot::build(&loaded.dataset).unwrap();
    let outcome = scenario::run(&snap, &loaded.assertions, common::now(&snap));
    let failures: Vec<String> = outcome.failures.iter().map(ToString::to_string).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(outcome.passed >= 30);
}
