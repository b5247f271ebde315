//! Record and replay: one JSON file per exchange in a folder, named after a normalised request.
//!
//! The key is the method, the path and query, and the body, each with this run's secrets
//! scrubbed, hashed; plus a counter for how often the same key was seen, so a retried request
//! (429, then 200) replays in order. Headers are not part of the key, so the session token in
//! `X-Tableau-Auth` changes nothing, and replay needs no credentials at all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::secrets::Secrets;
use super::{Request, Response, Transport, TransportError};
use crate::config::hex_sha256;

#[derive(Serialize, Deserialize)]
struct Exchange {
    request: RecordedRequest,
    response: RecordedResponse,
}

#[derive(Serialize, Deserialize)]
struct RecordedRequest {
    method: String,
    path: String,
    body: String,
}

#[derive(Serialize, Deserialize)]
struct RecordedResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

struct Keyer {
    secrets: Secrets,
    seen: Mutex<HashMap<String, usize>>,
}

impl Keyer {
    fn scrubbed(&self, req: &Request) -> (String, String) {
        let path = self.secrets.scrub(req.path_and_query());
        let body = self.secrets.scrub(&String::from_utf8_lossy(&req.body));
        (path, body)
    }

    /// `<slug of path>-<hash>-<n>`; `n` counts earlier requests with the same key.
    fn key(&self, req: &Request) -> (String, String, String) {
        let (path, body) = self.scrubbed(req);
        let hash = hex_sha256(format!("{}\n{}\n{}", req.method, path, body).as_bytes());
        let slug: String = path
            .split('?')
            .next()
            .unwrap_or("")
            .trim_matches('/')
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' })
            .take(80)
            .collect();
        let base = format!("{}_{}-{}", req.method.to_ascii_lowercase(), slug, &hash[..16]);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let n = seen.entry(base.clone()).or_insert(0);
        *n += 1;
        (format!("{base}-{n}"), path, body)
    }
}

/// Sends through `inner` and writes each exchange, scrubbed, into `dir`.
pub(crate) struct Recorder {
    inner: Box<dyn Transport>,
    dir: PathBuf,
    keyer: Keyer,
}

impl Recorder {
    pub(crate) fn new(inner: Box<dyn Transport>, dir: &Path, secrets: Secrets) -> Result<Recorder, TransportError> {
        std::fs::create_dir_all(dir).map_err(|e| TransportError::Recording {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Recorder { inner, dir: dir.to_path_buf(), keyer: Keyer { secrets, seen: Mutex::default() } })
    }
}

impl Transport for Recorder {
    fn send(&self, req: &Request) -> Result<Response, TransportError> {
        let (key, path, body) = self.keyer.key(req);
        let resp = self.inner.send(req)?;
        let exchange = Exchange {
            request: RecordedRequest { method: req.method.to_string(), path, body },
            response: RecordedResponse {
                status: resp.status,
                headers: resp.headers.clone(),
                body: self.keyer.secrets.scrub(&resp.text()),
            },
        };
        let file = self.dir.join(format!("{key}.json"));
        let json = serde_json::to_string_pretty(&exchange).expect("exchange serializes");
        crate::atomic::write(&file, json.as_bytes())
            .map_err(|e| TransportError::Recording { path: file.display().to_string(), message: format!("{e:#}") })?;
        Ok(resp)
    }
}

/// Answers from a folder written by `Recorder`; a request it has no file for is an error.
pub(crate) struct Replayer {
    dir: PathBuf,
    keyer: Keyer,
}

impl Replayer {
    pub(crate) fn new(dir: &Path, secrets: Secrets) -> Replayer {
        Replayer { dir: dir.to_path_buf(), keyer: Keyer { secrets, seen: Mutex::default() } }
    }
}

impl Transport for Replayer {
    fn send(&self, req: &Request) -> Result<Response, TransportError> {
        let (key, path, _) = self.keyer.key(req);
        let file = self.dir.join(format!("{key}.json"));
        let bytes = std::fs::read(&file).map_err(|_| TransportError::NoRecording {
            method: req.method,
            path,
            key: key.clone(),
            dir: self.dir.display().to_string(),
        })?;
        let exchange: Exchange = serde_json::from_slice(&bytes).map_err(|e| TransportError::Recording {
            path: file.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Response {
            status: exchange.response.status,
            headers: exchange.response.headers,
            body: exchange.response.body.into_bytes(),
        })
    }

    /// One: a replayed request costs CPU, not waiting, so a second one in flight would only
    /// take a core from other work (the manifest is parsed meanwhile).
    fn max_in_flight(&self) -> Option<usize> {
        Some(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(u16);
    impl Transport for Fixed {
        fn send(&self, _req: &Request) -> Result<Response, TransportError> {
            Ok(Response {
                status: self.0,
                headers: vec![],
                body: br#"{"credentials":{"token":"TOKEN-123456"}}"#.to_vec(),
            })
        }
    }

    #[test]
    fn record_then_replay_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Secrets::default();
        secrets.add("pat-secret-value");
        let rec = Recorder::new(Box::new(Fixed(200)), dir.path(), secrets.clone()).unwrap();
        let req = Request::new("POST", "http://127.0.0.1:1/api/3.23/auth/signin")
            .header("X-Tableau-Auth", "whatever")
            .body(r#"{"secret":"pat-secret-value"}"#);
        rec.send(&req).unwrap();
        rec.send(&req).unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 2);
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(!text.contains("pat-secret-value") && !text.contains("TOKEN-123456"), "{text}");
        }
        // Replay with other credentials: same keys, since secrets are scrubbed before hashing.
        let other = Secrets::default();
        other.add("another-secret");
        let replay = Replayer::new(dir.path(), other);
        let req2 = Request::new("POST", "https://elsewhere.example.com/api/3.23/auth/signin")
            .body(r#"{"secret":"another-secret"}"#);
        assert_eq!(replay.send(&req2).unwrap().status, 200);
        assert_eq!(replay.send(&req2).unwrap().status, 200);
        let err = replay.send(&req2).unwrap_err().to_string();
        assert!(err.contains("no recording"), "{err}");
    }
}
