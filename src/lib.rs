//! analytics-action: a whole analytics stack from one Git repository.
//!
//! The modules follow the data, in layers; a module imports only from its
//! own layer and the layers below (DEVELOPERS.md, "Layers";
//! `scripts/deps` checks it):
//!
//! 1. vocabulary, importing nothing of ours: [`sql`] (quoting, `Relation`),
//!    [`secret`], [`mode`], [`progress`] (log groups, logging), [`hash`],
//!    [`environ`] (the run's environment), [`diagnostic`] (errors with a
//!    file and line), [`manifest`] (`manifest.json`);
//! 2. [`project`]: the files of a project, typed (`analytics.yml` with its
//!    targets, sources, exports and `dashboard:`);
//! 3. [`templating`] and [`graph`], then [`plan`]: the project parsed,
//!    ordered, its target resolved;
//! 4. the stages: [`ingest`] → [`warehouse`] → [`engine`] → [`data_tests`]
//!    → [`export`], [`dashboard`], [`publish`] → [`site`] → [`summary`];
//! 5. [`pipeline`]: which stages run in which mode;
//! 6. front-ends, imported by nothing: [`doctor`] (checks, shared by both),
//!    [`cli`] and [`actions`]; `main.rs` picks one.

#![deny(missing_docs)]

// 1. vocabulary
pub mod diagnostic;
pub mod environ;
pub mod hash;
pub mod manifest;
pub mod mode;
pub mod progress;
pub mod secret;
pub mod sql;

// 2–3. the project, parsed
pub mod graph;
pub mod plan;
pub mod project;
pub mod templating;

// 4. stages
pub mod dashboard;
pub mod data_tests;
pub mod engine;
pub mod export;
pub mod ingest;
pub mod publish;
pub mod site;
pub mod summary;
pub mod warehouse;

// 5. modes
pub mod pipeline;

// 6. front-ends
pub mod actions;
pub mod cli;
pub mod doctor;
pub mod init;

pub use environ::Env;
pub use manifest::{Manifest, ManifestColumn, ManifestFile};
pub use mode::Mode;
pub use secret::Secret;
