//! The network transport: reqwest blocking with rustls. Redirects are not followed: Tableau's
//! sign-in answers 301 and must be POSTed again by hand (a followed redirect becomes a GET).

use std::time::Duration;

use super::{is_loopback_url, Request, Response, Transport, TransportError};

pub(crate) struct Live {
    client: reqwest::blocking::Client,
}

impl Live {
    pub(crate) fn new() -> Result<Live, TransportError> {
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(300))
            .connect_timeout(Duration::from_secs(30))
            .user_agent(concat!("autoexpose/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TransportError::Refused { method: "-", url: "-".into(), message: e.to_string() })?;
        Ok(Live { client })
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
        let body = resp
            .bytes()
            .map_err(|e| TransportError::NoAnswer {
                method: req.method,
                url: req.url.clone(),
                message: format!("reading the body: {}", without_url(&e)),
            })?
            .to_vec();
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
