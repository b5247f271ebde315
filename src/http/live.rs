//! The network transport: reqwest blocking with rustls. Redirects are not followed: Tableau's
//! sign-in answers 301 and must be POSTed again by hand (a followed redirect becomes a GET).

use std::time::Duration;

use super::{is_loopback_url, Request, Response, Transport, TransportError};

pub(crate) struct Live {
    client: reqwest::blocking::Client,
    max_response_bytes: u64,
    max_response_mb: u64,
}

impl Live {
    /// `limits` bound each exchange: the connect and whole-request timeouts (reqwest's blocking
    /// client times the body read too) and the largest body read.
    pub(crate) fn new(limits: &crate::config::Limits) -> Result<Live, TransportError> {
        let client = reqwest::blocking::Client::builder()
            // Automatic redirects stay off: sign-in follows its own by hand, and only to a host
            // the PAT may go to (tableau::client::sign_in_redirect_allowed).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(limits.request_timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(limits.connect_timeout_secs.max(1)))
            .user_agent(concat!("autoexpose/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TransportError::Refused { method: "-", url: "-".into(), message: e.to_string() })?;
        Ok(Live {
            client,
            max_response_bytes: limits.max_response_mb.saturating_mul(1024 * 1024),
            max_response_mb: limits.max_response_mb,
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
        let resp = builder.send().map_err(|e| {
            // reqwest's error chain names the URL, never headers: no token can leak here.
            let message = format!(
                "{}. Is server_url right, and is the server reachable from here (VPN, proxy, firewall)?",
                without_url(&e)
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
            TransportError::NoAnswer { method: req.method, url: req.url.clone(), message: format!("reading the body: {e}") }
        })?;
        if body.len() as u64 > self.max_response_bytes {
            return Err(too_large());
        }
        Ok(Response { status, headers, body })
    }
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
