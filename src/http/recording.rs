//! Record and replay: one JSON file per exchange in a folder, named after a normalised request.
//!
//! The key is the method, the path and query, and the body, each with this run's secrets
//! scrubbed, hashed; plus a counter for how often the same key was seen, so a retried request
//! (429, then 200) replays in order. Headers are not part of the key, so the session token in
//! an auth header changes nothing, and replay needs no credentials at all; nor are request
//! headers written. The credential fields the integration registered with the run's `Secrets`
//! are blanked in what is keyed and written alike.
//!
//! A JSON response body is kept as JSON (`response.json`), byte for byte as it came: readable
//! in the file, and replayed without unescaping a string as large as the body. Other bodies
//! are kept as text (`response.body`), as every body was before; both forms replay.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::secrets::Secrets;
use super::{Request, Response, Transport, TransportError};
use crate::config::hex_sha256;

#[derive(Serialize, Deserialize)]
struct Exchange<'a> {
    request: RecordedRequest,
    #[serde(borrow)]
    response: RecordedResponse<'a>,
}

#[derive(Serialize, Deserialize)]
struct RecordedRequest {
    method: String,
    path: String,
    body: String,
}

#[derive(Serialize, Deserialize)]
struct RecordedResponse<'a> {
    status: u16,
    headers: Vec<(String, String)>,
    /// The body, when it is one JSON value without surrounding whitespace, exactly as sent.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    json: Option<&'a RawValue>,
    /// Any other body, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
}

impl<'a> RecordedResponse<'a> {
    /// `text` as JSON when it is exactly one JSON value, else as text.
    fn from_text(
        status: u16,
        headers: Vec<(String, String)>,
        text: &'a str,
    ) -> RecordedResponse<'a> {
        match serde_json::from_str::<&RawValue>(text) {
            Ok(raw) if raw.get().len() == text.len() => RecordedResponse {
                status,
                headers,
                json: Some(raw),
                body: None,
            },
            _ => RecordedResponse {
                status,
                headers,
                json: None,
                body: Some(text.to_string()),
            },
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        match (self.json, self.body) {
            (Some(raw), _) => raw.get().as_bytes().to_vec(),
            (None, body) => body.unwrap_or_default().into_bytes(),
        }
    }
}

struct Keyer {
    secrets: Secrets,
    seen: Mutex<HashMap<String, usize>>,
}

impl Keyer {
    fn scrubbed(&self, req: &Request) -> (String, String) {
        // Secrets only, not credential names (see `secrets`): a replay must find the same key
        // whatever credential the environment names.
        let path = self.secrets.scrub_secrets(req.path_and_query());
        let body = self
            .secrets
            .scrub_secrets(&String::from_utf8_lossy(&req.body));
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
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        let base = format!(
            "{}_{}-{}",
            req.method.to_ascii_lowercase(),
            slug,
            &hash[..16]
        );
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
    pub(crate) fn new(
        inner: Box<dyn Transport>,
        dir: &Path,
        secrets: Secrets,
    ) -> Result<Recorder, TransportError> {
        std::fs::create_dir_all(dir).map_err(|e| TransportError::Recording {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Recorder {
            inner,
            dir: dir.to_path_buf(),
            keyer: Keyer {
                secrets,
                seen: Mutex::default(),
            },
        })
    }
}

impl Transport for Recorder {
    fn send(&self, req: &Request) -> Result<Response, TransportError> {
        let (key, path, body) = self.keyer.key(req);
        let resp = self.inner.send(req)?;
        // Everything written is scrubbed in full, names too: the request as keyed, the
        // response's headers (a `Location` may carry anything) and its body.
        let scrub = |t: &str| self.keyer.secrets.scrub(t);
        let text = scrub(&resp.text());
        let headers = resp
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), scrub(v)))
            .collect();
        let exchange = Exchange {
            request: RecordedRequest {
                method: req.method.to_string(),
                path: scrub(&path),
                body: scrub(&body),
            },
            response: RecordedResponse::from_text(resp.status, headers, &text),
        };
        let file = self.dir.join(format!("{key}.json"));
        let json = serde_json::to_string_pretty(&exchange).expect("exchange serializes");
        crate::atomic::write(&file, json.as_bytes()).map_err(|e| TransportError::Recording {
            path: file.display().to_string(),
            message: format!("{e:#}"),
        })?;
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
        Replayer {
            dir: dir.to_path_buf(),
            keyer: Keyer {
                secrets,
                seen: Mutex::default(),
            },
        }
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
        let exchange: Exchange =
            serde_json::from_slice(&bytes).map_err(|e| TransportError::Recording {
                path: file.display().to_string(),
                message: e.to_string(),
            })?;
        let (status, headers) = (exchange.response.status, exchange.response.headers.clone());
        Ok(Response {
            status,
            headers,
            body: exchange.response.into_bytes(),
        })
    }

    /// One: a replayed request costs CPU, not waiting, so a second one in flight would only
    /// take a core from other work (the manifest is parsed meanwhile).
    fn max_in_flight(&self) -> Option<usize> {
        Some(1)
    }

    /// No: the recorded answers come in the order they were recorded, however long a poll
    /// waits. Waiting would only make the demo (three scan polls) take 14 s instead of 50 ms.
    fn answers_change_with_time(&self) -> bool {
        false
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

    /// The credential fields of these tests, as an integration registers its own.
    const FIELDS: &[&str] = &["keyName", "token"];

    #[test]
    fn record_then_replay_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Secrets::default();
        secrets.add("pat-secret-value");
        secrets.add_credential_fields(FIELDS);
        let rec = Recorder::new(Box::new(Fixed(200)), dir.path(), secrets.clone()).unwrap();
        let req = Request::new("POST", "http://127.0.0.1:1/api/3.23/auth/signin")
            .header("X-Session-Auth", "session-header-value")
            .body(r#"{"keyName":"n","secret":"pat-secret-value"}"#);
        rec.send(&req).unwrap();
        rec.send(&req).unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 2);
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(
                !text.contains("pat-secret-value") && !text.contains("TOKEN-123456"),
                "{text}"
            );
            assert!(
                !text.contains("session-header-value")
                    && text.contains(r#"\"keyName\":\"<redacted>\""#),
                "{text}"
            );
        }
        // Replay with other credentials: same keys, since secrets are scrubbed and credential
        // fields blanked before hashing.
        let other = Secrets::default();
        other.add("another-secret");
        other.add_credential_fields(FIELDS);
        let replay = Replayer::new(dir.path(), other);
        let req2 = Request::new("POST", "https://elsewhere.example.com/api/3.23/auth/signin")
            .body(r#"{"keyName":"a-name-of-another-length","secret":"another-secret"}"#);
        assert_eq!(replay.send(&req2).unwrap().status, 200);
        assert_eq!(replay.send(&req2).unwrap().status, 200);
        let err = replay.send(&req2).unwrap_err().to_string();
        assert!(err.contains("no recording"), "{err}");
        // Without the fields registered, the name is part of the key: no recording matches.
        let unfielded = Secrets::default();
        unfielded.add("another-secret");
        let err = Replayer::new(dir.path(), unfielded)
            .send(&req2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no recording"), "{err}");
    }

    struct Body(&'static [u8]);
    impl Transport for Body {
        fn send(&self, _req: &Request) -> Result<Response, TransportError> {
            Ok(Response {
                status: 200,
                headers: vec![("content-type".into(), "x".into())],
                body: self.0.to_vec(),
            })
        }
    }

    /// JSON bodies are stored as JSON, anything else as text; either replays byte for byte,
    /// and so do recordings from before JSON bodies were stored as JSON.
    #[test]
    fn bodies_replay_byte_for_byte_in_either_form() {
        let bodies: [(&[u8], bool); 6] = [
            (
                br#"{"data":{"a":[1,2.50,"x\"y\u2028\ud83d\ude00"],"b":null}}"#,
                true,
            ),
            (br#"[ 1 , {"k" :"v"} ]"#, true),
            (b" {\"a\":1}\n", false),
            (b"<?xml version=\"1.0\"?><tsResponse/>", false),
            (br#"{"a":1}{"b":2}"#, false),
            (b"", false),
        ];
        for (i, (body, as_json)) in bodies.into_iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let req = Request::new("GET", &format!("http://127.0.0.1:1/x/{i}"));
            Recorder::new(Box::new(Body(body)), dir.path(), Secrets::default())
                .unwrap()
                .send(&req)
                .unwrap();
            let file = std::fs::read_dir(dir.path())
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path();
            let stored: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            assert_eq!(
                stored["response"].get("json").is_some(),
                as_json,
                "body {i}: {stored}"
            );
            let replayed = Replayer::new(dir.path(), Secrets::default())
                .send(&req)
                .unwrap();
            assert_eq!(replayed.body, body, "body {i}");
        }
        // The older form: every body a string.
        let dir = tempfile::tempdir().unwrap();
        let req = Request::new("GET", "http://127.0.0.1:1/old");
        Recorder::new(Box::new(Body(b"{}")), dir.path(), Secrets::default())
            .unwrap()
            .send(&req)
            .unwrap();
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut old: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let r = old["response"].as_object_mut().unwrap();
        r.remove("json");
        r.insert("body".into(), r#"{"old":"form"}"#.into());
        std::fs::write(&file, serde_json::to_vec_pretty(&old).unwrap()).unwrap();
        assert_eq!(
            Replayer::new(dir.path(), Secrets::default())
                .send(&req)
                .unwrap()
                .body,
            br#"{"old":"form"}"#
        );
    }
}
