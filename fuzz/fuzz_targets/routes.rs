//! The ext_authz route table (`--ext-authz-routes`) and its matcher from
//! arbitrary bytes: the first line is a request (`METHOD PATH`), the rest
//! the route file. A refused file names the file and a line in it; in an
//! accepted table, a matched request's question has its action and every
//! id the action needs (only an id's own value can still be refused: too
//! long, `*`, an unknown flag), and the query string never changes a match.

#![no_main]

use libfuzzer_sys::fuzz_target;

use ticket_authz::core::RequestError;
use ticket_authz::ext_authz::{RouteError, RouteTable};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (request, file) = text.split_once('\n').unwrap_or((text, ""));
    let (method, path) = request.split_once(' ').unwrap_or(("GET", request));
    let table = match RouteTable::parse("fuzz.yaml", file) {
        Ok(table) => table,
        Err(e) => {
            // YAML breaks lines at `\r\n`, `\n` and a lone `\r` alike.
            let lines = file
                .replace("\r\n", "\n")
                .replace('\r', "\n")
                .lines()
                .count()
                .max(1);
            match &e {
                RouteError::Syntax { file, line, .. } | RouteError::Invalid { file, line, .. } => {
                    assert_eq!(file, "fuzz.yaml");
                    assert!(*line >= 1 && *line <= lines + 1, "{e} ({lines} lines)");
                }
                RouteError::Read { .. } => panic!("parse read a file: {e}"),
            }
            assert!(e.to_string().starts_with("fuzz.yaml:"), "{e}");
            return;
        }
    };
    assert!(!table.is_empty());
    let found = table.find(method, path);
    if !path.contains('?') {
        assert_eq!(found, table.find(method, &format!("{path}?q=1")));
    }
    if let Some(question) = found {
        match question.request("user").validate() {
            Ok(_)
            | Err(
                RequestError::IdTooLong { .. }
                | RequestError::AllGroupsNotAllowed
                | RequestError::UnknownFlag(_),
            ) => {}
            Err(e) => panic!("{method} {path} matched a route that cannot ask: {e}"),
        }
    }
});
