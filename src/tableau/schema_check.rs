//! Every GraphQL document the client can send, built by the client's own functions with the
//! variables each page shape sends, validated against Tableau's Metadata API schema
//! (`testdata/tableau/metadata.graphql`) by a real validator. Tableau validates each document
//! before it runs it and refuses the whole request on any mistake, so a document that fails
//! here fails every real run.
//!
//! The validator and schema loading are shared with the local Tableau
//! (`tests/support/graphql_check.rs`), so the unit tests and the test server judge alike.

#[path = "../../tests/support/graphql_check.rs"]
mod graphql_check;

use serde_json::{json, Value};

use super::extract::{
    custom_sql_ids_query, custom_sql_query, page_variables, workbook_details_vars,
    workbook_ids_query, workbook_ids_vars, DATASOURCE_VERSIONS_QUERY, WORKBOOKS_QUERY,
};
use graphql_check::check;

/// A cursor as Tableau hands them out: opaque base64 (any string is a valid `String`).
const CURSOR: &str = "eyJ0eXBlIjoiV29ya2Jvb2siLCJpZCI6Ind4In0=";

/// (what, operation name, document, variables) for every request shape the client sends.
fn every_request() -> Vec<(String, &'static str, String, Value)> {
    let projects = vec![
        "5e57a1e0-0000-4000-8000-00000000p001".to_string(),
        "5e57a1e0-0000-4000-8000-00000000p002".to_string(),
    ];
    let ids: Vec<String> = (0..3)
        .map(|i| format!("0a1b2c3d-0000-4000-8000-00000000000{i}"))
        .collect();
    let mut out = Vec::new();
    for (shape, after) in [("first page", None), ("later page", Some(CURSOR))] {
        for filtered in [false, true] {
            let base = workbook_ids_vars(filtered.then_some(projects.as_slice()));
            out.push((
                format!("WorkbookIds, {shape}, project filter {filtered}"),
                "WorkbookIds",
                workbook_ids_query(filtered),
                Value::Object(page_variables(&base, 1000, after)),
            ));
        }
        for chunk in [&ids[..1], &ids[..]] {
            out.push((
                format!("Workbooks, {shape}, {} id(s)", chunk.len()),
                "Workbooks",
                WORKBOOKS_QUERY.to_string(),
                Value::Object(page_variables(&workbook_details_vars(chunk), 25, after)),
            ));
        }
        out.push((
            format!("CustomSql, {shape}"),
            "CustomSql",
            custom_sql_query(false),
            Value::Object(page_variables(&serde_json::Map::new(), 25, after)),
        ));
        // Incremental sync: custom SQL by id, and the two version listings.
        out.push((
            format!("CustomSql by id, {shape}"),
            "CustomSql",
            custom_sql_query(true),
            Value::Object(page_variables(&workbook_details_vars(&ids), 25, after)),
        ));
        out.push((
            format!("CustomSqlIds, {shape}"),
            "CustomSqlIds",
            custom_sql_ids_query().to_string(),
            Value::Object(page_variables(&serde_json::Map::new(), 1000, after)),
        ));
        out.push((
            format!("DatasourceVersions, {shape}"),
            "DatasourceVersions",
            DATASOURCE_VERSIONS_QUERY.to_string(),
            Value::Object(page_variables(&serde_json::Map::new(), 1000, after)),
        ));
    }
    out
}

#[test]
fn every_document_the_client_sends_is_valid_against_the_schema() {
    let requests = every_request();
    assert_eq!(requests.len(), 16);
    for (what, op, query, vars) in &requests {
        let checked = match check(query, vars, None) {
            Ok(c) => c,
            Err(problems) => {
                let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
                panic!("{what}: Tableau would refuse this document:\n{}\n--- document ---\n{query}\n--- variables ---\n{vars}", list.join("\n"));
            }
        };
        assert_eq!(checked.operation_name.as_deref(), Some(*op), "{what}");
        // Coercion keeps what was sent: the cursor, the page size, the lists.
        for (k, v) in vars.as_object().unwrap() {
            assert_eq!(
                checked.variables.get(k),
                Some(v),
                "{what}: variable {k} after coercion"
            );
        }
        let roots: Vec<String> = checked
            .root_fields()
            .iter()
            .map(|f| f.name.to_string())
            .collect();
        let expected = match *op {
            "CustomSql" | "CustomSqlIds" => "customSQLTablesConnection",
            "DatasourceVersions" => "publishedDatasourcesConnection",
            _ => "workbooksConnection",
        };
        assert_eq!(roots, [expected], "{what}");
    }
    // The project filter really is in the filtered id query, and only there.
    assert!(workbook_ids_query(true).contains("projectLuidWithin: $projectLuids"));
    assert!(!workbook_ids_query(false).contains("filter"));
    assert!(
        ![true, false]
            .iter()
            .any(|&f| workbook_ids_query(f).contains("$PROJECT")),
        "placeholder left in the id query"
    );
    assert!(
        custom_sql_query(true).contains("filter: {idWithin: $ids}")
            && !custom_sql_query(false).contains("filter")
    );
    assert!(
        ![true, false]
            .iter()
            .any(|&f| custom_sql_query(f).contains("$IDS")),
        "placeholder left in the custom SQL query"
    );
}

#[test]
fn the_validator_refuses_a_wrong_variable_type_and_an_unknown_field() {
    // The document as it was before `$ids` became `[ID]`: Tableau refused it on every run.
    let old = WORKBOOKS_QUERY.replace("$ids: [ID]", "$ids: [String]");
    assert_ne!(
        old, WORKBOOKS_QUERY,
        "the Workbooks document no longer declares $ids: [ID]"
    );
    let vars = Value::Object(page_variables(
        &workbook_details_vars(&["a".into()]),
        25,
        None,
    ));
    let problems = check(&old, &vars, None)
        .err()
        .expect("a [String] variable in an [ID] position must be refused");
    // The problem points at the `$ids` in `idWithin: $ids` and names the type it needs.
    let at = |p: &graphql_check::Problem| {
        let (line, col) = p.location?;
        old.lines()
            .nth(line - 1)
            .and_then(|l| l.get(col - 1..))
            .map(str::to_string)
    };
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("[ID]")
                && at(p).is_some_and(|rest| rest.starts_with("$ids"))),
        "{problems:#?}"
    );
    // Used directly as an argument, a mistyped variable is refused as well.
    let direct = WORKBOOKS_QUERY.replace("$first: Int", "$first: String");
    let vars = Value::Object(page_variables(
        &workbook_details_vars(&["a".into()]),
        25,
        None,
    ));
    assert!(
        check(&direct, &vars, None).is_err(),
        "$first: String used for first: Int"
    );

    let unknown_field = custom_sql_query(false).replace(
        "isUnsupportedCustomSql",
        "isUnsupportedCustomSql noSuchField",
    );
    let problems = check(&unknown_field, &json!({"first": 1, "after": null}), None)
        .err()
        .expect("unknown field refused");
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("noSuchField") && p.location.is_some()),
        "{problems:#?}"
    );

    let unknown_input_field =
        workbook_ids_query(true).replace("projectLuidWithin", "projectLuidsWithin");
    assert!(check(
        &unknown_input_field,
        &json!({"first": 1, "projectLuids": ["p"]}),
        None
    )
    .is_err());

    // Variables are coerced too: a page size that is not an Int is refused before any work.
    let problems = check(
        &workbook_ids_query(false),
        &json!({"first": "ten", "after": null}),
        None,
    )
    .err()
    .expect("bad Int refused");
    assert!(
        problems.iter().any(|p| p.message.contains("first")),
        "{problems:#?}"
    );
}
