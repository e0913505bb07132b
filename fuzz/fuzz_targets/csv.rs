//! `import-csv`'s reader and row checks: arbitrary bytes as an export of
//! each format, against a fixed set of organisations and companies (what
//! the database would hold). An accepted file has unique, non-empty ids;
//! a refused one names at least one problem, each on a line of the file.

#![no_main]

use std::collections::HashSet;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ticket_authz::csv_import::{self, CsvError, Format, GlobalProfile, Known, Options, RowGrant};

fn known() -> &'static Known {
    static KNOWN: OnceLock<Known> = OnceLock::new();
    KNOWN.get_or_init(|| {
        Known::new(
            [
                ("northwind", "Northwind Traders"),
                ("contoso", "Contoso"),
                // One name, two ids: an ambiguous name.
                ("twin-a", "Twin"),
                ("twin-b", "Twin"),
            ],
            ["northwind-eu", "contoso-hq"],
        )
    })
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the format and the import form's options.
    let Some((&selector, file)) = data.split_first() else {
        return;
    };
    let format = match selector % 3 {
        0 => Format::PortalUsers,
        1 => Format::PortalOrganisations,
        _ => Format::ItsmUsers,
    };
    let mut options = Options::new(format);
    if format == Format::ItsmUsers {
        if selector & 0x10 != 0 {
            options.grant = Some(RowGrant {
                profile: "first-line".to_owned(),
                group: "*".to_owned(),
            });
        }
        options.global_profile = match (selector >> 5) % 3 {
            0 => None,
            1 => Some(GlobalProfile::Standard),
            _ => Some(GlobalProfile::External),
        };
    }
    // Lines as an editor counts them; the reader turns CRLF into LF.
    let lines = 1 + file.iter().filter(|b| **b == b'\n').count() as u64;
    match csv_import::read_rows(
        std::io::Cursor::new(file.to_vec()),
        "fuzz.csv",
        &options,
        known(),
    ) {
        Ok((rows, _notes)) => {
            let ids = rows.ids();
            let unique: HashSet<&str> = ids.iter().copied().collect();
            assert_eq!(unique.len(), ids.len(), "an accepted file repeats an id");
            assert!(
                ids.iter().all(|id| !id.is_empty()),
                "an accepted row has no id"
            );
        }
        Err(CsvError::Invalid { problems, .. }) => {
            assert!(!problems.is_empty(), "refused without a problem");
            for problem in &problems {
                assert!(
                    (1..=lines).contains(&problem.place.line),
                    "problem on line {} of a {lines}-line file: {}",
                    problem.place.line,
                    problem.message
                );
            }
        }
        Err(_) => {}
    }
});
