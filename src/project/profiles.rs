//! dbt's `profiles.yml`, read the way dbt reads it: the project's `profile:`
//! in a `profiles.yml` found in `--profiles-dir`, else `DBT_PROFILES_DIR`,
//! else the project folder, else `~/.dbt/`; rendered as Jinja first, with
//! `env_var('X', 'default')` reading the run's [`Env`] (never the process).
//! Each dbt-duckdb output (`type: duckdb`) becomes a DuckDB [`TargetYaml`];
//! which target a run uses is decided in `plan.rs`.

use super::targets::TargetYaml;
use super::{read_yaml, relative};
use crate::environ::Env;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The project's profile from `profiles.yml`.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name (`profile:` in `dbt_project.yml`).
    pub name: String,
    /// The `profiles.yml` it was read from.
    pub file: PathBuf,
    /// The profile's `target:` (its default output).
    pub default_target: Option<String>,
    /// Its outputs by name.
    pub outputs: BTreeMap<String, ProfileOutput>,
}

/// One output of a profile.
#[derive(Debug, Clone)]
pub struct ProfileOutput {
    /// The output as a target (dbt-duckdb outputs only), or why it is not one.
    pub target: std::result::Result<TargetYaml, String>,
    /// What of the output is not used here, said when it is used.
    pub warnings: Vec<String>,
}

impl Profile {
    /// Where this profile came from, for the log: `profiles.yml (profile `x`)`.
    pub fn origin(&self) -> String {
        format!("{} (profile `{}`)", self.file.display(), self.name)
    }

    /// The output `name` as a target, with its warnings; an error when it is
    /// not a dbt-duckdb output.
    pub fn target(&self, name: &str) -> Result<(&TargetYaml, &[String])> {
        let output = self.outputs.get(name).with_context(|| {
            format!(
                "{}: profile `{}` has no output `{name}`",
                self.file.display(),
                self.name
            )
        })?;
        match &output.target {
            Ok(t) => Ok((t, &output.warnings)),
            Err(why) => bail!(
                "{}: output `{name}` of profile `{}`: {why}",
                self.file.display(),
                self.name
            ),
        }
    }
}

/// The `profiles.yml` dbt would read for a project in `project_root`:
/// `profiles_dir` (`--profiles-dir`), `DBT_PROFILES_DIR`, the project
/// folder, then `$HOME/.dbt`.
pub fn locate(project_root: &Path, profiles_dir: Option<&Path>, env: &Env) -> Option<PathBuf> {
    if let Some(dir) = profiles_dir {
        return Some(dir.join("profiles.yml"));
    }
    if let Some(dir) = env.non_empty("DBT_PROFILES_DIR") {
        return Some(Path::new(dir).join("profiles.yml"));
    }
    let in_project = project_root.join("profiles.yml");
    if in_project.is_file() {
        return Some(in_project);
    }
    let home = env.non_empty("HOME")?;
    let in_home = Path::new(home).join(".dbt").join("profiles.yml");
    in_home.is_file().then_some(in_home)
}

/// The profile `name` for the project in `project_root`, when a
/// `profiles.yml` is found and holds it. A directory given explicitly
/// (`--profiles-dir`, `DBT_PROFILES_DIR`) must hold a `profiles.yml`.
pub fn load(
    project_root: &Path,
    name: &str,
    profiles_dir: Option<&Path>,
    env: &Env,
) -> Result<Option<Profile>> {
    let explicit = profiles_dir.is_some() || env.non_empty("DBT_PROFILES_DIR").is_some();
    let Some(path) = locate(project_root, profiles_dir, env) else {
        return Ok(None);
    };
    if !path.is_file() {
        if explicit {
            bail!(
                "no profiles.yml in {} (from --profiles-dir or DBT_PROFILES_DIR)",
                path.parent().unwrap_or(&path).display()
            );
        }
        return Ok(None);
    }
    let shown = relative(project_root, &path);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", shown.display()))?;
    parse(&text, &shown, name, env)
}

/// Renders and reads the text of a `profiles.yml`.
fn parse(text: &str, file: &Path, name: &str, env: &Env) -> Result<Option<Profile>> {
    let rendered = render(text, env).with_context(|| format!("rendering {}", file.display()))?;
    let doc: Value = read_yaml(&rendered, file)?;
    let Some(profile) = doc.get(name) else {
        return Ok(None);
    };
    let default_target = match profile.get("target") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) if !other.is_null() => Some(other.to_string()),
        _ => None,
    };
    let mut outputs = BTreeMap::new();
    for (out_name, output) in profile
        .get("outputs")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        outputs.insert(out_name.clone(), read_output(output, file, name, out_name)?);
    }
    Ok(Some(Profile {
        name: name.to_string(),
        file: file.to_path_buf(),
        default_target,
        outputs,
    }))
}

/// One output: `type: duckdb` becomes a DuckDB target (path, schema,
/// settings); what dbt-duckdb does beyond that is named in warnings.
fn read_output(output: &Value, file: &Path, profile: &str, name: &str) -> Result<ProfileOutput> {
    let kind = output.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "duckdb" {
        return Ok(ProfileOutput {
            target: Err(format!(
                "type `{kind}` is not read here, only dbt-duckdb outputs (type: duckdb); \
                 define the target in analytics.yml (targets:)"
            )),
            warnings: Vec::new(),
        });
    }
    let text = |key: &str| -> Option<String> {
        match output.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    let at = format!("{} (profile `{profile}`, output `{name}`)", file.display());
    let mut settings = BTreeMap::new();
    if let Some(map) = output.get("settings") {
        let map = map
            .as_object()
            .with_context(|| format!("{at}: `settings` must be a mapping"))?;
        settings.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut warnings = Vec::new();
    for key in [
        "extensions",
        "plugins",
        "filesystems",
        "secrets",
        "external_root",
    ] {
        if output.get(key).is_some_and(|v| !v.is_null()) {
            warnings.push(format!(
                "{at}: `{key}` is not used here (DuckDB's built-in extensions are available)"
            ));
        }
    }
    for attach in output
        .get("attach")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let what = attach.get("path").and_then(Value::as_str).unwrap_or("?");
        let iceberg = attach.get("type").and_then(Value::as_str) == Some("iceberg");
        warnings.push(if iceberg {
            format!(
                "{at}: the attached Iceberg catalog `{what}` is not attached here; models \
                 are stored in Iceberg through `targets: warehouse:` (type: iceberg) in \
                 analytics.yml or the ICEBERG_REST_ENDPOINT variable"
            )
        } else {
            format!("{at}: `attach` of `{what}` is not used here")
        });
    }
    // dbt's `threads` is how many models dbt builds at once, not DuckDB's
    // `threads` setting: it does not change what is built, so it is not mapped.
    Ok(ProfileOutput {
        target: Ok(TargetYaml::Duckdb {
            path: text("path").unwrap_or_else(|| ":memory:".into()),
            schema: text("schema").unwrap_or_else(|| "main".into()),
            threads: None,
            settings,
        }),
        warnings,
    })
}

/// The file's text rendered as Jinja, with dbt's `env_var(name, default)`
/// reading `env`.
fn render(text: &str, env: &Env) -> Result<String> {
    use minijinja::{Error, ErrorKind, Value as JValue};
    let mut jinja = minijinja::Environment::new();
    jinja.set_keep_trailing_newline(true);
    let run_env = env.clone();
    jinja.add_function(
        "env_var",
        move |name: String, default: Option<JValue>| -> std::result::Result<JValue, Error> {
            match run_env.get(&name) {
                Some(v) => Ok(JValue::from(v)),
                None => default.ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!(
                            "env_var('{name}'): the environment variable is not set and no \
                             default was given"
                        ),
                    )
                }),
            }
        },
    );
    Ok(jinja.render_str(text, ())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILES: &str = "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: \"{{ env_var('SHOP_DB', 'shop.duckdb') }}\"\n      schema: \"{{ env_var('DBT_SCHEMA', 'mart') }}\"\n      threads: 4\n      settings:\n        memory_limit: 1GB\n      extensions: [httpfs]\n    pg:\n      type: postgres\n";

    #[test]
    fn duckdb_outputs_become_targets_with_env_var_from_the_run_env() {
        let mut env = Env::default();
        env.set("SHOP_DB", "other.duckdb");
        let p = parse(PROFILES, Path::new("profiles.yml"), "shop", &env)
            .unwrap()
            .unwrap();
        assert_eq!(p.default_target.as_deref(), Some("dev"));
        let (t, warnings) = p.target("dev").unwrap();
        let TargetYaml::Duckdb {
            path,
            schema,
            settings,
            ..
        } = t
        else {
            panic!("not duckdb: {t:?}")
        };
        assert_eq!((path.as_str(), schema.as_str()), ("other.duckdb", "mart"));
        assert_eq!(settings.get("memory_limit"), Some(&Value::from("1GB")));
        assert!(warnings[0].contains("extensions"), "{warnings:?}");
        let err = p.target("pg").unwrap_err().to_string();
        assert!(err.contains("postgres"), "{err}");
        assert!(
            parse(PROFILES, Path::new("p.yml"), "other", &env)
                .unwrap()
                .is_none()
        );
    }
}
