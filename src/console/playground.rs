//! The playground: a dataset pasted or uploaded, validated and its
//! assertions run by `ticket-authz test`'s own runner
//! (`scenario::run_text`) in a private snapshot built for the request and
//! dropped after it, never published or persisted. Input past
//! [`MAX_DATASET_BYTES`] is refused before parsing; a run is stopped at
//! [`TIME_BOUND`]; at most [`CONCURRENT_RUNS`] run at once.

use std::time::{Duration, Instant};

use axum::extract::rejection::FormRejection;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use maud::{Markup, html};

use super::Shared;
use super::html as h;
use crate::dataset::DatasetError;
use crate::scenario::{self, FileResult, Outcome};

/// The largest dataset text the playground takes.
pub const MAX_DATASET_BYTES: usize = 512 * 1024;
/// The request body bound: the text form-encoded (up to three bytes per
/// byte) and the other fields.
pub(super) const MAX_BODY_BYTES: usize = MAX_DATASET_BYTES * 3 + 4096;
/// How long one run may take, from parsing to the last assertion.
pub const TIME_BOUND: Duration = Duration::from_secs(5);
/// Runs at once; more are refused (429) rather than queued.
pub(super) const CONCURRENT_RUNS: usize = 2;
/// What the editor starts with: the README's demo helpdesk.
const DEMO: &str = include_str!("../../examples/demo.yaml");

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Submitted {
    #[serde(default)]
    dataset: String,
    #[serde(default)]
    name: String,
}

fn editor(text: &str, name: &str) -> Markup {
    html! {
        form #playground method="post" action="/playground" {
            p { "A dataset in the format of " code { "dataset-format.md" } " (YAML or JSON), with assertions. It runs in a private snapshot of its own: the served data is never touched." }
            div.actions {
                label for="upload" { "Load a file" } " "
                input #upload type="file" accept=".yaml,.yml,.json,text/yaml,application/json";
                label for="name" { "File name" } " "
                input #name type="text" name="name" value=(name);
            }
            label for="dataset" class="visually-hidden" { "Dataset" }
            textarea #dataset name="dataset" spellcheck="false" { (text) }
            div.actions {
                button #run type="submit" { "Run" }
                button #export type="submit" formaction="/playground/export" { "Export file" }
            }
        }
    }
}

async fn served_revision(state: &Shared) -> Option<u64> {
    state.0.app.snapshot(0).await.ok().map(|s| s.revision())
}

pub(super) async fn form(state: Shared) -> Response {
    let revision = served_revision(&state).await;
    h::status_page(
        StatusCode::OK,
        "Playground",
        revision,
        editor(DEMO, "demo.yaml"),
    )
}

/// The form and the served revision, or the page that says why the form
/// was refused.
async fn accepted(
    state: &Shared,
    submitted: Result<axum::extract::Form<Submitted>, FormRejection>,
) -> Result<(Submitted, Option<u64>), Response> {
    let revision = served_revision(state).await;
    let refuse = |status: StatusCode, text: String| {
        h::status_page(
            status,
            "Playground",
            revision,
            html! { p.error role="alert" #refused { (text) } p { a href="/playground" { "Back to the playground" } } },
        )
    };
    let form = match submitted {
        Ok(axum::extract::Form(form)) => form,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The request is larger than the playground takes (a dataset of at most {MAX_DATASET_BYTES} bytes)."
                ),
            ));
        }
        Err(e) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!("The form could not be read: {e}"),
            ));
        }
    };
    if form.dataset.len() > MAX_DATASET_BYTES {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "The dataset is {} bytes; the playground takes at most {MAX_DATASET_BYTES}.",
                form.dataset.len()
            ),
        ));
    }
    Ok((form, revision))
}

fn file_name(name: &str) -> String {
    let kept: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    let kept = kept.trim_start_matches('.');
    if kept.is_empty() {
        "dataset.yaml".to_owned()
    } else if [".yaml", ".yml", ".json"].iter().any(|e| kept.ends_with(e)) {
        kept.to_owned()
    } else {
        format!("{kept}.yaml")
    }
}

pub(super) async fn export(
    state: Shared,
    submitted: Result<axum::extract::Form<Submitted>, FormRejection>,
) -> Response {
    let (form, _) = match accepted(&state, submitted).await {
        Ok(accepted) => accepted,
        Err(r) => return r,
    };
    let disposition = format!("attachment; filename=\"{}\"", file_name(&form.name));
    (
        [
            (
                header::CONTENT_TYPE,
                "application/yaml; charset=utf-8".to_owned(),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        form.dataset,
    )
        .into_response()
}

pub(super) async fn run(
    state: Shared,
    submitted: Result<axum::extract::Form<Submitted>, FormRejection>,
) -> Response {
    let (form, revision) = match accepted(&state, submitted).await {
        Ok(accepted) => accepted,
        Err(r) => return r,
    };
    let name = if form.name.trim().is_empty() {
        "playground.yaml".to_owned()
    } else {
        form.name.trim().to_owned()
    };
    let Ok(permit) = std::sync::Arc::clone(&state.0.runs).try_acquire_owned() else {
        return h::status_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Playground",
            revision,
            html! { p.error role="alert" #refused { "Other playground runs are in progress; try again in a moment." } (editor(&form.dataset, &name)) },
        );
    };
    let deadline = Instant::now() + TIME_BOUND;
    let (text, file) = (form.dataset.clone(), name.clone());
    // The permit lives as long as the thread, so a run that outlives its
    // answer still counts against the bound.
    let task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        scenario::run_text(&file, &text, Some(deadline))
    });
    let (status, result) = match tokio::time::timeout(TIME_BOUND + Duration::from_secs(1), task)
        .await
    {
        Ok(Ok(result)) => (StatusCode::OK, results(&result)),
        Ok(Err(_)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            html! { p.error role="alert" #refused { "The run failed." } },
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            html! { p.error role="alert" #refused { "The dataset took longer than the playground's time bound (" (TIME_BOUND.as_secs()) " s) to load." } },
        ),
    };
    h::status_page(
        status,
        "Playground",
        revision,
        html! { (result) (editor(&form.dataset, &name)) },
    )
}

fn results(result: &FileResult) -> Markup {
    let (passed, failed) = result.counts();
    html! {
        section #results aria-live="polite" {
            h2 { "Result" }
            p #summary {
                span #passed { (passed) } " passed, " span #failed { (failed) } " failed"
            }
            @match result {
                FileResult::Invalid(DatasetError::Syntax { message, line, column, .. }) => {
                    p.error #syntax {
                        "Syntax error"
                        @if let (Some(l), Some(c)) = (line, column) { " at line " span #line { (l) } ", column " span #column { (c) } }
                        ": " (message)
                    }
                }
                FileResult::Invalid(DatasetError::Invalid { problems, .. }) => {
                    p.error { (problems.len()) " problem(s); nothing was loaded." }
                    div.scroll { table #problems {
                        thead { tr { th { "entity" } th { "field" } th { "problem" } } }
                        tbody { @for p in problems { tr { td { code { (p.entity) } } td { code { (p.field) } } td { (p.message) } } } }
                    } }
                }
                FileResult::Invalid(other) => { p.error { (other.to_string()) } }
                FileResult::NotBuilt(message) => { p.error #problems { (message) } }
                FileResult::Ran(outcome) => { (assertions(outcome)) }
            }
        }
    }
}

fn assertions(outcome: &Outcome) -> Markup {
    enum Row<'a> {
        Pass(&'a scenario::Pass),
        Fail(&'a scenario::Failure),
    }
    let mut rows: Vec<(usize, Row<'_>)> = outcome
        .passes
        .iter()
        .map(|p| (p.index, Row::Pass(p)))
        .chain(outcome.failures.iter().map(|f| (f.index, Row::Fail(f))))
        .collect();
    rows.sort_by_key(|(index, _)| *index);
    html! {
        @if let Some(done) = outcome.stopped_after {
            p.error #stopped role="alert" { "Stopped at the time bound (" (TIME_BOUND.as_secs()) " s) after " (done) " assertion(s); the rest did not run." }
        }
        @if rows.is_empty() { p.none { "The file has no assertions." } } @else {
            div.scroll { table #assertions {
                thead { tr { th { "#" } th { "assertion" } th { "result" } } }
                tbody { @for (index, row) in &rows {
                    @match row {
                        Row::Pass(p) => tr.pass-row { td { (index) } td { code { (p.assertion) } } td.pass { "pass" } },
                        Row::Fail(f) => tr.fail-row {
                            td { (index) }
                            td { code { (f.assertion) } }
                            td {
                                span.fail { "fail" } ": expected " code { (f.expected) } ", got " code { (f.actual) }
                                @if !f.explanation.is_empty() {
                                    ol.explanation { @for step in &f.explanation { li { (step) } } }
                                }
                            }
                        },
                    }
                } }
            } }
        }
    }
}
