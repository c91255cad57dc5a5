//! A tiny HTTP server on loopback for ingest tests: routes are a closure,
//! and every request (path, Authorization header) is recorded.

use super::server::{Response, Server};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A canned answer.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            body: body.into(),
            headers: Vec::new(),
        }
    }
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            body: format!("status {status}").into_bytes(),
            headers: Vec::new(),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// Requests seen: (path with query, Authorization header).
pub type RequestLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A running server; stops when dropped.
pub struct TestServer {
    pub base: String,
    pub requests: RequestLog,
    _server: Server,
}

type Route = dyn Fn(&str, usize) -> Reply + Send + Sync;

impl TestServer {
    /// Starts a server; `route(path, nth_request_for_this_path)` answers,
    /// one request at a time (connections are served at once).
    pub fn start(route: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> TestServer {
        let requests: RequestLog = Arc::new(Mutex::new(Vec::new()));
        let route: Arc<Route> = Arc::new(route);
        let counts: Mutex<BTreeMap<String, usize>> = Mutex::default();
        let r = requests.clone();
        let server = Server::start(move |request| {
            let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
            let path = request.path.clone();
            let auth = request.header("authorization").map(str::to_string);
            r.lock().unwrap().push((path.clone(), auth));
            let n = counts.entry(path.clone()).or_default();
            *n += 1;
            let reply = route(&path, *n);
            let mut response = Response::new(reply.status, reply.body);
            for (k, v) in &reply.headers {
                response = response.header(k, v);
            }
            Some(response)
        });
        TestServer {
            base: server.url.clone(),
            requests,
            _server: server,
        }
    }

    /// How many requests asked for a path starting with `prefix`.
    pub fn hits(&self, prefix: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .count()
    }
}
