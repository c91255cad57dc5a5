//! A tiny HTTP server on loopback for ingest tests: routes are a closure,
//! and every request (path, Authorization header) is recorded.

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
    server: Arc<tiny_http::Server>,
    pub requests: RequestLog,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Route = dyn Fn(&str, usize) -> Reply + Send + Sync;

impl TestServer {
    /// Starts a server; `route(path, nth_request_for_this_path)` answers.
    pub fn start(route: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> TestServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let route: Arc<Route> = Arc::new(route);
        let (s, r) = (server.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for request in s.incoming_requests() {
                let path = request.url().to_string();
                let auth = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.to_string());
                r.lock().unwrap().push((path.clone(), auth));
                let n = counts.entry(path.clone()).or_default();
                *n += 1;
                let reply = route(&path, *n);
                let mut response =
                    tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
                for (k, v) in reply.headers {
                    response.add_header(
                        tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap(),
                    );
                }
                let _ = request.respond(response);
            }
        });
        TestServer {
            base,
            server,
            requests,
            thread: Some(thread),
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

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
