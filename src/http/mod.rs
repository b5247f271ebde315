//! HTTP through one seam: a `Transport` sends a request and returns the whole response.
//!
//! `Live` talks to the network (reqwest blocking, rustls, no automatic redirects), `Recorder`
//! wraps `Live` and writes every exchange to a folder, `Replayer` answers from that folder and
//! never touches the network. Retries, sign-in and paging live in the protocol clients above
//! this seam, so a recording holds each try as it happened.

mod live;
mod recording;
mod secrets;

pub(crate) use live::Live;
pub(crate) use recording::{Recorder, Replayer};
pub(crate) use secrets::{scrub, scrub_secrets, Secrets, MIN_LEN as MIN_SECRET_LEN};

/// Where HTTP goes for this run: the network, the network recorded into a folder, or a folder.
#[derive(Debug, Clone)]
pub(crate) enum HttpMode {
    Live,
    Record(std::path::PathBuf),
    Replay(std::path::PathBuf),
}

#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: &'static str,
    pub(crate) url: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn new(method: &'static str, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// The path and query, without scheme and host: what recordings are keyed by.
    pub(crate) fn path_and_query(&self) -> &str {
        let rest = self
            .url
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or(&self.url);
        rest.find('/').map(|i| &rest[i..]).unwrap_or("/")
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// Only the headers the clients read: retry-after, location, content-type, x-ms-request-id
    /// (Power BI's refresh id, reference section 8).
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    /// No connection was made (refused, DNS, TLS): the server never saw the request. Worth
    /// retrying, whatever the method.
    #[error("{method} {url}: {message}")]
    Connect {
        method: &'static str,
        url: String,
        message: String,
    },
    /// The request may have reached the server, but no whole answer came back (timed out,
    /// reset, body cut off). Worth retrying for reads only: the server may have acted on it.
    #[error("{method} {url}: {message}")]
    NoAnswer {
        method: &'static str,
        url: String,
        message: String,
    },
    /// Refused before sending: plain http to a non-loopback host, a bad URL.
    #[error("{method} {url}: {message}")]
    Refused {
        method: &'static str,
        url: String,
        message: String,
    },
    /// The body was longer than the site's `limits.max_response_mb`: not retried.
    #[error("{method} {url}: the response is larger than limits.max_response_mb ({limit_mb} MiB); raise it in the site's config if this answer is expected")]
    TooLarge {
        method: &'static str,
        url: String,
        limit_mb: u64,
    },
    #[error("{method} {path}: no recording (key {key}) in {dir}; record it again with --record (a recording of a first run replays an incremental one only if that run was recorded too: replay with --full)")]
    NoRecording {
        method: &'static str,
        path: String,
        key: String,
        dir: String,
    },
    #[error("recording {path}: {message}")]
    Recording { path: String, message: String },
}

impl TransportError {
    /// Whether sending again is safe and may help: `idempotent` requests (reads, sign-in) on
    /// any network failure, others only when the request surely never left.
    pub(crate) fn is_retryable(&self, idempotent: bool) -> bool {
        match self {
            TransportError::Connect { .. } => true,
            TransportError::NoAnswer { .. } => idempotent,
            _ => false,
        }
    }
}

pub(crate) trait Transport: Send + Sync {
    fn send(&self, req: &Request) -> Result<Response, TransportError>;

    /// How many requests are worth having in flight at once, when the transport knows better
    /// than the config's `concurrency`.
    fn max_in_flight(&self) -> Option<usize> {
        None
    }

    /// Whether waiting between two requests can change the second's answer: a service works
    /// meanwhile (a scan runs), a recording does not. Polls skip their waits when it cannot.
    fn answers_change_with_time(&self) -> bool {
        true
    }
}

/// True for 127.0.0.0/8, ::1 and localhost: the only hosts plain http may reach.
pub(crate) fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(authority)
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_url("http://127.0.0.1:8080/api"));
        assert!(is_loopback_url("http://localhost:1/"));
        assert!(is_loopback_url("http://[::1]:9/x"));
        assert!(!is_loopback_url("http://10.0.0.1/"));
        assert!(!is_loopback_url("http://bi.example.com/"));
        assert!(!is_loopback_url("http://127.0.0.1.evil.com/"));
    }

    #[test]
    fn path_and_query_drops_the_host() {
        let r = Request::new("GET", "https://h.example.com:8443/api/3.23/x?a=1");
        assert_eq!(r.path_and_query(), "/api/3.23/x?a=1");
    }
}
