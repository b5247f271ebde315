//! Property tests of the parsers of Tableau's answers: Metadata API (GraphQL) answers, decoded
//! into the model's types, and Tableau's error bodies. The first property of each is that no
//! input panics. The strategies are the crate's (`crate::proptests`).

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::proptests::{config, json_value_with, mutated};
use crate::tableau::model::{CustomSql, Workbook};

/// Object keys: mostly the names our typed structs look for, so values land in typed fields.
const NAMES: &[&str] = &[
    "id",
    "luid",
    "name",
    "uri",
    "vizportalUrlId",
    "projectLuid",
    "projectName",
    "description",
    "createdAt",
    "updatedAt",
    "owner",
    "username",
    "email",
    "tags",
    "embeddedDatasources",
    "upstreamTables",
    "upstreamDatasources",
    "hasExtracts",
    "fullName",
    "schema",
    "connectionType",
    "database",
    "__typename",
    "query",
    "isUnsupportedCustomSQL",
    "tables",
    "downstreamWorkbooks",
    "totalCount",
    "pageInfo",
    "hasNextPage",
    "endCursor",
    "nodes",
    "message",
    "extensions",
    "severity",
    "code",
    "data",
    "errors",
    "workbooksConnection",
    "customSQLTablesConnection",
];

/// Arbitrary JSON, keyed mostly by the Metadata API's field names.
fn json_value() -> impl Strategy<Value = Value> {
    json_value_with(NAMES)
}

/// A well-formed page of `field` holding `nodes`.
fn page(field: &str, nodes: Value) -> Value {
    json!({"data": {field: {"totalCount": 1, "pageInfo": {"hasNextPage": false, "endCursor": null}, "nodes": nodes}}})
}

fn decode_all(bytes: &[u8]) {
    use crate::tableau::extract::GraphqlResponse;
    use crate::tableau::sync::Listed;
    let _ = serde_json::from_slice::<GraphqlResponse<Workbook>>(bytes);
    let _ = serde_json::from_slice::<GraphqlResponse<CustomSql>>(bytes);
    let _ = serde_json::from_slice::<GraphqlResponse<Listed>>(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = crate::tableau::client::parse_error(text);
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn graphql_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        decode_all(&bytes);
    }

    /// Arbitrary JSON where the answer, a page, a node and an error are expected.
    #[test]
    fn graphql_json_never_panics(v in json_value()) {
        for doc in [
            v.clone(),
            json!({"data": v.clone()}),
            json!({"errors": v.clone()}),
            json!({"errors": [v.clone()], "data": null}),
            page("workbooksConnection", v.clone()),
            page("workbooksConnection", json!([v.clone()])),
            page("customSQLTablesConnection", json!([v.clone()])),
            page("workbooksConnection", json!([{"id": "w", "embeddedDatasources": [{"id": "e", "upstreamTables": [v.clone()]}]}])),
            json!({"error": v.clone()}),
        ] {
            decode_all(&serde_json::to_vec(&doc).unwrap_or_default());
        }
    }

    /// A real-looking page with one edit, and Tableau's XML error body with one edit.
    #[test]
    fn mutated_answers_never_panic(
        bytes in mutated(serde_json::to_vec(&page("workbooksConnection", json!([{"id": "w1", "luid": "l", "name": "Sales é 📈",
            "projectName": "Finance", "owner": {"name": "Ann"}, "tags": [{"name": "t"}], "embeddedDatasources": [{"id": "e1",
            "upstreamTables": [{"id": "t1", "fullName": "[db].[s].[t]", "database": {"name": "db", "__typename": "Database"}}]}]}])))
            .unwrap_or_default()),
        xml in mutated(r#"<?xml version="1.0"?><tsResponse><error code="401001"><summary>Signin Error</summary><detail>é</detail></error></tsResponse>"#.as_bytes().to_vec()),
    ) {
        decode_all(&bytes);
        decode_all(&xml);
    }
}
