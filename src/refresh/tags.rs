//! Refresh's tags, stored as text in refresh_events and refresh_state: the kind of a target,
//! the decision, its reason and a job's status. Each is an enum whose `as_str` is exactly the
//! text stored before the enums existed (no migration). Reading a value back that no variant
//! names is an error naming the tag and the value: a row written by a newer autoexpose, by a
//! second integration or by hand is refused, not coerced (an unknown kind used to become
//! `datasource` silently).
//!
//! Kept apart from the other stages' tags until the lead unifies them (issue #12).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A stored tag no variant names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {tag} {value:?} (known: {known})")]
pub(crate) struct UnknownTag {
    pub(crate) tag: &'static str,
    pub(crate) value: String,
    pub(crate) known: String,
}

macro_rules! tag {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $var:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(crate) enum $name {
            $($(#[$vmeta])* $var,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            #[allow(dead_code)]
            pub(crate) const ALL: &'static [$name] = &[$($name::$var,)+];

            /// The text stored in the database and shown in messages.
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $($name::$var => $text,)+
                }
            }

            pub(crate) fn parse(text: &str) -> Result<Self, UnknownTag> {
                match text {
                    $($text => Ok($name::$var),)+
                    _ => Err(UnknownTag { tag: $what, value: text.to_string(), known: [$($text,)+].join(", ") }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_str().as_bytes())))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::parse(text).map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

tag! {
    /// What a refresh request names: a published data source, or a workbook (for its embedded
    /// extracts; embedded data sources have no luid of their own).
    Kind, "refresh target kind", {
        Datasource = "datasource",
        Workbook = "workbook",
    }
}

tag! {
    /// refresh_events.decision: what became of an exposure (or one of its targets).
    Decision, "refresh decision", {
        Triggered = "triggered",
        Skipped = "skipped",
        AlreadyQueued = "already_queued",
        NotApplicable = "not_applicable",
        Failed = "failed",
        /// Committed before a request leaves; replaced by its answer (or settled by the next
        /// run from Tableau's jobs list).
        Sending = "sending",
    }
}

tag! {
    /// refresh_events.reason: why a decision was made.
    Reason, "refresh reason", {
        UpstreamFailed = "upstream_failed",
        NotRebuilt = "not_rebuilt",
        NoExtracts = "no_extracts",
        RefreshedInThisRun = "refreshed_in_this_run",
        TooSoon = "too_soon",
        NotRefreshable = "not_refreshable",
        NotFound = "not_found",
        Forbidden = "forbidden",
        HttpError = "http_error",
        AnswerUnreadable = "answer_unreadable",
        Interrupted = "interrupted",
    }
}

tag! {
    /// refresh_events.job_status: how a triggered job ended, with `--wait`.
    JobStatus, "refresh job status", {
        Success = "success",
        Failed = "failed",
        Cancelled = "cancelled",
        Timeout = "timeout",
        PollFailed = "poll_failed",
    }
}

impl Decision {
    /// A decision that starts the cadence of its target (refresh_state).
    pub(crate) fn is_trigger(self) -> bool {
        matches!(self, Decision::Triggered | Decision::AlreadyQueued)
    }
}

impl JobStatus {
    pub(crate) fn is_failure(self) -> bool {
        !matches!(self, JobStatus::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn every_tag_round_trips_through_sqlite_as_its_old_text() {
        let conn = Connection::open_in_memory().unwrap();
        let back = |v: &dyn ToSql| conn.query_row("SELECT ?1", [v], |r| r.get::<_, String>(0)).unwrap();
        for k in Kind::ALL {
            assert_eq!(back(k), k.as_str());
            assert_eq!(conn.query_row("SELECT ?1", [k.as_str()], |r| r.get::<_, Kind>(0)).unwrap(), *k);
        }
        let texts: Vec<&str> = Decision::ALL.iter().map(|d| d.as_str()).collect();
        assert_eq!(texts, ["triggered", "skipped", "already_queued", "not_applicable", "failed", "sending"]);
        for d in Decision::ALL {
            assert_eq!(back(d), d.as_str());
            assert_eq!(conn.query_row("SELECT ?1", [d.as_str()], |r| r.get::<_, Decision>(0)).unwrap(), *d);
        }
        for r in Reason::ALL {
            assert_eq!(Reason::parse(&back(r)), Ok(*r));
        }
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::parse(&back(s)), Ok(*s));
        }
    }

    #[test]
    fn an_unknown_value_fails_naming_the_tag_and_the_value() {
        let conn = Connection::open_in_memory().unwrap();
        let err = conn.query_row("SELECT 'cube'", [], |r| r.get::<_, Kind>(0)).unwrap_err().to_string();
        assert!(err.contains("unknown refresh target kind \"cube\" (known: datasource, workbook)"), "{err}");
        let err = conn.query_row("SELECT 'Triggered'", [], |r| r.get::<_, Decision>(0)).unwrap_err().to_string();
        assert!(err.contains("unknown refresh decision \"Triggered\""), "{err}");
        assert!(conn.query_row("SELECT 7", [], |r| r.get::<_, Reason>(0)).is_err());
        assert_eq!(JobStatus::parse("done").unwrap_err().value, "done");
    }
}
