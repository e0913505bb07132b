//! Dataset files (`--data`, `ticket-authz test`): arbitrary bytes as a
//! file. An accepted file builds a snapshot and runs its assertions; an
//! accepted dataset, rendered again (as `generate` does), is accepted and
//! means the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ticket_authz::dataset::{self, raw};
use ticket_authz::scenario;
use ticket_authz::snapshot::Snapshot;
use ticket_authz::time::Timestamp;

fuzz_target!(|data: &[u8]| {
    // `load_file` refuses text that is not UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(loaded) = dataset::load_str("fuzz.yaml", text) else {
        return;
    };
    let snapshot = Snapshot::build(&loaded.dataset);
    assert!(
        snapshot.is_ok(),
        "an accepted dataset does not build: {:?}",
        snapshot.err()
    );
    if let Ok(snapshot) = snapshot {
        let now = snapshot
            .fixed_now()
            .unwrap_or_else(|| Timestamp::from_unix_seconds(0));
        let outcome = scenario::run(&snapshot, &loaded.assertions, now);
        assert_eq!(
            outcome.passed + outcome.failures.len(),
            loaded.assertions.len(),
            "every assertion is either passed or failed"
        );
    }
    let rendered = serde_yaml_ng::to_string(&raw::from_dataset(&loaded.dataset));
    assert!(rendered.is_ok(), "an accepted dataset does not render");
    if let Ok(rendered) = rendered {
        match dataset::load_str("rendered.yaml", &rendered) {
            Ok(again) => assert_eq!(
                again.dataset, loaded.dataset,
                "a rendered dataset reads back differently"
            ),
            Err(e) => panic!("a rendered dataset is refused: {e}\n{rendered}"),
        }
    }
});
