//! The loopback HTTP/1.1 server under every fake of the tests (the NEMWEB
//! folders, the GitHub API, the holding proxy, the rendezvous server): each
//! connection is served on a thread of its own (keep-alive included), and
//! each request, body read, goes to the handler on that thread, so a handler
//! may wait on a condition variable (a held request) without holding up any
//! other connection. Request heads are parsed by `httparse` (already under
//! hyper, same features: no second build of the product's dependencies).
//!
//! It replaces `tiny_http`, whose connection pool can leave a newly accepted
//! connection queued behind keep-alive connections that stay open (two
//! connections accepted while one pool thread was idle both go to that
//! thread): a request then waited, unread, until the client's idle
//! connections timed out, 90 s at a time, and `kill_iceberg` once took
//! 1077 s instead of ~90 s.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A request as the handler sees it: the body is read in full.
#[derive(Clone, Debug)]
pub struct Request {
    /// Upper-case method (`GET`, `PUT`, …).
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Headers in the order sent.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An answer. A `content-length` header is sent only for HEAD (the
/// object's length without its body); otherwise the body's length is sent.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// `status` with `body`.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What a handler returns: an answer, or `None` to close the connection
/// without one (a request lost on the way).
pub type Answer = Option<Response>;

type Handler = dyn Fn(Request) -> Answer + Send + Sync;

/// A running server; stops accepting when dropped.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Serves `handler` on a free loopback port.
    pub fn start(handler: impl Fn(Request) -> Answer + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                std::thread::spawn(move || serve(stream, &*handler));
            }
        });
        Server {
            url: format!("http://{addr}"),
            addr,
            stop,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serves one connection until the client closes it, asks to, or a handler
/// answers `None`.
fn serve(stream: TcpStream, handler: &Handler) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut input = BufReader::new(stream);
    while let Some((request, close)) = read_request(&mut input, &mut out) {
        let head_only = request.method == "HEAD";
        let Some(response) = handler(request) else {
            return;
        };
        if write_response(&mut out, response, head_only, close).is_err() || close {
            return;
        }
    }
}

/// Reads one request; `None` at the end of the connection or on a request
/// that cannot be read. The flag says the client asked to close.
fn read_request(input: &mut BufReader<TcpStream>, out: &mut TcpStream) -> Option<(Request, bool)> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let before = head.len();
        input.read_until(b'\n', &mut head).ok()?;
        if head.len() == before || head.len() > 1 << 20 {
            return None;
        }
    }
    let mut slots = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut slots);
    if !parsed.parse(&head).ok()?.is_complete() {
        return None;
    }
    let method = parsed.method?.to_ascii_uppercase();
    let path = parsed.path?.to_string();
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    let close = request
        .header("connection")
        .is_some_and(|v| v.to_ascii_lowercase().contains("close"));
    if request
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok()?;
    }
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked(input)?;
    } else if let Some(length) = request.header("content-length") {
        let length: usize = length.trim().parse().ok()?;
        let mut body = vec![0; length];
        input.read_exact(&mut body).ok()?;
        request.body = body;
    }
    Some((request, close))
}

/// A chunked body, trailers skipped.
fn read_chunked(input: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        input.read_line(&mut line).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let mut trailer = String::new();
                input.read_line(&mut trailer).ok()?;
                if trailer.trim().is_empty() {
                    return Some(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        input.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0; 2];
        input.read_exact(&mut crlf).ok()?;
    }
}

fn write_response(
    out: &mut TcpStream,
    response: Response,
    head_only: bool,
    close: bool,
) -> std::io::Result<()> {
    let mut text = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    let mut length = response.body.len().to_string();
    for (k, v) in &response.headers {
        let lower = k.to_ascii_lowercase();
        if lower == "content-length" {
            if head_only {
                length = v.trim().to_string();
            }
            continue;
        }
        if ["connection", "transfer-encoding", "keep-alive"].contains(&lower.as_str()) {
            continue;
        }
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str(&format!("Content-Length: {length}\r\n"));
    if close {
        text.push_str("Connection: close\r\n");
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&response.body);
    }
    out.write_all(&bytes)?;
    out.flush()
}

/// A reason phrase (clients read the code; the phrase is for people).
fn reason(status: u16) -> &'static str {
    match status {
        100..=199 => "Continue",
        200..=299 => "OK",
        300..=399 => "Redirect",
        404 => "Not Found",
        400..=499 => "Client Error",
        _ => "Server Error",
    }
}
