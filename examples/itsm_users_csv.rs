//! Writes a synthetic `itsm-users` export of N rows (default 1,000,000) to
//! standard output, for the import benchmark in BENCHMARKS.md; its company
//! ids are those of `examples/demo.yaml`:
//!
//! ```sh
//! cargo run --release --example itsm_users_csv -- 1000000 > /tmp/itsm-1m.csv
//! ```

use std::io::{BufWriter, Write as _};

/// Companies of the demo dataset, and the service desk's "no company".
const COMPANIES: [&str; 4] = ["northwind-group", "northwind-eu", "contoso-hq", "0"];

fn main() -> std::io::Result<()> {
    let rows: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(
        out,
        "id_user,password,real_name,email,telephone,description,avatar,disabled,id_company,num_employee,enable_login,cost_centre"
    )?;
    for i in 0..rows {
        // Every 50th user is disabled, every 7th has no email, every 20th
        // may not log in; descriptions are quoted and hold the delimiter.
        let email = if i % 7 == 0 {
            String::new()
        } else {
            format!("user{i}@it.example")
        };
        let company = COMPANIES.get((i % 4) as usize).copied().unwrap_or("0");
        writeln!(
            out,
            "u{i:07},pw-{i:x}-secret,User {i},{email},555-{:04},\"Desk {}, floor {}\",,{},{company},E{i},{},CC{}",
            i % 10_000,
            i % 300,
            i % 12,
            u8::from(i % 50 == 0),
            u8::from(i % 20 != 0),
            i % 40
        )?;
    }
    out.flush()
}
