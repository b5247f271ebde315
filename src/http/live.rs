//! The network transport: reqwest blocking with rustls. Redirects are not followed: Tableau's
//! sign-in answers 301 and must be POSTed again by hand (a followed redirect becomes a GET).

use std::time::Duration;

use super::{is_loopback_url, Request, Response, Transport, TransportError};

pub(crate) struct Live {
    client: reqwest::blocking::Client,
    max_response_bytes: u64,
    max_response_mb: u64,
    request_timeout: Duration,
    read_idle_timeout: Duration,
}

impl Live {
    /// `limits` bound each exchange: the connect, read-idle and whole-request timeouts (reqwest's
    /// blocking client times the body read too) and the largest body read.
    ///
    /// The read-idle bound: reqwest 0.12's blocking `ClientBuilder` has no `read_timeout`, but
    /// it is built on the async one, which has (each read of the connection, waiting for the
    /// headers included, resets it), and `blocking::ClientBuilder: From<async ClientBuilder>`.
    /// So the async builder takes the connection settings and the blocking one only the
    /// whole-request timeout, which it keeps apart from the async builder's.
    pub(crate) fn new(limits: &crate::config::Limits) -> Result<Live, TransportError> {
        let settings = reqwest::Client::builder()
            // Automatic redirects stay off: sign-in follows its own by hand, and only to a host
            // the PAT may go to (tableau::client::sign_in_redirect_allowed).
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(limits.connect_timeout_secs.max(1)))
            .read_timeout(Duration::from_secs(limits.read_idle_timeout_secs.max(1)))
            .user_agent(concat!("autoexpose/", env!("CARGO_PKG_VERSION")));
        let client = reqwest::blocking::ClientBuilder::from(settings)
            .timeout(Duration::from_secs(limits.request_timeout_secs.max(1)))
            .build()
            .map_err(|e| TransportError::Refused { method: "-", url: "-".into(), message: e.to_string() })?;
        Ok(Live {
            client,
            max_response_bytes: limits.max_response_mb.saturating_mul(1024 * 1024),
            max_response_mb: limits.max_response_mb,
            request_timeout: Duration::from_secs(limits.request_timeout_secs.max(1)),
            read_idle_timeout: Duration::from_secs(limits.read_idle_timeout_secs.max(1)),
        })
    }
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
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).expect("static method names are valid");
        let mut builder = self.client.request(method, &req.url);
        for (k, v) in &req.headers {
            builder = builder.header(*k, v);
        }
        if !req.body.is_empty() || req.method == "POST" {
            builder = builder.body(req.body.clone());
        }
        let started = std::time::Instant::now();
        let resp = builder.send().map_err(|e| {
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
        let status = resp.status().as_u16();
        let headers = ["retry-after", "location", "content-type"]
            .iter()
            .filter_map(|name| {
                resp.headers().get(*name).and_then(|v| v.to_str().ok()).map(|v| (name.to_string(), v.to_string()))
            })
            .collect();
        let too_large = || TransportError::TooLarge {
            method: req.method,
            url: req.url.clone(),
            limit_mb: self.max_response_mb,
        };
        if resp.content_length().is_some_and(|n| n > self.max_response_bytes) {
            return Err(too_large());
        }
        // Read at most one byte past the limit, so a body without (or lying about) its length
        // cannot fill memory.
        let mut body = Vec::new();
        use std::io::Read;
        resp.take(self.max_response_bytes.saturating_add(1)).read_to_end(&mut body).map_err(|e| {
            let message = format!("reading the body: {e}{}", self.which_timeout(&e, started));
            TransportError::NoAnswer { method: req.method, url: req.url.clone(), message }
        })?;
        if body.len() as u64 > self.max_response_bytes {
            return Err(too_large());
        }
        Ok(Response { status, headers, body })
    }
}

impl Live {
    /// Which bound a timed-out exchange hit, told by how long it ran: the whole-request timeout
    /// or the read-idle one (`""` when `e` is not a timeout).
    fn which_timeout(&self, e: &(dyn std::error::Error + 'static), started: std::time::Instant) -> String {
        if !is_timeout(e) {
            return String::new();
        }
        if started.elapsed() + Duration::from_millis(500) >= self.request_timeout {
            format!(" (the whole request took longer than limits.request_timeout_secs, {} s)", self.request_timeout.as_secs())
        } else {
            format!(
                " (nothing arrived for limits.read_idle_timeout_secs, {} s: the server stopped sending)",
                self.read_idle_timeout.as_secs()
            )
        }
    }
}

/// Whether anything in the error's chain is a timeout.
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_timeout)
            || err.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
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
