//! The `ticket-authz` binary as a user runs it: `serve` configuration
//! errors name the flag; a served dataset answers `check` and `list`; SIGTERM
//! stops it with exit code 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::bin;
/// Arguments, environment, and the text the error must contain.
type ConfigCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

fn serve_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = bin();
    cmd.arg("serve").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn serve_configuration_errors_name_the_flag() {
    let demo = "examples/demo.yaml";
    let cases: [ConfigCase<'_>; 15] = [
        (
            &["--dataset", demo, "--log-filter", "info,[[["],
            &[],
            "--log-filter: `info,[[[`",
        ),
        (
            &["--dataset", demo],
            &[("TICKET_AUTHZ_DECISION_LOG_SAMPLE", "1.5")],
            "--decision-log-sample: 1.5 is not a ratio from 0 to 1",
        ),
        (
            &[
                "--dataset",
                demo,
                "--decision-log",
                "/nonexistent/dir/d.jsonl",
            ],
            &[],
            "--decision-log: cannot open /nonexistent/dir/d.jsonl",
        ),
        (
            &["--dataset", demo, "--metrics-listen", "everywhere"],
            &[],
            "--metrics-listen: `everywhere` is not an address",
        ),
        (
            &["--dataset", demo, "--database-url", "sqlite://x.db"],
            &[],
            "--replace: required with --dataset and --database-url",
        ),
        (
            &["--dataset", demo, "--tls-cert", "cert.pem"],
            &[],
            "--tls-key: required with --tls-cert",
        ),
        (
            &["--dataset", demo, "--tls-key", "key.pem"],
            &[],
            "--tls-cert: required with --tls-key",
        ),
        (
            &["--dataset", demo, "--client-ca", "ca.pem"],
            &[],
            "--client-ca: needs --tls-cert and --tls-key",
        ),
        (
            &[
                "--dataset",
                demo,
                "--tls-cert",
                "/nonexistent/c.pem",
                "--tls-key",
                "/nonexistent/k.pem",
            ],
            &[],
            "--tls-cert: cannot read /nonexistent/c.pem",
        ),
        (
            &["--dataset", demo, "--auth-token-file", "/nonexistent/token"],
            &[],
            "--auth-token-file: cannot read /nonexistent/token",
        ),
        (
            &["--dataset", demo],
            &[("TICKET_AUTHZ_LISTEN", "not-an-address")],
            "--listen: `not-an-address` is not an address",
        ),
        (
            &["--dataset", demo, "--database-url", "sqlite://x.db"],
            &[],
            "--database-url:",
        ),
        (
            &["--dataset", demo, "--ticket-cache", "512MiB"],
            &[],
            "--ticket-cache: needs a database (--database-url)",
        ),
        (
            &["--database-url", "sqlite://x.db"],
            &[("TICKET_AUTHZ_TICKET_CACHE", "lots")],
            "--ticket-cache: `lots`",
        ),
        (
            &["--database-url", "sqlite://x.db", "--ticket-cache", "0"],
            &[],
            "--ticket-cache: `0`: the cache needs room for at least one ticket",
        ),
    ];
    for (args, env, expected) in cases {
        let stderr = serve_error(args, env);
        assert!(
            stderr.contains(expected),
            "{args:?} {env:?}: expected `{expected}` in {stderr}"
        );
    }
    // clap rejects a malformed duration, naming the flag.
    let out = bin()
        .args(["serve", "--dataset", demo, "--revision-wait", "soon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--revision-wait"));
}

#[test]
fn choice_flags_name_the_flag_and_the_choices_from_the_command_line_or_the_environment() {
    let demo = "examples/demo.yaml";
    let notify = "[possible values: listen, poll]";
    let log_format = "[possible values: text, json]";
    // (arguments, environment, the choices), and the flag named.
    let cases: [(ConfigCase<'_>, &str); 4] = [
        ((&["--notify", "push"], &[], notify), "--notify"),
        (
            (&[], &[("TICKET_AUTHZ_NOTIFY", "push")], notify),
            "--notify",
        ),
        ((&["--log-format", "xml"], &[], log_format), "--log-format"),
        (
            (&[], &[("TICKET_AUTHZ_LOG_FORMAT", "xml")], log_format),
            "--log-format",
        ),
    ];
    for ((args, env, choices), flag) in cases {
        let mut cmd = bin();
        cmd.args(["serve", "--dataset", demo]).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains(choices),
            "{args:?} {env:?}: {stderr}"
        );
    }
}

#[test]
fn a_served_dataset_answers_check_and_list_and_stops_on_sigterm() {
    let served = common::serve(&["--dataset", "examples/demo.yaml"], &[]);
    let server = served.grpc.clone();
    let out = bin()
        .args([
            "check", "--server", &server, "--user", "paul", "--action", "view", "--ticket", "1004",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["allowed"], true);
    assert_eq!(answer["reason"], "ORGANISATION");
    assert_eq!(answer["warning"], serde_json::Value::Null);
    assert_eq!(answer["revision"], 1);

    // Connection flags after the subcommand work as well as before it.
    for args in [
        ["list", "--server", &server, "tickets", "--user", "carla"],
        ["list", "tickets", "--server", &server, "--user", "carla"],
    ] {
        let out = bin().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(listed["ids"], serde_json::json!(["1003"]), "{args:?}");
    }
    let out = bin()
        .args([
            "list",
            "--server",
            &server,
            "viewers",
            "--ticket",
            "1003",
            "--page-size",
            "3",
        ])
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["ids"].as_array().unwrap().len(), 8);

    let out = bin()
        .args([
            "check", "--server", &server, "--user", "lena", "--action", "has_flag", "--flag", "XX",
            "--group", "hardware",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("INVALID_ARGUMENT: flag: unknown flag `XX`")
    );

    let status = served.terminate();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn prune_deletes_old_change_log_entries_but_keeps_the_revision() {
    let url = common::sqlite_database("cli-prune");
    let run = |args: &[&str]| {
        let out = bin().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["import", "--database-url", &url, "examples/demo.yaml"]);
    // Two more changes, each its own revision.
    for org in ["northwind", "contoso"] {
        run(&[
            "import-csv",
            "--database-url",
            &url,
            "--format",
            "portal-organisations",
            &write_orgs(&url, org),
        ]);
    }
    let kept = run(&["prune", "--database-url", &url, "--older-than", "1d"]);
    assert!(kept.starts_with("pruned 0 change-log entries"), "{kept}");
    let pruned = run(&["prune", "--database-url", &url, "--older-than", "0s"]);
    assert!(
        pruned.starts_with("pruned ") && !pruned.starts_with("pruned 0 "),
        "{pruned}"
    );
    let out = bin()
        .args(["prune", "--database-url", &url, "--older-than", "soon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--older-than"));
}

/// A one-row organisation export renaming `org`, next to the database.
fn write_orgs(url: &str, org: &str) -> String {
    let dir = std::path::Path::new(url.trim_start_matches("sqlite://"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = dir.join(format!("{org}.csv"));
    std::fs::write(
        &path,
        format!("name,id,domain_names,shared_tickets,shared_comments\nRenamed {org},{org},,,\n"),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn check_and_list_ask_about_section_resources() {
    let file = common::section_scenario_files().remove(0);
    let served = common::serve(&["--dataset", file.to_str().unwrap()], &[]);
    let server = served.grpc.clone();
    let run = |args: &[&str]| {
        let out = bin().args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(&[
        "check",
        "--server",
        &server,
        "--user",
        "ali",
        "--action",
        "task_edit",
        "--resource",
        "labels",
        "--explain",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let answer: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(answer["allowed"], true);
    assert_eq!(answer["reason"], "ROLE");
    assert!(
        answer["explanation"]
            .to_string()
            .contains("an ancestor of labels"),
        "{answer}"
    );

    let (code, _, stderr) = run(&[
        "check",
        "--server",
        &server,
        "--user",
        "ali",
        "--action",
        "task_edit",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("INVALID_ARGUMENT: resource_id: required"),
        "{stderr}"
    );

    let (code, stdout, stderr) = run(&[
        "list",
        "--server",
        &server,
        "resources",
        "--kind",
        "task",
        "--user",
        "wes",
        "--page-size",
        "2",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let listed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        listed["ids"],
        serde_json::json!(["cabling", "labels", "plan"])
    );

    let (code, _, stderr) = run(&[
        "list",
        "--server",
        &server,
        "resources",
        "--kind",
        "ticket",
        "--user",
        "wes",
    ]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("--kind: unknown kind `ticket`"), "{stderr}");
    assert_eq!(served.terminate().code(), Some(0));
}
