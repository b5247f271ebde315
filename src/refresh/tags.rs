//! Refresh's tags, stored as text in refresh_events and refresh_state: the kind of a target,
//! the decision, its reason and a job's status. Each is an enum whose `as_str` is exactly the
//! text stored before the enums existed (no migration). Reading a value back that no variant
//! names is an error naming the tag and the value: a row written by a newer autoexpose, by a
//! second integration or by hand is refused, not coerced (an unknown kind used to become
//! `datasource` silently).
//!
//! Declared with the other stages' `text_tag!` (crate::tags), in refresh's folder because only
//! refresh uses them.

use crate::tags::text_tag;

text_tag! {
    /// What a refresh request names: a published data source, or a workbook (for the extracts
    /// embedded in it, which have no id of their own to be refreshed by) on Tableau; a dataset
    /// (semantic model) on Power BI.
    #[derive(PartialOrd, Ord)]
    pub(crate) enum Kind in "target_kind" {
        Datasource = "datasource",
        Workbook = "workbook",
        Dataset = "dataset",
    }
}

text_tag! {
    /// refresh_events.decision: what became of an exposure (or one of its targets).
    #[derive(PartialOrd, Ord)]
    pub(crate) enum Decision in "decision" {
        Triggered = "triggered",
        Skipped = "skipped",
        AlreadyQueued = "already_queued",
        NotApplicable = "not_applicable",
        Failed = "failed",
        /// Committed before a request leaves; replaced by its answer (or settled by the next
        /// run from the service's jobs list).
        Sending = "sending",
    }
}

text_tag! {
    /// refresh_events.reason: why a decision was made.
    #[derive(PartialOrd, Ord)]
    pub(crate) enum Reason in "reason" {
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
        /// The service refused the refresh for its daily quota (Power BI shared capacity: eight
        /// a day, scheduled ones included); not retried.
        DailyLimit = "daily_limit",
    }
}

text_tag! {
    /// refresh_events.job_status: how a triggered job ended, with `--wait`.
    #[derive(PartialOrd, Ord)]
    pub(crate) enum JobStatus in "job_status" {
        Success = "success",
        Failed = "failed",
        Cancelled = "cancelled",
        Timeout = "timeout",
        PollFailed = "poll_failed",
    }
}

text_tag! {
    /// refresh_events.matched_by: how the polled job was known to be ours. `exact` by the id
    /// the service gave for our request; `heuristic` by a guess from the service's history
    /// (Power BI without a refresh id: the newest API refresh started after our POST).
    #[derive(PartialOrd, Ord)]
    pub(crate) enum MatchedBy in "matched_by" {
        Exact = "exact",
        Heuristic = "heuristic",
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
    use crate::tags::Tag;
    use rusqlite::types::ToSql;
    use rusqlite::Connection;

    #[test]
    fn every_tag_round_trips_through_sqlite_as_its_old_text() {
        let conn = Connection::open_in_memory().unwrap();
        let back = |v: &dyn ToSql| {
            conn.query_row("SELECT ?1", [v], |r| r.get::<_, String>(0))
                .unwrap()
        };
        for k in Kind::ALL {
            assert_eq!(back(k), k.as_str());
            assert_eq!(
                conn.query_row("SELECT ?1", [k.as_str()], |r| r.get::<_, Kind>(0))
                    .unwrap(),
                *k
            );
        }
        let texts: Vec<&str> = Decision::ALL.iter().map(|d| d.as_str()).collect();
        assert_eq!(
            texts,
            [
                "triggered",
                "skipped",
                "already_queued",
                "not_applicable",
                "failed",
                "sending"
            ]
        );
        for d in Decision::ALL {
            assert_eq!(back(d), d.as_str());
            assert_eq!(
                conn.query_row("SELECT ?1", [d.as_str()], |r| r.get::<_, Decision>(0))
                    .unwrap(),
                *d
            );
        }
        for r in Reason::ALL {
            assert_eq!(<Reason as Tag>::parse(&back(r)), Some(*r));
        }
        for s in JobStatus::ALL {
            assert_eq!(<JobStatus as Tag>::parse(&back(s)), Some(*s));
        }
        for m in MatchedBy::ALL {
            assert_eq!(<MatchedBy as Tag>::parse(&back(m)), Some(*m));
        }
    }

    #[test]
    fn an_unknown_value_fails_naming_the_column_and_the_value() {
        let conn = Connection::open_in_memory().unwrap();
        let err = conn
            .query_row("SELECT 'cube'", [], |r| r.get::<_, Kind>(0))
            .unwrap_err()
            .to_string();
        assert!(err.contains("column target_kind: unknown value \"cube\" (this autoexpose knows datasource, workbook, dataset)"), "{err}");
        let err = conn
            .query_row("SELECT 'Triggered'", [], |r| r.get::<_, Decision>(0))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("column decision: unknown value \"Triggered\""),
            "{err}"
        );
        assert!(conn
            .query_row("SELECT 7", [], |r| r.get::<_, Reason>(0))
            .is_err());
        assert_eq!(<JobStatus as Tag>::parse("done"), None);
    }
}
