//! The Jinja objects a render exposes, each with its dbt behaviour:
//! `this`/`ref()` relations, `config`, `exceptions`, `run_started_at` and
//! `adapter`. Registered by [`super::Templater::render`].

use super::{Captured, QueryRunner, lock, to_json};
use crate::project::Config;
use crate::sql::{Relation, literal, quote};
use minijinja::value::{Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Error, ErrorKind, State};
use std::fmt;
use std::sync::{Arc, Mutex};

impl Object for Relation {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "schema" => Some(Value::from(self.schema.clone())),
            "identifier" | "name" | "table" => Some(Value::from(self.identifier.clone())),
            "database" => Some(Value::from(self.database.clone())),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "render" => Ok(Value::from(self.to_string())),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}

/// `config` is both callable (`config(materialized='table')`) and has
/// `config.get(key, default)`.
#[derive(Debug)]
pub(super) struct ConfigObject {
    pub(super) captured: Arc<Mutex<Captured>>,
    pub(super) base: Config,
}

impl Object for ConfigObject {
    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (positional, kwargs): (Option<Value>, Kwargs) = from_args(args)?;
        let mut c = lock(&self.captured);
        if let Some(map) = positional {
            for key in map.try_iter()? {
                let value = map.get_item(&key)?;
                c.config.set(&key.to_string(), to_json(&value)?);
            }
        }
        for key in kwargs.args() {
            let value: Value = kwargs.get(key)?;
            c.config.set(key, to_json(&value)?);
        }
        Ok(Value::from(""))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "get" | "require" => {
                let (key, default): (String, Option<Value>) = from_args(args)?;
                let key = crate::project::config::normalize_key(&key);
                let captured = lock(&self.captured);
                let found = captured
                    .config
                    .0
                    .get(&key)
                    .or_else(|| self.base.0.get(&key));
                match (found, method) {
                    (Some(v), _) => Ok(Value::from_serialize(v)),
                    (None, "require") => Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("config key '{key}' is required"),
                    )),
                    (None, _) => Ok(default.unwrap_or(Value::from(()))),
                }
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// dbt's `exceptions.raise_compiler_error(msg)` and `exceptions.warn(msg)`.
#[derive(Debug)]
pub(super) struct Exceptions;

impl Object for Exceptions {
    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (msg,): (String,) = from_args(args)?;
        match method {
            "raise_compiler_error" | "raise_not_implemented" => {
                Err(Error::new(ErrorKind::InvalidOperation, msg))
            }
            "warn" => {
                tracing::warn!("{msg}");
                Ok(Value::from(""))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// dbt's `run_started_at`: prints as an ISO timestamp, and has
/// `strftime(fmt)` and `isoformat()` like Python's datetime.
#[derive(Debug)]
pub(super) struct RunStartedAt(pub(super) chrono::DateTime<chrono::Utc>);

impl Object for RunStartedAt {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (fmt,): (String,) = from_args(args)?;
                let mut out = String::new();
                use std::fmt::Write as _;
                write!(out, "{}", self.0.format(&fmt)).map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("bad strftime format {fmt:?}"),
                    )
                })?;
                Ok(Value::from(out))
            }
            "isoformat" => Ok(Value::from(
                self.0.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string(),
            )),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        use chrono::{Datelike, Timelike};
        Some(Value::from(match key.as_str()? {
            "year" => self.0.year() as i64,
            "month" => self.0.month() as i64,
            "day" => self.0.day() as i64,
            "hour" => self.0.hour() as i64,
            "minute" => self.0.minute() as i64,
            "second" => self.0.second() as i64,
            _ => return None,
        }))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d %H:%M:%S%.6f+00:00"))
    }
}

/// The parts of dbt's `adapter` that project macros use most:
/// `adapter.quote(name)` and `adapter.get_relation(database, schema, identifier)`.
#[derive(Debug)]
pub(super) struct Adapter {
    pub(super) runner: Option<Arc<dyn QueryRunner>>,
}

impl fmt::Debug for dyn QueryRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueryRunner")
    }
}

impl Object for Adapter {
    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "quote" => {
                let (name,): (String,) = from_args(args)?;
                Ok(Value::from(quote(&name)))
            }
            "get_relation" | "load_relation" => {
                let (schema, identifier) = if method == "load_relation" {
                    let (rel,): (Value,) = from_args(args)?;
                    (
                        rel.get_attr("schema")?.to_string(),
                        rel.get_attr("identifier")?.to_string(),
                    )
                } else {
                    let (_db, schema, identifier, kwargs): (
                        Option<Value>,
                        Option<String>,
                        Option<String>,
                        Kwargs,
                    ) = from_args(args)?;
                    let _: Option<Value> = kwargs.get("database")?;
                    let schema = schema.or(kwargs.get("schema")?);
                    let identifier = identifier.or(kwargs.get("identifier")?);
                    kwargs.assert_all_used()?;
                    match (schema, identifier) {
                        (Some(s), Some(i)) => (s, i),
                        _ => {
                            return Err(Error::new(
                                ErrorKind::MissingArgument,
                                "adapter.get_relation needs schema and identifier",
                            ));
                        }
                    }
                };
                let Some(runner) = &self.runner else {
                    return Ok(Value::from(()));
                };
                let sql = format!(
                    "SELECT table_schema, table_name FROM information_schema.tables \
                     WHERE lower(table_schema) = lower({}) AND lower(table_name) = lower({}) LIMIT 1",
                    literal(&schema),
                    literal(&identifier)
                );
                let found = runner.query(&sql).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("adapter.get_relation: {e:#}"),
                    )
                })?;
                Ok(match found.rows.first() {
                    Some(row) => Value::from_object(Relation::new(
                        row[0].as_str().unwrap_or(&schema),
                        row[1].as_str().unwrap_or(&identifier),
                    )),
                    None => Value::from(()),
                })
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}
