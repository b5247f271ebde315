//! The few lines of HTTP/1.1 the local Tableau needs: one thread per connection, one request
//! per connection (`Connection: close`), bodies by `Content-Length` or chunked.
//!
//! It replaces tiny_http 0.12, whose connection thread pool could leave the last connection
//! of a burst unserved until another connection closed (a pool thread that was notified but
//! had not woken yet still counted as idle): a 60–90 s stall of the test server, not of the
//! client, about one run in ten of the schema-validation e2e test, and the reason the bench
//! needed a "nudger". A thread per connection cannot queue a connection behind a busy one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest request head (request line and headers) read before answering 431.
const MAX_HEAD: usize = 64 * 1024;
/// Longest request body read before answering 413 (the largest our client sends is a
/// GraphQL document of a few KB).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// How long a connection may send nothing before it is dropped: a client that stalls must
/// not keep a thread (and `stop`) waiting for ever.
const IDLE: Duration = Duration::from_secs(30);

/// A parsed request; answer it with `respond` (dropping it answers nothing and closes).
pub struct Request {
    pub method: String,
    /// The request target as sent: path and query.
    pub url: String,
    /// Names lower-cased, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    stream: TcpStream,
}

impl Request {
    /// Sends the whole answer with `Content-Length` and `Connection: close`, then closes.
    pub fn respond(mut self, status: u16, headers: &[(String, String)], body: &[u8]) {
        let _ = write_response(&mut self.stream, status, headers, body);
        let _ = self.stream.flush();
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

fn write_response(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// A bound listener; `serve` runs it until `stop` is set.
pub struct Listener {
    listener: TcpListener,
    port: u16,
}

impl Listener {
    pub fn bind(port: u16) -> std::io::Result<Listener> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        Ok(Listener { listener, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Accepts connections until `stop` is set (see `wake`), each on its own thread, and
    /// hands every well-formed request to `handle`; a malformed one gets 400 (or 413/431)
    /// without reaching it. Returns once every connection's thread has ended.
    pub fn serve(self, stop: Arc<AtomicBool>, handle: Arc<dyn Fn(Request) + Send + Sync>) {
        let mut threads: Vec<JoinHandle<()>> = Vec::new();
        for conn in self.listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = conn else { continue };
            threads.retain(|t| !t.is_finished());
            let handle = Arc::clone(&handle);
            threads.push(std::thread::spawn(move || connection(stream, &*handle)));
        }
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Unblocks a `serve` whose `stop` was just set: its `accept` returns this connection, sees
/// the flag and ends.
pub fn wake(port: u16) {
    let _ = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    );
}

fn connection(stream: TcpStream, handle: &(dyn Fn(Request) + Send + Sync)) {
    let _ = stream.set_read_timeout(Some(IDLE));
    let _ = stream.set_nodelay(true);
    let Ok(reader_side) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reader_side);
    match read_request(&mut reader) {
        Ok(Some((method, url, headers, body))) => handle(Request {
            method,
            url,
            headers,
            body,
            stream,
        }),
        Ok(None) => {} // closed before sending anything (a wake-up, a probe)
        Err((status, why)) => {
            let mut stream = stream;
            let _ = write_response(
                &mut stream,
                status,
                &[("Content-Type".into(), "text/plain".into())],
                why.as_bytes(),
            );
            let _ = stream.shutdown(Shutdown::Write);
        }
    }
}

type Parsed = (String, String, Vec<(String, String)>, Vec<u8>);

fn read_request(r: &mut BufReader<TcpStream>) -> Result<Option<Parsed>, (u16, String)> {
    let bad = |why: &str| (400u16, format!("bad request: {why}\n"));
    let mut head_len = 0usize;
    let mut line = String::new();
    let n = read_line(r, &mut line, &mut head_len)?;
    if n == 0 {
        return Ok(None);
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let (Some(method), Some(url), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad("not HTTP/1.x"));
    }
    let (method, url) = (method.to_string(), url.to_string());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if read_line(r, &mut line, &mut head_len)? == 0 {
            return Err(bad("connection closed inside the headers"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            return Err(bad("header line without a colon"));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(r)?
    } else {
        let len = match get("content-length") {
            Some(v) => v.parse::<usize>().map_err(|_| bad("Content-Length"))?,
            None => 0,
        };
        if len > MAX_BODY {
            return Err((413, "body too large\n".into()));
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body)
            .map_err(|_| bad("body shorter than its Content-Length"))?;
        body
    };
    Ok(Some((method, url, headers, body)))
}

fn read_line(
    r: &mut BufReader<TcpStream>,
    line: &mut String,
    head_len: &mut usize,
) -> Result<usize, (u16, String)> {
    let n = r
        .by_ref()
        .take((MAX_HEAD - *head_len) as u64 + 1)
        .read_line(line)
        .map_err(|_| (400u16, "bad request: unreadable head\n".to_string()))?;
    *head_len += n;
    if *head_len > MAX_HEAD {
        return Err((431, "request head too large\n".into()));
    }
    Ok(n)
}

fn read_chunked(r: &mut BufReader<TcpStream>) -> Result<Vec<u8>, (u16, String)> {
    let bad = |why: &str| (400u16, format!("bad request: {why}\n"));
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        r.read_line(&mut size_line).map_err(|_| bad("chunk size"))?;
        let size_text = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("chunk size"))?;
        if body.len() + size > MAX_BODY {
            return Err((413, "body too large\n".into()));
        }
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let mut t = String::new();
                let n = r.read_line(&mut t).map_err(|_| bad("trailer"))?;
                if n == 0 || t.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .map_err(|_| bad("chunk shorter than its size"))?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).map_err(|_| bad("chunk end"))?;
        if &crlf != b"\r\n" {
            return Err(bad("chunk end"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn start(handle: Arc<dyn Fn(Request) + Send + Sync>) -> (u16, Arc<AtomicBool>, JoinHandle<()>) {
        let l = Listener::bind(0).unwrap();
        let port = l.port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let t = std::thread::spawn(move || l.serve(s, handle));
        (port, stop, t)
    }

    fn raw(port: u16, request: &[u8]) -> String {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(request).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn requests_are_parsed_and_answered_and_malformed_ones_refused() {
        let seen: Arc<Mutex<Vec<(String, String, Vec<u8>, Option<String>)>>> = Arc::default();
        let s2 = Arc::clone(&seen);
        let (port, stop, t) = start(Arc::new(move |rq: Request| {
            let host = rq
                .headers
                .iter()
                .find(|(k, _)| k == "host")
                .map(|(_, v)| v.clone());
            s2.lock()
                .unwrap()
                .push((rq.method.clone(), rq.url.clone(), rq.body.clone(), host));
            rq.respond(202, &[("X-A".into(), "b".into())], b"done");
        }));
        let a = raw(
            port,
            b"POST /x?y=1 HTTP/1.1\r\nHost: here\r\nContent-Length: 5\r\n\r\nhello",
        );
        assert!(a.starts_with("HTTP/1.1 202 Accepted\r\n"), "{a}");
        assert!(
            a.contains("Content-Length: 4\r\n")
                && a.contains("X-A: b\r\n")
                && a.ends_with("\r\n\r\ndone"),
            "{a}"
        );
        let b = raw(port, b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n");
        assert!(b.starts_with("HTTP/1.1 202"), "{b}");
        let c = raw(port, b"GARBAGE\r\n\r\n");
        assert!(c.starts_with("HTTP/1.1 400"), "{c}");
        let d = raw(
            port,
            b"POST /short HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
        );
        assert!(d.is_empty() || d.starts_with("HTTP/1.1 400"), "{d}");
        stop.store(true, Ordering::SeqCst);
        wake(port);
        t.join().unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "malformed requests never reach the handler");
        assert_eq!(
            seen[0],
            (
                "POST".into(),
                "/x?y=1".into(),
                b"hello".to_vec(),
                Some("here".into())
            )
        );
        assert_eq!(seen[1].2, b"abcde".to_vec());
    }

    #[test]
    fn a_busy_connection_never_holds_up_a_new_one() {
        // The tiny_http stall: with one answer held, every new connection is still served.
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let g2 = Arc::clone(&gate);
        let (port, stop, t) = start(Arc::new(move |rq: Request| {
            if rq.url == "/slow" {
                let _wait = g2.lock().unwrap();
            }
            rq.respond(200, &[], b"ok");
        }));
        let slow = std::thread::spawn(move || raw(port, b"GET /slow HTTP/1.1\r\n\r\n"));
        let quick: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(move || raw(port, b"GET /q HTTP/1.1\r\n\r\n")))
            .collect();
        for q in quick {
            assert!(q.join().unwrap().ends_with("ok"));
        }
        drop(held);
        assert!(slow.join().unwrap().ends_with("ok"));
        stop.store(true, Ordering::SeqCst);
        wake(port);
        t.join().unwrap();
    }
}
