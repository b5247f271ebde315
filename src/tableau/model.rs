//! Metadata API (GraphQL) node shapes, as `workbooks.graphql` and `custom_sql.graphql` ask for
//! them. Every field is optional: Tableau nulls what the user may not see (redaction) and what
//! the node limit cut off.

use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Workbook {
    pub(crate) id: String,
    pub(crate) luid: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) uri: Option<String>,
    pub(crate) vizportal_url_id: Option<String>,
    pub(crate) project_luid: Option<String>,
    pub(crate) project_name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) created_at: Option<String>,
    pub(crate) updated_at: Option<String>,
    pub(crate) owner: Option<Owner>,
    #[serde(default)]
    pub(crate) tags: Option<Vec<Tag>>,
    #[serde(default)]
    pub(crate) embedded_datasources: Option<Vec<EmbeddedDatasource>>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default)]
pub(crate) struct Owner {
    pub(crate) username: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) name: Option<String>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default)]
pub(crate) struct Tag {
    pub(crate) name: Option<String>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EmbeddedDatasource {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) has_extracts: Option<bool>,
    #[serde(default)]
    pub(crate) upstream_tables: Option<Vec<Table>>,
    #[serde(default)]
    pub(crate) upstream_datasources: Option<Vec<PublishedDatasource>>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PublishedDatasource {
    pub(crate) id: String,
    pub(crate) luid: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) has_extracts: Option<bool>,
    #[serde(default)]
    pub(crate) upstream_tables: Option<Vec<Table>>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Table {
    pub(crate) id: String,
    pub(crate) luid: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) full_name: Option<String>,
    pub(crate) schema: Option<String>,
    pub(crate) connection_type: Option<String>,
    pub(crate) database: Option<Database>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default)]
pub(crate) struct Database {
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    #[serde(rename = "connectionType")]
    pub(crate) connection_type: Option<String>,
    #[serde(rename = "__typename")]
    pub(crate) typename: Option<String>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CustomSql {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) query: Option<String>,
    pub(crate) is_unsupported_custom_sql: Option<bool>,
    pub(crate) connection_type: Option<String>,
    pub(crate) database: Option<Database>,
    #[serde(default)]
    pub(crate) tables: Option<Vec<Table>>,
    #[serde(default)]
    pub(crate) downstream_workbooks: Option<Vec<WorkbookRef>>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default)]
pub(crate) struct WorkbookRef {
    pub(crate) id: String,
    pub(crate) luid: Option<String>,
    pub(crate) name: Option<String>,
}

/// A `…Connection` page.
#[derive(Deserialize, Debug)]
#[serde(
    rename_all = "camelCase",
    bound(deserialize = "T: serde::de::DeserializeOwned")
)]
pub(crate) struct Connection<T> {
    #[serde(default)]
    pub(crate) total_count: Option<u64>,
    pub(crate) page_info: PageInfo,
    #[serde(default)]
    pub(crate) nodes: Vec<T>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageInfo {
    pub(crate) has_next_page: bool,
    pub(crate) end_cursor: Option<String>,
}

/// One entry of a GraphQL `errors` array.
#[derive(Deserialize, Debug, Clone)]
pub(crate) struct GraphqlError {
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) extensions: Option<ErrorExtensions>,
}

#[derive(Deserialize, Debug, Clone)]
pub(crate) struct ErrorExtensions {
    #[serde(default)]
    pub(crate) severity: Option<String>,
    #[serde(default)]
    pub(crate) code: Option<String>,
    /// Details of some warnings; what they hold is not documented (kept for `max_page_size`).
    #[serde(default)]
    pub(crate) properties: Option<serde_json::Value>,
}

impl GraphqlError {
    pub(crate) fn code(&self) -> Option<&str> {
        self.extensions.as_ref().and_then(|e| e.code.as_deref())
    }
    pub(crate) fn severity(&self) -> Option<&str> {
        self.extensions.as_ref().and_then(|e| e.severity.as_deref())
    }
    pub(crate) fn is_warning(&self) -> bool {
        self.severity()
            .is_some_and(|s| s.eq_ignore_ascii_case("WARNING"))
    }
    /// The Metadata API's query time limits ("Reached time limit of PT5S…", "timeout of 30000
    /// millis") and Tableau Cloud's query budget: the same page may succeed when asked again.
    pub(crate) fn is_retryable(&self) -> bool {
        self.code() == Some("RATE_EXCEEDED")
            || self.message.contains("Reached time limit of")
            || (self.message.contains("timeout of") && self.message.contains("millis"))
    }
    pub(crate) fn is_max_page_size(&self) -> bool {
        self.code() == Some("MAX_PAGE_SIZE_EXCEEDED")
    }
    /// The maximum page size a `MAX_PAGE_SIZE_EXCEEDED` warning names, read tolerantly: a whole
    /// number among its `properties`, else the smallest number in the message. Tableau's
    /// documented text ("The value chosen for “first” exceeded the maximum page size, so the
    /// query results will be limited to the maximum page size…", help.tableau.com
    /// meta_api_errors.html) names none; whether real answers carry it is UNVERIFIED.
    pub(crate) fn max_page_size(&self) -> Option<u32> {
        let props = self.extensions.as_ref().and_then(|e| e.properties.as_ref());
        if let Some(serde_json::Value::Object(map)) = props {
            let mut found = map
                .values()
                .filter_map(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()));
            if let Some(n) = found.next() {
                return u32::try_from(n).ok();
            }
        }
        self.message
            .split(|c: char| !c.is_ascii_digit())
            .filter(|w| !w.is_empty())
            .filter_map(|w| w.parse::<u32>().ok())
            .min()
    }
    /// Partial data because of the node limit (`NullValueInNonNullableField` is how a cut-off
    /// nested object shows).
    pub(crate) fn is_node_limit(&self) -> bool {
        self.code() == Some("NODE_LIMIT_EXCEEDED")
            || self.message.contains("NullValueInNonNullableField")
    }
}
