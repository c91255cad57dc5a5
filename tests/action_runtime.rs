//! The release binary run exactly as the container action runs it: no command
//! line beyond `action.yml`'s `args`, only environment variables (`INPUT_*`
//! for every declared input — the step's value or the default, as GitHub
//! passes them — plus `GITHUB_*`), the working directory a temporary
//! workspace holding a copy of example-project. Also: `action.yml` and the
//! binary agree on inputs and outputs, `analytics doctor` against fake and
//! real servers, and secrets on failure paths (a wrong catalog or S3 secret,
//! a refused GitHub token). The image itself is built from the Dockerfile and
//! its entrypoint run by tests/image_smoke.rs.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use common::repo_root;

// Fake secrets: none of them may appear anywhere but in `::add-mask::` lines.
const CATALOG_TOKEN: &str = "cat-tok-7f3a9c1e5b2d4f6a8c0e";
const CATALOG_CLIENT_SECRET: &str = "cred-sec-2b4d6f8a0c1e3a5b7d9f";
const GITHUB_TOKEN: &str = "ghs_FAKEfake0123456789abcdefABCDEF";
const S3_KEY_ID: &str = "AKIAFAKEKEYID4242XYZ";
const S3_SECRET: &str = "s3-secret-9e8d7c6b5a4f3e2d1c0b";

// Wrong or refused secrets for the failure paths: as distinctive, so a
// leak anywhere is found.
const WRONG_CATALOG_SECRET: &str = "wrong-cat-sec-5e1f0a9d3c7b2e4f";
const WRONG_CATALOG_TOKEN: &str = "wrong-cat-tok-8a2c4e6f1b3d5a7c";
const WRONG_S3_SECRET: &str = "wrong-s3-sec-4d6b8f0a2c1e3b5d";
const REFUSED_GITHUB_TOKEN: &str = "ghs_REFUSEDrefused9876543210zyxwvu";

fn secrets() -> Vec<&'static str> {
    vec![
        CATALOG_TOKEN,
        CATALOG_CLIENT_SECRET,
        GITHUB_TOKEN,
        S3_KEY_ID,
        S3_SECRET,
    ]
}

fn action_yml() -> serde_yaml_ng::Value {
    let text = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn yaml_str(v: &serde_yaml_ng::Value) -> String {
    match v {
        serde_yaml_ng::Value::String(s) => s.clone(),
        serde_yaml_ng::Value::Bool(b) => b.to_string(),
        serde_yaml_ng::Value::Number(n) => n.to_string(),
        serde_yaml_ng::Value::Null => String::new(),
        other => panic!("unexpected YAML value {other:?}"),
    }
}

/// `action.yml` inputs: name → default.
fn declared_inputs() -> BTreeMap<String, String> {
    let yml = action_yml();
    yml["inputs"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (yaml_str(k), yaml_str(&v["default"])))
        .collect()
}

/// Copies a folder, leaving build output behind.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == "archive" {
            continue;
        }
        let dest = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// A checked-out repository: a temp workspace with a copy of example-project.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(
            &repo_root().join("example-project"),
            &dir.path().join("example-project"),
        );
        Workspace { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// What one step produced.
struct Step {
    out: Output,
    stdout: String,
    stderr: String,
    outputs_text: String,
    outputs: BTreeMap<String, String>,
    summary: String,
}

impl Step {
    fn all(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}\n--- outputs\n{}\n--- summary\n{}",
            self.stdout, self.stderr, self.outputs_text, self.summary
        )
    }

    fn ok(&self) -> bool {
        self.out.status.success()
    }
}

/// Parses `$GITHUB_OUTPUT`: `name=value` lines and `name<<DELIM … DELIM` blocks.
fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_string(), value.to_string());
        } else if !line.is_empty() {
            panic!("bad GITHUB_OUTPUT line {line:?}");
        }
    }
    out
}

/// Runs the binary as GitHub runs the container for a step with `with`:
/// every declared input is passed (the given value or the default, with
/// `${{ github.* }}` expressions evaluated to fake values), plus the GitHub
/// variables, and nothing else.
fn run_step(ws: &Workspace, with: &[(&str, &str)], args: Option<Vec<String>>) -> Step {
    run_step_env(ws, with, args, &[])
}

/// [`run_step`] with more environment variables (e.g. `GITHUB_API_URL`).
fn run_step_env(
    ws: &Workspace,
    with: &[(&str, &str)],
    args: Option<Vec<String>>,
    env: &[(&str, &str)],
) -> Step {
    let output_file = ws.path().join("_github_output");
    let summary_file = ws.path().join("_github_step_summary");
    std::fs::write(&output_file, "").unwrap();
    std::fs::write(&summary_file, "").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_analytics"));
    let args = args.unwrap_or_else(|| {
        action_yml()["runs"]["args"]
            .as_sequence()
            .map(|a| a.iter().map(yaml_str).collect())
            .unwrap_or_default()
    });
    cmd.args(&args)
        .current_dir(ws.path())
        .env_clear()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", ws.path())
        .env("GITHUB_OUTPUT", &output_file)
        .env("GITHUB_STEP_SUMMARY", &summary_file)
        .env("GITHUB_REPOSITORY", "octo-org/nem-analytics")
        .env("HOME", ws.path())
        .envs(env.iter().copied());
    for (name, default) in declared_inputs() {
        let value = with
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| {
                default
                    .replace("${{ github.token }}", GITHUB_TOKEN)
                    .replace("${{ github.repository }}", "octo-org/nem-analytics")
            });
        // What GitHub does: upper-case, spaces to `_`, hyphens kept.
        cmd.env(
            format!("INPUT_{}", name.replace(' ', "_").to_uppercase()),
            value,
        );
    }
    let out = cmd.output().unwrap();
    let outputs_text = std::fs::read_to_string(&output_file).unwrap();
    Step {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outputs: parse_outputs(&outputs_text),
        outputs_text,
        summary: std::fs::read_to_string(&summary_file).unwrap(),
        out,
    }
}

/// Every secret input set, with distinctive fake values.
fn secret_inputs() -> Vec<(&'static str, String)> {
    vec![
        ("catalog-uri", "http://127.0.0.1:9/catalog".to_string()),
        ("catalog-token", CATALOG_TOKEN.to_string()),
        (
            "catalog-credential",
            format!("client-id:{CATALOG_CLIENT_SECRET}"),
        ),
        ("s3-access-key-id", S3_KEY_ID.to_string()),
        ("s3-secret-access-key", S3_SECRET.to_string()),
        ("github-token", GITHUB_TOKEN.to_string()),
    ]
}

/// The masks come first, cover every secret, and no secret shows anywhere else.
fn assert_secrets_safe(step: &Step) {
    let all = step.all();
    let masks: Vec<&str> = step
        .stdout
        .lines()
        .take_while(|l| l.starts_with("::add-mask::"))
        .collect();
    for secret in secrets() {
        assert!(
            masks.iter().any(|m| *m == format!("::add-mask::{secret}")),
            "no ::add-mask:: for {secret} before other output:\n{all}"
        );
    }
    let rest: String = step
        .stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    for secret in secrets() {
        for (what, text) in [
            ("stdout", rest.as_str()),
            ("stderr", step.stderr.as_str()),
            ("summary", step.summary.as_str()),
            ("outputs", step.outputs_text.as_str()),
        ] {
            assert!(
                !text.contains(secret),
                "secret {secret} leaked into {what}:\n{all}"
            );
        }
    }
}

/// Each of `secrets` has its `::add-mask::` line (GitHub hides it from the
/// log) and shows nowhere else: not in the rest of stdout, stderr, the job
/// summary or the outputs file.
fn assert_only_masked(step: &Step, secrets: &[&str]) {
    let all = step.all();
    let rest: String = step
        .stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    for secret in secrets {
        assert!(
            step.stdout
                .lines()
                .any(|l| l.starts_with("::add-mask::") && l.contains(secret)),
            "no ::add-mask:: for {secret}:\n{all}"
        );
        for (what, text) in [
            ("stdout", rest.as_str()),
            ("stderr", step.stderr.as_str()),
            ("summary", step.summary.as_str()),
            ("outputs", step.outputs_text.as_str()),
        ] {
            assert!(
                !text.contains(secret),
                "secret {secret} leaked into {what}:\n{all}"
            );
        }
    }
}

fn groups_balanced(stdout: &str) -> bool {
    let mut open = false;
    for line in stdout.lines() {
        if line.starts_with("::group::") {
            if open {
                return false;
            }
            open = true;
        } else if line == "::endgroup::" {
            if !open {
                return false;
            }
            open = false;
        }
    }
    !open
}

// ---------------------------------------------------------------------------
// action.yml ↔ binary

#[test]
fn action_yml_declares_exactly_the_inputs_and_outputs_the_binary_reads() {
    let yml = action_yml();
    for key in ["name", "description", "author"] {
        assert!(yml[key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
    }
    assert!(yml["branding"]["icon"].as_str().is_some());
    assert!(yml["branding"]["color"].as_str().is_some());

    let declared = declared_inputs();
    let read: BTreeMap<String, String> = analytics::actions::INPUTS
        .iter()
        .map(|s| (s.name.to_string(), s.default.to_string()))
        .collect();
    assert_eq!(
        declared.keys().collect::<Vec<_>>(),
        read.keys().collect::<Vec<_>>(),
        "inputs declared in action.yml vs read by the binary"
    );
    assert_eq!(declared, read, "defaults differ");
    for (name, spec) in yml["inputs"].as_mapping().unwrap() {
        assert!(
            spec["description"].as_str().is_some_and(|d| d.len() > 10),
            "input {name:?} needs a description"
        );
        assert_eq!(spec["required"].as_bool(), Some(false), "{name:?}");
    }
    // Names GitHub turns into env vars with hyphens kept.
    assert_eq!(
        analytics::actions::input_env_name("project-dir"),
        "INPUT_PROJECT-DIR"
    );

    let outputs: Vec<String> = yml["outputs"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            assert!(v["description"].as_str().is_some(), "{k:?}");
            yaml_str(k)
        })
        .collect();
    let written: Vec<String> = analytics::actions::OUTPUTS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut sorted = outputs.clone();
    sorted.sort();
    let mut written_sorted = written.clone();
    written_sorted.sort();
    assert_eq!(sorted, written_sorted, "outputs declared vs written");

    assert_eq!(yml["runs"]["using"].as_str(), Some("docker"));
    let image = yml["runs"]["image"].as_str().unwrap();
    assert!(
        image.starts_with("docker://ghcr.io/")
            && image.ends_with(&format!("/analytics-action:v{}", env!("CARGO_PKG_VERSION"))),
        "the image must be the prebuilt one of this version: {image}"
    );
}

#[test]
fn the_example_workflows_use_only_declared_inputs() {
    let declared = declared_inputs();
    let dir = repo_root().join("example-project/workflows");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let wf: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert!(
            wf["concurrency"]["group"].as_str().is_some(),
            "{}: needs a concurrency group",
            path.display()
        );
        for (_, job) in wf["jobs"].as_mapping().unwrap() {
            for step in job["steps"].as_sequence().unwrap() {
                let uses = step["uses"].as_str().unwrap_or_default();
                if !uses.contains("analytics-action") {
                    continue;
                }
                seen += 1;
                for (k, _) in step["with"].as_mapping().unwrap() {
                    let k = yaml_str(k);
                    assert!(
                        declared.contains_key(&k),
                        "{}: `{k}` is not an input",
                        path.display()
                    );
                }
            }
        }
    }
    assert_eq!(seen, 4, "ci, intraday, backfill and maintain");
}

// ---------------------------------------------------------------------------
// The container contract

#[test]
fn an_import_step_publishes_the_site_and_reports_the_commit_without_showing_a_secret() {
    let ws = Workspace::new();
    let gh = common::github::FakeGitHub::start("octo/site", GITHUB_TOKEN, true);
    let env = [("GITHUB_API_URL", gh.api_url.as_str())];
    // Build the warehouse file first (ci into the `local` target), then import.
    let build = run_step_env(
        &ws,
        &[
            ("mode", "ci"),
            ("project-dir", "example-project"),
            ("target", "local"),
        ],
        None,
        &env,
    );
    assert!(build.ok(), "{}", build.all());
    assert_eq!(gh.requests.lock().unwrap().len(), 0, "ci never publishes");
    let secrets = secret_inputs();
    let mut with: Vec<(&str, &str)> = secrets.iter().map(|(k, v)| (*k, v.as_str())).collect();
    with.extend([
        ("mode", "import"),
        ("project-dir", "example-project"),
        ("target", "local"),
        ("pages-repository", "octo/site"),
        ("pages-branch", "pages"),
        ("pages-history", "true"),
    ]);
    let step = run_step_env(&ws, &with, None, &env);
    let all = step.all();
    assert!(step.ok(), "{all}");
    assert_secrets_safe(&step);
    let head = common::github::git(&gh.repo, &["rev-parse", "refs/heads/pages"], None, &[]);
    assert_eq!(step.outputs["commit-sha"], head, "{all}");
    let published = common::github::clone_files(&gh.repo, "pages");
    // Every file of the branch is new, so all were written by this commit.
    assert_eq!(
        step.outputs["files-published"],
        published.len().to_string(),
        "{all}"
    );
    assert!(published.contains_key("manifest.json"));
    // The 5-minute dataset is split by day: data/intraday_YYYY_MM_DD.duckdb.
    assert!(
        published
            .keys()
            .any(|k| k.starts_with("data/intraday_") && k.ends_with(".duckdb")),
        "{:?}",
        published.keys()
    );
    assert!(step.summary.contains("Dashboard files"), "{all}");
    assert!(step.summary.contains("octo/site@pages"), "{all}");
    assert!(
        step.summary.contains("`import` runs no model and no test"),
        "{all}"
    );

    // The fake repository has no Pages site: no address, and the summary
    // (second line), the log and a warning annotation say how to turn it on.
    let not_enabled =
        "GitHub Pages is not enabled: Settings → Pages → Deploy from branch pages, / (root)";
    assert_eq!(step.outputs["pages-url"], "", "{all}");
    let second = step.summary.lines().filter(|l| !l.is_empty()).nth(1);
    assert_eq!(
        second,
        Some(format!("> ⚠️ {not_enabled}").as_str()),
        "{all}"
    );
    assert!(
        step.stdout
            .lines()
            .any(|l| l == format!("::warning title=GitHub Pages::{not_enabled}")),
        "{all}"
    );

    // Pages on, from that branch: the address comes from the Pages API, as
    // the output and at the top of the summary.
    gh.set_pages(common::github::FakePages::branch(
        "https://octo.github.io/site/",
        "pages",
    ));
    let step = run_step_env(&ws, &with, None, &env);
    let all = step.all();
    assert!(step.ok(), "{all}");
    assert_eq!(
        step.outputs["pages-url"], "https://octo.github.io/site/",
        "{all}"
    );
    let second = step.summary.lines().filter(|l| !l.is_empty()).nth(1);
    assert_eq!(
        second,
        Some("**Dashboard:** https://octo.github.io/site/"),
        "{all}"
    );
    assert!(!all.contains("Pages is not enabled"), "{all}");
}

#[test]
fn a_ci_run_writes_real_outputs_and_the_summary_and_never_shows_a_secret() {
    let ws = Workspace::new();
    let secrets = secret_inputs();
    let mut with: Vec<(&str, &str)> = secrets.iter().map(|(k, v)| (*k, v.as_str())).collect();
    with.push(("mode", "ci"));
    with.push(("project-dir", "example-project"));
    let step = run_step(&ws, &with, None);
    let all = step.all();
    assert!(step.ok(), "{all}");
    assert_secrets_safe(&step);
    assert!(groups_balanced(&step.stdout), "{all}");
    assert!(step.stdout.contains("::group::Inputs"), "{all}");
    assert!(
        step.stdout.contains("::group::analytics run --mode ci"),
        "{all}"
    );
    // One collapsible group per pipeline stage, in order.
    let stages: Vec<&str> = step
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("::group::"))
        .collect();
    let pos = |name: &str| {
        stages
            .iter()
            .position(|s| *s == name)
            .unwrap_or_else(|| panic!("no ::group::{name} in {stages:?}"))
    };
    assert!(
        pos("ingest") < pos("models") && pos("models") < pos("tests"),
        "{stages:?}"
    );
    assert!(!step.stdout.contains("::error"), "{all}");

    // The numbers, against independent counts: every model file and seed
    // builds, every listed test passes but the one warning about the unit
    // the sample's registration list does not know (as AEMO publishes units
    // before registering them), rows match the command line's own run.
    let models = walk(&ws.path().join("example-project/models"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .count()
        + walk(&ws.path().join("example-project/seeds"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .count();
    let listed = common::analytics(&["list"], &repo_root().join("example-project"));
    let tests = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|l| l.starts_with("test "))
        .count();
    let cli_ws = Workspace::new();
    let cli = common::analytics(
        &["run", "--mode", "ci"],
        &cli_ws.path().join("example-project"),
    );
    assert!(cli.status.success(), "{}", common::text(&cli));
    let cli_out = String::from_utf8_lossy(&cli.stdout);
    let rows: u64 = regex::Regex::new(r"models built \((\d+) rows\)")
        .unwrap()
        .captures(&cli_out)
        .unwrap()[1]
        .parse()
        .unwrap();
    assert!(rows > 1000, "{cli_out}");
    let o = &step.outputs;
    assert_eq!(o["models-built"], models.to_string(), "{all}");
    assert_eq!(o["rows-written"], rows.to_string(), "{all}");
    assert_eq!(o["tests-passed"], (tests - 1).to_string(), "{all}");
    assert_eq!(o["tests-warned"], "1", "{all}");
    assert_eq!(o["tests-failed"], "0");
    assert_eq!(o["files-published"], "0");
    for name in analytics::actions::OUTPUTS {
        assert!(o.contains_key(*name), "output {name} missing:\n{all}");
    }

    assert!(
        step.summary
            .contains("## analytics · `nem` · mode `ci` · target `memory` — ✅ passed"),
        "{all}"
    );
    assert!(
        step.summary.contains(&format!(
            "### Models — {models}/{models} built, {rows} rows"
        )),
        "{all}"
    );
    assert!(
        step.summary.contains(&format!(
            "### Tests — {} passed, 1 warned, 0 failed",
            tests - 1
        )),
        "{all}"
    );
    assert!(
        step.summary.contains("| `fct_scada` | incremental |"),
        "{all}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A model with a typo, a failing generic test, a warning test and a failing
/// singular test, added to the example project.
fn break_things(ws: &Workspace) {
    ws.write(
        "example-project/models/checks/region_check.sql",
        "select * from (values ('QLD1', 1), ('XX9', 1), ('NSW1', 2)) as t(region_id, batch)\n",
    );
    ws.write(
        "example-project/models/checks/checks.yml",
        "version: 2\n\
         models:\n\
         \x20 - name: region_check\n\
         \x20   columns:\n\
         \x20     - name: region_id\n\
         \x20       data_tests:\n\
         \x20         - not_null\n\
         \x20         - accepted_values:\n\
         \x20             values: [QLD1, NSW1, VIC1, SA1, TAS1]\n\
         \x20     - name: batch\n\
         \x20       data_tests:\n\
         \x20         - unique:\n\
         \x20             config:\n\
         \x20               severity: warn\n",
    );
    // The failing line also carries a secret, which DuckDB quotes back in its
    // error: the annotation, the log and the summary must not show it.
    ws.write(
        "example-project/models/checks/broken_model.sql",
        &format!(
            "-- a model with a typo\nselect\n    region_id,\n    no_such_column -- {GITHUB_TOKEN}\nfrom {{{{ ref('region_check') }}}}\n"
        ),
    );
    ws.write(
        "example-project/tests/assert_no_unknown_region.sql",
        "-- regions outside the NEM\nselect region_id\nfrom {{ ref('region_check') }}\nwhere region_id = 'XX9'\n",
    );
}

#[test]
fn a_broken_model_and_failing_tests_are_annotated_on_the_files_that_declare_them() {
    let ws = Workspace::new();
    break_things(&ws);
    let secrets = secret_inputs();
    let mut with: Vec<(&str, &str)> = secrets.iter().map(|(k, v)| (*k, v.as_str())).collect();
    with.push(("project-dir", "./example-project/"));
    let step = run_step(&ws, &with, None);
    let all = step.all();
    assert!(!step.ok(), "a broken model must fail the step:\n{all}");
    assert!(!all.contains("panicked"), "{all}");
    assert_secrets_safe(&step);
    assert!(groups_balanced(&step.stdout), "{all}");

    let line_of = |prefix: &str| -> String {
        step.stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix}:\n{all}"))
            .to_string()
    };
    // The model: its file, the line of the typo in that file.
    let model = line_of(
        "::error file=example-project/models/checks/broken_model.sql,line=4,title=model broken_model failed::",
    );
    assert!(model.contains("no_such_column"), "{model}");
    assert!(model.contains("Binder Error"), "{model}");
    assert!(!model.contains('\n'));
    // The generic test: the YAML file and the line of `accepted_values`.
    let generic = line_of("::error file=example-project/models/checks/checks.yml,line=8,");
    assert!(generic.contains("accepted_values"), "{generic}");
    assert!(generic.contains("1 failing row"), "{generic}");
    // The warn test: a warning on the line of `unique`.
    let warn = line_of("::warning file=example-project/models/checks/checks.yml,line=12,");
    assert!(warn.contains("unique_region_check_batch"), "{warn}");
    // The singular test: its SQL file.
    line_of(
        "::error file=example-project/tests/assert_no_unknown_region.sql,line=1,title=test assert_no_unknown_region failed::",
    );

    let o = &step.outputs;
    let models = walk(&ws.path().join("example-project/models"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .count()
        + walk(&ws.path().join("example-project/seeds"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .count();
    assert_eq!(o["models-built"], (models - 1).to_string(), "{all}");
    assert_eq!(o["tests-failed"], "2", "{all}");
    // The broken check's warning, and the sample's unregistered unit.
    assert_eq!(o["tests-warned"], "2", "{all}");
    assert!(step.summary.contains("❌ failed"), "{all}");
    assert!(step.summary.contains("`broken_model`"), "{all}");
    assert!(step.summary.contains("no_such_column"), "{all}");
    assert!(
        step.summary.contains("***"),
        "the secret is redacted:\n{all}"
    );
}

#[test]
fn a_project_that_does_not_parse_fails_with_an_annotation_on_its_file() {
    let ws = Workspace::new();
    ws.write(
        "example-project/models/checks/bad_jinja.sql",
        "select 1 as x\nfrom {{ ref('dim_duid' }}\n",
    );
    let step = run_step(&ws, &[("project-dir", "example-project")], None);
    let all = step.all();
    assert!(!step.ok(), "{all}");
    assert!(
        step.stdout.lines().any(|l| l.starts_with(
            "::error file=example-project/models/checks/bad_jinja.sql,line=2,title=analytics::"
        )),
        "{all}"
    );
    assert!(step.summary.contains("could not run"), "{all}");
    assert!(step.summary.contains("bad_jinja.sql"), "{all}");
    assert_eq!(step.outputs["models-built"], "0", "{all}");
}

#[test]
fn bad_inputs_fail_with_the_input_named() {
    let ws = Workspace::new();
    let step = run_step(
        &ws,
        &[
            ("mode", "hourly"),
            ("catalog-token", CATALOG_TOKEN),
            ("github-token", GITHUB_TOKEN),
        ],
        None,
    );
    let all = step.all();
    assert!(!step.ok(), "{all}");
    assert!(
        step.stdout
            .lines()
            .any(|l| l.starts_with("::error title=analytics::input `mode`: `hourly`")),
        "{all}"
    );
    assert!(!step.summary.is_empty(), "{all}");
    let step = run_step(&ws, &[("project-dir", "missing")], None);
    assert!(!step.ok());
    assert!(
        step.stdout.contains("input `project-dir`"),
        "{}",
        step.all()
    );
}

#[test]
fn with_no_arguments_the_image_still_runs_the_action() {
    // GitHub may start the image without `args`; GITHUB_ACTIONS and INPUT_MODE
    // are enough.
    let ws = Workspace::new();
    let step = run_step(
        &ws,
        &[
            ("project-dir", "example-project"),
            ("select", "dim_calendar"),
        ],
        Some(Vec::new()),
    );
    let all = step.all();
    assert!(step.ok(), "{all}");
    assert_eq!(step.outputs["models-built"], "1", "{all}");
    assert!(step.summary.contains("1/1 built"), "{all}");
}

// ---------------------------------------------------------------------------
// analytics doctor

/// A request as a fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    auth: Option<String>,
    body: String,
}

/// A loopback HTTP server whose answers come from `route`.
struct Fake {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    _server: common::server::Server,
}

impl Fake {
    fn start(route: impl Fn(&Seen) -> (u16, String) + Send + 'static) -> Fake {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, route) = (seen.clone(), Mutex::new(route));
        let server = common::server::Server::start(move |request| {
            let req = Seen {
                method: request.method.clone(),
                path: request.path.clone(),
                auth: request.header("authorization").map(str::to_string),
                body: String::from_utf8_lossy(&request.body).into_owned(),
            };
            log.lock().unwrap().push(req.clone());
            let (status, text) = (route.lock().unwrap())(&req);
            Some(
                common::server::Response::new(status, text)
                    .header("Content-Type", "application/json"),
            )
        });
        Fake {
            base: server.url.clone(),
            seen,
            _server: server,
        }
    }
}

/// A fake Iceberg REST catalog: OAuth2 client credentials `cid:<secret>`,
/// a `wh` prefix, two namespaces.
fn fake_catalog() -> Fake {
    Fake::start(|r| {
        let authed = r.auth.as_deref() == Some("Bearer issued-token-123");
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/v1/oauth/tokens") => {
                if r.body.contains("grant_type=client_credentials")
                    && r.body.contains("client_id=cid")
                    && r.body
                        .contains(&format!("client_secret={CATALOG_CLIENT_SECRET}"))
                {
                    (
                        200,
                        r#"{"access_token":"issued-token-123","token_type":"bearer","expires_in":3600}"#
                            .into(),
                    )
                } else {
                    (401, r#"{"error":"invalid_client"}"#.into())
                }
            }
            ("GET", p) if p.starts_with("/v1/config") => {
                if authed || r.auth.is_none() {
                    (200, r#"{"defaults":{},"overrides":{"prefix":"wh"}}"#.into())
                } else {
                    (
                        401,
                        r#"{"error":{"message":"bad token","code":401}}"#.into(),
                    )
                }
            }
            ("GET", "/v1/wh/namespaces") if authed => {
                (200, r#"{"namespaces":[["nem"],["nem","staging"]]}"#.into())
            }
            ("GET", _) => (
                403,
                r#"{"error":{"message":"Access Denied.","code":403}}"#.into(),
            ),
            _ => (404, "{}".into()),
        }
    })
}

/// A fake GitHub API: `octo-org/pages` pushable, `octo-org/readonly` not,
/// anything else 404; only `GITHUB_TOKEN` is a valid token.
fn fake_github() -> Fake {
    Fake::start(|r| {
        if r.auth.as_deref() != Some(&format!("Bearer {GITHUB_TOKEN}")) {
            return (401, r#"{"message":"Bad credentials"}"#.into());
        }
        match r.path.as_str() {
            "/repos/octo-org/pages" => (
                200,
                r#"{"full_name":"octo-org/pages","default_branch":"main","permissions":{"admin":false,"push":true,"pull":true}}"#.into(),
            ),
            "/repos/octo-org/readonly" => (
                200,
                r#"{"full_name":"octo-org/readonly","default_branch":"main","permissions":{"admin":false,"push":false,"pull":true}}"#.into(),
            ),
            _ => (404, r#"{"message":"Not Found"}"#.into()),
        }
    })
}

fn doctor(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_analytics"));
    cmd.arg("doctor").args(args).env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), common::text(&out))
}

fn line_with<'a>(text: &'a str, what: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no `{what}` line:\n{text}"))
}

#[test]
fn doctor_checks_project_samples_catalog_and_github_token() {
    let catalog = fake_catalog();
    let github = fake_github();
    let project = repo_root().join("example-project");
    let (ok, text) = doctor(
        &["--project", project.to_str().unwrap(), "--mode", "ci"],
        &[
            ("ICEBERG_REST_ENDPOINT", &catalog.base),
            (
                "ICEBERG_CREDENTIAL",
                &format!("cid:{CATALOG_CLIENT_SECRET}"),
            ),
            ("ICEBERG_WAREHOUSE", "wh"),
            ("GITHUB_TOKEN", GITHUB_TOKEN),
            ("GITHUB_REPOSITORY", "octo-org/pages"),
            ("GITHUB_API_URL", &github.base),
        ],
    );
    assert!(ok, "{text}");
    assert!(
        line_with(&text, "project loads").starts_with("✅"),
        "{text}"
    );
    // 8 model files and the fuel-categories seed.
    assert!(line_with(&text, "`nem`").contains("9 models"), "{text}");
    assert!(line_with(&text, "models parse").starts_with("✅"), "{text}");
    assert!(
        line_with(&text, "source `daily`").contains("sample sample/daily: 2 files"),
        "{text}"
    );
    assert!(
        line_with(&text, "catalog reachable").starts_with("✅"),
        "{text}"
    );
    assert!(line_with(&text, "catalog auth").starts_with("✅"), "{text}");
    assert!(
        line_with(&text, "catalog namespaces").contains("2 listed (nem, nem.staging)"),
        "{text}"
    );
    assert!(
        line_with(&text, "pages push permission").starts_with("✅"),
        "{text}"
    );
    for secret in [CATALOG_CLIENT_SECRET, GITHUB_TOKEN, "issued-token-123"] {
        assert!(!text.contains(secret), "{secret} shown:\n{text}");
    }
    let seen = catalog.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|r| r.path == "/v1/config?warehouse=wh" && r.auth.is_none()),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|r| r.path == "/v1/wh/namespaces"),
        "{seen:?}"
    );
}

#[test]
fn doctor_says_what_fails_and_how_to_fix_it() {
    let catalog = fake_catalog();
    let github = fake_github();
    let project = repo_root().join("example-project");
    let (ok, text) = doctor(
        &["--project", project.to_str().unwrap(), "--offline"],
        &[
            ("ICEBERG_REST_ENDPOINT", &catalog.base),
            ("ICEBERG_CREDENTIAL", "cid:wrong-secret"),
            ("GITHUB_TOKEN", GITHUB_TOKEN),
            ("GITHUB_REPOSITORY", "octo-org/readonly"),
            ("GITHUB_API_URL", &github.base),
        ],
    );
    assert!(!ok, "{text}");
    assert!(
        line_with(&text, "source `daily`").contains("offline"),
        "{text}"
    );
    let auth = line_with(&text, "catalog auth");
    assert!(
        auth.starts_with("❌") && auth.contains("HTTP 401"),
        "{text}"
    );
    assert!(auth.contains("→ fix:"), "{text}");
    let push = line_with(&text, "pages push permission");
    assert!(
        push.starts_with("❌") && push.contains("contents: write"),
        "{text}"
    );
    assert!(!text.contains("wrong-secret"), "{text}");

    // A wrong bearer token, a repository the token cannot see, a project that
    // is not there, and a catalog that is not listening.
    let (ok, text) = doctor(
        &["--project", "/nonexistent/project", "--offline"],
        &[
            ("ICEBERG_REST_ENDPOINT", &catalog.base),
            ("ICEBERG_TOKEN", CATALOG_TOKEN),
            ("GITHUB_TOKEN", GITHUB_TOKEN),
            ("GITHUB_REPOSITORY", "octo-org/missing"),
            ("GITHUB_API_URL", &github.base),
        ],
    );
    assert!(!ok);
    assert!(
        line_with(&text, "project loads").starts_with("❌"),
        "{text}"
    );
    assert!(line_with(&text, "catalog auth").starts_with("❌"), "{text}");
    assert!(
        line_with(&text, "pages repository readable").contains("HTTP 404"),
        "{text}"
    );
    assert!(!text.contains(CATALOG_TOKEN), "{text}");
    let (ok, text) = doctor(
        &["--project", project.to_str().unwrap(), "--mode", "ci"],
        &[("ICEBERG_REST_ENDPOINT", "http://127.0.0.1:9")],
    );
    assert!(!ok);
    assert!(
        line_with(&text, "catalog reachable").starts_with("❌"),
        "{text}"
    );
}

#[test]
fn doctor_checks_that_github_pages_serves_the_pages_branch() {
    use common::github::{FakeGitHub, FakePages};
    let gh = FakeGitHub::start("octo/site", GITHUB_TOKEN, true);
    let p = common::TempProject::new("");
    p.write("models/m.sql", "select 1 as a");
    let run = || {
        doctor(
            &["--project", p.path().to_str().unwrap(), "--offline"],
            &[
                ("GITHUB_TOKEN", GITHUB_TOKEN),
                ("GITHUB_REPOSITORY", "octo/site"),
                ("GITHUB_API_URL", &gh.api_url),
            ],
        )
    };
    // Not enabled (404): a warning with the fix; the doctor still passes
    // (Pages can only deploy a branch once the first publish made it).
    let (ok, text) = run();
    assert!(ok, "{text}");
    assert!(
        line_with(&text, "pages push permission").starts_with("✅"),
        "{text}"
    );
    let pages = line_with(&text, "GitHub Pages");
    assert!(pages.starts_with("⚠️"), "{text}");
    assert!(pages.contains("not enabled on octo/site"), "{text}");
    assert!(
        pages.contains(
            "→ fix: Settings → Pages → Build and deployment: Deploy from a branch, `gh-pages`"
        ),
        "{text}"
    );
    // Deployed from gh-pages: the address.
    gh.set_pages(FakePages::branch(
        "https://octo.github.io/site/",
        "gh-pages",
    ));
    let (ok, text) = run();
    assert!(ok, "{text}");
    assert_eq!(
        line_with(&text, "GitHub Pages"),
        "✅ GitHub Pages: serves branch `gh-pages` at https://octo.github.io/site/"
    );
    // From another branch: the dashboard would not be served.
    gh.set_pages(FakePages::branch("https://octo.github.io/site/", "main"));
    let (_, text) = run();
    let pages = line_with(&text, "GitHub Pages");
    assert!(
        pages.starts_with("⚠️") && pages.contains("serves branch `main`, folder `/`"),
        "{text}"
    );
    // The token may not read the Pages settings: not checked, and said why.
    gh.set_pages(FakePages::Forbidden);
    let (ok, text) = run();
    assert!(ok, "{text}");
    let pages = line_with(&text, "GitHub Pages");
    assert!(
        pages.starts_with("⏭️") && pages.contains("HTTP 403") && pages.contains("pages: read"),
        "{text}"
    );
    assert!(!text.contains(GITHUB_TOKEN), "{text}");
    assert_eq!(gh.count("GET", "/pages"), 4);
}

#[test]
fn doctor_lists_sources_over_the_network() {
    let listing = Fake::start(|r| match r.path.as_str() {
        "/daily/" => (
            200,
            r#"<A HREF="/daily/PUBLIC_DAILY_202401010000_20240102043219.zip">x</A><br>"#.into(),
        ),
        _ => (404, "not here".into()),
    });
    let ws = Workspace::new();
    let settings = ws.path().join("example-project/analytics.yml");
    let text = std::fs::read_to_string(&settings).unwrap().replace(
        "https://nemweb.com.au/Reports/Current/Daily_Reports/",
        &format!("{}/daily/", listing.base),
    );
    let text = text.replace(
        "https://nemweb.com.au/Reports/Current/Dispatch_SCADA/",
        &format!("{}/missing/", listing.base),
    );
    std::fs::write(&settings, text).unwrap();
    let (ok, text) = doctor(
        &[
            "--project",
            ws.path().join("example-project").to_str().unwrap(),
            "--mode",
            "backfill",
            "--target",
            "local",
        ],
        &[],
    );
    assert!(!ok, "{text}");
    assert!(
        line_with(&text, "source `daily`").contains("lists 1 file matching the pattern"),
        "{text}"
    );
    let scada = line_with(&text, "source `scada`");
    assert!(scada.starts_with("❌") && scada.contains("404"), "{text}");
}

#[test]
fn the_action_runs_doctor_with_its_inputs() {
    let catalog = fake_catalog();
    let ws = Workspace::new();
    let step = run_step(
        &ws,
        &[
            ("mode", "doctor"),
            ("project-dir", "example-project"),
            ("catalog-uri", &catalog.base),
            (
                "catalog-credential",
                &format!("cid:{CATALOG_CLIENT_SECRET}"),
            ),
            ("warehouse", "wh"),
            ("github-token", ""),
        ],
        None,
    );
    let all = step.all();
    // Sources are contacted for real (no network here): they fail, and say so.
    assert!(step.stdout.contains("::group::analytics doctor"), "{all}");
    assert!(step.stdout.contains("✅ catalog namespaces"), "{all}");
    assert!(step.summary.contains("## analytics doctor"), "{all}");
    assert!(
        step.stdout.contains("::add-mask::issued-token-123"),
        "{all}"
    );
    assert!(!step.summary.contains(CATALOG_CLIENT_SECRET), "{all}");
}

/// Against a real SeaweedFS Iceberg REST catalog (`scripts/setup-seaweedfs`).
/// `SeaweedFs::start` is the readiness probe: it returns once the catalog
/// answers `/v1/config`, S3 accepts connections and the table bucket lists
/// namespaces with the test credential. Then doctor runs once.
#[test]
fn doctor_against_a_real_seaweedfs_catalog() {
    let weed_process = common::seaweedfs::SeaweedFs::start();
    let base = weed_process.catalog.clone();
    let project = repo_root().join("example-project");
    let (ok, text) = doctor(
        &["--project", project.to_str().unwrap(), "--mode", "ci"],
        &[
            ("ICEBERG_REST_ENDPOINT", &base),
            ("ICEBERG_CREDENTIAL", "admin:secretkey"),
            ("ICEBERG_WAREHOUSE", "s3://warehouse"),
            ("AWS_ENDPOINT_URL_S3", &weed_process.s3),
            ("AWS_ACCESS_KEY_ID", "admin"),
            ("AWS_SECRET_ACCESS_KEY", "secretkey"),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    assert!(ok, "{text}");
    assert!(line_with(&text, "catalog auth").starts_with("✅"), "{text}");
    assert!(
        line_with(&text, "catalog namespaces").starts_with("✅"),
        "{text}"
    );
    // A real table was created, committed to (append and upsert) and dropped.
    assert!(
        line_with(&text, "catalog scratch table").starts_with("✅"),
        "{text}"
    );
    assert!(!text.contains("secretkey"), "{text}");

    // A wrong secret, given as the action gives it: refused, said so, and the
    // secret is in no output but its mask.
    let ws = Workspace::new();
    let credential = format!("admin:{WRONG_CATALOG_SECRET}");
    let step = run_step(
        &ws,
        &[
            ("mode", "doctor"),
            ("project-dir", "example-project"),
            ("catalog-uri", &base),
            ("catalog-credential", &credential),
            ("warehouse", "s3://warehouse"),
            ("github-token", ""),
        ],
        None,
    );
    let all = step.all();
    assert!(!step.ok(), "{all}");
    assert!(
        line_with(&step.stdout, "catalog auth").contains("refused"),
        "{all}"
    );
    assert!(step.summary.contains("catalog auth"), "{all}");
    assert_only_masked(&step, &[WRONG_CATALOG_SECRET]);
    drop(weed_process);
}

#[test]
fn the_action_stores_models_in_iceberg_from_its_catalog_inputs() {
    let sw = common::seaweedfs::SeaweedFs::start();
    let ws = Workspace::new();
    ws.write(
        "proj/dbt_project.yml",
        "name: p\nmodels:\n  p:\n    +materialized: table\n",
    );
    ws.write(
        "proj/models/numbers.sql",
        "select range as n from range(10)",
    );
    ws.write(
        "proj/models/growing.sql",
        "{{ config(materialized='incremental', unique_key='n') }}\n\
         select n, 'run' as s from {{ ref('numbers') }} where n < 5",
    );
    let inputs = [
        ("mode", "intraday"),
        ("project-dir", "proj"),
        ("catalog-uri", sw.catalog.as_str()),
        ("catalog-credential", "admin:secretkey"),
        ("warehouse", "s3://warehouse"),
        ("s3-endpoint", sw.s3.as_str()),
        ("s3-region", "us-east-1"),
        ("s3-access-key-id", "admin"),
        ("s3-secret-access-key", "secretkey"),
    ];
    for _ in 0..2 {
        let step = run_step(&ws, &inputs, None);
        assert!(step.out.status.success(), "{}", step.all());
        assert!(
            !step
                .all()
                .lines()
                .any(|l| !l.starts_with("::add-mask::") && l.contains("secretkey")),
            "a secret leaked:\n{}",
            step.all()
        );
    }
    // Stored in Iceberg (read back by pyiceberg); the second run replaced
    // the table and upserted the same keys: no duplicates.
    assert_eq!(common::seaweedfs::pyiceberg_rows(&sw, "main.numbers"), 10);
    assert_eq!(common::seaweedfs::pyiceberg_rows(&sw, "main.growing"), 5);
}

// ---------------------------------------------------------------------------
// Secrets on failure paths: a wrong catalog secret, a wrong S3 secret, a
// refused GitHub token. Each fails the step with a message naming what to
// check, and the secret is in no output but its mask.

/// A project with one table model, for the Iceberg target of the inputs.
fn one_model_project(ws: &Workspace) {
    ws.write(
        "proj/dbt_project.yml",
        "name: p\nmodels:\n  p:\n    +materialized: table\n",
    );
    ws.write(
        "proj/models/numbers.sql",
        "select range as n from range(10)",
    );
}

/// The step's `::error` annotation lines.
fn error_lines(step: &Step) -> Vec<&str> {
    step.stdout
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect()
}

#[test]
fn a_wrong_catalog_secret_fails_the_step_naming_the_input_and_never_shows_it() {
    let sw = common::seaweedfs::SeaweedFs::start();
    let ws = Workspace::new();
    one_model_project(&ws);
    let credential = format!("admin:{WRONG_CATALOG_SECRET}");
    let common_inputs = [
        ("mode", "intraday"),
        ("project-dir", "proj"),
        ("catalog-uri", sw.catalog.as_str()),
        ("warehouse", "s3://warehouse"),
        ("s3-endpoint", sw.s3.as_str()),
        ("s3-region", "us-east-1"),
        ("s3-access-key-id", "admin"),
        ("s3-secret-access-key", "secretkey"),
    ];
    // OAuth2 client credentials the token endpoint refuses.
    let mut with = common_inputs.to_vec();
    with.push(("catalog-credential", &credential));
    let step = run_step(&ws, &with, None);
    let all = step.all();
    assert!(!step.ok(), "{all}");
    let errors = error_lines(&step);
    assert!(
        errors.iter().any(|l| l
            .contains("the Iceberg catalog refused the credentials (HTTP 401 invalid_client at")
            && l.contains("the action's `catalog-credential` input")),
        "{all}"
    );
    assert!(step.summary.contains("could not run"), "{all}");
    assert!(
        step.summary.contains("`catalog-credential`"),
        "the summary names the input:\n{all}"
    );
    assert_eq!(step.outputs["models-built"], "0", "{all}");
    assert_only_masked(&step, &[WRONG_CATALOG_SECRET]);

    // A bearer token the catalog refuses.
    let mut with = common_inputs.to_vec();
    with.push(("catalog-token", WRONG_CATALOG_TOKEN));
    let step = run_step(&ws, &with, None);
    let all = step.all();
    assert!(!step.ok(), "{all}");
    assert!(
        error_lines(&step)
            .iter()
            .any(|l| l.contains("refused") && l.contains("`catalog-token`")),
        "{all}"
    );
    assert_only_masked(&step, &[WRONG_CATALOG_TOKEN]);
}

#[test]
fn a_wrong_s3_secret_fails_the_model_naming_the_setting_and_never_shows_it() {
    let sw = common::seaweedfs::SeaweedFs::start();
    let ws = Workspace::new();
    one_model_project(&ws);
    let step = run_step(
        &ws,
        &[
            ("mode", "intraday"),
            ("project-dir", "proj"),
            ("catalog-uri", sw.catalog.as_str()),
            ("catalog-credential", "admin:secretkey"),
            ("warehouse", "s3://warehouse"),
            ("s3-endpoint", sw.s3.as_str()),
            ("s3-region", "us-east-1"),
            ("s3-access-key-id", "admin"),
            ("s3-secret-access-key", WRONG_S3_SECRET),
        ],
        None,
    );
    let all = step.all();
    assert!(!step.ok(), "{all}");
    // One line on the model's file: S3's status and code, the object, the
    // endpoint and bucket, and the setting to check; no response dump.
    let annotation = error_lines(&step)
        .into_iter()
        .find(|l| l.starts_with("::error file=proj/models/numbers.sql,line=1,"))
        .unwrap_or_else(|| panic!("no annotation on the model:\n{all}"));
    for part in [
        "writing Iceberg table main.numbers",
        "S3 refused the credentials (HTTP 403 SignatureDoesNotMatch",
        &format!("endpoint {}", sw.s3),
        "bucket `warehouse`",
        "check s3.secret_access_key (the action's `s3-secret-access-key` input, AWS_SECRET_ACCESS_KEY)",
    ] {
        assert!(annotation.contains(part), "`{part}` missing:\n{annotation}");
    }
    for dump in ["x-amz-request-id", "headers:", "request_id", "source:"] {
        assert!(!all.contains(dump), "`{dump}` shown:\n{all}");
    }
    assert!(
        annotation.len() < 600,
        "{} chars: {annotation}",
        annotation.len()
    );
    let row = step
        .summary
        .lines()
        .find(|l| l.starts_with("| `numbers` |"))
        .unwrap_or_else(|| panic!("no row for the model:\n{all}"));
    assert!(
        row.contains("❌") && row.contains("`s3-secret-access-key`"),
        "{all}"
    );
    assert_eq!(step.outputs["models-built"], "0", "{all}");
    assert_only_masked(&step, &[WRONG_S3_SECRET]);
}

#[test]
fn a_refused_github_token_fails_the_publish_naming_the_input_and_never_shows_it() {
    let ws = Workspace::new();
    let gh = common::github::FakeGitHub::start("octo/site", GITHUB_TOKEN, true);
    let env = [("GITHUB_API_URL", gh.api_url.as_str())];
    let build = run_step_env(
        &ws,
        &[
            ("mode", "ci"),
            ("project-dir", "example-project"),
            ("target", "local"),
        ],
        None,
        &env,
    );
    assert!(build.ok(), "{}", build.all());
    let import = |token: &str| {
        run_step_env(
            &ws,
            &[
                ("mode", "import"),
                ("project-dir", "example-project"),
                ("target", "local"),
                ("pages-repository", "octo/site"),
                ("github-token", token),
            ],
            None,
            &env,
        )
    };
    // 401: the fake accepts only GITHUB_TOKEN.
    let step = import(REFUSED_GITHUB_TOKEN);
    let all = step.all();
    assert!(!step.ok(), "{all}");
    assert!(
        error_lines(&step).iter().any(|l| l.contains(
            "publish to octo/site@gh-pages: reading the repository: the token was refused (HTTP 401); check github-token"
        )),
        "{all}"
    );
    assert!(
        step.summary.contains("the token was refused (HTTP 401)"),
        "{all}"
    );
    assert_eq!(step.outputs["commit-sha"], "", "{all}");
    assert_eq!(step.outputs["files-published"], "0", "{all}");
    assert_only_masked(&step, &[REFUSED_GITHUB_TOKEN]);
    // Nothing was written: the refusal came before any blob or ref.
    assert_eq!(gh.count("POST", "/git/"), 0);

    // 403 (a token GitHub knows but that may not read the repository).
    gh.fail("GET", "/repos/octo/site", 403, 100);
    let step = import(REFUSED_GITHUB_TOKEN);
    let all = step.all();
    assert!(!step.ok(), "{all}");
    assert!(
        error_lines(&step)
            .iter()
            .any(|l| l.contains("octo/site@gh-pages: reading the repository") && l.contains("403")),
        "{all}"
    );
    assert_only_masked(&step, &[REFUSED_GITHUB_TOKEN]);
}
