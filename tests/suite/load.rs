//! `ticket-authz loadtest` as an SRE runs it: against an in-process service
//! and the no-op service it reports every run and the ratios; against a
//! served, token-protected dataset it authenticates or fails naming why;
//! bad flags are refused naming the flag.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::bin;

fn loadtest(args: &[&str]) -> std::process::Output {
    bin().arg("loadtest").args(args).output().unwrap()
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "loadtest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One round of a second against the no-op, on small generated data.
const SHORT_COMPARISON: &[&str] = &[
    "--tickets",
    "2000",
    "--concurrency",
    "8",
    "--duration",
    "1s",
    "--warmup",
    "200ms",
    "--compare-noop",
    "--rounds",
    "1",
];

#[test]
fn loadtest_compares_the_service_with_the_noop_service() {
    let out = loadtest(
        &[
            SHORT_COMPARISON,
            &["--mix", "check=2,batch=1,list=1", "--json"],
        ]
        .concat(),
    );
    let doc = json_of(&out);
    let runs = doc["runs"].as_array().unwrap();
    let phases: Vec<(&str, &str)> = runs
        .iter()
        .map(|r| (r["target"].as_str().unwrap(), r["phase"].as_str().unwrap()))
        .collect();
    assert_eq!(
        phases,
        [
            ("noop", "closed"),
            ("service", "closed"),
            ("noop", "paced"),
            ("service", "paced")
        ]
    );
    for run in runs {
        assert_eq!(run["errors"], 0, "{run}");
        assert!(run["latency"]["requests"].as_u64().unwrap() > 0, "{run}");
        assert!(run["throughput_rps"].as_f64().unwrap() > 0.0, "{run}");
        // Each percentile must be there and be a number: comparing the
        // `Option`s would pass a renamed field as `None <= None`.
        let l = &run["latency"];
        let ms = |field: &str| {
            l[field]
                .as_f64()
                .unwrap_or_else(|| panic!("latency.{field} is missing or not a number: {run}"))
        };
        let (p50, p99, p999, max) = (ms("p50_ms"), ms("p99_ms"), ms("p999_ms"), ms("max_ms"));
        assert!(p50 > 0.0, "{run}");
        assert!(p50 <= p99 && p99 <= p999 && p999 <= max, "{run}");
        for rpc in ["CheckAccess", "CheckAccessBatch", "ListVisibleTickets"] {
            assert!(
                run["by_rpc"][rpc]["requests"].as_u64().unwrap() > 0,
                "{rpc} not sent: {run}"
            );
        }
    }
    // Both paced runs are sent at half of the service's closed-loop rate.
    let closed_rps = runs[1]["throughput_rps"].as_f64().unwrap();
    for paced in &runs[2..] {
        let rate = paced["rate"].as_f64().unwrap();
        assert!(
            (rate - closed_rps / 2.0).abs() < 1e-6 * closed_rps,
            "{paced}"
        );
    }
    let compared = doc["compared"].as_array().unwrap();
    assert_eq!(compared.len(), 2);
    for c in compared {
        let ratio = c["throughput_ratio"].as_f64().unwrap();
        assert!(ratio.is_finite() && ratio > 0.0, "{c}");
        let p99 = c["p99_ratio"].as_f64().unwrap();
        assert!(p99.is_finite() && p99 > 0.0, "{c}");
    }
}

#[test]
fn loadtest_loads_a_served_dataset_with_its_token() {
    let dir = std::env::temp_dir().join(format!("ta-loadtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data.yaml");
    let token = dir.join("token");
    std::fs::write(&token, "s3cret-load-token\n").unwrap();
    let generated = bin()
        .args(["generate", "--tickets", "3000", "--seed", "11", "--out"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(generated.success());

    let served = common::serve(
        &[
            "--dataset".as_ref(),
            data.as_os_str(),
            "--auth-token-file".as_ref(),
            token.as_os_str(),
        ],
        &[],
    );
    let server = served.grpc.clone();
    let common_args = [
        "--server",
        server.as_str(),
        "--tickets",
        "3000",
        "--seed",
        "11",
        "--concurrency",
        "4",
        "--requests",
        "3000",
        "--warmup",
        "0s",
        "--mix",
        "check=1,batch=1,list=1",
    ];

    let out = loadtest(&common_args);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unauthenticated"), "{stderr}");

    let mut with_token = common_args.to_vec();
    let pid = served.child.id().to_string();
    with_token.extend([
        "--token-file",
        token.to_str().unwrap(),
        "--server-pid",
        &pid,
        "--json",
    ]);
    let doc = json_of(&loadtest(&with_token));
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "no no-op runs without --compare-noop");
    assert_eq!(runs[0]["target"], "service");
    assert_eq!(runs[0]["errors"], 0);
    // --requests counts measured requests over all callers.
    assert_eq!(runs[0]["latency"]["requests"], 3000);
    // The served process's CPU, read from /proc in 10 ms ticks, divided
    // over them: 3000 answers cost it more than a tick.
    let cpu = runs[0]["server_cpu_us_per_request"].as_f64();
    assert!(cpu.is_some_and(|us| us > 0.0), "{}", runs[0]);
    assert!(doc["compared"].as_array().unwrap().is_empty());

    // The same questions in every form, each reported against the first.
    let mut forms = with_token.clone();
    forms.extend(["--forms", "grpc,connect,authzen", "--rounds", "1"]);
    let doc = json_of(&loadtest(&forms));
    let runs = doc["runs"].as_array().unwrap();
    let targets: Vec<&str> = runs.iter().map(|r| r["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["service", "connect", "authzen"], "{doc}");
    for run in runs {
        assert_eq!(run["errors"], 0, "{run}");
        assert_eq!(run["latency"]["requests"], 3000, "{run}");
        for rpc in ["CheckAccess", "CheckAccessBatch", "ListVisibleTickets"] {
            assert!(
                run["by_rpc"][rpc]["requests"].as_u64() > Some(0),
                "{rpc}: {run}"
            );
        }
    }
    let compared = doc["compared"].as_array().unwrap();
    assert_eq!(compared.len(), 2, "{doc}");
    for c in compared {
        assert_eq!(c["against"], "service");
        assert!(
            c["throughput_ratio"].as_f64().is_some_and(|r| r > 0.0),
            "{c}"
        );
    }
    // ext_authz asks single checks; without the token every form fails.
    let mut ext = common_args.to_vec();
    ext.retain(|a| *a != "check=1,batch=1,list=1");
    ext.extend(["check=1", "--forms", "ext-authz,connect", "--rounds", "1"]);
    let out = loadtest(&ext);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unauthenticated"), "{stderr}");
    ext.extend(["--token-file", token.to_str().unwrap(), "--json"]);
    let doc = json_of(&loadtest(&ext));
    for run in doc["runs"].as_array().unwrap() {
        assert_eq!(run["errors"], 0, "{run}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A new user's measurement: the service and the no-op each in a process
/// of its own, apart from the load generator, each with its CPU per request.
#[test]
fn loadtest_puts_each_target_in_its_own_process_and_reports_their_cpu() {
    let doc = json_of(&loadtest(
        &[
            SHORT_COMPARISON,
            &["--noop-process", "--paced-fraction", "0", "--json"],
        ]
        .concat(),
    ));
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{doc}");
    for run in runs {
        assert_eq!(run["errors"], 0, "{run}");
        // A second of answers costs a server a measurable share of 10 ms
        // ticks: zero would mean the wrong process was read.
        let cpu = run["server_cpu_us_per_request"].as_f64();
        assert!(cpu.is_some_and(|us| us > 0.0), "{run}");
    }
    let compared = &doc["compared"][0];
    let ratio = compared["cpu_per_request_ratio"].as_f64();
    assert!(
        ratio.is_some_and(|r| r.is_finite() && r > 0.0),
        "{compared}"
    );
}

#[test]
fn loadtest_flag_errors_name_the_flag() {
    let cases: [(&[&str], &str); 10] = [
        (&["--forms", "grpc,soap"], "--forms: unknown form `soap`"),
        (
            &["--forms", "ext-authz", "--mix", "check=1,list=1"],
            "--forms: ext-authz sends checks only",
        ),
        (
            &["--forms", "grpc,connect", "--compare-noop"],
            "--forms: compare several forms",
        ),
        (&["--mix", "check=1,write=2"], "--mix: unknown rpc `write`"),
        (&["--mix", "check=0"], "--mix: at least one weight"),
        (
            &["--connections", "9", "--concurrency", "8"],
            "--connections",
        ),
        (&["--rate=-5"], "--rate: must be a positive number"),
        (&["--batch-size", "0"], "--batch-size"),
        (&["--noop-process"], "--noop-process: needs --compare-noop"),
        (&["--server-pid", "1"], "--server"),
    ];
    for (args, expected) in cases {
        let out = loadtest(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
