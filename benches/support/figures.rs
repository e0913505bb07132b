//! Criterion figures with their floors: a figure is benchmarked under
//! criterion, kept with the [`Plan`] of its floor and the arena that plan
//! reads, and after criterion's groups the ratio pass times each figure
//! again in alternating rounds with its floor and prints and writes the
//! ratios (`floor-ratios.json`, or the name the bench gives).

use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;

use super::floor::{self, Arena, Layout, Plan};

/// A criterion figure that ran, with its floor, for the ratio pass.
pub struct Figure<'a> {
    pub id: String,
    /// Which of the ratio pass's layouts the plan reads.
    pub arena: usize,
    pub plan: Plan,
    pub op: Box<dyn FnMut(usize) + 'a>,
}

/// Benchmarks `op` (given a running call number) under criterion and, if
/// criterion ran it (its filter can skip it), keeps it with its floor.
pub fn with_floor<'a>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    group_name: &str,
    name: &str,
    figures: &mut Vec<Figure<'a>>,
    (arena, plan): (usize, Plan),
    mut op: impl FnMut(usize) + 'a,
) {
    let mut ran = false;
    let mut i = 0usize;
    group.bench_function(name, |b| {
        ran = true;
        b.iter(|| {
            op(i);
            i += 1;
        })
    });
    if ran {
        figures.push(Figure {
            id: format!("{group_name}/{name}"),
            arena,
            plan,
            op: Box::new(op),
        });
    }
}

/// criterion's median of a figure in this run, in nanoseconds.
pub fn criterion_median(id: &str) -> Option<f64> {
    let path = floor::criterion_dir().join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// Times each figure against its floor in alternating rounds, prints the
/// table and writes `summary` beside criterion's results. `layouts` are
/// the floors' tables, each with what it is sized as (for the log line),
/// in the order a figure's `arena` indexes.
pub fn ratio_pass(figures: &mut [Figure<'_>], layouts: &[(&str, &Layout)], summary: &str) {
    let rounds = floor::rounds_from_env();
    if figures.is_empty() || rounds == 0 || !floor::benchmarking() {
        return;
    }
    for (what, layout) in layouts {
        eprintln!(
            "floor: allocating {:.0} MiB ({what}) for the floor",
            layout.mib()
        );
    }
    let arenas: Vec<Arena> = layouts.iter().map(|(_, l)| l.allocate()).collect();
    let mut rows = Vec::new();
    println!();
    println!("Ratios to the floor ({rounds} alternating rounds per figure, medians):");
    println!(
        "| figure | criterion median | this pass: operation | floor | reads per op (deep) | ratio |"
    );
    println!("|---|---|---|---|---|---|");
    for f in figures.iter_mut() {
        let r = floor::alternate(rounds, &arenas[f.arena], &f.plan, &mut f.op);
        let median = criterion_median(&f.id);
        println!(
            "| `{}` | {} | {} | {} | {:.1} ({:.1}) | **{:.2}** |",
            f.id,
            median.map_or("–".to_owned(), floor::format_ns),
            floor::format_ns(r.op_ns),
            floor::format_ns(r.floor_ns),
            f.plan.reads_per_op(),
            f.plan.depth_per_op(),
            r.ratio
        );
        rows.push(serde_json::json!({
            "id": f.id,
            "criterion_median_ns": median,
            "op_ns": r.op_ns,
            "floor_ns": r.floor_ns,
            "ratio": r.ratio,
            "reads_per_op": f.plan.reads_per_op(),
            "dependent_reads_per_op": f.plan.depth_per_op(),
            "floor_ops": f.plan.ops(),
            "rounds": r.rounds,
            "batch": r.batch,
        }));
    }
    floor::write_summary(summary, rows);
}
