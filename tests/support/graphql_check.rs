//! GraphQL documents checked the way Tableau's Metadata API checks them before it runs
//! anything: parsed and validated against the schema in `testdata/tableau/metadata.graphql`
//! (unknown fields, arguments and input fields; variable types and the positions they are used
//! in; …), then the request's `variables` coerced to the declared types.
//!
//! Used by the local Tableau (`tableau_server.rs`, `#[path]` include) and by the client's unit
//! tests (`src/tableau/schema_check.rs`, `#[path]` include), so both judge a document by one
//! schema and one validator (apollo-compiler, a dev-dependency).
#![allow(dead_code)]

use std::sync::OnceLock;

use apollo_compiler::executable::{Field, Selection, SelectionSet};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use serde_json::{Map, Value};

/// The schema file, compiled into whoever includes this module.
pub const SCHEMA_SDL: &str = include_str!("../../testdata/tableau/metadata.graphql");

/// The schema, parsed and validated once per process.
pub fn schema() -> &'static Valid<Schema> {
    static SCHEMA: OnceLock<Valid<Schema>> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        match Schema::parse_and_validate(SCHEMA_SDL, "testdata/tableau/metadata.graphql") {
            Ok(s) => s,
            // A broken schema file is a bug in the test data: say what is wrong with it.
            Err(e) => panic!(
                "testdata/tableau/metadata.graphql is not a valid schema:\n{}",
                e.errors
            ),
        }
    })
}

/// One problem with a request, as a GraphQL error object would carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub message: String,
    /// 1-based line and column in the document, when the validator names one.
    pub location: Option<(usize, usize)>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.location {
            Some((l, c)) => write!(f, "{} (line {l}, column {c})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A document that passed: what it asks for, with its variables coerced.
pub struct Checked {
    pub document: Valid<ExecutableDocument>,
    pub operation_name: Option<String>,
    /// Variables after coercion to their declared types (defaults applied).
    pub variables: Map<String, Value>,
}

impl Checked {
    fn operation(&self) -> &apollo_compiler::executable::Operation {
        // `check` already found it; a miss here is a bug in this module.
        self.document
            .operations
            .get(self.operation_name.as_deref())
            .expect("operation found by check")
    }

    /// The operation's root fields (`workbooksConnection`, `customSQLTablesConnection`, …).
    pub fn root_fields(&self) -> Vec<&Field> {
        let op = self.operation();
        op.root_fields(&self.document).map(|f| &**f).collect()
    }

    /// The arguments of `field` as JSON, variables resolved from the coerced values. Input
    /// objects become JSON objects (`filter: {idWithin: $ids}` → `{"idWithin": [...]}`).
    pub fn arguments(&self, field: &Field) -> Map<String, Value> {
        field
            .arguments
            .iter()
            .map(|a| (a.name.to_string(), self.value(&a.value)))
            .collect()
    }

    fn value(&self, v: &apollo_compiler::ast::Value) -> Value {
        use apollo_compiler::ast::Value as V;
        match v {
            V::Null => Value::Null,
            V::Enum(n) => Value::String(n.to_string()),
            V::Variable(n) => self
                .variables
                .get(n.as_str())
                .cloned()
                .unwrap_or(Value::Null),
            V::String(s) => Value::String(s.clone()),
            V::Int(i) => i.try_to_i32().map(Value::from).unwrap_or(Value::Null),
            V::Float(f) => f
                .try_to_f64()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            V::Boolean(b) => Value::Bool(*b),
            V::List(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            V::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), self.value(v)))
                    .collect(),
            ),
        }
    }
}

impl Checked {
    /// `value` (a fixture node, or a list of them) cut down to what `set` asks for, as a
    /// GraphQL server answers: a selected field the fixture lacks is `null`, a field the
    /// document does not select is left out, aliases rename. Fragments are merged regardless of
    /// their type condition (the fixtures hold one concrete type per position).
    pub fn select(&self, value: &Value, set: &SelectionSet) -> Value {
        match value {
            Value::Array(items) => {
                Value::Array(items.iter().map(|i| self.select(i, set)).collect())
            }
            Value::Object(_) => {
                let mut out = Map::new();
                self.select_into(value, set, &mut out);
                Value::Object(out)
            }
            other => other.clone(),
        }
    }

    fn select_into(&self, value: &Value, set: &SelectionSet, out: &mut Map<String, Value>) {
        for sel in &set.selections {
            match sel {
                Selection::Field(f) => {
                    let key = f.alias.as_ref().unwrap_or(&f.name).to_string();
                    let v = value.get(f.name.as_str()).cloned().unwrap_or(Value::Null);
                    let v = if f.selection_set.selections.is_empty() {
                        v
                    } else {
                        self.select(&v, &f.selection_set)
                    };
                    out.insert(key, v);
                }
                Selection::InlineFragment(i) => self.select_into(value, &i.selection_set, out),
                Selection::FragmentSpread(spread) => {
                    if let Some(frag) = self.document.fragments.get(&spread.fragment_name) {
                        self.select_into(value, &frag.selection_set, out);
                    }
                }
            }
        }
    }
}

/// The sub-field `name` selected directly under `field`, if any.
pub fn sub_field<'a>(field: &'a Field, name: &str) -> Option<&'a Field> {
    field
        .selection_set
        .fields()
        .find(|f| f.name == name)
        .map(|f| &**f)
}

/// True when a selection set is leaf fields only (`{ id updatedAt }`: no fragments, no nested objects).
pub fn selects_only_scalars(set: &SelectionSet) -> bool {
    set.selections
        .iter()
        .all(|s| matches!(s, Selection::Field(f) if f.selection_set.selections.is_empty()))
}

/// Validates `query` against the schema and coerces `variables` (`null` or missing = none).
pub fn check(
    query: &str,
    variables: &Value,
    operation_name: Option<&str>,
) -> Result<Checked, Vec<Problem>> {
    let schema = schema();
    let document =
        ExecutableDocument::parse_and_validate(schema, query, "query.graphql").map_err(|e| {
            e.errors
                .iter()
                .map(|d| {
                    let location = d
                        .line_column_range()
                        .map(|r| (r.start.line, r.start.column));
                    // apollo-compiler's own wording ("expected value of type [ID], found a
                    // variable"); Tableau's (graphql-java's) differs, and clients must not depend
                    // on either.
                    Problem {
                        message: d.error.to_string(),
                        location,
                    }
                })
                .collect::<Vec<_>>()
        })?;
    let operation = document.operations.get(operation_name).map_err(|e| {
        vec![Problem {
            message: e.message().to_string(),
            location: None,
        }]
    })?;
    let values: apollo_compiler::response::JsonMap = match variables {
        Value::Null => Default::default(),
        Value::Object(_) => serde_json::from_value(variables.clone()).map_err(|e| {
            vec![Problem {
                message: format!("variables: {e}"),
                location: None,
            }]
        })?,
        _ => {
            return Err(vec![Problem {
                message: "variables must be a JSON object".into(),
                location: None,
            }])
        }
    };
    let coerced = apollo_compiler::request::coerce_variable_values(schema, operation, &values)
        .map_err(|e| {
            let location = e
                .location()
                .and_then(|l| l.line_column_range(&document.sources))
                .map(|r| (r.start.line, r.start.column));
            vec![Problem {
                message: e.message().to_string(),
                location,
            }]
        })?;
    let variables = match serde_json::to_value(&*coerced) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let operation_name = operation
        .name
        .as_ref()
        .map(|n| n.to_string())
        .or(operation_name.map(str::to_string));
    Ok(Checked {
        document,
        operation_name,
        variables,
    })
}
