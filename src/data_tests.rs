//! Data tests: dbt's generic tests (`unique`, `not_null`, `accepted_values`,
//! `relationships`, and project `{% test %}` macros) and singular SQL tests.
//!
//! Every test is a query returning the failing rows; the failure count
//! decides pass / warn / fail through `severity`, `error_if` and `warn_if`.
//!
//! The built-in column tests of one relation (`not_null`, `accepted_values`,
//! `unique`) are first counted together, in one scan of that relation
//! ([`run_tests`]): on a view over raw files each scan re-reads the files, so
//! three `not_null` tests on a staging view cost one read instead of three.
//! A test whose aggregate finds failures is then run alone with dbt's query,
//! so its failure count and sample rows are exactly dbt's.

use crate::engine::Engine;
use crate::project::{Config, GenericTest};
use crate::sql::{Relation, literal, quote};
use crate::templating::{
    FileCatalog, Phase, QueryResult, QueryRunner, RelationMap, RenderContext, StoredRead,
};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a test ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TestStatus {
    /// No threshold crossed.
    Pass,
    /// Failures crossed `warn_if` (and not `error_if`, or `severity` is `warn`).
    Warn,
    /// Failures crossed `error_if` and `severity` is `error`.
    Fail,
    /// The test itself could not run (bad SQL, unknown test).
    Error(String),
    /// Not run (its model failed or was not selected).
    Skipped(String),
}

/// One test's result, with a few failing rows for the summary.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    /// The test's unique name (e.g. `unique_dim_duid_duid`).
    pub name: String,
    /// The model tested (generic tests) or `None` (singular tests).
    pub model: Option<String>,
    /// Pass, warn, fail, error or skipped.
    pub status: TestStatus,
    /// How many rows the failing-rows query returned.
    pub failures: u64,
    /// Up to five failing rows, shown in the summary.
    pub sample: QueryResult,
    /// How long the test took to run.
    pub duration: Duration,
    /// The file that declares the test.
    pub file: String,
    /// The line of that file declaring the test (1 for singular tests).
    pub line: usize,
    /// How many tests were counted by the one scan that counted this one
    /// (1: the test ran alone).
    pub scan_shared_by: usize,
}

/// A test ready to run: its failing-rows query and thresholds.
#[derive(Debug, Clone)]
pub struct TestPlan {
    /// The test's unique name, deduplicated with a `_2`, `_3`… suffix.
    pub name: String,
    /// The model tested (generic tests) or `None` (singular tests).
    pub model: Option<String>,
    /// The rendered query returning the failing rows.
    pub sql: String,
    /// `severity`, `error_if`, `warn_if`, `limit`…
    pub config: Config,
    /// The file that declares the test.
    pub file: String,
    /// The line of that file declaring the test (1 for singular tests).
    pub line: usize,
    /// For a built-in column test: the aggregate that counts its failures,
    /// run in one scan with the other column tests of the same relation.
    pub check: Option<ColumnCheck>,
    /// The generic test this plan runs (`None` for singular tests), kept so
    /// [`narrow_to_new_rows`] can point it at the rows this run wrote.
    pub generic: Option<GenericTest>,
    /// What the test checks when not its whole model (set by
    /// [`narrow_to_new_rows`]), e.g. "the 129600 rows this run wrote".
    pub scope: Option<String>,
    /// A singular test's `stored_on_new_dates()` reads of models it reads
    /// no other way: [`run_test`] points each model at the stored files
    /// holding those dates while the test runs.
    pub stored_reads: Vec<StoredRead>,
}

/// A built-in column test as an aggregate over its relation.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnCheck {
    /// What is scanned: the relation, or `(SELECT * FROM it WHERE <where>)`.
    pub from: String,
    /// An aggregate over `from` that is 0 exactly when the test has no failing
    /// row (for `not_null` and `accepted_values` it is dbt's failure count).
    pub aggregate: String,
}

/// The aggregate of a built-in column test (`not_null`, `accepted_values`,
/// `unique`), or `None` for other tests.
fn column_check(test: &GenericTest, relations: &RelationMap) -> Option<ColumnCheck> {
    let model = relations.get(&test.model)?;
    column_check_over(test, &filtered(test, &model.to_string()))
}

/// `relation`, or `(SELECT * FROM relation WHERE <where>)` when the test's
/// config has dbt's `where`.
fn filtered(test: &GenericTest, relation: &str) -> String {
    match test.config.str("where") {
        Some(cond) => format!("(SELECT * FROM {relation} WHERE {cond})"),
        None => relation.to_string(),
    }
}

/// [`column_check`] scanning `from` (the model as the test's `where` leaves
/// it, or a part of it).
fn column_check_over(test: &GenericTest, from: &str) -> Option<ColumnCheck> {
    if test.test.contains('.') {
        return None;
    }
    let from = from.to_string();
    let c = column_expr(test.column.as_deref()?, &test.args);
    let aggregate = match test.test.as_str() {
        // dbt returns the null rows: their count.
        "not_null" => format!("count(*) FILTER (WHERE {c} IS NULL)"),
        // dbt returns one row per value not accepted: the distinct values.
        "accepted_values" => {
            let list = accepted_list(test).ok()?;
            format!("count(DISTINCT {c}) FILTER (WHERE {c} IS NOT NULL AND {c} NOT IN ({list}))")
        }
        // dbt returns one row per duplicated value; 0 exactly when every
        // non-null value is distinct (the exact count is taken alone).
        "unique" => format!("count({c}) - count(DISTINCT {c})"),
        _ => return None,
    };
    Some(ColumnCheck { from, aggregate })
}

/// `accepted_values`' `values:` as a SQL list (quoted unless `quote: false`).
fn accepted_list(test: &GenericTest) -> Result<String> {
    let values = test
        .args
        .get("values")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            anyhow!(
                "test `{}`: accepted_values needs `values: [...]`",
                test.name
            )
        })?;
    let quoted = test
        .args
        .get("quote")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let list: Vec<String> = values
        .iter()
        .map(|v| match (v, quoted) {
            (Value::String(s), true) => literal(s),
            (Value::String(s), false) => s.clone(),
            (other, true) => literal(&other.to_string()),
            (other, false) => other.to_string(),
        })
        .collect();
    Ok(list.join(", "))
}

/// Builds the failing-rows query of a built-in generic test; `None` when the
/// test is not built in (a project `{% test %}` macro may define it).
pub fn generic_sql(test: &GenericTest, relations: &RelationMap) -> Result<Option<String>> {
    let model = relations.get(&test.model).ok_or_else(|| {
        anyhow!(
            "test `{}`: model `{}` does not exist",
            test.name,
            test.model
        )
    })?;
    generic_sql_over(test, relations, &filtered(test, &model.to_string()))
}

/// [`generic_sql`] over `from` instead of the whole model.
fn generic_sql_over(
    test: &GenericTest,
    relations: &RelationMap,
    from: &str,
) -> Result<Option<String>> {
    let column = || -> Result<String> {
        let col = test
            .column
            .as_deref()
            .ok_or_else(|| anyhow!("test `{}` needs a column", test.name))?;
        Ok(column_expr(col, &test.args))
    };
    let short = test.test.rsplit('.').next().unwrap_or(&test.test);
    let sql = match (short, test.test.contains('.')) {
        ("unique", false) => {
            let c = column()?;
            format!(
                "SELECT {c} AS unique_field, count(*) AS n_records FROM {from} \
                 WHERE {c} IS NOT NULL GROUP BY {c} HAVING count(*) > 1"
            )
        }
        ("not_null", false) => {
            let c = column()?;
            format!("SELECT * FROM {from} WHERE {c} IS NULL")
        }
        ("accepted_values", false) => {
            let c = column()?;
            let list = accepted_list(test)?;
            format!(
                "SELECT {c} AS value_field, count(*) AS n_records FROM {from} \
                 WHERE {c} IS NOT NULL AND {c} NOT IN ({list}) GROUP BY {c}"
            )
        }
        ("relationships", false) => {
            let c = column()?;
            let to = test.args.get("to").and_then(Value::as_str).ok_or_else(|| {
                anyhow!("test `{}`: relationships needs `to: ref('...')`", test.name)
            })?;
            let field = test
                .args
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("test `{}`: relationships needs `field:`", test.name))?;
            let parent = resolve_to(to, relations)
                .ok_or_else(|| anyhow!("test `{}`: cannot resolve `to: {to}`", test.name))?;
            format!(
                "SELECT child.{c} AS from_field FROM {from} AS child \
                 LEFT JOIN {parent} AS parent ON child.{c} = parent.{f} \
                 WHERE child.{c} IS NOT NULL AND parent.{f} IS NULL",
                f = quote(field)
            )
        }
        _ => return Ok(None),
    };
    Ok(Some(sql))
}

/// A column name, quoted unless `quote: false` says it is an expression.
fn column_expr(col: &str, args: &serde_json::Map<String, Value>) -> String {
    let plain = col.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain && args.get("quote_columns").and_then(Value::as_bool) != Some(false) {
        quote(col)
    } else {
        col.to_string()
    }
}

/// `ref('x')`, `ref("x")` or a bare model name.
fn resolve_to(to: &str, relations: &RelationMap) -> Option<Relation> {
    let re = regex::Regex::new(r#"^\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*$"#).ok()?;
    let name = re
        .captures(to)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| to.trim().to_string());
    relations.get(&name).cloned()
}

/// Runs planned tests, in order: the column tests of each relation first
/// counted together in one scan ([`ColumnCheck`]); a test whose count is not
/// 0, every other test, and every test of a relation whose aggregate could
/// not run, through [`run_test`] (dbt's query, its exact count and sample).
/// A test counted in a shared scan is given an equal share of its time.
pub fn run_tests(engine: &Engine, plans: &[&TestPlan]) -> Vec<TestOutcome> {
    let mut counted: Vec<Option<(u64, Duration, usize)>> = vec![None; plans.len()];
    let mut relations: Vec<&str> = Vec::new();
    for p in plans {
        if let Some(c) = &p.check
            && !relations.contains(&c.from.as_str())
        {
            relations.push(&c.from);
        }
    }
    for from in relations {
        let members: Vec<usize> = (0..plans.len())
            .filter(|&i| plans[i].check.as_ref().is_some_and(|c| c.from == from))
            .collect();
        if members.len() < 2 {
            continue;
        }
        let started = Instant::now();
        let aggregates: Vec<String> = members
            .iter()
            .map(|&i| {
                let agg = plans[i].check.as_ref().map(|c| c.aggregate.as_str());
                format!("CAST({} AS UBIGINT)", agg.unwrap_or("NULL"))
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM {from} AS dbt_internal_test",
            aggregates.join(", ")
        );
        let Ok(result) = engine.query_rows(&sql, Some(1)) else {
            continue; // each test alone says which one cannot run
        };
        let share = started.elapsed() / members.len() as u32;
        let Some(row) = result.rows.first() else {
            continue;
        };
        for (k, &i) in members.iter().enumerate() {
            if let Some(n) = row.get(k).and_then(Value::as_u64) {
                counted[i] = Some((n, share, members.len()));
            }
        }
    }
    plans
        .iter()
        .zip(counted)
        .map(|(plan, counted)| match counted {
            Some((0, share, shared_by)) => {
                let mut outcome = outcome_for(plan);
                outcome.duration = share;
                outcome.scan_shared_by = shared_by;
                match status_for(0, &plan.config) {
                    Ok(status) => outcome.status = status,
                    Err(e) => outcome.status = TestStatus::Error(format!("{e:#}")),
                }
                outcome
            }
            _ => run_test(engine, plan),
        })
        .collect()
}

/// A test's outcome before it runs: passed, no failures.
fn outcome_for(plan: &TestPlan) -> TestOutcome {
    TestOutcome {
        name: plan.name.clone(),
        model: plan.model.clone(),
        status: TestStatus::Pass,
        failures: 0,
        sample: QueryResult::default(),
        duration: Duration::ZERO,
        file: plan.file.clone(),
        line: plan.line,
        scan_shared_by: 1,
    }
}

/// Runs one planned test.
pub fn run_test(engine: &Engine, plan: &TestPlan) -> TestOutcome {
    let started = Instant::now();
    let narrowed: Vec<&Relation> = plan
        .stored_reads
        .iter()
        .filter(|read| match read_stored_on_new_dates(engine, read) {
            Ok(narrowed) => narrowed,
            Err(e) => {
                tracing::warn!("test `{}` reads {} whole: {e:#}", plan.name, read.model);
                false
            }
        })
        .map(|read| &read.model)
        .collect();
    let mut outcome = run_query(engine, plan);
    for model in narrowed {
        if let Err(e) = engine.attach_stored(model) {
            outcome.status = TestStatus::Error(format!("{e:#}"));
        }
    }
    outcome.duration = started.elapsed();
    outcome
}

/// Points stored model `read.model` at local copies of only its data files
/// whose bounds of `read.column` hold the dates of the rows this run wrote
/// (`read.kept`): the test's filter reads only rows of those dates, so the
/// other files cannot hold a row it reads. Returns whether it did (not on
/// other targets, nor for a table that cannot be read so).
fn read_stored_on_new_dates(engine: &Engine, read: &StoredRead) -> Result<bool> {
    if !engine.is_stored(&read.model)? {
        return Ok(false);
    }
    let c = quote(&read.column);
    let dates = engine
        .query_rows(
            &format!(
                "SELECT DISTINCT CAST({c} AS DATE)::VARCHAR FROM {} WHERE {c} IS NOT NULL ORDER BY 1",
                read.kept
            ),
            None,
        )
        .map_err(|e| anyhow!(e.message))
        .with_context(|| format!("reading the dates of the rows this run wrote to {}", read.model))?;
    let mut ranges: Vec<(chrono::NaiveDate, chrono::NaiveDate)> = Vec::new();
    for row in &dates.rows {
        let Some(text) = row.first().and_then(Value::as_str) else {
            continue;
        };
        let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .with_context(|| format!("reading date {text:?} of {}", read.kept))?;
        match ranges.last_mut() {
            Some((_, last)) if last.succ_opt() == Some(day) => *last = day,
            _ => ranges.push((day, day)),
        }
    }
    if ranges.is_empty() {
        return Ok(false);
    }
    engine.read_stored_within(&read.model, &read.column, &ranges)
}

/// Runs a test's query: its failure count, status and sample rows.
fn run_query(engine: &Engine, plan: &TestPlan) -> TestOutcome {
    let started = Instant::now();
    let sql = plan.sql.trim().trim_end_matches(';');
    let limit = plan.config.0.get("limit").and_then(Value::as_u64);
    let failing = match limit {
        Some(l) => format!("(SELECT * FROM ({sql}) LIMIT {l})"),
        None => format!("({sql})"),
    };
    let mut outcome = outcome_for(plan);
    let counted = engine.count(&format!(
        "SELECT count(*) FROM {failing} AS dbt_internal_test"
    ));
    match counted {
        Err(e) => outcome.status = TestStatus::Error(e.message),
        Ok(n) => {
            outcome.failures = n;
            outcome.status = match status_for(n, &plan.config) {
                Ok(s) => s,
                Err(e) => TestStatus::Error(format!("{e:#}")),
            };
            if n > 0
                && let Ok(sample) =
                    engine.query_rows(&format!("SELECT * FROM {failing} AS t LIMIT 5"), Some(5))
            {
                outcome.sample = sample;
            }
        }
    }
    outcome.duration = started.elapsed();
    outcome
}

/// Applies `severity`, `error_if` and `warn_if` (defaults: error, `!=0`, `!=0`).
fn status_for(failures: u64, config: &Config) -> Result<TestStatus> {
    let severity = config
        .str("severity")
        .unwrap_or("error")
        .to_ascii_lowercase();
    let error_if = threshold(config.str("error_if").unwrap_or("!=0"), failures)?;
    let warn_if = threshold(config.str("warn_if").unwrap_or("!=0"), failures)?;
    Ok(match severity.as_str() {
        "error" if error_if => TestStatus::Fail,
        "error" | "warn" if warn_if => TestStatus::Warn,
        "error" | "warn" => TestStatus::Pass,
        other => bail!("unknown severity '{other}' (use error or warn)"),
    })
}

/// Evaluates a dbt threshold like `!=0`, `>10`, `>=5`, `=0` or `<3`.
fn threshold(expr: &str, n: u64) -> Result<bool> {
    let expr = expr.trim();
    let (op, rest) = ["!=", ">=", "<=", "==", ">", "<", "="]
        .iter()
        .find_map(|op| expr.strip_prefix(op).map(|r| (*op, r)))
        .ok_or_else(|| anyhow!("cannot read threshold `{expr}`"))?;
    let v: u64 = rest
        .trim()
        .parse()
        .map_err(|_| anyhow!("cannot read threshold `{expr}`"))?;
    Ok(match op {
        "!=" => n != v,
        ">=" => n >= v,
        "<=" => n <= v,
        ">" => n > v,
        "<" => n < v,
        _ => n == v,
    })
}

/// Every test to run, with the models it needs, in model order.
pub fn plan_tests(
    plan: &crate::plan::Plan,
    selected: &BTreeSet<String>,
    runner: &Arc<dyn QueryRunner>,
    catalog: &Arc<dyn FileCatalog>,
) -> Result<Vec<(TestPlan, Vec<String>)>> {
    let mut out = Vec::new();
    let position = |m: &str| {
        plan.models
            .iter()
            .position(|x| x.name == m)
            .unwrap_or(usize::MAX)
    };
    let mut generic: Vec<_> = plan
        .project
        .generic_tests
        .iter()
        .filter(|t| t.config.bool("enabled") != Some(false))
        .filter(|t| plan.relations.contains_key(&t.model))
        .filter(|t| selected.contains(&t.model))
        .collect();
    generic.sort_by_key(|t| position(&t.model));
    let mut names = BTreeSet::new();
    for test in generic {
        let mut name = test.name.clone();
        let mut n = 2;
        while !names.insert(name.clone()) {
            name = format!("{}_{n}", test.name);
            n += 1;
        }
        let mut needs = vec![test.model.clone()];
        let check = column_check(test, &plan.relations);
        let sql = match generic_sql(test, &plan.relations)? {
            Some(sql) => {
                if let Some(to) = test.args.get("to").and_then(|v| v.as_str())
                    && let Some(parent) = plan.relations.keys().find(|k| {
                        to.contains(&format!("'{k}'")) || to.contains(&format!("\"{k}\""))
                    })
                {
                    needs.push(parent.clone());
                }
                sql
            }
            None => render_custom_generic(plan, test, runner, catalog)?,
        };
        out.push((
            TestPlan {
                name,
                model: Some(test.model.clone()),
                sql,
                config: test.config.clone(),
                file: test.file.display().to_string(),
                line: test.line,
                check,
                generic: Some(test.clone()),
                scope: None,
                stored_reads: Vec::new(),
            },
            needs,
        ));
    }
    for test in &plan.project.singular_tests {
        let origin = test.path.display().to_string();
        let parse_ctx = RenderContext {
            phase: Phase::Parse,
            node_name: test.name.clone(),
            this: None,
            is_incremental: false,
            config: Config::default(),
            relations: Arc::new(RelationMap::new()),
            runner: None,
            files: None,
        };
        let parsed = plan.templater.render(&origin, &test.text, &parse_ctx)?;
        if parsed.captured.config.bool("enabled") == Some(false) {
            continue;
        }
        for r in &parsed.captured.refs {
            if !plan.relations.contains_key(r) {
                let hint = plan
                    .project
                    .closest_model(r)
                    .map(|c| format!(" — did you mean `{c}`?"))
                    .unwrap_or_default();
                bail!("test {origin} refers to `{r}`, which is not a model in this project{hint}");
            }
        }
        if !parsed.captured.refs.is_empty()
            && !parsed.captured.refs.iter().any(|r| selected.contains(r))
        {
            continue;
        }
        let ctx = plan.execute_context(
            &test.name,
            None,
            false,
            &parsed.captured.config,
            Some(runner.clone()),
            Some(catalog.clone()),
        );
        let rendered = plan.templater.render(&origin, &test.text, &ctx)?;
        // A model the test also reads through ref() keeps its whole view.
        let plain: Vec<&Relation> = rendered
            .captured
            .plain_refs
            .iter()
            .filter_map(|r| plan.relations.get(r))
            .collect();
        let stored_reads = rendered
            .captured
            .stored_reads
            .into_iter()
            .filter(|read| !plain.contains(&&read.model))
            .collect();
        let sql = rendered.sql;
        out.push((
            TestPlan {
                name: test.name.clone(),
                model: None,
                sql,
                config: parsed.captured.config.clone(),
                file: origin,
                line: 1,
                check: None,
                generic: None,
                scope: None,
                stored_reads,
            },
            parsed.captured.refs.clone(),
        ));
    }
    Ok(out)
}

/// Points the built-in generic tests of incremental models at what this run
/// wrote, so a daily backfill's tests cost what it added, not the history.
/// For a model whose incremental build this run kept its new rows
/// ([`Engine::new_rows`]; a model built from scratch keeps none and is
/// tested whole):
///
/// - `not_null`, `accepted_values`: the new rows only. Rows already stored
///   were checked when they were written and an incremental build does not
///   change them (delete+insert and merge replace them by new rows, which
///   are checked).
/// - `unique`: every stored row whose value a new row also has — a
///   duplicate between an old and a new row, or between two new rows, is
///   found with dbt's count for those values; duplicates among old rows only
///   were found by the runs that wrote them.
/// - `relationships`: the new rows' values against the parent, when the
///   parent was not rebuilt this run; when it was (a `table` or `view`
///   model built again, e.g. a calendar), the whole model as dbt does (an
///   old value may have lost its parent).
///
/// dbt's `where` config applies as before (to the new rows and to the
/// model). Project `{% test %}` macros and singular tests read what their
/// SQL reads (the whole model unless they filter). `built`: the models this
/// run built. Returns how many tests were narrowed.
pub fn narrow_to_new_rows(
    engine: &Engine,
    plan: &crate::plan::Plan,
    tests: &mut [(TestPlan, Vec<String>)],
    built: &BTreeSet<String>,
) -> Result<usize> {
    let mut new_rows: std::collections::BTreeMap<String, Option<(String, u64)>> =
        Default::default();
    let mut new_rows_of = |model: &str| -> Result<Option<(String, u64)>> {
        if let Some(known) = new_rows.get(model) {
            return Ok(known.clone());
        }
        let found = match plan.relations.get(model) {
            Some(rel) if built.contains(model) => match engine.new_rows(rel)? {
                Some(kept) => {
                    let n = engine
                        .count(&format!("SELECT count(*) FROM {kept}"))
                        .map_err(|e| anyhow!(e))
                        .with_context(|| format!("counting the rows this run wrote to {rel}"))?;
                    Some((kept, n))
                }
                None => None,
            },
            _ => None,
        };
        new_rows.insert(model.to_string(), found.clone());
        Ok(found)
    };
    let mut narrowed = 0;
    for (plan_, _) in tests.iter_mut() {
        let Some(test) = plan_.generic.clone() else {
            continue;
        };
        if test.test.contains('.') {
            continue;
        }
        let Some((kept, n)) = new_rows_of(&test.model)? else {
            continue;
        };
        let Some(model) = plan.relations.get(&test.model) else {
            continue;
        };
        let new = filtered(&test, &kept);
        let (from, scope) = match test.test.as_str() {
            "not_null" | "accepted_values" => (new, format!("the {n} rows this run wrote")),
            "unique" => {
                let Some(col) = test.column.as_deref() else {
                    continue;
                };
                let c = column_expr(col, &test.args);
                let whole = filtered(&test, &model.to_string());
                (
                    format!("(SELECT * FROM {whole} AS t WHERE {c} IN (SELECT {c} FROM {new}))"),
                    format!("the stored rows sharing a value with the {n} rows this run wrote"),
                )
            }
            "relationships" => {
                let parent = test
                    .args
                    .get("to")
                    .and_then(Value::as_str)
                    .and_then(|to| resolve_name(to, &plan.relations));
                let parent_unchanged = parent.as_deref().is_some_and(|p| {
                    !built.contains(p)
                        || matches!(new_rows_of(p), Ok(Some(_)))
                            && plan
                                .models
                                .iter()
                                .find(|m| m.name == p)
                                .is_some_and(|m| m.config.materialized() == "incremental")
                });
                if !parent_unchanged {
                    continue;
                }
                (
                    new,
                    format!("the {n} rows this run wrote (parent not rebuilt)"),
                )
            }
            _ => continue,
        };
        let Some(sql) = generic_sql_over(&test, &plan.relations, &from)? else {
            continue;
        };
        plan_.sql = sql;
        plan_.check = column_check_over(&test, &from);
        tracing::info!("test `{}` checks {scope}", plan_.name);
        plan_.scope = Some(scope);
        narrowed += 1;
    }
    Ok(narrowed)
}

/// The model named by `ref('x')`, `ref("x")` or a bare name.
fn resolve_name(to: &str, relations: &RelationMap) -> Option<String> {
    let re = regex::Regex::new(r#"^\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*$"#).ok()?;
    let name = re
        .captures(to)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| to.trim().to_string());
    relations.contains_key(&name).then_some(name)
}

/// A generic test defined by the project as `{% test name(model, column_name) %}`.
fn render_custom_generic(
    plan: &crate::plan::Plan,
    test: &crate::project::GenericTest,
    runner: &Arc<dyn QueryRunner>,
    catalog: &Arc<dyn FileCatalog>,
) -> Result<String> {
    let macro_name = format!(
        "test_{}",
        test.test.rsplit('.').next().unwrap_or(&test.test)
    );
    if !plan.templater.has_macro(&macro_name) {
        bail!(
            "{}: test `{}` on `{}` is not a built-in test (unique, not_null, accepted_values, \
             relationships) and the project defines no `{{% test {} %}}`",
            test.file.display(),
            test.test,
            test.model,
            &macro_name[5..]
        );
    }
    let mut call = format!("{{{{ {macro_name}(model=ref({:?})", test.model);
    if let Some(col) = &test.column {
        call.push_str(&format!(", column_name={col:?}"));
    }
    for (key, value) in &test.args {
        call.push_str(&format!(", {key}={value}"));
    }
    call.push_str(") }}");
    let ctx = plan.execute_context(
        &test.name,
        None,
        false,
        &test.config,
        Some(runner.clone()),
        Some(catalog.clone()),
    );
    Ok(plan
        .templater
        .render(&test.file.display().to_string(), &call, &ctx)?
        .sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_dbt() {
        let mut c = Config::default();
        assert_eq!(status_for(0, &c).unwrap(), TestStatus::Pass);
        assert_eq!(status_for(3, &c).unwrap(), TestStatus::Fail);
        c.set("severity", "warn".into());
        assert_eq!(status_for(3, &c).unwrap(), TestStatus::Warn);
        let mut c = Config::default();
        c.set("error_if", ">5".into());
        assert_eq!(status_for(3, &c).unwrap(), TestStatus::Warn);
        assert_eq!(status_for(6, &c).unwrap(), TestStatus::Fail);
        assert!(threshold("about 3", 1).is_err());
    }
}
