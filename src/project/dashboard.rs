//! The `dashboard:` section of `analytics.yml`: what the page shows and the
//! SQL behind it. Column names live here, not in the page's code, so a
//! renamed export column is a config edit.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Where the page loads DuckDB-WASM, Apache Arrow and ECharts from.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AssetsMode {
    /// From a public CDN (jsDelivr), pinned versions.
    #[default]
    Cdn,
    /// Copied into the site's `assets/vendor/`: no third-party requests.
    Bundled,
}

/// The parsed `dashboard:` section. Every field has a default, so a project
/// without the section still gets a page (data files, freshness, Analyze tab,
/// lineage).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// The page title (default: the project name).
    #[serde(default)]
    pub title: Option<String>,
    /// A line under the title.
    #[serde(default)]
    pub description: Option<String>,
    /// `cdn` (default) or `bundled`.
    #[serde(default)]
    pub assets: AssetsMode,
    /// DuckDB-WASM builds offered to the browser: `eh` (exceptions, every
    /// current browser), `mvp` (older browsers), `coi` (multi-threaded, used
    /// only when the page is cross-origin isolated). Default: all three from
    /// the CDN, `eh` alone when bundled (each build is ~35 MB).
    #[serde(default)]
    pub wasm_builds: Option<Vec<String>>,
    /// The DATE column every dataset filters on (default `date`).
    #[serde(default = "default_date_column")]
    pub date_column: String,
    /// Days shown when the page opens, ending at the newest data (default 7).
    #[serde(default = "default_days")]
    pub default_days: u32,
    /// How the data's times are read, shown on time axes, tooltips and CSV
    /// headers, e.g. `market time, UTC+10` (default: none).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// The grains the page can query, finest first.
    #[serde(default)]
    pub grains: Vec<GrainConfig>,
    /// Columns the page filters and groups by.
    #[serde(default)]
    pub dimensions: Vec<DimensionConfig>,
    /// Aggregates the page shows.
    #[serde(default)]
    pub measures: Vec<MeasureConfig>,
    /// The cards above the charts.
    #[serde(default)]
    pub kpis: Vec<KpiConfig>,
    /// The charts.
    #[serde(default)]
    pub charts: Vec<ChartConfig>,
    /// What "Download CSV" writes.
    #[serde(default)]
    pub download: Option<DownloadConfig>,
    /// The query the Analyze tab opens with.
    #[serde(default)]
    pub analyze_sql: Option<String>,
    /// A map of points (e.g. generating units) drawn over Australia's outline.
    #[serde(default)]
    pub map: Option<MapConfig>,
    /// Aggregates of the rows the page builds once per date range (first
    /// that fits wins): a view that groups and filters only by a rollup's
    /// dimensions, with measures that declare a `rollup:`, reads it instead
    /// of the rows.
    #[serde(default)]
    pub rollups: Vec<RollupConfig>,
}

/// A rollup: the rows of the current date range and grain aggregated by
/// `by` (and the timestamp, unless `time: false`), with the columns the
/// measures' `rollup:` declare.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RollupConfig {
    /// The dimensions kept.
    pub by: Vec<String>,
    /// Whether the timestamp (`_time`) is kept (default true).
    #[serde(default = "default_true")]
    pub time: bool,
}

fn default_true() -> bool {
    true
}

/// How a measure is computed from a rollup: the rollup columns it needs,
/// each an aggregate over the rows (`{mw: "sum(mw)"}`), and an expression
/// over those columns that gives the measure's value
/// (`sum(mw) / count(DISTINCT _time)`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureRollup {
    /// Rollup column name -> aggregate over the rows.
    pub columns: BTreeMap<String, String>,
    /// The measure over the rollup's rows.
    pub sql: String,
}

fn default_date_column() -> String {
    "date".to_string()
}

fn default_days() -> u32 {
    7
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            title: None,
            description: None,
            assets: AssetsMode::Cdn,
            wasm_builds: None,
            date_column: default_date_column(),
            default_days: default_days(),
            time_zone: None,
            grains: Vec::new(),
            dimensions: Vec::new(),
            measures: Vec::new(),
            kpis: Vec::new(),
            charts: Vec::new(),
            download: None,
            analyze_sql: None,
            map: None,
            rollups: Vec::new(),
        }
    }
}

/// One grain: the exported dataset that holds it and how to make its timestamp.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrainConfig {
    /// `5min`, `hour` or `day` (as in the manifest).
    pub grain: String,
    /// The manifest dataset holding this grain (one file or one per period).
    pub dataset: String,
    /// SQL giving the row's TIMESTAMP, e.g. `date + make_time(hour, 0, 0)`.
    pub time: String,
    /// The longest date range (in days) this grain serves; none: any range.
    #[serde(default)]
    pub max_days: Option<u32>,
}

/// A column to filter and group by.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionConfig {
    /// The name charts and the download refer to it by.
    pub name: String,
    /// The column in every grain's dataset.
    pub column: String,
    /// The filter's label (default: the name).
    #[serde(default)]
    pub label: Option<String>,
    /// A search box with suggestions instead of a drop-down (many values).
    #[serde(default)]
    pub search: bool,
    /// Where display names come from, e.g. units' station names.
    #[serde(default)]
    pub lookup: Option<LookupConfig>,
    /// Chart colours of some values (`{Coal: "#3d3d3d"}`); others get the
    /// palette's, the same for a value whatever the filters.
    #[serde(default)]
    pub colors: BTreeMap<String, String>,
}

/// A lookup dataset giving a dimension's values readable names.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LookupConfig {
    /// The manifest dataset.
    pub dataset: String,
    /// Its column matching the dimension's column.
    pub key: String,
    /// Its column to show next to the value.
    pub label: String,
}

/// An aggregate. `sql` is one expression for every grain, or one per grain
/// (`{5min: "sum(mw) / 12", hour: "sum(mwh)"}`). `_time` is the row's
/// timestamp, so `sum(mw) / count(DISTINCT _time)` is an average over intervals.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureConfig {
    /// The name KPIs, charts and the download refer to it by.
    pub name: String,
    /// Shown on cards and axes (default: the name).
    #[serde(default)]
    pub label: Option<String>,
    /// Unit shown after values, e.g. `MW`.
    #[serde(default)]
    pub unit: Option<String>,
    /// Decimals shown (default 1).
    #[serde(default)]
    pub decimals: Option<u32>,
    /// The SQL aggregate: a string, or a map from grain to string.
    pub sql: MeasureSql,
    /// How it is computed from a rollup (`rollups:`); without it, views of
    /// this measure read the rows.
    #[serde(default)]
    pub rollup: Option<MeasureRollup>,
}

/// A measure's SQL: the same for every grain or per grain.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum MeasureSql {
    /// One expression for every grain.
    Same(String),
    /// One expression per grain (`5min`, `hour`, `day`).
    PerGrain(BTreeMap<String, String>),
}

/// A KPI card: one of `measure`, `top` (the dimension value with the most
/// `by`) or `latest: true` (the newest timestamp in the selection);
/// `measure` with `latest: true` is the measure over the newest interval,
/// shown with its time.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KpiConfig {
    /// The card's title.
    pub label: String,
    /// A measure over the whole selection.
    #[serde(default)]
    pub measure: Option<String>,
    /// A dimension: the card shows its value with the largest `by`.
    #[serde(default)]
    pub top: Option<String>,
    /// The measure that ranks `top`.
    #[serde(default)]
    pub by: Option<String>,
    /// The newest timestamp in the selection.
    #[serde(default)]
    pub latest: bool,
}

/// A chart: `area` (stacked, over time), `line` (over time) or `bar`
/// (top `limit` values of `category`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChartConfig {
    /// The chart's title.
    pub title: String,
    /// `area`, `line` or `bar`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The measure plotted.
    pub measure: String,
    /// Time charts: one series per value of this dimension.
    #[serde(default)]
    pub series: Option<String>,
    /// Bar charts: the dimension on the axis.
    #[serde(default)]
    pub category: Option<String>,
    /// Bar charts: how many bars (default 10); drill-downs: how many series.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Time charts: clicking a series filters by it and splits it by this
    /// dimension (top `limit`, default 15), e.g. a fuel → its units.
    #[serde(default)]
    pub drill: Option<String>,
    /// Time charts: a second measure the reader can switch to (MW ↔ MWh).
    #[serde(default)]
    pub toggle: Option<String>,
}

/// The map: one point per value of `dimension`, placed by the `latitude` and
/// `longitude` columns of `dataset` (its `key` column holds the values),
/// sized by `size` over the current selection and coloured by `color`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MapConfig {
    /// The map's title.
    #[serde(default)]
    pub title: Option<String>,
    /// The manifest dataset with the coordinates (e.g. `units`).
    pub dataset: String,
    /// Its column matching the dimension's values.
    pub key: String,
    /// The dimension a point stands for; clicking a point filters by it.
    pub dimension: String,
    /// Column of latitudes (degrees).
    pub latitude: String,
    /// Column of longitudes (degrees).
    pub longitude: String,
    /// A dimension whose colours the points take (e.g. fuel).
    #[serde(default)]
    pub color: Option<String>,
    /// A measure sizing the points (e.g. generation).
    #[serde(default)]
    pub size: Option<String>,
}

/// The CSV download: rows at the current grain by time and these dimensions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadConfig {
    /// Dimensions in each row (besides time).
    #[serde(default)]
    pub by: Vec<String>,
    /// Measures in each row.
    pub measures: Vec<String>,
}

const GRAINS: &[&str] = &["5min", "hour", "day"];
const CHART_KINDS: &[&str] = &["area", "line", "bar"];
const WASM_BUILDS: &[&str] = &["eh", "mvp", "coi"];

impl DashboardConfig {
    /// Reads the `dashboard:` value of `analytics.yml` (absent: defaults).
    pub fn from_value(value: Option<&Value>) -> Result<DashboardConfig> {
        let Some(value) = value else {
            return Ok(DashboardConfig::default());
        };
        if value.is_null() {
            return Ok(DashboardConfig::default());
        }
        let config: DashboardConfig = serde_json::from_value(value.clone())
            .context("analytics.yml: `dashboard:` section is not valid")?;
        config.validate()?;
        Ok(config)
    }

    /// The `dashboard:` section of a project's settings.
    pub fn from_settings(settings: &super::Settings) -> Result<DashboardConfig> {
        Ok(settings.dashboard.clone().unwrap_or_default())
    }

    /// Checks that every name the section refers to is declared in it.
    pub fn validate(&self) -> Result<()> {
        let dims: BTreeSet<&str> = self.dimensions.iter().map(|d| d.name.as_str()).collect();
        let measures: BTreeSet<&str> = self.measures.iter().map(|m| m.name.as_str()).collect();
        let ctx = "analytics.yml: dashboard";
        for g in &self.grains {
            if !GRAINS.contains(&g.grain.as_str()) {
                bail!(
                    "{ctx}: grain `{}` is not one of {}",
                    g.grain,
                    GRAINS.join(", ")
                );
            }
        }
        if let Some(builds) = &self.wasm_builds {
            for b in builds {
                if !WASM_BUILDS.contains(&b.as_str()) {
                    bail!(
                        "{ctx}: wasm_builds: `{b}` is not one of {}",
                        WASM_BUILDS.join(", ")
                    );
                }
            }
            if builds.is_empty() {
                bail!("{ctx}: wasm_builds needs at least one build (e.g. [eh])");
            }
        }
        let check_dim = |what: &str, name: &str| -> Result<()> {
            if !dims.contains(name) {
                bail!(
                    "{ctx}: {what} names dimension `{name}`, which `dimensions:` does not declare (declared: {})",
                    dims.iter().copied().collect::<Vec<_>>().join(", ")
                );
            }
            Ok(())
        };
        let check_measure = |what: &str, name: &str| -> Result<()> {
            if !measures.contains(name) {
                bail!(
                    "{ctx}: {what} names measure `{name}`, which `measures:` does not declare (declared: {})",
                    measures.iter().copied().collect::<Vec<_>>().join(", ")
                );
            }
            Ok(())
        };
        for m in &self.measures {
            if let MeasureSql::PerGrain(map) = &m.sql {
                for g in self.grains.iter().map(|g| &g.grain) {
                    if !map.contains_key(g) {
                        bail!("{ctx}: measure `{}` has no sql for grain `{g}`", m.name);
                    }
                }
            }
        }
        // A rollup column is one aggregate whichever measure declares it, and
        // never shadows a dimension's column or the timestamp.
        let mut rollup_columns: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
        for m in &self.measures {
            let Some(r) = &m.rollup else { continue };
            for (col, sql) in &r.columns {
                if col == "_time" || self.dimensions.iter().any(|d| &d.column == col) {
                    bail!(
                        "{ctx}: measure `{}`: rollup column `{col}` has the name of a dimension's column or `_time`",
                        m.name
                    );
                }
                if let Some((other, prev)) = rollup_columns.insert(col, (&m.name, sql))
                    && prev != sql
                {
                    bail!(
                        "{ctx}: rollup column `{col}` is `{prev}` in measure `{other}` but `{sql}` in measure `{}`",
                        m.name
                    );
                }
            }
        }
        for r in &self.rollups {
            for d in &r.by {
                check_dim("rollup", d)?;
            }
        }
        for k in &self.kpis {
            // `latest` alone is the newest time; with `measure`, that
            // measure at the newest time.
            let kinds = [
                k.measure.is_some(),
                k.top.is_some(),
                k.latest && k.measure.is_none(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if kinds != 1 {
                bail!(
                    "{ctx}: KPI `{}` needs exactly one of `measure`, `top` (with `by`) or `latest: true`",
                    k.label
                );
            }
            if let Some(m) = &k.measure {
                check_measure(&format!("KPI `{}`", k.label), m)?;
            }
            if let Some(d) = &k.top {
                check_dim(&format!("KPI `{}`", k.label), d)?;
                let by = k
                    .by
                    .as_deref()
                    .with_context(|| format!("{ctx}: KPI `{}` has `top` but no `by`", k.label))?;
                check_measure(&format!("KPI `{}`", k.label), by)?;
            }
        }
        for c in &self.charts {
            let what = format!("chart `{}`", c.title);
            if !CHART_KINDS.contains(&c.kind.as_str()) {
                bail!(
                    "{ctx}: {what}: type `{}` is not one of {}",
                    c.kind,
                    CHART_KINDS.join(", ")
                );
            }
            check_measure(&what, &c.measure)?;
            if let Some(s) = &c.series {
                check_dim(&what, s)?;
            }
            if let Some(d) = &c.drill {
                check_dim(&format!("{what}: drill"), d)?;
            }
            if let Some(m) = &c.toggle {
                check_measure(&format!("{what}: toggle"), m)?;
            }
            match (&c.kind[..], &c.category) {
                ("bar", Some(cat)) => check_dim(&what, cat)?,
                ("bar", None) => bail!("{ctx}: {what}: a bar chart needs `category`"),
                _ => {}
            }
        }
        if let Some(d) = &self.download {
            for b in &d.by {
                check_dim("download", b)?;
            }
            for m in &d.measures {
                check_measure("download", m)?;
            }
        }
        if let Some(m) = &self.map {
            check_dim("map", &m.dimension)?;
            if let Some(c) = &m.color {
                check_dim("map: color", c)?;
            }
            if let Some(s) = &m.size {
                check_measure("map: size", s)?;
            }
        }
        Ok(())
    }

    /// Datasets the configuration reads (grains and lookups).
    pub fn datasets(&self) -> BTreeSet<String> {
        self.grains
            .iter()
            .map(|g| g.dataset.clone())
            .chain(
                self.dimensions
                    .iter()
                    .filter_map(|d| d.lookup.as_ref().map(|l| l.dataset.clone())),
            )
            .chain(self.map.iter().map(|m| m.dataset.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<DashboardConfig> {
        let v: Value = serde_yaml_ng::from_str(yaml)?;
        DashboardConfig::from_value(Some(&v))
    }

    #[test]
    fn missing_section_gives_defaults() {
        let c = DashboardConfig::from_value(None).unwrap();
        assert_eq!(c.date_column, "date");
        assert_eq!(c.default_days, 7);
        assert!(c.charts.is_empty());
        assert_eq!(c.assets, AssetsMode::Cdn);
    }

    #[test]
    fn unknown_measure_is_named() {
        let err = parse(
            "measures: [{name: mw, sql: 'sum(mw)'}]\ncharts: [{title: G, type: line, measure: energy}]",
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("chart `G`") && msg.contains("`energy`"),
            "{msg}"
        );
    }

    #[test]
    fn per_grain_sql_must_cover_every_grain() {
        let err = parse(
            "grains: [{grain: hour, dataset: hourly, time: 'date'}, {grain: day, dataset: daily, time: 'date'}]\n\
             measures: [{name: e, sql: {hour: 'sum(mwh)'}}]",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("no sql for grain `day`"));
    }

    #[test]
    fn latest_measure_kpi_drill_toggle_and_map_are_accepted() {
        let c = parse(
            "dimensions: [{name: fuel, column: fuel}, {name: unit, column: duid}]\n\
             measures: [{name: mw, sql: 'sum(mw)'}, {name: mwh, sql: 'sum(mwh)'}]\n\
             kpis: [{label: Latest MW, measure: mw, latest: true}]\n\
             charts: [{title: G, type: area, series: fuel, measure: mw, drill: unit, toggle: mwh}]\n\
             map: {dataset: units, key: duid, dimension: unit, latitude: lat, longitude: lon, color: fuel, size: mw}",
        )
        .unwrap();
        assert!(c.datasets().contains("units"));
        let err = parse(
            "dimensions: [{name: fuel, column: fuel}]\n\
             measures: [{name: mw, sql: 'sum(mw)'}]\n\
             charts: [{title: G, type: area, series: fuel, measure: mw, drill: unit}]",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("drill"), "{err:#}");
    }

    #[test]
    fn rollup_columns_must_agree_and_name_declared_dimensions() {
        let ok = "dimensions: [{name: fuel, column: fuel}]\n\
             measures: [{name: mw, sql: 'sum(mw)', rollup: {columns: {mw: 'sum(mw)'}, sql: 'sum(mw)'}}, \
             {name: avg, sql: 'avg(mw)', rollup: {columns: {mw: 'sum(mw)', n: 'count(*)'}, sql: 'sum(mw) / sum(n)'}}]\n";
        let c = parse(&format!(
            "{ok}rollups: [{{by: [fuel]}}, {{by: [], time: false}}]"
        ))
        .unwrap();
        assert!(c.rollups[0].time && !c.rollups[1].time);
        let err = parse(&format!("{ok}rollups: [{{by: [region]}}]")).unwrap_err();
        assert!(format!("{err:#}").contains("`region`"), "{err:#}");
        let err = parse(
            "measures: [{name: a, sql: 'sum(mw)', rollup: {columns: {x: 'sum(mw)'}, sql: 'sum(x)'}}, \
             {name: b, sql: 'max(mw)', rollup: {columns: {x: 'max(mw)'}, sql: 'max(x)'}}]",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("rollup column `x`"), "{err:#}");
        let err = parse(
            "dimensions: [{name: fuel, column: fuel}]\n\
             measures: [{name: a, sql: 'count(*)', rollup: {columns: {fuel: 'count(*)'}, sql: 'sum(fuel)'}}]",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("dimension's column"), "{err:#}");
    }

    #[test]
    fn typo_in_a_key_is_rejected() {
        let err = parse("titel: x").unwrap_err();
        assert!(format!("{err:#}").contains("titel"), "{err:#}");
    }
}
