//! Mutable lists and dicts for dbt-style Jinja.
//!
//! dbt macros build SQL with `{% set cols = [] %}{% do cols.append(c) %}`,
//! which works in Python's Jinja because lists are Python lists. minijinja's
//! values are immutable, so list/dict literals assigned with `{% set %}` are
//! rewritten to `__list([...])` / `__dict({...})`, which return these objects.

use minijinja::value::{Enumerator, Object, ObjectRepr, Value, from_args};
use minijinja::{Error, ErrorKind, State};
use std::sync::{Arc, Mutex, MutexGuard};

/// Rewrites `{% set x = [...] %}` and `{% set x = {...} %}` so the value is mutable.
pub fn make_literals_mutable(source: &str) -> String {
    static LIST: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    static DICT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let list = LIST.get_or_init(|| {
        regex::Regex::new(r"\{%(-?)\s*set\s+(\w+)\s*=\s*(\[[^%]*\])\s*(-?)%\}")
            .expect("valid regex")
    });
    let dict = DICT.get_or_init(|| {
        regex::Regex::new(r"\{%(-?)\s*set\s+(\w+)\s*=\s*(\{[^%]*\})\s*(-?)%\}")
            .expect("valid regex")
    });
    let out = list.replace_all(source, "{%$1 set $2 = __list($3) $4%}");
    dict.replace_all(&out, "{%$1 set $2 = __dict($3) $4%}")
        .into_owned()
}

/// Registers `__list` and `__dict` on an environment.
pub fn register(env: &mut minijinja::Environment<'static>) {
    env.add_function("__list", |items: Option<Value>| -> Result<Value, Error> {
        let items = match items {
            Some(v) => v.try_iter()?.collect(),
            None => Vec::new(),
        };
        Ok(Value::from_object(MutableList(Mutex::new(items))))
    });
    env.add_function("__dict", |items: Option<Value>| -> Result<Value, Error> {
        let mut pairs = Vec::new();
        if let Some(map) = items {
            for key in map.try_iter()? {
                let value = map.get_item(&key)?;
                pairs.push((key, value));
            }
        }
        Ok(Value::from_object(MutableDict(Mutex::new(pairs))))
    });
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A list supporting `append`, `extend`, `insert`, `pop` and `remove`.
#[derive(Debug)]
pub struct MutableList(Mutex<Vec<Value>>);

impl Object for MutableList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = lock(&self.0);
        let idx = key.as_i64()?;
        let idx = if idx < 0 {
            items.len() as i64 + idx
        } else {
            idx
        };
        items.get(usize::try_from(idx).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(lock(&self.0).clone())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let mut items = lock(&self.0);
        match method {
            "append" => {
                let (v,): (Value,) = from_args(args)?;
                items.push(v);
            }
            "extend" => {
                let (v,): (Value,) = from_args(args)?;
                items.extend(v.try_iter()?);
            }
            "insert" => {
                let (i, v): (usize, Value) = from_args(args)?;
                let i = i.min(items.len());
                items.insert(i, v);
            }
            "pop" => {
                let (i,): (Option<i64>,) = from_args(args)?;
                let len = items.len() as i64;
                let i = i
                    .map(|i| if i < 0 { len + i } else { i })
                    .unwrap_or(len - 1);
                if i < 0 || i >= len {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "pop from an empty list",
                    ));
                }
                return Ok(items.remove(i as usize));
            }
            "remove" => {
                let (v,): (Value,) = from_args(args)?;
                if let Some(pos) = items.iter().position(|x| x == &v) {
                    items.remove(pos);
                }
            }
            "index" => {
                let (v,): (Value,) = from_args(args)?;
                return items
                    .iter()
                    .position(|x| x == &v)
                    .map(Value::from)
                    .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "value not in list"));
            }
            "count" => {
                let (v,): (Value,) = from_args(args)?;
                return Ok(Value::from(items.iter().filter(|x| *x == &v).count()));
            }
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        }
        Ok(Value::from(()))
    }
}

/// A dict supporting `update`, `pop`, `setdefault`, plus `items()`/`keys()`/`values()`/`get()`.
#[derive(Debug)]
pub struct MutableDict(Mutex<Vec<(Value, Value)>>);

impl Object for MutableDict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        lock(&self.0)
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(lock(&self.0).iter().map(|(k, _)| k.clone()).collect())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let mut pairs = lock(&self.0);
        let set = |pairs: &mut Vec<(Value, Value)>, k: Value, v: Value| match pairs
            .iter_mut()
            .find(|(x, _)| *x == k)
        {
            Some(slot) => slot.1 = v,
            None => pairs.push((k, v)),
        };
        match method {
            "update" => {
                let (other,): (Value,) = from_args(args)?;
                for key in other.try_iter()? {
                    let value = other.get_item(&key)?;
                    set(&mut pairs, key, value);
                }
                Ok(Value::from(()))
            }
            "setdefault" => {
                let (k, v): (Value, Option<Value>) = from_args(args)?;
                if let Some((_, existing)) = pairs.iter().find(|(x, _)| *x == k) {
                    return Ok(existing.clone());
                }
                let v = v.unwrap_or(Value::from(()));
                pairs.push((k, v.clone()));
                Ok(v)
            }
            "pop" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                match pairs.iter().position(|(x, _)| *x == k) {
                    Some(i) => Ok(pairs.remove(i).1),
                    None => default.ok_or_else(|| {
                        Error::new(ErrorKind::InvalidOperation, format!("key {k} not found"))
                    }),
                }
            }
            "get" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                Ok(pairs
                    .iter()
                    .find(|(x, _)| *x == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| default.unwrap_or(Value::from(()))))
            }
            "items" => Ok(Value::from(
                pairs
                    .iter()
                    .map(|(k, v)| Value::from(vec![k.clone(), v.clone()]))
                    .collect::<Vec<_>>(),
            )),
            "keys" => Ok(Value::from(
                pairs.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            )),
            "values" => Ok(Value::from(
                pairs.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
            )),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_inside_loops_are_seen_outside() {
        let mut env = minijinja::Environment::new();
        register(&mut env);
        let src = make_literals_mutable(
            "{% set xs = [] %}{% set d = {} %}{% for i in range(3) %}{% do xs.append(i * 2) %}\
             {% do d.update({'k' ~ i: i}) %}{% endfor %}{{ xs | join(',') }} {{ xs | length }} {{ d.k2 }}",
        );
        let out = env.render_str(&src, ()).unwrap();
        assert_eq!(out, "0,2,4 3 2");
    }
}
