//! The shapes of the Power BI answers autoexpose reads, as serde types: only the fields used,
//! unknown ones ignored (the service adds fields), `null` read as empty wherever a list or a
//! text may be missing. Sources: shared/reference/powerbi.md sections 2, 3, 4, 7 and 11
//! (PBI-swagger `WorkspaceInfoResponse`, `WorkspaceInfoReport`, `WorkspaceInfoDataset`,
//! `ScanRequest`, `Datasource`, `Reports_GetReportsInGroup`, `Datasets_GetParametersInGroup`).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A list the service may send as `null` or leave out.
fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// `GET admin/workspaces/modified`: `[{"id": "…"}]` (PBI-swagger `WorkspaceInfo_GetModifiedWorkspaces`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ModifiedWorkspace {
    pub(crate) id: String,
}

/// `ScanRequest {id, createdDateTime, status, error}`: what `getInfo` and `scanStatus` answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScanRequest {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) error: Option<Value>,
}

/// `WorkspaceInfoResponse`: what `scanResult` answers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScanResult {
    #[serde(default, deserialize_with = "list")]
    pub(crate) workspaces: Vec<Workspace>,
    #[serde(default, deserialize_with = "list")]
    pub(crate) datasource_instances: Vec<DatasourceInstance>,
    #[serde(default, deserialize_with = "list")]
    pub(crate) misconfigured_datasource_instances: Vec<DatasourceInstance>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Workspace {
    pub(crate) id: String,
    /// Workspaces whose `state` is not `Active` may lack it (reference section 3).
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// `Workspace`, `PersonalGroup`, `Personal`, `Group`, …
    #[serde(rename = "type", default)]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) state: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub(crate) reports: Vec<Report>,
    #[serde(default, deserialize_with = "list")]
    pub(crate) datasets: Vec<Dataset>,
    /// Read only for the data source instances their `datasourceUsages` name (reference
    /// sections 3 and 4), which an incremental extract keeps with the workspace.
    #[serde(default, deserialize_with = "list")]
    pub(crate) dataflows: Vec<Value>,
}

impl Workspace {
    /// A personal workspace (`My workspace`): one person's sandbox, not something published.
    pub(crate) fn is_personal(&self) -> bool {
        self.kind.as_deref().is_some_and(|k| {
            k.eq_ignore_ascii_case("PersonalGroup") || k.eq_ignore_ascii_case("Personal")
        })
    }

    /// Not `Active` (deleted, removed, orphaned): its content is not live.
    pub(crate) fn is_inactive(&self) -> bool {
        !self
            .state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("Active"))
    }
}

/// `WorkspaceInfoReport`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Report {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) dataset_id: Option<String>,
    /// Set when the dataset lives in another workspace (also seen equal to the report's own).
    #[serde(default)]
    pub(crate) dataset_workspace_id: Option<String>,
    #[serde(default)]
    pub(crate) report_type: Option<String>,
    #[serde(default)]
    pub(crate) created_by: Option<String>,
    #[serde(default)]
    pub(crate) modified_by: Option<String>,
    #[serde(default)]
    pub(crate) created_date_time: Option<String>,
    #[serde(default)]
    pub(crate) modified_date_time: Option<String>,
    /// Set on the copy of a report published in an app.
    #[serde(default)]
    pub(crate) app_id: Option<String>,
    /// The app copy's original: PBI-swagger spells it `originalReportId`, DataHub reads
    /// `originalReportObjectId`; both are accepted.
    #[serde(default)]
    pub(crate) original_report_id: Option<String>,
    #[serde(default)]
    pub(crate) original_report_object_id: Option<String>,
}

impl Report {
    /// An app's copy of a report: not an exposure of its own (the original is one).
    pub(crate) fn is_app_copy(&self) -> bool {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        set(&self.app_id) || set(&self.original_report_id) || set(&self.original_report_object_id)
    }

    pub(crate) fn original(&self) -> Option<&str> {
        self.original_report_id
            .as_deref()
            .or(self.original_report_object_id.as_deref())
    }
}

/// `WorkspaceInfoDataset`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Dataset {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) configured_by: Option<String>,
    #[serde(default)]
    pub(crate) target_storage_mode: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub(crate) tables: Vec<Table>,
    #[serde(default, deserialize_with = "list")]
    pub(crate) expressions: Vec<Expression>,
    #[serde(default, deserialize_with = "list")]
    pub(crate) datasource_usages: Vec<DatasourceUsage>,
    #[serde(default, deserialize_with = "list")]
    pub(crate) misconfigured_datasource_usages: Vec<DatasourceUsage>,
    #[serde(default, deserialize_with = "list")]
    pub(crate) upstream_dataflows: Vec<Value>,
    /// A text or an object, whatever the service sends: kept as JSON.
    #[serde(default)]
    pub(crate) schema_retrieval_error: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Table {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) is_hidden: Option<bool>,
    #[serde(default, deserialize_with = "list")]
    pub(crate) source: Vec<TableSource>,
    /// The table's storage mode (`Import`, `DirectQuery`, `Dual`, …: learn.microsoft.com
    /// "Table storage mode in Power BI semantic models"). UNVERIFIED in the scan result: our
    /// reference does not list it, so it is read when present and never required.
    #[serde(default)]
    pub(crate) storage_mode: Option<String>,
}

impl Table {
    /// The M query: `source[0].expression`, when there is a source (reference section 3).
    pub(crate) fn expression(&self) -> Option<&str> {
        self.source.first().and_then(|s| s.expression.as_deref())
    }
}

impl Dataset {
    /// Whether refreshing the dataset imports anything (issue #15: import-mode datasets, and
    /// composite ones with imported tables; DirectQuery ones have nothing to refresh).
    ///
    /// The scan's spellings are UNVERIFIED (reference section 3 names `targetStorageMode`, its
    /// one example `Abf`, the import storage format), so this is tolerant: a dataset is not
    /// refreshable only when what the scan says is DirectQuery throughout — the tables that give
    /// a storage mode all say `DirectQuery` and none says another, or no table gives one and the
    /// dataset's `targetStorageMode` says `DirectQuery`. Anything else (Import, Dual, Abf,
    /// PremiumFiles, nothing said) is refreshed: a refusal from Power BI is a visible row, a
    /// dataset wrongly never refreshed is not.
    pub(crate) fn refreshable(&self) -> bool {
        let dq = |m: &str| m.trim().eq_ignore_ascii_case("directquery");
        let modes: Vec<&str> = self
            .tables
            .iter()
            .filter_map(|t| t.storage_mode.as_deref())
            .filter(|m| !m.trim().is_empty())
            .collect();
        if !modes.is_empty() {
            return !modes.iter().all(|m| dq(m));
        }
        !self.target_storage_mode.as_deref().is_some_and(dq)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct TableSource {
    #[serde(default)]
    pub(crate) expression: Option<String>,
}

/// A dataset's shared expression (parameters are among them).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct Expression {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) expression: Option<String>,
}

impl Expression {
    /// Whether the expression is a parameter: a literal followed by `meta
    /// [IsParameterQuery=true, …]` (reference section 6). Only a label for the raw table; the M
    /// reader reads the literal.
    pub(crate) fn is_parameter(&self) -> bool {
        let text: String = self
            .expression
            .as_deref()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        text.to_ascii_lowercase().contains("isparameterquery=true")
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DatasourceUsage {
    #[serde(default)]
    pub(crate) datasource_instance_id: Option<String>,
}

/// `Datasource`: a data source instance of the tenant (reference section 4).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DatasourceInstance {
    #[serde(default)]
    pub(crate) datasource_type: Option<String>,
    #[serde(default)]
    pub(crate) datasource_id: Option<String>,
    #[serde(default)]
    pub(crate) gateway_id: Option<String>,
    #[serde(default)]
    pub(crate) connection_details: Option<Value>,
}

/// `GET groups/{id}/reports`: `{"value": [{"id", "name", "webUrl", …}]}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct GroupReports {
    #[serde(default, deserialize_with = "list")]
    pub(crate) value: Vec<GroupReport>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupReport {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) web_url: Option<String>,
}

/// `GET groups/{g}/datasets/{d}/parameters`: `{"value": [{"name", "type", "currentValue", "isRequired"}]}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Parameters {
    #[serde(default, deserialize_with = "list")]
    pub(crate) value: Vec<Parameter>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Parameter {
    pub(crate) name: String,
    #[serde(rename = "type", default)]
    pub(crate) kind: Option<String>,
    /// A text in the documented examples; anything else is kept as its JSON.
    #[serde(default)]
    pub(crate) current_value: Option<Value>,
    #[serde(default)]
    pub(crate) is_required: Option<bool>,
}

impl Parameter {
    /// The value as M would see its literal: a text as itself, any other JSON as written.
    pub(crate) fn value_text(&self) -> Option<String> {
        match &self.current_value {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        }
    }
}

/// The token endpoint's answer (reference section 1): `expires_in` is a number from the v2.0
/// endpoint, a text from the v1 one; both are read.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TokenAnswer {
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) token_type: Option<String>,
    pub(crate) expires_in: Value,
}

impl TokenAnswer {
    pub(crate) fn expires_in_secs(&self) -> Option<u64> {
        match &self.expires_in {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(mode: Option<&str>, tables: &[Option<&str>]) -> Dataset {
        let tables: Vec<Value> = tables
            .iter()
            .enumerate()
            .map(|(n, m)| serde_json::json!({"name": format!("t{n}"), "storageMode": m}))
            .collect();
        serde_json::from_value(
            serde_json::json!({"id": "d", "targetStorageMode": mode, "tables": tables}),
        )
        .unwrap()
    }

    /// Not refreshable only when the scan says DirectQuery throughout; composite (an imported or
    /// dual table beside DirectQuery ones) and anything unsaid are refreshed.
    #[test]
    fn only_a_directquery_dataset_is_not_refreshable() {
        for (mode, tables, want) in [
            (Some("Abf"), vec![None, None], true),
            (Some("Import"), vec![], true),
            (None, vec![], true),
            (Some("PremiumFiles"), vec![Some("Import")], true),
            (Some("directQuery"), vec![], false),
            (Some("DirectQuery"), vec![None], false),
            (
                Some("Abf"),
                vec![Some("DirectQuery"), Some("DIRECTQUERY")],
                false,
            ),
            (Some("Abf"), vec![Some("DirectQuery"), Some("Import")], true),
            (
                Some("DirectQuery"),
                vec![Some("Dual"), Some("DirectQuery")],
                true,
            ),
            (None, vec![Some(" "), Some("DirectQuery")], false),
        ] {
            assert_eq!(
                dataset(mode, &tables).refreshable(),
                want,
                "{mode:?} {tables:?}"
            );
        }
    }

    /// The reference's trimmed scanResult example reads, nulls and unknown fields included.
    #[test]
    fn the_documented_scan_result_reads() {
        let text = r#"{"workspaces": [{
           "id": "d507422c-8d6d-4361-ac7a-30074a8cd0a1", "name": "V2 shared", "type": "Workspace", "state": "Active",
           "reports": [{"id": "c6d072d1-ed20-4b60-8329-16c4b934203b", "name": "CompositeModelParams-RLS",
                        "datasetId": "132593c4-bf8d-4548-8f25-1ebb16a1613c", "reportType": "PaginatedReport",
                        "modifiedBy": "john@contoso.com", "modifiedDateTime": "2020-06-16T08:22:49.14"}],
           "dashboards": [{"id": "80814ece", "displayName": "D", "tiles": []}],
           "datasets": [{
              "id": "e7e8a355-e77b-4418-a7b8-ae5972fdaa03", "name": "ExportB", "configuredBy": "john@contoso.com",
              "targetStorageMode": "Abf",
              "tables": [{"name": "DW_Revenues", "isHidden": false, "source": [{"expression": "let\n    Source = Revenues\nin\n    Source"}]},
                         {"name": "Calc", "source": null}],
              "expressions": [{"name": "RevenuesParam", "expression": "\"v\" meta [IsParameterQuery=true, Type=\"Text\"]"}],
              "upstreamDataflows": null,
              "datasourceUsages": [{"datasourceInstanceId": "c79ad907-df19-43fe-a0f7-d9f365d67070"}]}]}],
         "datasourceInstances": [{"datasourceType": "Sql", "datasourceId": "c79ad907-df19-43fe-a0f7-d9f365d67070",
                                  "connectionDetails": {"server": "qlserver.database.windows.net", "database": "dbo.largest_table"}}]}"#;
        let r: ScanResult = serde_json::from_str(text).unwrap();
        let w = &r.workspaces[0];
        assert!(!w.is_personal() && !w.is_inactive());
        assert_eq!(
            w.reports[0].dataset_id.as_deref(),
            Some("132593c4-bf8d-4548-8f25-1ebb16a1613c")
        );
        assert!(!w.reports[0].is_app_copy());
        let d = &w.datasets[0];
        assert_eq!(
            d.tables[0].expression(),
            Some("let\n    Source = Revenues\nin\n    Source")
        );
        assert_eq!(d.tables[1].expression(), None);
        assert!(d.expressions[0].is_parameter() && d.upstream_dataflows.is_empty());
        assert_eq!(
            r.datasource_instances[0].datasource_type.as_deref(),
            Some("Sql")
        );
    }

    #[test]
    fn app_copies_and_workspace_kinds() {
        let r: Report = serde_json::from_str(
            r#"{"id": "a", "name": "[App] Sales", "appId": "x", "originalReportObjectId": "o"}"#,
        )
        .unwrap();
        assert!(r.is_app_copy());
        assert_eq!(r.original(), Some("o"));
        let r: Report = serde_json::from_str(r#"{"id": "a", "originalReportId": "p"}"#).unwrap();
        assert!(r.is_app_copy());
        let w: Workspace =
            serde_json::from_str(r#"{"id": "w", "type": "PersonalGroup", "state": "Active"}"#)
                .unwrap();
        assert!(w.is_personal());
        let w: Workspace =
            serde_json::from_str(r#"{"id": "w", "type": "Workspace", "state": "Deleted"}"#)
                .unwrap();
        assert!(w.is_inactive());
        let t: TokenAnswer =
            serde_json::from_str(r#"{"access_token": "x", "expires_in": "3599"}"#).unwrap();
        assert_eq!(t.expires_in_secs(), Some(3599));
    }
}

/// `GET groups/{g}/datasets/{d}/refreshes` (PBI-swagger `Datasets_GetRefreshHistoryInGroup`;
/// reference section 8): newest first.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Refreshes {
    #[serde(default, deserialize_with = "list")]
    pub(crate) value: Vec<Refresh>,
}

/// One entry of a dataset's refresh history (PBI-swagger `Refresh`, the fields of reference
/// section 8). Every field optional: an entry missing one is skipped where it is needed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Refresh {
    /// `ViaApi`, `Scheduled`, `OnDemand`, …
    #[serde(default)]
    pub(crate) refresh_type: Option<String>,
    #[serde(default)]
    pub(crate) start_time: Option<String>,
    /// Empty while it runs.
    #[serde(default)]
    pub(crate) end_time: Option<String>,
    /// `Unknown` (in progress), `Completed`, `Failed`, `Disabled`.
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) request_id: Option<String>,
    /// With `Failed`: Power BI's error as a JSON text.
    #[serde(default)]
    pub(crate) service_exception_json: Option<String>,
}
