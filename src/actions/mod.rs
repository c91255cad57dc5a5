//! The GitHub Actions runtime contract: what the container does when a
//! workflow step `uses:` this action.
//!
//! GitHub starts the image (entrypoint `analytics`, `args` from `action.yml`)
//! with the workspace as working directory and every input as an environment
//! variable named `INPUT_` + the input's name upper-cased, spaces turned into
//! `_` and hyphens kept (`project-dir` → `INPUT_PROJECT-DIR`). Relative paths
//! are resolved against `GITHUB_WORKSPACE`. Results go back through files
//! GitHub names — `$GITHUB_OUTPUT` (step outputs, `name=value` lines) and
//! `$GITHUB_STEP_SUMMARY` (the job summary, Markdown) — and through workflow
//! commands on stdout: `::add-mask::`, `::group::`/`::endgroup::`,
//! `::error file=…,line=…::` and `::warning …::`.
//!
//! Secrets: every secret input is masked (`::add-mask::`) before anything else
//! is printed, and everything this module writes — logs, annotations, the
//! summary, outputs — goes through a [`Redactor`] as a second line of defence.
//!
//! [`INPUTS`] and [`OUTPUTS`] are the contract with `action.yml`; a test
//! checks that both declare exactly the same names and defaults.
//!
//! A front-end: it imports the core and the doctor's checks; nothing imports it.

mod annotations;
mod commands;
mod inputs;

pub use annotations::{annotations, outputs};
pub use commands::{Location, annotation, escape_data, escape_property, output_entry};
pub use inputs::{
    ActionSettings, Command, INPUTS, InputSpec, OUTPUTS, PagesSettings, input_env_name,
    invoked_implicitly, mask_secrets,
};

use crate::diagnostic::located;
use crate::doctor::DoctorOptions;
use crate::environ::Env;
use crate::pipeline;
use crate::progress;
use crate::secret::Redactor;
use crate::summary::RunReport;
use anyhow::{Context, Result};
use commands::append;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// The doctor's options for `mode: doctor`: every source over the network,
/// and the catalog, storage and pages settings of the step's inputs.
fn doctor_options(settings: &ActionSettings) -> DoctorOptions {
    DoctorOptions::new(
        settings.run.clone(),
        None,
        false,
        settings.pages.github_token.clone(),
        settings.pages.repository.clone(),
    )
}

/// Stdout for workflow commands and messages, redacted.
struct Console {
    redactor: Redactor,
}

impl Console {
    fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", self.redactor.redact(text));
        let _ = out.flush();
    }

    fn group(&self, title: &str) {
        self.line(&format!("::group::{}", escape_data(title)));
    }

    fn endgroup(&self) {
        self.line("::endgroup::");
    }
}

/// `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY` (either may be missing outside GitHub).
struct Files {
    output: Option<PathBuf>,
    summary: Option<PathBuf>,
    redactor: Redactor,
}

impl Files {
    fn outputs(&self, values: &[(&str, String)]) -> Result<()> {
        let Some(path) = &self.output else {
            return Ok(());
        };
        let text: String = values
            .iter()
            .map(|(k, v)| output_entry(k, &self.redactor.redact(v)))
            .collect();
        append(path, &text).context("writing step outputs ($GITHUB_OUTPUT)")
    }

    fn summary(&self, markdown: &str) -> Result<()> {
        let Some(path) = &self.summary else {
            return Ok(());
        };
        append(path, &self.redactor.redact(markdown))
            .context("writing the job summary ($GITHUB_STEP_SUMMARY)")
    }
}

/// Logs to stderr with secrets redacted (each event is written whole on drop).
#[derive(Clone)]
struct RedactingStderr(Redactor);

struct RedactingWriter {
    redactor: Redactor,
    buf: Vec<u8>,
}

impl Write for RedactingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let text = self.redactor.redact(&String::from_utf8_lossy(&self.buf));
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            redactor: self.0.clone(),
            buf: Vec::new(),
        }
    }
}

/// Runs the action as GitHub runs the container; the process's exit status.
pub fn main() -> ExitCode {
    let env = Env::process();
    // Masks first: nothing may be printed before them.
    let (masks, redactor) = mask_secrets(&env);
    {
        let mut out = std::io::stdout().lock();
        for m in &masks {
            let _ = writeln!(out, "{m}");
        }
        let _ = out.flush();
    }
    crate::progress::init_logging_to(RedactingStderr(redactor.clone()), false);
    let console = Console {
        redactor: redactor.clone(),
    };
    let files = Files {
        output: env.non_empty("GITHUB_OUTPUT").map(PathBuf::from),
        summary: env.non_empty("GITHUB_STEP_SUMMARY").map(PathBuf::from),
        redactor,
    };
    match run(&env, &console, &files) {
        Ok(code) => code,
        Err(err) => {
            let message = format!("{err:#}");
            let at = located(&err).map(|l| Location {
                file: l.file.to_string_lossy().into_owned(),
                line: l.line,
            });
            console.line(&annotation("error", at.as_ref(), "analytics", &message));
            let _ = files.summary(&failure_summary("the action", &message));
            let _ = files.outputs(&outputs(&RunReport::default()));
            ExitCode::FAILURE
        }
    }
}

fn failure_summary(what: &str, message: &str) -> String {
    format!("## analytics — ❌ {what} could not run\n\n```text\n{message}\n```\n")
}

fn run(env: &Env, console: &Console, files: &Files) -> Result<ExitCode> {
    let workspace = match env.non_empty("GITHUB_WORKSPACE") {
        Some(w) => PathBuf::from(w),
        None => std::env::current_dir().context("finding the working directory")?,
    };
    console.group("Inputs");
    let settings = ActionSettings::from_env(env, &workspace);
    if let Ok(s) = &settings {
        console.line(s.describe().trim_end());
    }
    console.endgroup();
    let settings = settings?;
    for w in &settings.warnings {
        console.line(&annotation("warning", None, "analytics inputs", w));
    }

    let mode = match settings.command {
        Command::Doctor => return doctor(&settings, console, files),
        Command::Run(mode) => mode,
    };
    // One group per stage (ingest, models, tests, export/publish), opened by
    // the pipeline as it goes; this first one holds loading and parsing.
    console.group(&format!(
        "analytics run --mode {} — load project",
        mode.name()
    ));
    progress::enable_groups();
    let result = pipeline::run(&settings.run);
    progress::end_groups();
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            // The project did not load or parse: point at the file the error names.
            let message = format!("{err:#}");
            let root = &settings.run.project_dir;
            let at = located(&err).map(|l| Location {
                file: settings.relative(&root.join(&l.file)),
                line: l.line,
            });
            console.line(&annotation("error", at.as_ref(), "analytics", &message));
            files.summary(&failure_summary(
                &format!("project `{}`", settings.relative(root)),
                &message,
            ))?;
            files.outputs(&outputs(&RunReport::default()))?;
            return Ok(ExitCode::FAILURE);
        }
    };

    console.group("Results");
    console.line(report.short().trim_end());
    console.endgroup();
    for a in annotations(&report, &settings) {
        console.line(&a);
    }
    files.summary(&report.markdown())?;
    files.outputs(&outputs(&report))?;
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn doctor(settings: &ActionSettings, console: &Console, files: &Files) -> Result<ExitCode> {
    let opts = doctor_options(settings);
    console.group("analytics doctor");
    let checks = crate::doctor::run(&opts);
    for c in &checks {
        console.line(&c.line());
    }
    console.endgroup();
    for c in checks
        .iter()
        .filter(|c| c.status == crate::doctor::Status::Fail)
    {
        console.line(&annotation(
            "error",
            None,
            &format!("doctor: {}", c.what),
            &c.line(),
        ));
    }
    files.summary(&crate::doctor::markdown(&checks))?;
    Ok(if crate::doctor::passed(&checks) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_names_become_env_names_like_github_does() {
        assert_eq!(input_env_name("project-dir"), "INPUT_PROJECT-DIR");
        assert_eq!(input_env_name("my input"), "INPUT_MY_INPUT");
        assert_eq!(input_env_name("mode"), "INPUT_MODE");
    }

    #[test]
    fn commands_escape_their_data_and_properties() {
        let a = annotation(
            "error",
            Some(&Location {
                file: "a,b:c.sql".into(),
                line: 3,
            }),
            "t",
            "50% of\nrows",
        );
        assert_eq!(
            a,
            "::error file=a%2Cb%3Ac.sql,line=3,title=t::50%25 of%0Arows"
        );
    }

    #[test]
    fn multi_line_outputs_use_a_heredoc() {
        assert_eq!(output_entry("a", "1"), "a=1\n");
        let e = output_entry("a", "x\ny");
        let delim = e.lines().next().unwrap().strip_prefix("a<<").unwrap();
        assert!(e.ends_with(&format!("\n{delim}\n")));
        assert!(e.contains("\nx\ny\n"));
    }

    #[test]
    fn secrets_are_masked_per_line_and_credential_halves() {
        let mut env = Env::default();
        env.set("INPUT_CATALOG-CREDENTIAL", "client:s3cr%t");
        env.set("INPUT_GITHUB-TOKEN", "line1\nline2\n");
        env.set("INPUT_PROJECT-DIR", "not-a-secret");
        let (cmds, redactor) = mask_secrets(&env);
        assert!(cmds.contains(&"::add-mask::client:s3cr%25t".to_string()));
        assert!(cmds.contains(&"::add-mask::s3cr%25t".to_string()));
        assert!(cmds.contains(&"::add-mask::line1".to_string()));
        assert!(cmds.contains(&"::add-mask::line2".to_string()));
        assert!(!cmds.iter().any(|c| c.contains("not-a-secret")));
        assert_eq!(redactor.redact("x s3cr%t line2"), "x *** ***");
        assert_eq!(
            format!("{:?}", crate::secret::Secret::new("abc")),
            "Secret(***)"
        );
    }

    #[test]
    fn bad_inputs_are_named() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::write(ws.path().join("dbt_project.yml"), "name: p\n").unwrap();
        let with = |k: &str, v: &str| {
            let mut env = Env::default();
            env.set(&input_env_name(k), v);
            ActionSettings::from_env(&env, ws.path())
        };
        let err = |k: &str, v: &str| format!("{:#}", with(k, v).unwrap_err());
        assert!(err("mode", "hourly").contains("`hourly` is not one of"));
        assert!(err("full-refresh", "yes please").contains("full-refresh"));
        assert!(err("limit-intraday", "-1").contains("limit-intraday"));
        assert!(err("catalog-uri", "ftp://x").contains("catalog-uri"));
        assert!(err("catalog-credential", "no-colon").contains("client_id:client_secret"));
        assert!(err("pages-repository", "just-a-name").contains("owner/name"));
        assert!(err("project-dir", "nowhere").contains("dbt_project.yml"));
        assert!(err("s3-access-key-id", "AKIA").contains("go together"));
        let ok = with("select", "a, +b\nc+").unwrap();
        assert_eq!(ok.run.select, ["a", "+b", "c+"]);
        assert_eq!(ok.run.project_dir, ws.path());
        assert_eq!(ok.command, Command::Run(crate::mode::Mode::Ci));
        assert_eq!(with("mode", "Doctor").unwrap().command, Command::Doctor);
        assert_eq!(with("limit-ci", "3").unwrap().limits.ci, Some(3));
        let mut env = Env::default();
        env.set("INPUT_PROJCT-DIR", ".");
        let s = ActionSettings::from_env(&env, ws.path()).unwrap();
        assert!(s.warnings[0].contains("projct-dir"), "{:?}", s.warnings);
    }
}
