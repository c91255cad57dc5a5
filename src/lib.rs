//! analytics-action: a whole analytics stack from one Git repository.
//!
//! The modules follow the data: [`project`] files are rendered by
//! [`templating`], ordered by [`graph`], fed by [`ingest`], built by
//! [`engine`], checked by [`data_tests`], reported by [`summary`]; the
//! [`pipeline`] runs them for each mode and [`cli`] is the command line.
//! [`dashboard`] renders the static DuckDB-WASM site.
//! [`actions`] is the GitHub Actions runtime contract and [`doctor`] checks
//! what a run needs.

pub mod actions;
pub mod cli;
pub mod dashboard;
pub mod data_tests;
pub mod doctor;
pub mod engine;
pub mod graph;
pub mod ingest;
pub mod pipeline;
pub mod project;
pub mod summary;
pub mod templating;
pub mod warehouse;
