//! analytics-action: a whole analytics stack from one Git repository.
//!
//! The modules follow the data: [`project`] files are rendered by
//! [`templating`], ordered by [`graph`], fed by [`ingest`], built by
//! [`engine`] (stored in the Iceberg [`warehouse`] on Iceberg targets),
//! checked by [`data_tests`], shaped into dashboard files by [`export`] and
//! committed by [`publish`] (both driven by [`site`]), with the page rendered
//! by [`dashboard`]; reported by [`summary`]; the [`pipeline`] runs them for
//! each mode and [`cli`] is the command line.
//! [`actions`] is the GitHub Actions runtime contract and [`doctor`] checks
//! what a run needs.

pub mod actions;
pub mod cli;
pub mod dashboard;
pub mod data_tests;
pub mod doctor;
pub mod engine;
pub mod export;
pub mod graph;
pub mod ingest;
pub mod pipeline;
pub mod project;
pub mod publish;
pub mod site;
pub mod summary;
pub mod templating;
pub mod warehouse;
