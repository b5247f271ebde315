//! The network transport: reqwest blocking with rustls. Redirects are not followed: a sign-in
//! may answer 301 and must then be POSTed again by hand (a followed redirect becomes a GET).
//!
//! Three time bounds per exchange (the site's `limits`): connecting, the whole request (reqwest's
//! blocking timeout, which times the body read too), and read-idle: the longest silence while
//! waiting for the headers or the next bytes of the body. reqwest 0.12's blocking client has no
//! read timeout, and the async builder's `read_timeout` cannot be borrowed through
//! `blocking::ClientBuilder::from`: its timer must be polled inside tokio, and the blocking
//! client polls bodies on the caller's thread (it panics, "no reactor running"). So each
//! exchange runs on a thread of its own that reports each step (headers, every chunk of the
//! body) over a channel, and the caller gives up after `read_idle_timeout_secs` without one.
//! The abandoned thread stays blocked in its read until the whole-request timeout ends it, and
//! its connection with it: at most one idle thread per stalled try, for at most
//! `request_timeout_secs`.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{is_loopback_url, Request, Response, Transport, TransportError};

pub(crate) struct Live {
    client: reqwest::blocking::Client,
    max_response_bytes: u64,
    max_response_mb: u64,
    request_timeout: Duration,
    connect_timeout: Duration,
    read_idle_timeout: Duration,
}

impl Live {
    /// `limits` bound each exchange: the connect, read-idle and whole-request timeouts and the
    /// largest body read.
    pub(crate) fn new(limits: &crate::config::Limits) -> Result<Live, TransportError> {
        let client = reqwest::blocking::Client::builder()
            // Automatic redirects stay off: sign-in follows its own by hand, and only to a host
            // the credential may go to (the integration's client decides which).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(limits.request_timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(limits.connect_timeout_secs.max(1)))
            .user_agent(concat!("autoexpose/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TransportError::Refused {
                method: "-",
                url: "-".into(),
                message: e.to_string(),
            })?;
        Ok(Live {
            client,
            max_response_bytes: limits.max_response_mb.saturating_mul(1024 * 1024),
            max_response_mb: limits.max_response_mb,
            request_timeout: Duration::from_secs(limits.request_timeout_secs.max(1)),
            connect_timeout: Duration::from_secs(limits.connect_timeout_secs.max(1)),
            read_idle_timeout: Duration::from_secs(limits.read_idle_timeout_secs.max(1)),
        })
    }
}

/// What the exchange's thread reports: a step (the headers, a chunk of the body), or the end.
enum Step {
    Progress,
    Done(Result<Response, TransportError>),
}

/// The part of `Live` an exchange's thread needs.
#[derive(Clone)]
struct Exchange {
    client: reqwest::blocking::Client,
    max_response_bytes: u64,
    max_response_mb: u64,
    request_timeout: Duration,
    connect_timeout: Duration,
}

impl Transport for Live {
    fn send(&self, req: &Request) -> Result<Response, TransportError> {
        if req.url.starts_with("http://") && !is_loopback_url(&req.url) {
            return Err(TransportError::Refused {
                method: req.method,
                url: req.url.clone(),
                message: "plain http is refused except for loopback hosts; use https://".into(),
            });
        }
        let exchange = Exchange {
            client: self.client.clone(),
            max_response_bytes: self.max_response_bytes,
            max_response_mb: self.max_response_mb,
            request_timeout: self.request_timeout,
            connect_timeout: self.connect_timeout,
        };
        let (tx, rx) = mpsc::channel();
        let owned = req.clone();
        let spawned = std::thread::Builder::new()
            .name("autoexpose-http".into())
            .spawn(move || {
                let progress = tx.clone();
                let result = exchange.run(&owned, &|| {
                    let _ = progress.send(Step::Progress);
                });
                let _ = tx.send(Step::Done(result));
            });
        if let Err(e) = spawned {
            return Err(TransportError::Refused {
                method: req.method,
                url: req.url.clone(),
                message: format!("cannot start a thread for the request: {e}"),
            });
        }
        loop {
            match rx.recv_timeout(self.read_idle_timeout) {
                Ok(Step::Progress) => {}
                Ok(Step::Done(result)) => return result,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(TransportError::NoAnswer {
                        method: req.method,
                        url: req.url.clone(),
                        message: format!(
                            "nothing arrived for {} s (limits.read_idle_timeout_secs): the server stopped sending",
                            self.read_idle_timeout.as_secs()
                        ),
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(TransportError::NoAnswer {
                        method: req.method,
                        url: req.url.clone(),
                        message: "the request's thread stopped without an answer".into(),
                    });
                }
            }
        }
    }
}

impl Exchange {
    /// Sends `req` and reads the whole answer, calling `progress` when the headers arrive and
    /// after each chunk of the body.
    fn run(&self, req: &Request, progress: &dyn Fn()) -> Result<Response, TransportError> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .expect("static method names are valid");
        let mut builder = self.client.request(method, &req.url);
        for (k, v) in &req.headers {
            builder = builder.header(*k, v);
        }
        if !req.body.is_empty() || req.method == "POST" {
            builder = builder.body(req.body.clone());
        }
        let started = Instant::now();
        let mut resp = builder.send().map_err(|e| {
            // reqwest's error chain names the URL, never headers: no token can leak here.
            let message = format!(
                "{}{}. Is server_url right, and is the server reachable from here (VPN, proxy, firewall)?",
                without_url(&e),
                self.which_timeout(&e, started)
            );
            let (method, url) = (req.method, req.url.clone());
            if e.is_connect() {
                TransportError::Connect { method, url, message }
            } else {
                TransportError::NoAnswer { method, url, message }
            }
        })?;
        progress();
        let status = resp.status().as_u16();
        let headers = ["retry-after", "location", "content-type", "x-ms-request-id"]
            .iter()
            .filter_map(|name| {
                resp.headers()
                    .get(*name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| (name.to_string(), v.to_string()))
            })
            .collect();
        let too_large = || TransportError::TooLarge {
            method: req.method,
            url: req.url.clone(),
            limit_mb: self.max_response_mb,
        };
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_response_bytes)
        {
            return Err(too_large());
        }
        // Read at most one byte past the limit, so a body without (or lying about) its length
        // cannot fill memory.
        let mut body = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        use std::io::Read;
        loop {
            let n = match resp.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let message =
                        format!("reading the body: {e}{}", self.which_timeout(&e, started));
                    return Err(TransportError::NoAnswer {
                        method: req.method,
                        url: req.url.clone(),
                        message,
                    });
                }
            };
            body.extend_from_slice(&chunk[..n]);
            if body.len() as u64 > self.max_response_bytes {
                return Err(too_large());
            }
            progress();
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Which bound a timed-out exchange hit, told by how long it ran: connecting or the whole
    /// request (`""` when `e` is not a timeout). The read-idle bound is the caller's, and names
    /// itself.
    fn which_timeout(&self, e: &(dyn std::error::Error + 'static), started: Instant) -> String {
        if !is_timeout(e) {
            return String::new();
        }
        if started.elapsed() + Duration::from_millis(500) < self.request_timeout {
            format!(
                " (connecting took longer than limits.connect_timeout_secs, {} s)",
                self.connect_timeout.as_secs()
            )
        } else {
            format!(
                " (the whole request took longer than limits.request_timeout_secs, {} s)",
                self.request_timeout.as_secs()
            )
        }
    }
}

/// Whether anything in the error's chain is a timeout.
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
            || err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

fn without_url(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut msg = String::new();
    let mut cur: Option<&dyn Error> = e.source();
    while let Some(s) = cur {
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&s.to_string());
        cur = s.source();
    }
    if msg.is_empty() {
        if e.is_timeout() {
            "timed out".into()
        } else {
            "request failed".into()
        }
    } else {
        msg
    }
}

#[cfg(test)]
mod tests {
    /// The read-idle bound is on by default, at most a minute, and set under `limits` (each
    /// integration's config holds one), the other bounds keeping their defaults.
    #[test]
    fn read_idle_timeout_defaults_to_a_minute() {
        assert_eq!(crate::config::Limits::default().read_idle_timeout_secs, 60);
        let limits: crate::config::Limits =
            serde_yaml::from_str("{read_idle_timeout_secs: 5}\n").unwrap();
        assert_eq!(
            (limits.read_idle_timeout_secs, limits.request_timeout_secs),
            (5, 120)
        );
        let live = super::Live::new(&limits).unwrap();
        assert_eq!(
            (live.read_idle_timeout, live.request_timeout),
            (
                std::time::Duration::from_secs(5),
                std::time::Duration::from_secs(120)
            )
        );
    }
}
