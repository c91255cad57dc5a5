//! The plan of a run: the project loaded, its target resolved, every model
//! rendered once in the parse phase (refs, sources, final config), ordered
//! by the DAG, with the relation each one builds. `compile`, `list`, the
//! pipeline, the exporter and the dashboard's lineage all read the same plan.

use crate::environ::Env;
use crate::graph::Dag;
use crate::mode::Mode;
use crate::project::{Config, Project, TargetConfig};
use crate::sql::{Relation, quote};
use crate::templating::{
    FileCatalog, IngestRead, Phase, QueryRunner, RelationMap, RenderContext, Templater,
};
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a plan is built from.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions<'a> {
    /// The project directory (holding `dbt_project.yml`).
    pub project_dir: &'a Path,
    /// The run's mode (picks the default target).
    pub mode: Mode,
    /// A target from `analytics.yml`; default: the target named like the
    /// mode, else `memory` in `ci` mode, else `warehouse`.
    pub target: Option<&'a str>,
    /// `--vars` overrides.
    pub vars: &'a serde_json::Map<String, serde_json::Value>,
    /// `--profiles-dir`: where `profiles.yml` is (else `DBT_PROFILES_DIR`,
    /// the project folder, `~/.dbt`).
    pub profiles_dir: Option<&'a Path>,
    /// The run's environment: `${VAR}` in targets and `env_var()` in SQL.
    pub env: &'a Env,
}

/// A model after the parse render: final config, relation and parents.
#[derive(Debug, Clone)]
pub struct PlannedModel {
    /// The model name (file stem), as `ref()` uses it.
    pub name: String,
    /// Path relative to the project root.
    pub path: PathBuf,
    /// The model's unrendered SQL/Jinja text.
    pub sql: String,
    /// Final config: project and YAML config merged with the SQL's `config()` calls.
    pub config: Config,
    /// Where the model is built (schema and alias applied).
    pub relation: Relation,
    /// Models it `ref()`s: its parents in the DAG.
    pub refs: Vec<String>,
    /// Ingest sources it reads; its files are committed once this model builds.
    pub ingest_sources: Vec<String>,
    /// The columns of ingest sources its parse render asked for.
    pub ingest_reads: Vec<IngestRead>,
}

/// A parsed project: models in DAG order with their relations.
pub struct Plan {
    /// The loaded project.
    pub project: Project,
    /// The name of the target from `analytics.yml` (or `memory`), or of the
    /// profile's output.
    pub target_name: String,
    /// Where the target came from, for the log: `analytics.yml`,
    /// `profiles.yml (profile `x`)`, or `built in`.
    pub target_origin: String,
    /// The target's settings.
    pub target: TargetConfig,
    /// Renders the project's SQL with its macros.
    pub templater: Templater,
    /// Enabled models, in DAG order.
    pub models: Vec<PlannedModel>,
    /// The model dependency graph, for ordering and selection.
    pub dag: Dag,
    /// Every model's relation, for `ref()` at execute time.
    pub relations: Arc<RelationMap>,
    /// Non-fatal problems found while loading and parsing.
    pub warnings: Vec<String>,
}

impl Plan {
    /// Loads and parses the project for `opts`.
    pub fn build(opts: &PlanOptions) -> Result<Plan> {
        let project = Project::load(opts.project_dir)?;
        let mut warnings = project.warnings.clone();
        let (target_name, target, target_origin) = resolve_target(&project, opts, &mut warnings)?;
        tracing::info!("target `{target_name}` from {target_origin}");
        let templater = Templater::new(
            &project,
            &target_name,
            &target,
            opts.vars,
            opts.env,
            &mut warnings,
        )?;

        let empty = Arc::new(RelationMap::new());
        let mut parsed = Vec::new();
        for model in &project.models {
            let ctx = RenderContext {
                phase: Phase::Parse,
                node_name: model.name.clone(),
                this: None,
                is_incremental: false,
                config: model.config.clone(),
                relations: empty.clone(),
                runner: None,
                files: None,
            };
            let rendered = templater
                .render(&model.path.display().to_string(), &model.sql, &ctx)
                .with_context(|| format!("model `{}`", model.name))?;
            let mut config = model.config.clone();
            config.merge(&rendered.captured.config);
            for key in rendered.captured.config.unknown_keys() {
                warnings.push(format!(
                    "model `{}`: unknown config key `{key}` ignored",
                    model.name
                ));
            }
            if config.bool("enabled") == Some(false) {
                continue;
            }
            for (source, table) in &rendered.captured.sources {
                let declared = project
                    .dbt_sources
                    .iter()
                    .any(|t| &t.source == source && &t.table == table)
                    || project.settings.sources.iter().any(|s| &s.name == source);
                if !declared {
                    bail!(
                        "model `{}` ({}) uses source('{source}', '{table}'), which is not declared \
                         in a sources: block of models/*.yml or in analytics.yml",
                        model.name,
                        model.path.display()
                    );
                }
            }
            for source in &rendered.captured.ingest_sources {
                if !project.settings.sources.iter().any(|s| &s.name == source) {
                    bail!(
                        "model `{}` ({}) reads source `{source}`, which analytics.yml does not declare",
                        model.name,
                        model.path.display()
                    );
                }
            }
            parsed.push((model, config, rendered.captured));
        }
        let edges: BTreeMap<String, Vec<String>> = parsed
            .iter()
            .map(|(m, _, c)| (m.name.clone(), c.refs.clone()))
            .collect();
        let dag = Dag::new(&edges, |name| {
            project.closest_model(name).map(str::to_string)
        })?;
        let order = dag.order()?;

        let mut relations = RelationMap::new();
        let mut models = Vec::new();
        for name in &order {
            let Some((model, config, captured)) = parsed.iter().find(|(m, _, _)| &m.name == name)
            else {
                continue;
            };
            let schema = templater
                .schema_for(name, config.str("schema"), config)
                .with_context(|| format!("model `{name}`"))?;
            let mut relation = Relation::new(&schema, config.str("alias").unwrap_or(name));
            if config.materialized() == "ephemeral" {
                relation.raw = Some(format!("temp.main.{}", quote(&relation.identifier)));
            }
            relations.insert(name.clone(), relation.clone());
            models.push(PlannedModel {
                name: name.clone(),
                path: model.path.clone(),
                sql: model.sql.clone(),
                config: config.clone(),
                relation,
                refs: captured.refs.clone(),
                ingest_sources: captured.ingest_sources.clone(),
                ingest_reads: captured.ingest_reads.clone(),
            });
        }
        Ok(Plan {
            project,
            target_name,
            target_origin,
            target,
            templater,
            models,
            dag,
            relations: Arc::new(relations),
            warnings,
        })
    }

    /// The models `selectors` pick, in DAG order (all when empty).
    pub fn selected(&self, selectors: &[String]) -> Result<BTreeSet<String>> {
        if selectors.is_empty() {
            return Ok(self.models.iter().map(|m| m.name.clone()).collect());
        }
        let mut out = BTreeSet::new();
        for sel in selectors.iter().flat_map(|s| s.split_whitespace()) {
            let up = sel.starts_with('+');
            let down = sel.ends_with('+');
            let name = sel.trim_matches('+');
            if let Some(tag) = name.strip_prefix("tag:") {
                out.extend(
                    self.models
                        .iter()
                        .filter(|m| m.config.str_list("tags").iter().any(|t| t == tag))
                        .map(|m| m.name.clone()),
                );
                continue;
            }
            if !self.models.iter().any(|m| m.name == name) {
                let hint = self
                    .project
                    .closest_model(name)
                    .map(|c| format!(" — did you mean `{c}`?"))
                    .unwrap_or_default();
                bail!("--select `{sel}`: no model named `{name}`{hint}");
            }
            out.insert(name.to_string());
            if up {
                out.extend(self.dag.ancestors(name));
            }
            if down {
                out.extend(self.dag.descendants(name));
            }
        }
        Ok(out)
    }

    /// Renders a model for execution, with `this` and `is_incremental()`.
    pub fn render_model(
        &self,
        model: &PlannedModel,
        is_incremental: bool,
        runner: Option<Arc<dyn QueryRunner>>,
        files: Option<Arc<dyn FileCatalog>>,
    ) -> Result<String> {
        let ctx = self.execute_context(
            &model.name,
            Some(model.relation.clone()),
            is_incremental,
            &model.config,
            runner,
            files,
        );
        Ok(self
            .templater
            .render(&model.path.display().to_string(), &model.sql, &ctx)?
            .sql)
    }

    /// The execute-phase render context of a node.
    pub fn execute_context(
        &self,
        name: &str,
        this: Option<Relation>,
        is_incremental: bool,
        config: &Config,
        runner: Option<Arc<dyn QueryRunner>>,
        files: Option<Arc<dyn FileCatalog>>,
    ) -> RenderContext {
        RenderContext {
            phase: Phase::Execute,
            node_name: name.to_string(),
            this,
            is_incremental,
            config: config.clone(),
            relations: self.relations.clone(),
            runner,
            files,
        }
    }

    /// Where the compiled SQL of a model or test is written (like dbt's target/compiled).
    pub fn compiled_path(&self, path: &Path) -> PathBuf {
        self.project
            .root
            .join("target")
            .join("compiled")
            .join(&self.project.name)
            .join(path)
    }
}

/// Which target a run uses, resolved, and where it came from. `analytics.yml`
/// targets win over `profiles.yml` outputs of the same name. Without
/// `--target`: the `analytics.yml` target named like the mode; in the modes
/// other than `ci`, `warehouse` (from analytics.yml or `ICEBERG_REST_ENDPOINT`);
/// then the profile's `target:`; then `memory` in `ci` mode.
fn resolve_target(
    project: &Project,
    opts: &PlanOptions,
    warnings: &mut Vec<String>,
) -> Result<(String, TargetConfig, String)> {
    let profile = match &project.profile {
        Some(name) => {
            crate::project::profiles::load(&project.root, name, opts.profiles_dir, opts.env)?
        }
        None => None,
    };
    let in_analytics = |name: &str| project.settings.targets.contains_key(name);
    let in_profile = |name: &str| {
        profile
            .as_ref()
            .is_some_and(|p| p.outputs.contains_key(name))
    };
    let mode = opts.mode.name();
    let profile_default = profile.as_ref().and_then(|p| p.default_target.clone());
    // An Iceberg catalog the profile attaches: the warehouse when analytics.yml has none.
    let profile_catalog = profile.as_ref().is_some_and(|p| p.catalog().is_some());
    let name = match opts.target {
        Some(t) => t.to_string(),
        None if in_analytics(mode) => mode.to_string(),
        None if opts.mode != Mode::Ci
            && (in_analytics("warehouse")
                || profile_catalog
                || opts.env.contains("ICEBERG_REST_ENDPOINT")) =>
        {
            "warehouse".to_string()
        }
        None if profile_default.is_some() => profile_default.unwrap_or_default(),
        None if opts.mode == Mode::Ci => "memory".to_string(),
        None => bail!(
            "mode `{mode}` needs a target: pass --target, or define `targets: warehouse:` (used by every mode but ci) or `targets: {mode}:` in analytics.yml",
        ),
    };
    if name == "warehouse"
        && !in_analytics(&name)
        && !in_profile(&name)
        && let Some(found) = profile.as_ref().and_then(|p| p.warehouse())
    {
        let (yaml, origin) = found?;
        let target = yaml.resolve(opts.env).with_context(|| origin.clone())?;
        return Ok((name, target, origin));
    }
    if !in_analytics(&name)
        && let Some(profile) = profile.as_ref().filter(|_| in_profile(&name))
    {
        let (yaml, output_warnings) = profile.target(&name)?;
        warnings.extend(output_warnings.iter().cloned());
        let target = yaml
            .resolve(opts.env)
            .with_context(|| format!("{}: output `{name}`", profile.origin()))?;
        return Ok((name, target, profile.origin()));
    }
    let target =
        project
            .settings
            .target(&name, opts.env)
            .with_context(|| match profile.as_ref() {
                Some(p) if !in_analytics(&name) => format!(
                    "target `{name}` ({} has outputs: {})",
                    p.origin(),
                    p.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                _ => format!("target `{name}`"),
            })?;
    let origin = match profile.as_ref() {
        _ if !in_analytics(&name) && name == "warehouse" => {
            "the ICEBERG_REST_ENDPOINT variables".to_string()
        }
        _ if !in_analytics(&name) => "built in".to_string(),
        Some(p) if in_profile(&name) => {
            format!("analytics.yml (over the same name in {})", p.origin())
        }
        Some(p) if name == "warehouse" && p.catalog().is_some() => format!(
            "analytics.yml (over the Iceberg catalog attached in {})",
            p.origin()
        ),
        _ => "analytics.yml".to_string(),
    };
    Ok((name, target, origin))
}
