//! Project loading: a dbt-style project (`dbt_project.yml`, models, YAML
//! properties, singular tests, macros) plus our `analytics.yml`.
//!
//! Loading only reads files; SQL is rendered later by [`crate::templating`].

pub mod config;
pub mod dashboard;
pub mod profiles;
mod properties;
pub mod seeds;
pub mod settings;
pub mod targets;
pub mod unsupported;

pub use config::Config;
pub use dashboard::{AssetsMode, DashboardConfig};
pub use settings::{Settings, SourceConfig, TestScope};
pub use targets::{IcebergConfig, MaintainOptions, S3Config, TargetConfig, TargetYaml};
pub use unsupported::{Severity, Unsupported};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Parses `--vars` (or the action's `vars` input, named by `what`): a YAML
/// mapping that overrides `dbt_project.yml`'s `vars:`.
pub fn parse_vars(text: Option<&str>, what: &str) -> Result<serde_json::Map<String, Value>> {
    let Some(text) = text else {
        return Ok(serde_json::Map::new());
    };
    let value: Value =
        serde_yaml_ng::from_str(text).with_context(|| format!("{what} is not valid YAML"))?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(serde_json::Map::new()),
        _ => bail!("{what} must be a mapping, e.g. '{{batch: 2}}'"),
    }
}

/// A loaded project, ready to be rendered and built.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project directory.
    pub root: PathBuf,
    /// `name:` from `dbt_project.yml`.
    pub name: String,
    /// `profile:` from `dbt_project.yml`: the profile of `profiles.yml` it uses.
    pub profile: Option<String>,
    /// `vars:` from `dbt_project.yml` (overridable from the command line).
    pub vars: serde_json::Map<String, Value>,
    /// Models, sorted by name.
    pub models: Vec<Model>,
    /// Macro files, in path order.
    pub macro_files: Vec<SourceFile>,
    /// Singular tests (`tests/**/*.sql`, except `tests/generic`).
    pub singular_tests: Vec<SourceFile>,
    /// Generic tests declared in YAML, in declaration order.
    pub generic_tests: Vec<GenericTest>,
    /// dbt `sources:` declared in YAML.
    pub dbt_sources: Vec<DbtSourceTable>,
    /// `on-run-start` / `on-run-end` hooks.
    pub on_run_start: Vec<String>,
    /// `on-run-end` hooks: SQL run after all models (and tests).
    pub on_run_end: Vec<String>,
    /// `analytics.yml`.
    pub settings: Settings,
    /// Non-fatal problems found while loading (unknown keys and the like).
    pub warnings: Vec<String>,
    /// dbt features this project uses that do not run here.
    pub unsupported: Vec<Unsupported>,
}

/// A model: one `.sql` file under a model path.
#[derive(Debug, Clone)]
pub struct Model {
    /// The file stem, as `ref()` uses it.
    pub name: String,
    /// Path relative to the project root, e.g. `models/marts/fct_scada.sql`.
    pub path: PathBuf,
    /// The model's SQL/Jinja text, unrendered.
    pub sql: String,
    /// Config from `dbt_project.yml` folders and the model's YAML, before the
    /// SQL's own `config()` calls are applied.
    pub config: Config,
    /// `description:` from the model's YAML properties.
    pub description: Option<String>,
}

/// A file of SQL/Jinja text (a macro file or a singular test).
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The file stem (a singular test's name).
    pub name: String,
    /// Path relative to the project root.
    pub path: PathBuf,
    /// The file's SQL/Jinja text, unrendered.
    pub text: String,
}

/// One generic test attached to a model or column in YAML.
#[derive(Debug, Clone)]
pub struct GenericTest {
    /// A unique, readable name, e.g. `unique_dim_duid_duid`.
    pub name: String,
    /// The test: `unique`, `not_null`, `accepted_values`, `relationships` or a
    /// project-defined `{% test %}`.
    pub test: String,
    /// The model the test is attached to.
    pub model: String,
    /// The column tested, for column-level tests.
    pub column: Option<String>,
    /// Test arguments (`values`, `to`, `field`, …), with `arguments:` flattened in.
    pub args: serde_json::Map<String, Value>,
    /// `severity`, `where`, `error_if`, …
    pub config: Config,
    /// The YAML file it was declared in.
    pub file: PathBuf,
    /// The line of that file naming the test (1 when not found).
    pub line: usize,
}

/// A table of a dbt `sources:` block.
#[derive(Debug, Clone)]
pub struct DbtSourceTable {
    /// The source's `name:` (first argument of `source()`).
    pub source: String,
    /// The table's `name:` (second argument of `source()`).
    pub table: String,
    /// The source's `schema:` (default: the source name).
    pub schema: String,
    /// The table's `identifier:` (default: its name).
    pub identifier: String,
    /// dbt-duckdb's `meta.external_location` (e.g. `read_csv('data/{name}.csv')`).
    pub external_location: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct DbtProjectFile {
    name: String,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default, alias = "source-paths")]
    model_paths: Option<Vec<String>>,
    #[serde(default)]
    test_paths: Option<Vec<String>>,
    #[serde(default)]
    macro_paths: Option<Vec<String>>,
    #[serde(default)]
    snapshot_paths: Option<Vec<String>>,
    #[serde(default, alias = "data-paths")]
    seed_paths: Option<Vec<String>>,
    #[serde(default)]
    seeds: Option<Value>,
    #[serde(default)]
    vars: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    models: Option<Value>,
    #[serde(default, alias = "data_tests", alias = "tests")]
    data_tests: Option<Value>,
    #[serde(default)]
    on_run_start: Option<Value>,
    #[serde(default)]
    on_run_end: Option<Value>,
    #[serde(flatten)]
    _other: BTreeMap<String, Value>,
}

impl Project {
    /// Loads the project at `root`; dbt features that do not run here and
    /// would change what is built (Python models, snapshots, packages) are
    /// an error naming every file, the others become warnings.
    pub fn load(root: &Path) -> Result<Project> {
        let mut project = Project::read(root)?;
        if let Some(message) = unsupported::load_error(&project.unsupported) {
            bail!(message);
        }
        let warnings: Vec<String> = project.unsupported.iter().map(|u| u.to_string()).collect();
        project.warnings.extend(warnings);
        Ok(project)
    }

    /// Reads the project at `root`, recording unsupported dbt features in
    /// [`Project::unsupported`] instead of failing on them (for the doctor,
    /// which lists them all).
    pub fn read(root: &Path) -> Result<Project> {
        let root = root.to_path_buf();
        let project_file = root.join("dbt_project.yml");
        let text = std::fs::read_to_string(&project_file).with_context(|| {
            format!(
                "no dbt_project.yml in {} (is --project pointing at the project folder?)",
                root.display()
            )
        })?;
        let file: DbtProjectFile = read_yaml(&text, &project_file)?;
        let mut warnings = Vec::new();
        let settings = Settings::load(&root, &mut warnings)?;

        let model_paths = file.model_paths.unwrap_or_else(|| vec!["models".into()]);
        let test_paths = file.test_paths.unwrap_or_else(|| vec!["tests".into()]);
        let macro_paths = file.macro_paths.unwrap_or_else(|| vec!["macros".into()]);
        let folder_configs = file
            .models
            .as_ref()
            .and_then(|m| m.get(&file.name))
            .cloned()
            .unwrap_or(Value::Null);

        let mut project = Project {
            root: root.clone(),
            name: file.name.clone(),
            profile: file.profile.clone(),
            vars: file.vars.unwrap_or_default(),
            models: Vec::new(),
            macro_files: Vec::new(),
            singular_tests: Vec::new(),
            generic_tests: Vec::new(),
            dbt_sources: Vec::new(),
            on_run_start: hook_list(file.on_run_start.as_ref()),
            on_run_end: hook_list(file.on_run_end.as_ref()),
            settings,
            warnings,
            unsupported: Vec::new(),
        };
        let _ = file.data_tests; // project-level test configs: accepted, not yet applied

        let mut property_files = Vec::new();
        for model_path in &model_paths {
            let dir = root.join(model_path);
            for path in files_under(&dir)? {
                let rel = relative(&root, &path);
                match path.extension().and_then(|e| e.to_str()) {
                    Some("sql") => {
                        let name = file_stem(&path);
                        let sql = std::fs::read_to_string(&path)
                            .with_context(|| format!("reading model {}", rel.display()))?;
                        if is_snapshot_block(&sql) {
                            project.unsupported.push(Unsupported::snapshot(rel));
                            continue;
                        }
                        let folders = folders_between(&dir, &path);
                        let config = folder_config(&folder_configs, &folders, &name);
                        if let Some(existing) = project.models.iter().find(|m| m.name == name) {
                            bail!(
                                "two models are named `{name}`: {} and {}",
                                existing.path.display(),
                                rel.display()
                            );
                        }
                        project.models.push(Model {
                            name,
                            path: rel,
                            sql,
                            config,
                            description: None,
                        });
                    }
                    Some("yml") | Some("yaml") => property_files.push(path),
                    Some("py") => project.unsupported.push(Unsupported::python_model(rel)),
                    _ => {}
                }
            }
        }
        let seed_paths = file
            .seed_paths
            .clone()
            .unwrap_or_else(|| vec!["seeds".into()]);
        let seed_configs = file
            .seeds
            .as_ref()
            .and_then(|m| m.get(&file.name))
            .cloned()
            .unwrap_or(Value::Null);
        for seed in seeds::seed_models(&root, &seed_paths, &seed_configs)? {
            if let Some(existing) = project.models.iter().find(|m| m.name == seed.name) {
                bail!(
                    "a seed and a model are both named `{}`: {} and {}",
                    seed.name,
                    existing.path.display(),
                    seed.path.display()
                );
            }
            project.models.push(seed);
        }
        project.models.sort_by(|a, b| a.name.cmp(&b.name));

        for path in property_files.into_iter().chain(
            seed_paths
                .iter()
                .map(|p| files_under(&root.join(p)))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"))),
        ) {
            project.apply_properties(&path)?;
        }

        let snapshot_paths = file
            .snapshot_paths
            .clone()
            .unwrap_or_else(|| vec!["snapshots".into()]);
        for snapshot_path in &snapshot_paths {
            for path in files_under(&root.join(snapshot_path))? {
                if matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("sql" | "yml" | "yaml")
                ) {
                    project
                        .unsupported
                        .push(Unsupported::snapshot(relative(&root, &path)));
                }
            }
        }
        for name in ["packages.yml", "dependencies.yml"] {
            let path = root.join(name);
            if !path.is_file() {
                continue;
            }
            let rel = relative(&root, &path);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", rel.display()))?;
            let doc: Value = read_yaml(&text, &rel)?;
            let names = package_names(&doc);
            if !names.is_empty() {
                project.unsupported.push(Unsupported::packages(rel, &names));
            }
        }

        for macro_path in &macro_paths {
            for path in files_under(&root.join(macro_path))? {
                if path.extension().and_then(|e| e.to_str()) == Some("sql") {
                    project.macro_files.push(read_source_file(&root, &path)?);
                }
            }
        }
        for test_path in &test_paths {
            let dir = root.join(test_path);
            for path in files_under(&dir)? {
                if path.extension().and_then(|e| e.to_str()) != Some("sql") {
                    continue;
                }
                let file = read_source_file(&root, &path)?;
                // tests/generic/*.sql hold `{% test %}` definitions, like macros.
                if path
                    .strip_prefix(&dir)
                    .is_ok_and(|p| p.starts_with("generic"))
                {
                    project.macro_files.push(file);
                } else {
                    project.singular_tests.push(file);
                }
            }
        }
        // Seed configs that are not honoured: named with what to do.
        for model in project.models.iter_mut().filter(|m| seeds::is_seed(m)) {
            for key in unsupported::IGNORED_SEED_KEYS {
                if model.config.0.remove(*key).is_some()
                    && let Some(u) = Unsupported::seed_option(model.path.clone(), key)
                {
                    project.unsupported.push(u);
                }
            }
        }
        for model in &project.models {
            for key in model.config.unknown_keys() {
                if seeds::is_seed(model) && seeds::SEED_KEYS.contains(&key.as_str()) {
                    continue;
                }
                project.warnings.push(format!(
                    "model `{}`: unknown config key `{key}` ignored",
                    model.name
                ));
            }
        }
        Ok(project)
    }

    /// The model called `name`, if any.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The model name closest to `name`, for "did you mean" hints.
    pub fn closest_model(&self, name: &str) -> Option<&str> {
        self.models
            .iter()
            .map(|m| (strsim::jaro_winkler(&m.name, name), m.name.as_str()))
            .filter(|(score, _)| *score > 0.75)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, n)| n)
    }
}

fn is_snapshot_block(sql: &str) -> bool {
    regex::Regex::new(r"\{%-?\s*snapshot\s")
        .map(|re| re.is_match(sql))
        .unwrap_or(false)
}

/// The packages a `packages.yml` / `dependencies.yml` lists (`package:`,
/// `git:`, `local:`, `name:`; dependencies.yml's `projects:` too).
fn package_names(doc: &Value) -> Vec<String> {
    ["packages", "projects"]
        .iter()
        .filter_map(|k| doc.get(*k).and_then(Value::as_array))
        .flatten()
        .map(|p| {
            ["package", "git", "local", "name", "tarball"]
                .iter()
                .find_map(|k| p.get(*k).and_then(Value::as_str))
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

/// Parses YAML into JSON values, naming the file (and the line, as data)
/// on error.
fn read_yaml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    serde_yaml_ng::from_str(text).map_err(|e| {
        let message = format!("{} is not valid YAML: {e}", path.display());
        match e.location() {
            Some(at) => anyhow::Error::new(crate::diagnostic::Located {
                file: path.to_path_buf(),
                line: at.line(),
                message,
            }),
            None => anyhow::anyhow!(message),
        }
    })
}

/// Walks `models:` in `dbt_project.yml` down the model's folders and collects
/// configs from the outermost to the innermost level (inner wins).
fn folder_config(tree: &Value, folders: &[String], model_name: &str) -> Config {
    let mut config = Config::default();
    let mut node = tree;
    apply_level(&mut config, node);
    for folder in folders.iter().map(String::as_str).chain([model_name]) {
        match node.get(folder) {
            Some(child) if child.is_object() => {
                node = child;
                apply_level(&mut config, node);
            }
            _ => break,
        }
    }
    config
}

/// Applies the config keys of one level: `+key`, or a plain key whose value is
/// not a nested folder.
fn apply_level(config: &mut Config, level: &Value) {
    let Some(map) = level.as_object() else { return };
    let mut own = serde_json::Map::new();
    for (key, value) in map {
        if key.starts_with('+') || !value.is_object() || key == "meta" || key == "docs" {
            own.insert(config::normalize_key(key), value.clone());
        }
    }
    config.merge(&Config(own));
}

/// `on-run-start` and friends: one string or a list.
fn hook_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn read_source_file(root: &Path, path: &Path) -> Result<SourceFile> {
    let rel = relative(root, path);
    Ok(SourceFile {
        name: file_stem(path),
        text: std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", rel.display()))?,
        path: rel,
    })
}

/// The folder names from `dir` down to the folder holding `path`, which
/// pick the `dbt_project.yml` configs that apply to it.
fn folders_between(dir: &Path, path: &Path) -> Vec<String> {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .parent()
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `path` relative to `root`, for messages.
pub fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

/// All files below `dir` (recursively, sorted); nothing when it does not exist.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn folder_configs_nest_and_the_innermost_wins() {
        let tree = json!({
            "+materialized": "view",
            "marts": {"+materialized": "table", "+schema": "marts",
                      "finance": {"materialized": "incremental"}}
        });
        let c = folder_config(&tree, &["marts".into(), "finance".into()], "m");
        assert_eq!(c.materialized(), "incremental");
        assert_eq!(c.str("schema"), Some("marts"));
        let c = folder_config(&tree, &["staging".into()], "m");
        assert_eq!(c.materialized(), "view");
    }
}
