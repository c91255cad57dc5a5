//! [`Mode`]: the five ways a run goes, as one typed enum used by every stage
//! (sources, limits and exports name the modes they run in). Imports nothing
//! of this crate.

use std::fmt;

/// The five ways the action runs (README, "Modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Mode {
    /// Everything in memory on sample data: build every model, run every test.
    Ci,
    /// Newest files, incremental builds, no tests, publish the intraday file.
    Intraday,
    /// The daily pass: backfill, rebuild dimensions, run all tests, publish.
    Backfill,
    /// No ingest/transform: export and publish from the warehouse.
    Import,
    /// Warehouse upkeep: compact small files, expire snapshots, delete
    /// files no snapshot uses.
    Maintain,
}

impl Mode {
    /// Every mode, in the order the README lists them.
    pub const ALL: [Mode; 5] = [
        Mode::Ci,
        Mode::Intraday,
        Mode::Backfill,
        Mode::Import,
        Mode::Maintain,
    ];

    /// The mode's name as written in configs.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Ci => "ci",
            Mode::Intraday => "intraday",
            Mode::Backfill => "backfill",
            Mode::Import => "import",
            Mode::Maintain => "maintain",
        }
    }

    /// The mode a config names (exact lower-case name).
    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether `names` (a `modes:` list from a config) includes this mode.
    pub fn named_in(self, names: &[String]) -> bool {
        names.iter().any(|n| n == self.name())
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
