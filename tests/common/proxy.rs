//! A holding HTTP proxy on loopback, put in front of a real server (the
//! SeaweedFS Iceberg REST catalog, its S3 endpoint, the fake GitHub API) to
//! make races and kill points exact instead of likely: the code under test
//! is configured with the proxy's URL and runs its production path; the
//! proxy forwards every request unchanged (headers included, so S3
//! signatures still match) and records it, except the requests a [`Rule`]
//! selects, which it holds:
//!
//! - [`Hold::Barrier`]`(n)`: the first `n` matching requests wait until all
//!   `n` are waiting, then all are forwarded (two writers' commits are then
//!   in flight together, whatever the scheduler did before);
//! - [`Hold::Before`]`(k)`: the `k`-th matching request waits before it is
//!   forwarded, until [`Proxy::release`] (forward it or drop it: a process
//!   killed meanwhile never reached the server);
//! - [`Hold::After`]`(k)`: the `k`-th matching request is forwarded, and its
//!   response waits until [`Proxy::release`] (the server did it; the client
//!   may never learn).
//! - [`Hold::Late`]`(k)`: the `k`-th matching request is answered 502 at once
//!   (a gateway gave up) and reaches the server only when the next matching
//!   request arrives, just before that one (the server did it after all,
//!   after the client had moved on).
//!
//! Waiting is on a condition variable, never on a clock; the only timeout is
//! a deadlock guard that fails the test.

use super::server::{Answer, Request, Response, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Which requests a rule holds, and how.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Hold {
    /// The first `n` matching requests are forwarded together once all wait.
    Barrier(usize),
    /// The `k`-th (1-based) matching request waits before being forwarded.
    Before(usize),
    /// The `k`-th matching request's response waits before being relayed.
    After(usize),
    /// The `k`-th matching request is answered 502 and forwarded late:
    /// just before the next matching request.
    Late(usize),
}

/// What to do with a held request on release.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Release {
    /// Forward it (or relay its response).
    Forward,
    /// Drop it: the connection closes without an answer.
    Drop,
}

/// Selects requests: `(method, path with query, body)`.
pub type Matcher = Box<dyn Fn(&str, &str, &[u8]) -> bool + Send + Sync>;

/// A request the proxy saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Whether the rule matched it (its 1-based number among matches).
    pub matched: Option<usize>,
    /// Whether it was held (barrier, before or after).
    pub held: bool,
    /// The upstream's status; `None` when dropped or not answered.
    pub status: Option<u16>,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    matcher: Option<Arc<Matcher>>,
    hold: Option<Hold>,
    matched: usize,
    /// Requests waiting now (before or after forwarding).
    held: usize,
    /// The most requests held at the same time.
    max_held: usize,
    /// Set when a barrier filled or [`Proxy::release`] was called.
    released: Option<Release>,
    /// A [`Hold::Late`] request waiting for the next match: its index in
    /// `seen`, method, path, headers, body.
    late: Option<Parked>,
}

type Parked = (usize, String, String, Vec<(String, String)>, Vec<u8>);

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    /// The URL to give the code under test instead of the upstream's.
    pub url: String,
    shared: Arc<Shared>,
    server: Option<Server>,
}

/// The deadlock guard: a hold nobody releases fails the test.
const GUARD: Duration = Duration::from_secs(600);

impl Proxy {
    /// Starts a proxy forwarding to `upstream` (`http://host:port[/base]`).
    pub fn start(upstream: &str) -> Proxy {
        // A base path (the fake GitHub's `/api/v3`) stays in the proxy's URL;
        // requests are forwarded with their path unchanged.
        let rest = upstream.trim_start_matches("http://").trim_end_matches('/');
        let (host, base) = rest.split_once('/').unwrap_or((rest, ""));
        let upstream = host.to_string();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let sh = shared.clone();
        // Each request is handled on a thread of its own, so a held one
        // holds up nothing else.
        let server = Server::start(move |request| handle(request, &sh, &upstream));
        let mut url = server.url.clone();
        if !base.is_empty() {
            url = format!("{url}/{base}");
        }
        Proxy {
            url,
            shared,
            server: Some(server),
        }
    }

    /// Holds the requests `matcher` selects as `hold` says; resets the
    /// counts of an earlier rule.
    pub fn hold(
        &self,
        hold: Hold,
        matcher: impl Fn(&str, &str, &[u8]) -> bool + Send + Sync + 'static,
    ) {
        let mut st = self.shared.lock();
        st.matcher = Some(Arc::new(Box::new(matcher)));
        st.hold = Some(hold);
        st.matched = 0;
        st.max_held = 0;
        st.released = None;
    }

    /// Stops holding: later requests pass; held ones are released as `how`.
    pub fn clear(&self, how: Release) {
        let mut st = self.shared.lock();
        st.matcher = None;
        st.hold = None;
        st.released = Some(how);
        self.shared.changed.notify_all();
    }

    /// Releases the held requests (forwarded or dropped).
    pub fn release(&self, how: Release) {
        self.shared.lock().released = Some(how);
        self.shared.changed.notify_all();
    }

    /// Waits until `n` requests are held at once, or `give_up()` says to
    /// stop (e.g. the client exited first); true when they are held.
    pub fn wait_held(&self, n: usize, mut give_up: impl FnMut() -> bool) -> bool {
        let started = std::time::Instant::now();
        let mut st = self.shared.lock();
        loop {
            if st.held >= n {
                return true;
            }
            if give_up() {
                return false;
            }
            assert!(
                started.elapsed() < GUARD,
                "deadlock guard: {n} requests never held"
            );
            // Woken by every change; the period only lets `give_up` look
            // at things the proxy does not see (a child process exiting).
            st = self
                .shared
                .changed
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits until no request is held (released ones have finished).
    pub fn wait_idle(&self) {
        let mut st = self.shared.lock();
        while st.held > 0 {
            st = self
                .shared
                .changed
                .wait_timeout(st, GUARD)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().seen.clone()
    }

    /// Requests the rule matched, in arrival order.
    pub fn matched(&self) -> Vec<Seen> {
        let mut m: Vec<Seen> = self
            .seen()
            .into_iter()
            .filter(|s| s.matched.is_some())
            .collect();
        m.sort_by_key(|s| s.matched);
        m
    }

    /// The most requests held at the same time under the current rule.
    pub fn max_held(&self) -> usize {
        self.shared.lock().max_held
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.clear(Release::Drop);
        self.server.take();
    }
}

/// Whether a request is a table commit to the Iceberg REST catalog
/// (`POST …/namespaces/{ns}/tables/{table}` with requirements and updates),
/// optionally of one table.
pub fn is_commit(method: &str, path: &str, body: &[u8], table: Option<&str>) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let Some((head, name)) = path.rsplit_once("/tables/") else {
        return false;
    };
    method == "POST"
        && head.contains("/namespaces/")
        && !name.contains('/')
        && table.is_none_or(|t| t == name)
        && String::from_utf8_lossy(body).contains("\"requirements\"")
}

/// Whether a request uploads a Parquet data file to S3.
pub fn is_data_put(method: &str, path: &str) -> bool {
    method == "PUT"
        && path
            .split('?')
            .next()
            .unwrap_or_default()
            .ends_with(".parquet")
}

fn handle(request: Request, shared: &Shared, upstream: &str) -> Answer {
    let Request {
        method,
        path,
        headers,
        body,
    } = request;

    // Is it matched, and how is it held?
    let (index, hold) = {
        let mut st = shared.lock();
        let index = st.seen.len();
        let mut matched = None;
        let mut hold = None;
        if let (Some(m), Some(h)) = (st.matcher.clone(), st.hold)
            && m(&method, &path, &body)
        {
            st.matched += 1;
            matched = Some(st.matched);
            hold = match h {
                Hold::Barrier(n) if st.matched <= n => Some(h),
                Hold::Before(k) | Hold::After(k) | Hold::Late(k) if st.matched == k => Some(h),
                _ => None,
            };
        }
        st.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            matched,
            held: hold.is_some(),
            status: None,
        });
        (index, hold)
    };

    // A late request is answered now and parked; the next match sends it.
    if matches!(hold, Some(Hold::Late(_))) {
        shared.lock().late = Some((index, method, path, headers, body));
        return Some(Response::new(502, Vec::new()));
    }
    if shared.lock().seen[index].matched.is_some() {
        let parked = shared.lock().late.take();
        if let Some((i, m, p, h, b)) = parked
            && let Some((status, _, _)) = forward(upstream, &m, &p, &h, &b)
        {
            shared.lock().seen[i].status = Some(status);
        }
    }

    // Held before forwarding.
    if matches!(hold, Some(Hold::Barrier(_) | Hold::Before(_))) {
        let how = wait_release(shared, hold);
        if how == Release::Drop {
            done_holding(shared);
            return None;
        }
    }
    let answer = forward(upstream, &method, &path, &headers, &body);
    if let Some((status, _, _)) = &answer {
        shared.lock().seen[index].status = Some(*status);
    }
    // Held after forwarding.
    if matches!(hold, Some(Hold::After(_))) {
        let how = wait_release(shared, hold);
        done_holding(shared);
        if how == Release::Drop {
            shared.lock().seen[index].status = None;
            return None;
        }
    } else if hold.is_some() {
        done_holding(shared);
    }
    let (status, resp_headers, resp_body) = answer?;
    let mut response = Response::new(status, resp_body);
    for (k, v) in resp_headers {
        let lower = k.to_ascii_lowercase();
        // The body's own length is sent, except for HEAD, whose answer
        // names the object's length without a body.
        if lower == "content-length" && method != "HEAD" {
            continue;
        }
        if ["connection", "transfer-encoding", "keep-alive"].contains(&lower.as_str()) {
            continue;
        }
        response = response.header(&k, &v);
    }
    Some(response)
}

/// Counts this request as held and waits for its release.
fn wait_release(shared: &Shared, hold: Option<Hold>) -> Release {
    let mut st = shared.lock();
    st.held += 1;
    st.max_held = st.max_held.max(st.held);
    if let Some(Hold::Barrier(n)) = hold
        && st.held >= n
    {
        st.released = Some(Release::Forward);
    }
    shared.changed.notify_all();
    let started = std::time::Instant::now();
    loop {
        if let Some(how) = st.released {
            return how;
        }
        assert!(started.elapsed() < GUARD, "deadlock guard: never released");
        st = shared
            .changed
            .wait_timeout(st, GUARD)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

fn done_holding(shared: &Shared) {
    let mut st = shared.lock();
    st.held -= 1;
    shared.changed.notify_all();
}

/// An upstream answer: status, headers, body.
type Upstream = (u16, Vec<(String, String)>, Vec<u8>);

/// Sends one request upstream on a fresh connection (`Connection: close`)
/// with the client's headers (Host included); (status, headers, body).
fn forward(
    upstream: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Option<Upstream> {
    let mut stream = TcpStream::connect(upstream).ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        let lower = k.to_ascii_lowercase();
        if [
            "connection",
            "content-length",
            "transfer-encoding",
            "expect",
            "keep-alive",
        ]
        .contains(&lower.as_str())
        {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Connection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut rest = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    if chunked {
        rest = dechunk(&rest)?;
    }
    if method == "HEAD" {
        rest.clear();
    }
    Some((status, headers, rest))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
