//! The dashboard stage: a static DuckDB-WASM site rendered with minijinja
//! from `dashboard-template/` and the project's `dashboard:` configuration,
//! next to the exported data files and their `manifest.json`.
//!
//! The page itself (`dashboard-template/assets/app.js`) loads DuckDB-WASM,
//! fetches the manifest, attaches the `.duckdb` files it needs read-only
//! (cached in the Cache API, keyed by the manifest's sha256), and builds
//! every query from the configuration embedded in the page.

pub mod first_paint;
pub mod lineage;
pub mod rollups;

pub use crate::project::dashboard::{AssetsMode, DashboardConfig};
pub use lineage::Lineage;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Pinned browser dependencies (npm versions; `package.json` pins the same).
pub const DUCKDB_WASM_VERSION: &str = "1.32.0";
/// ECharts version the page loads.
pub const ECHARTS_VERSION: &str = "6.0.0";
/// Apache Arrow version DuckDB-WASM 1.32.0 is built against.
pub const ARROW_VERSION: &str = "17.0.0";

pub use crate::manifest::{Manifest, ManifestColumn, ManifestFile};

/// Where bundled assets are copied from.
#[derive(Debug, Clone)]
pub enum Assets {
    /// Load from jsDelivr at the pinned versions.
    Cdn,
    /// Copy from this `node_modules` folder (the pinned packages, `npm ci`).
    Bundled(PathBuf),
}

impl Assets {
    /// Resolves `mode`: bundled assets come from `node_modules` (explicit,
    /// else `ANALYTICS_DASHBOARD_ASSETS`, else the nearest `node_modules`
    /// above the current directory or the executable).
    pub fn resolve(mode: AssetsMode, node_modules: Option<&Path>) -> Result<Assets> {
        if mode == AssetsMode::Cdn {
            return Ok(Assets::Cdn);
        }
        let marker = Path::new("@duckdb/duckdb-wasm/package.json");
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = node_modules {
            candidates.push(p.to_path_buf());
        } else {
            if let Some(p) = std::env::var_os("ANALYTICS_DASHBOARD_ASSETS") {
                candidates.push(PathBuf::from(p));
            }
            let starts = [
                std::env::current_dir().ok(),
                std::env::current_exe()
                    .ok()
                    .and_then(|e| e.parent().map(Path::to_path_buf)),
            ];
            for start in starts.into_iter().flatten() {
                for dir in start.ancestors() {
                    candidates.push(dir.join("node_modules"));
                }
            }
        }
        for c in &candidates {
            if c.join(marker).is_file() {
                return Ok(Assets::Bundled(c.clone()));
            }
        }
        bail!(
            "assets: bundled needs the pinned npm packages (@duckdb/duckdb-wasm@{DUCKDB_WASM_VERSION}, \
             echarts@{ECHARTS_VERSION}): run `npm ci` at the repository root, or point \
             ANALYTICS_DASHBOARD_ASSETS (or --assets-dir) at a node_modules folder holding them; looked in {}",
            candidates
                .first()
                .map(|c| c.display().to_string())
                .unwrap_or_default()
        )
    }
}

/// What [`render`] wrote and what it noticed.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// Files written, relative to the site folder.
    pub files: Vec<PathBuf>,
    /// Problems the page will also show (e.g. a dataset the manifest lacks).
    pub warnings: Vec<String>,
}

/// The template files, embedded so the binary renders a site anywhere;
/// `ANALYTICS_DASHBOARD_TEMPLATE` (a folder with the same files) overrides.
const TEMPLATE_FILES: &[(&str, &str)] = &[
    (
        "index.html",
        include_str!("../../dashboard-template/index.html"),
    ),
    (
        "lineage.html",
        include_str!("../../dashboard-template/lineage.html"),
    ),
    (
        "assets/app.js",
        include_str!("../../dashboard-template/assets/app.js"),
    ),
    (
        "assets/style.css",
        include_str!("../../dashboard-template/assets/style.css"),
    ),
    (
        "assets/arrow-shim.mjs",
        include_str!("../../dashboard-template/assets/arrow-shim.mjs"),
    ),
];

fn template_file(name: &str) -> Result<String> {
    if let Some(dir) = std::env::var_os("ANALYTICS_DASHBOARD_TEMPLATE") {
        let path = Path::new(&dir).join(name);
        if path.is_file() {
            return std::fs::read_to_string(&path)
                .with_context(|| format!("reading dashboard template {}", path.display()));
        }
    }
    TEMPLATE_FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| text.to_string())
        .with_context(|| format!("dashboard template `{name}` is missing"))
}

/// DuckDB-WASM builds: (name, wasm file, worker file, pthread worker file).
const WASM_FILES: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "mvp",
        "duckdb-mvp.wasm",
        "duckdb-browser-mvp.worker.js",
        None,
    ),
    ("eh", "duckdb-eh.wasm", "duckdb-browser-eh.worker.js", None),
    (
        "coi",
        "duckdb-coi.wasm",
        "duckdb-browser-coi.worker.js",
        Some("duckdb-browser-coi.pthread.worker.js"),
    ),
];

/// URLs of the browser libraries, as the page uses them.
#[derive(Debug, Serialize)]
struct AssetUrls {
    duckdb_module: String,
    arrow_script: String,
    echarts_script: String,
    /// build name → {mainModule, mainWorker, pthreadWorker}
    bundles: serde_json::Map<String, serde_json::Value>,
}

fn copy_vendor(
    node_modules: &Path,
    package: &str,
    version: &str,
    file: &str,
    out_dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<String> {
    let pkg_json = node_modules.join(package).join("package.json");
    let text = std::fs::read_to_string(&pkg_json)
        .with_context(|| format!("reading {} (run `npm ci`)", pkg_json.display()))?;
    let found: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", pkg_json.display()))?;
    let found = found.get("version").and_then(|v| v.as_str()).unwrap_or("?");
    if found != version {
        bail!(
            "{package} in {} is version {found}, the dashboard is pinned to {version}: run `npm ci`",
            node_modules.display()
        );
    }
    let src = node_modules.join(package).join(file);
    let name = Path::new(file)
        .file_name()
        .with_context(|| format!("{file} has no file name"))?;
    let rel = Path::new("assets/vendor").join(name);
    let dest = out_dir.join(&rel);
    std::fs::copy(&src, &dest)
        .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
    written.push(rel.clone());
    Ok(rel.display().to_string())
}

fn asset_urls(
    config: &DashboardConfig,
    assets: &Assets,
    out_dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<AssetUrls> {
    let builds: Vec<String> = config.wasm_builds.clone().unwrap_or_else(|| match assets {
        Assets::Cdn => vec!["eh".into(), "mvp".into(), "coi".into()],
        Assets::Bundled(_) => vec!["eh".into()],
    });
    let duck = "@duckdb/duckdb-wasm";
    let mut bundles = serde_json::Map::new();
    match assets {
        Assets::Cdn => {
            // A folder rendered bundled before: don't publish ~35 MB nobody loads.
            let vendor = out_dir.join("assets/vendor");
            if vendor.is_dir() {
                std::fs::remove_dir_all(&vendor)
                    .with_context(|| format!("removing {}", vendor.display()))?;
            }
            let base =
                |pkg: &str, v: &str, f: &str| format!("https://cdn.jsdelivr.net/npm/{pkg}@{v}/{f}");
            for (name, wasm, worker, pthread) in WASM_FILES {
                if builds.iter().any(|b| b == name) {
                    bundles.insert(
                        name.to_string(),
                        serde_json::json!({
                            "mainModule": base(duck, DUCKDB_WASM_VERSION, &format!("dist/{wasm}")),
                            "mainWorker": base(duck, DUCKDB_WASM_VERSION, &format!("dist/{worker}")),
                            "pthreadWorker": pthread.map(|p| base(duck, DUCKDB_WASM_VERSION, &format!("dist/{p}"))),
                        }),
                    );
                }
            }
            Ok(AssetUrls {
                duckdb_module: base(duck, DUCKDB_WASM_VERSION, "dist/duckdb-browser.mjs"),
                arrow_script: base("apache-arrow", ARROW_VERSION, "Arrow.es2015.min.js"),
                echarts_script: base("echarts", ECHARTS_VERSION, "dist/echarts.min.js"),
                bundles,
            })
        }
        Assets::Bundled(nm) => {
            std::fs::create_dir_all(out_dir.join("assets/vendor"))
                .with_context(|| format!("creating {}/assets/vendor", out_dir.display()))?;
            let mut copy =
                |pkg: &str, v: &str, f: &str| copy_vendor(nm, pkg, v, f, out_dir, written);
            let duckdb_module = copy(duck, DUCKDB_WASM_VERSION, "dist/duckdb-browser.mjs")?;
            let arrow_script = copy("apache-arrow", ARROW_VERSION, "Arrow.es2015.min.js")?;
            let echarts_script = copy("echarts", ECHARTS_VERSION, "dist/echarts.min.js")?;
            for (name, wasm, worker, pthread) in WASM_FILES {
                if builds.iter().any(|b| b == name) {
                    let main_module = copy(duck, DUCKDB_WASM_VERSION, &format!("dist/{wasm}"))?;
                    let main_worker = copy(duck, DUCKDB_WASM_VERSION, &format!("dist/{worker}"))?;
                    let pthread_worker = match pthread {
                        Some(p) => Some(copy(duck, DUCKDB_WASM_VERSION, &format!("dist/{p}"))?),
                        None => None,
                    };
                    bundles.insert(
                        name.to_string(),
                        serde_json::json!({
                            "mainModule": main_module,
                            "mainWorker": main_worker,
                            "pthreadWorker": pthread_worker,
                        }),
                    );
                }
            }
            Ok(AssetUrls {
                duckdb_module,
                arrow_script,
                echarts_script,
                bundles,
            })
        }
    }
}

/// Renders the site into `out_dir` (which holds `manifest.json` and `data/`):
/// `index.html`, `lineage.html` and `assets/` (plus `assets/vendor/` when
/// bundled). The manifest is read by the page at run time; here it only
/// checks that the datasets the configuration names exist.
pub fn render(
    config: &DashboardConfig,
    manifest: &Manifest,
    lineage: &Lineage,
    out_dir: &Path,
    assets: &Assets,
) -> Result<Rendered> {
    config.validate()?;
    let mut rendered = Rendered::default();
    for dataset in config.datasets() {
        if !manifest.files.iter().any(|f| f.dataset == dataset) {
            rendered.warnings.push(format!(
                "dashboard: dataset `{dataset}` is not in the manifest; the page will say so where it is needed"
            ));
        }
    }
    std::fs::create_dir_all(out_dir.join("assets"))
        .with_context(|| format!("creating {}/assets", out_dir.display()))?;
    let urls = asset_urls(config, assets, out_dir, &mut rendered.files)?;
    let title = config
        .title
        .clone()
        .unwrap_or_else(|| manifest.project.clone());
    // The first paint's summary (a page without it waits for DuckDB-WASM),
    // carried in manifest.json: the page's HTML does not name it, so it
    // stays byte for byte the same when only the data changes.
    let summary = match first_paint::summary(config, manifest, out_dir) {
        Ok(summary) => summary,
        Err(e) => {
            rendered.warnings.push(format!(
                "dashboard: no first-paint summary (the page draws once DuckDB-WASM is ready): {e:#}"
            ));
            None
        }
    };
    if summary.is_none()
        && manifest.files.iter().any(|f| {
            config.grains.iter().any(|g| g.dataset == f.dataset) && !out_dir.join(&f.path).is_file()
        })
    {
        rendered.warnings.push(
            "dashboard: no first-paint summary: a file of the opening view is not in the site folder"
                .to_string(),
        );
    }
    let manifest_path = out_dir.join("manifest.json");
    if summary.is_some() || manifest_path.is_file() {
        let with_summary = Manifest {
            summary,
            ..manifest.clone()
        };
        std::fs::write(&manifest_path, with_summary.to_json())
            .with_context(|| format!("writing {}", manifest_path.display()))?;
        rendered.files.push(PathBuf::from("manifest.json"));
    }

    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    let index_src = template_file("index.html")?;
    let lineage_src = template_file("lineage.html")?;
    env.add_template("index.html", &index_src)
        .context("dashboard-template/index.html")?;
    env.add_template("lineage.html", &lineage_src)
        .context("dashboard-template/lineage.html")?;

    // The rollups each grain's files hold (the exporter's, from the same
    // rule): the page queries them instead of aggregating the rows.
    let stored_rollups: std::collections::BTreeMap<&str, Vec<rollups::StoredRollup>> = config
        .grains
        .iter()
        .filter_map(|g| {
            let file = manifest.files.iter().find(|f| f.dataset == g.dataset)?;
            let names: Vec<&str> = file.columns.iter().map(|c| c.name.as_str()).collect();
            Some((
                g.dataset.as_str(),
                rollups::stored_for(Some(config), &g.dataset, &names),
            ))
        })
        .collect();
    let page = serde_json::json!({
        "project": manifest.project,
        "title": title,
        "config": config,
        "stored_rollups": stored_rollups,
        "assets": urls,
        "versions": {"duckdb_wasm": DUCKDB_WASM_VERSION, "echarts": ECHARTS_VERSION, "arrow": ARROW_VERSION},
    });
    let ctx = minijinja::context! {
        title => title,
        description => config.description,
        project => manifest.project,
        page => page,
        assets => urls,
        config => config,
        lineage => lineage_drawing(lineage),
        versions => minijinja::context! {
            duckdb_wasm => DUCKDB_WASM_VERSION, echarts => ECHARTS_VERSION,
        },
    };
    for (name, rel) in [
        ("index.html", "index.html"),
        ("lineage.html", "lineage.html"),
    ] {
        let html = env
            .get_template(name)
            .and_then(|t| t.render(&ctx))
            .with_context(|| format!("rendering dashboard-template/{name}"))?;
        let dest = out_dir.join(rel);
        std::fs::write(&dest, html).with_context(|| format!("writing {}", dest.display()))?;
        rendered.files.push(PathBuf::from(rel));
    }
    for rel in ["assets/app.js", "assets/style.css", "assets/arrow-shim.mjs"] {
        let dest = out_dir.join(rel);
        std::fs::write(&dest, template_file(rel)?)
            .with_context(|| format!("writing {}", dest.display()))?;
        rendered.files.push(PathBuf::from(rel));
    }
    Ok(rendered)
}

/// Geometry of the lineage drawing for the template.
fn lineage_drawing(lineage: &Lineage) -> serde_json::Value {
    const W: usize = 200;
    const H: usize = 44;
    const GAP_X: usize = 70;
    const GAP_Y: usize = 22;
    let pos = |column: usize, row: usize| (20 + column * (W + GAP_X), 20 + row * (H + GAP_Y));
    let nodes: Vec<serde_json::Value> = lineage
        .nodes
        .iter()
        .map(|n| {
            let (x, y) = pos(n.column, n.row);
            serde_json::json!({"name": n.name, "kind": n.kind, "materialized": n.materialized,
                "path": n.path, "description": n.description, "x": x, "y": y, "w": W, "h": H})
        })
        .collect();
    let find = |name: &str| lineage.nodes.iter().find(|n| n.name == name);
    let edges: Vec<serde_json::Value> = lineage
        .edges
        .iter()
        .filter_map(|(p, c)| {
            let (p, c) = (find(p)?, find(c)?);
            let (px, py) = pos(p.column, p.row);
            let (cx, cy) = pos(c.column, c.row);
            let (x1, y1, x2, y2) = (px + W, py + H / 2, cx, cy + H / 2);
            let mid = (x1 + x2) / 2;
            Some(serde_json::json!({"from": p.name, "to": c.name,
                "d": format!("M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}")}))
        })
        .collect();
    let width = lineage.nodes.iter().map(|n| n.column).max().unwrap_or(0) + 1;
    let height = (0..width)
        .map(|c| lineage.nodes.iter().filter(|n| n.column == c).count())
        .max()
        .unwrap_or(0);
    serde_json::json!({
        "nodes": nodes,
        "edges": edges,
        "width": 40 + width * (W + GAP_X),
        "height": 40 + height.max(1) * (H + GAP_Y),
    })
}

/// Renders the dashboard for `project_dir` into a site folder that already
/// holds `manifest.json` and `data/` (e.g. an earlier export): the command
/// line's `analytics dashboard`. `assets` overrides the project's setting.
pub fn render_site(
    project_dir: &Path,
    site_dir: &Path,
    assets: Option<AssetsMode>,
    node_modules: Option<&Path>,
) -> Result<Rendered> {
    // The command line's own entry point: the process environment is the
    // run's environment.
    let env = crate::environ::Env::process();
    let vars = serde_json::Map::new();
    let plan = crate::plan::Plan::build(&crate::plan::PlanOptions {
        project_dir,
        mode: crate::mode::Mode::Ci,
        target: None,
        vars: &vars,
        profiles_dir: None,
        env: &env,
    })?;
    render_for_plan(&plan, site_dir, assets, node_modules)
}

/// Renders the dashboard of a parsed project into `site_dir` (holding the
/// export's `manifest.json`): what the pipeline calls after export, before
/// publish.
pub fn render_for_plan(
    plan: &crate::plan::Plan,
    site_dir: &Path,
    assets: Option<AssetsMode>,
    node_modules: Option<&Path>,
) -> Result<Rendered> {
    let config = DashboardConfig::from_settings(&plan.project.settings)?;
    let manifest = Manifest::load(&site_dir.join("manifest.json"))?;
    let lineage = Lineage::from_plan(plan);
    let assets = Assets::resolve(assets.unwrap_or(config.assets), node_modules)?;
    render(&config, &manifest, &lineage, site_dir, &assets)
}
