//! Settings from the command line and environment, medians, and the side-by-side table.

/// The peers in table order: omni first, then the runtimes it is compared with.
pub(crate) const PEERS: [&str; 3] = ["omni", "tokio", "async-executor"];

/// What to run and how often.
#[derive(Debug)]
pub(crate) struct Config {
    /// Rounds for timed workloads (`PEERS_ROUNDS`, default 15; 3 with `PEERS_QUICK=1`).
    pub(crate) rounds: usize,
    /// Rounds for memory workloads: at most 3, since memory is deterministic.
    pub(crate) memory_rounds: usize,
    /// Sizes are divided by this: 10 with `PEERS_QUICK=1`, else 1.
    pub(crate) shrink: usize,
    /// Substrings of workload ids to run; empty runs everything.
    filters: Vec<String>,
}

impl Config {
    /// Reads `PEERS_QUICK`, `PEERS_ROUNDS` and the filters (arguments not starting with `--`,
    /// since `cargo bench` passes `--bench`).
    pub(crate) fn from_env() -> Config {
        let quick = std::env::var("PEERS_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let rounds = match std::env::var("PEERS_ROUNDS") {
            Ok(v) => parse_rounds(&v),
            Err(_) if quick => 3,
            Err(_) => 15,
        };
        let filters = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
        Config { rounds, memory_rounds: rounds.min(3), shrink: if quick { 10 } else { 1 }, filters }
    }

    /// Whether the workload `id` passes the filters.
    pub(crate) fn selects(&self, id: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| id.contains(f.as_str()))
    }

    /// `full` divided by the quick-mode factor.
    pub(crate) fn size(&self, full: usize) -> usize {
        (full / self.shrink).max(1)
    }
}

fn parse_rounds(v: &str) -> usize {
    match v.trim().parse() {
        Ok(r) if r > 0 => r,
        _ => panic!("PEERS_ROUNDS must be a positive integer, got {v:?}"),
    }
}

/// The median of `samples` (the mean of the middle two for an even count).
pub(crate) fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let mid = s.len() / 2;
    if s.is_empty() {
        f64::NAN
    } else if s.len() % 2 == 1 {
        s[mid]
    } else {
        (s[mid - 1] + s[mid]) / 2.0
    }
}

/// One line of the table: medians per peer, in [`PEERS`] order.
#[derive(Debug)]
pub(crate) struct Row {
    /// Workload id, with a suffix for workloads that give several rows.
    pub(crate) id: String,
    /// What the numbers count, e.g. `ns/yield`.
    pub(crate) unit: &'static str,
    /// Median per peer.
    pub(crate) medians: [f64; 3],
}

fn value(v: f64) -> String {
    if v.is_nan() {
        "n/a".to_string()
    } else {
        format!("{v:.1}")
    }
}

fn ratio(omni: f64, peer: f64) -> String {
    let r = omni / peer;
    if r.is_finite() {
        format!("{r:.2}")
    } else {
        "n/a".to_string()
    }
}

/// Prints the table to stdout, then what each row's numbers mean.
pub(crate) fn print_table(rows: &[Row], cfg: &Config) {
    let header = ["workload", PEERS[0], PEERS[1], PEERS[2], "omni/tokio", "omni/async-executor"];
    let lines: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let [o, t, a] = r.medians;
            [r.id.clone(), value(o), value(t), value(a), ratio(o, t), ratio(o, a)]
        })
        .collect();
    let mut width = header.map(str::len);
    for line in &lines {
        for (w, cell) in width.iter_mut().zip(line) {
            *w = (*w).max(cell.len());
        }
    }
    let print = |cells: [&str; 6]| {
        let mut out = format!("{:<w$}", cells[0], w = width[0]);
        for (cell, w) in cells.iter().zip(width).skip(1) {
            out.push_str(&format!(" | {cell:>w$}"));
        }
        println!("{}", out.trim_end());
    };
    println!();
    print(header);
    let rule: Vec<String> = width.iter().map(|&w| "-".repeat(w)).collect();
    println!("{}", rule.join("-|-"));
    for line in &lines {
        print(line.each_ref().map(String::as_str));
    }
    println!();
    let quick = if cfg.shrink > 1 { format!(", sizes / {}", cfg.shrink) } else { String::new() };
    println!(
        "Medians over {} rounds ({} for memory){quick}, runs interleaved omni, tokio, async-executor.",
        cfg.rounds, cfg.memory_rounds,
    );
    println!("Ratios are omni / peer: below 1.00 omni is faster or smaller, lower is better.");
    for r in rows {
        println!("  {:<w$}  {}", r.id, r.unit, w = width[0]);
    }
}
