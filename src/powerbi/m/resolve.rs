//! Following an M expression to its sources: an evaluator over abstract values.
//!
//! Evaluation starts at the expression's result (a `let`'s body) and is lazy: a step is
//! evaluated when something that feeds the result names it, once (a step that names itself is
//! a miss). Names resolve through the `let` scopes, function parameters, the dataset's shared
//! expressions (recursively, each once; a cycle is a miss naming it), parameter values from the
//! API, and the library. Values are only what lineage needs:
//!
//! - texts (literals, parameters, `&` of texts) — the names and SQL connectors take;
//! - connections with their navigation so far ([`Conn`]);
//! - finished findings (native SQL, misses), file and dataflow sources;
//! - alternatives ([`Val::Many`]): both branches of `if`, `try … otherwise`, `??`, and the
//!   tables a transformation reads — `Table.SelectRows(prev, …)` reads what its arguments read,
//!   `Table.Combine({a, b})` both. Navigation and calls apply to each alternative;
//! - everything else is [`Val::Opaque`].
//!
//! Functions the reader does not know and that are not in the standard library's
//! transformation namespaces are data-access functions it does not read: a miss naming them.
//! Depth (steps within steps, shared expressions, function calls) and total work are bounded;
//! past either the whole expression is unreadable, never a stack overflow or a hang.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::connectors::{self, miss, Conn};
use super::lexer::{line_col, tokenize};
use super::parser::{parse, Expr, Op, Post};
use super::{Context, Found, MissKind};

/// Nested evaluations (a step naming the step before it is one level): a query of thousands of
/// steps, far more than Power Query writes.
const MAX_EVAL_DEPTH: usize = 5_000;
/// Evaluations in all: bounds work on inputs built to explode (functions calling functions).
const MAX_FUEL: usize = 500_000;
/// Alternatives one value may hold before the reader gives up on it.
const MAX_ALTERNATIVES: usize = 64;
/// Longest text `&` builds (SQL is kilobytes).
const MAX_TEXT: usize = 4 << 20;

#[derive(Debug, Clone)]
pub(super) enum Val {
    Text(String),
    /// A number, logical, date, …: known not to be a source.
    Literal,
    Null,
    List(Vec<Val>),
    Record(Vec<(String, Val)>),
    Conn(Box<Conn>),
    /// A navigation row selected (`{[…]}`) whose `[Data]` is not taken yet.
    Row(Box<Conn>),
    /// A file or web source: the functions, outermost first (`Excel.Workbook`, `File.Contents`).
    File(Vec<String>),
    Dataflow { function: String, keys: Vec<(String, String)> },
    Found(Vec<Found>),
    Many(Vec<Val>),
    /// A name with no value: not a step, shared expression or parameter with a value.
    Unresolved(String),
    /// A library function or constant (`Table.SelectRows`, `#table`, `JoinKind.Inner`).
    Library(String),
    Lambda(Rc<Lambda>),
    Opaque,
}

#[derive(Debug)]
pub(super) struct Lambda {
    params: Rc<Vec<String>>,
    body: Rc<Expr>,
    env: Env,
}

type Env = Option<Rc<Scope>>;

#[derive(Debug)]
struct Scope {
    parent: Env,
    frame: Frame,
}

#[derive(Debug)]
enum Frame {
    Let { bindings: Rc<Vec<(String, Rc<Expr>)>>, slots: RefCell<Vec<Slot>> },
    Params(Vec<(String, Val)>),
}

#[derive(Debug, Clone)]
enum Slot {
    Todo,
    Busy,
    Done(Val),
}

/// Why reading stopped altogether.
pub(super) struct Abort(pub String);

enum Shared {
    Busy,
    Done(Val),
}

pub(super) struct Eval<'c, 'a> {
    ctx: &'c Context<'a>,
    shared: HashMap<String, Shared>,
    shared_stack: Vec<String>,
    /// Every `let` scope made, emptied at the end: a closure kept in a step's slot refers to
    /// its own scope, a cycle of `Rc`s that would otherwise never be freed.
    scopes: Vec<Rc<Scope>>,
    fuel: usize,
    depth: usize,
}

/// Namespaces of the standard library that transform values rather than reach a source
/// (learn.microsoft.com/en-us/powerquery-m/power-query-m-function-reference, by category).
const LIBRARY_NAMESPACES: &[&str] = &[
    "Table", "List", "Record", "Text", "Number", "Date", "DateTime", "DateTimeZone", "Duration",
    "Time", "Value", "Binary", "BinaryFormat", "BinaryEncoding", "Splitter", "Combiner",
    "Comparer", "Replacer", "Function", "Type", "Lines", "Character", "Uri", "Logical", "Int8",
    "Int16", "Int32", "Int64", "Byte", "Single", "Double", "Decimal", "Currency", "Percentage",
    "Guid", "Error", "Diagnostics", "Cube", "Json", "Xml", "Culture", "Occurrence", "Order",
    "JoinKind", "JoinAlgorithm", "JoinSide", "MissingField", "ExtraValues", "GroupKind",
    "QuoteStyle", "RoundingMode", "TextEncoding", "Compression", "Precision", "RelativePosition",
    "Day", "TraceLevel", "LimitClauseKind", "Action", "Embedded", "Variable", "Csv", "Excel",
    "Parquet", "Pdf", "Any", "None", "Null", "Expression", "Web", "File", "Folder",
];

/// Functions that reach a file or the web.
const FILE_ACCESS: &[&str] = &[
    "File.Contents", "Folder.Files", "Folder.Contents", "Web.Contents", "Web.Page",
    "Web.BrowserContents", "SharePoint.Files", "SharePoint.Contents", "SharePoint.Tables",
    "AzureStorage.Blobs", "AzureStorage.DataLake", "AzureStorage.Tables", "Hdfs.Files",
    "Excel.CurrentWorkbook", "Access.Database", "OneDrive.Files",
];

/// Functions that read a file's bytes: a file source when their argument is one (and, for the
/// first four, whenever their argument is not inline text).
const FILE_FORMATS: &[&str] = &[
    "Excel.Workbook", "Csv.Document", "Parquet.Document", "Pdf.Tables", "Json.Document",
    "Xml.Tables", "Xml.Document", "Lines.FromBinary",
];

/// Library functions that reach data the reader cannot follow.
const UNREAD_LIBRARY: &[&str] = &["Expression.Evaluate"];

impl<'c, 'a> Eval<'c, 'a> {
    pub(super) fn new(ctx: &'c Context<'a>) -> Self {
        Eval { ctx, shared: HashMap::new(), shared_stack: Vec::new(), scopes: Vec::new(), fuel: 0, depth: 0 }
    }

    /// The sources `text` (a whole expression) ends in.
    pub(super) fn read(&mut self, text: &str) -> Vec<Found> {
        let mut out = Vec::new();
        match self.parse_text(text) {
            Ok(None) => out.push(Found::Miss { reason: MissKind::NoSource, detail: "the expression is empty".into() }),
            Ok(Some(e)) => match self.eval(&e, &None) {
                Ok(v) => self.collect(&v, true, &mut out),
                Err(Abort(why)) => out.push(Found::Miss { reason: MissKind::Unreadable, detail: why }),
            },
            Err(why) => out.push(Found::Miss { reason: MissKind::Unreadable, detail: why }),
        }
        if out.is_empty() {
            out.push(Found::Miss {
                reason: MissKind::NoSource,
                detail: "no data source: the table is entered or computed in the model (#table, Table.FromRows, literals)".into(),
            });
        }
        for s in self.scopes.drain(..) {
            if let Frame::Let { slots, .. } = &s.frame {
                slots.borrow_mut().clear();
            }
        }
        self.shared.clear();
        out
    }

    fn parse_text(&self, text: &str) -> Result<Option<Expr>, String> {
        let tokens = tokenize(text).map_err(|e| {
            let (l, c) = line_col(text, e.offset);
            format!("line {l}, column {c}: {}", e.message)
        })?;
        if tokens.is_empty() {
            return Ok(None);
        }
        parse(text, &tokens).map(Some).map_err(|e| {
            let (l, c) = line_col(text, e.offset);
            format!("line {l}, column {c}: {}", e.message)
        })
    }

    fn eval(&mut self, e: &Expr, env: &Env) -> Result<Val, Abort> {
        self.fuel += 1;
        if self.fuel > MAX_FUEL {
            return Err(Abort(format!("the expression takes more than {MAX_FUEL} steps to read")));
        }
        self.depth += 1;
        if self.depth > MAX_EVAL_DEPTH {
            return Err(Abort(format!(
                "the expression nests deeper than {MAX_EVAL_DEPTH} levels (steps, shared expressions, function calls)"
            )));
        }
        let v = stacker::maybe_grow(64 << 10, 1 << 20, || self.eval_inner(e, env));
        self.depth -= 1;
        v
    }

    fn eval_inner(&mut self, e: &Expr, env: &Env) -> Result<Val, Abort> {
        Ok(match e {
            Expr::Text(s) => Val::Text(s.clone()),
            Expr::Logical(_) | Expr::Literal => Val::Literal,
            Expr::Null => Val::Null,
            Expr::Ident(name) => self.lookup(name, env)?,
            Expr::Let(bindings, body) => {
                let slots = RefCell::new(vec![Slot::Todo; bindings.len()]);
                let scope = Rc::new(Scope { parent: env.clone(), frame: Frame::Let { bindings: bindings.clone(), slots } });
                self.scopes.push(scope.clone());
                self.eval(body, &Some(scope))?
            }
            Expr::If(_, t, f) => {
                // Both branches: which one runs depends on data the reader does not have.
                let t = self.eval(t, env)?;
                let f = self.eval(f, env)?;
                many(vec![t, f])
            }
            Expr::Function(params, body) => {
                Val::Lambda(Rc::new(Lambda { params: params.clone(), body: body.clone(), env: env.clone() }))
            }
            Expr::Record(fields) => {
                let mut out = Vec::with_capacity(fields.len());
                for (k, v) in fields {
                    out.push((k.clone(), self.eval(v, env)?));
                }
                Val::Record(out)
            }
            Expr::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    out.push(self.eval(i, env)?);
                }
                Val::List(out)
            }
            Expr::Postfix(base, posts) => {
                let mut v = self.eval(base, env)?;
                for post in posts {
                    v = match post {
                        Post::Call(args) => {
                            let mut vals = Vec::with_capacity(args.len());
                            for a in args {
                                vals.push(self.eval(a, env)?);
                            }
                            self.call(v, vals)?
                        }
                        Post::Item(sel) => {
                            let sel = self.eval(sel, env)?;
                            item(v, &sel)
                        }
                        Post::Field(name) => field(v, name),
                        Post::Project => v,
                    };
                }
                v
            }
            Expr::Chain(first, rest) => {
                let mut vals = vec![self.eval(first, env)?];
                for (_, operand) in rest {
                    vals.push(self.eval(operand, env)?);
                }
                if rest.iter().all(|(op, _)| *op == Op::Concat) {
                    concat(vals)
                } else if rest.iter().all(|(op, _)| *op == Op::Coalesce) {
                    many(vals)
                } else {
                    Val::Opaque
                }
            }
            Expr::Meta(v, _) => self.eval(v, env)?,
            Expr::Try(e, otherwise) => {
                let v = self.eval(e, env)?;
                match otherwise {
                    Some(o) => {
                        let o = self.eval(o, env)?;
                        many(vec![v, o])
                    }
                    None => v,
                }
            }
            Expr::Opaque(_) => Val::Opaque,
        })
    }

    fn lookup(&mut self, name: &str, env: &Env) -> Result<Val, Abort> {
        let mut scope = env.clone();
        while let Some(s) = scope {
            match &s.frame {
                Frame::Let { bindings, slots } => {
                    if let Some(i) = bindings.iter().position(|(n, _)| n == name) {
                        let slot = slots.borrow().get(i).cloned().unwrap_or(Slot::Todo);
                        return match slot {
                            Slot::Done(v) => Ok(v),
                            Slot::Busy => Ok(miss(MissKind::Unreadable, format!("step {name} refers to itself"))),
                            Slot::Todo => {
                                if let Some(x) = slots.borrow_mut().get_mut(i) {
                                    *x = Slot::Busy;
                                }
                                let expr = bindings[i].1.clone();
                                let v = self.eval(&expr, &Some(s.clone()))?;
                                if let Some(x) = slots.borrow_mut().get_mut(i) {
                                    *x = Slot::Done(v.clone());
                                }
                                Ok(v)
                            }
                        };
                    }
                }
                Frame::Params(params) => {
                    if let Some((_, v)) = params.iter().find(|(n, _)| n == name) {
                        return Ok(v.clone());
                    }
                }
            }
            scope = s.parent.clone();
        }
        self.global(name)
    }

    fn global(&mut self, name: &str) -> Result<Val, Abort> {
        if let Some(i) = self.ctx.expressions.iter().position(|(n, _)| n == name) {
            return self.shared_expression(i);
        }
        if let Some((_, v)) = self.ctx.parameters.iter().find(|(n, _)| n == name) {
            return Ok(Val::Text(v.clone()));
        }
        if name.starts_with('#') || name.contains('.') {
            return Ok(Val::Library(name.to_string()));
        }
        Ok(Val::Unresolved(name.to_string()))
    }

    fn shared_expression(&mut self, i: usize) -> Result<Val, Abort> {
        let ctx = self.ctx;
        let (name, text) = &ctx.expressions[i];
        match self.shared.get(name) {
            Some(Shared::Done(v)) => return Ok(v.clone()),
            Some(Shared::Busy) => {
                let from = self.shared_stack.iter().position(|n| n == name).unwrap_or(0);
                let mut cycle: Vec<&str> = self.shared_stack[from..].iter().map(String::as_str).collect();
                cycle.push(name);
                return Ok(miss(MissKind::Unreadable, format!("shared expressions refer to each other in a cycle: {}", cycle.join(" → "))));
            }
            None => {}
        }
        self.shared.insert(name.clone(), Shared::Busy);
        self.shared_stack.push(name.clone());
        let v = match self.parse_text(text) {
            Ok(None) => Val::Opaque,
            Ok(Some(Expr::Meta(value, meta))) if is_parameter(&meta) => {
                match self.eval(&value, &None)? {
                    v @ (Val::Text(_) | Val::Literal | Val::List(_)) => v,
                    _ => match self.ctx.parameters.iter().find(|(n, _)| n == name) {
                        Some((_, v)) => Val::Text(v.clone()),
                        None => Val::Unresolved(name.clone()),
                    },
                }
            }
            Ok(Some(e)) => self.eval(&e, &None)?,
            Err(why) => miss(MissKind::Unreadable, format!("shared expression {name}: {why}")),
        };
        self.shared_stack.pop();
        self.shared.insert(name.clone(), Shared::Done(v.clone()));
        Ok(v)
    }

    fn call(&mut self, f: Val, args: Vec<Val>) -> Result<Val, Abort> {
        Ok(match f {
            Val::Library(name) => self.library(&name, args)?,
            Val::Lambda(l) => self.invoke(&l, args)?,
            Val::Many(fs) => {
                let mut out = Vec::with_capacity(fs.len());
                for f in fs {
                    out.push(self.call(f, args.clone())?);
                }
                many(out)
            }
            Val::Unresolved(name) => miss(MissKind::UnsupportedMFunction, name),
            v @ (Val::Found(_) | Val::File(_) | Val::Dataflow { .. }) => v,
            _ => Val::Opaque,
        })
    }

    fn invoke(&mut self, l: &Lambda, args: Vec<Val>) -> Result<Val, Abort> {
        let mut args = args.into_iter();
        let params = l.params.iter().map(|p| (p.clone(), args.next().unwrap_or(Val::Null))).collect();
        let scope = Rc::new(Scope { parent: l.env.clone(), frame: Frame::Params(params) });
        self.eval(&l.body.clone(), &Some(scope))
    }

    fn library(&mut self, name: &str, args: Vec<Val>) -> Result<Val, Abort> {
        if let Some(spec) = connectors::spec(name) {
            return Ok(per_alternative(&args, |a| connectors::connect(spec, a)));
        }
        Ok(match name {
            "Value.NativeQuery" => match args.first() {
                Some(_) => per_alternative(&args[..args.len().min(2)], |a| connectors::native_query(&a[0], a.get(1))),
                None => miss(MissKind::Unreadable, "Value.NativeQuery without arguments"),
            },
            "Odbc.Query" => per_alternative(&args[..args.len().min(2)], |a| connectors::odbc_query(a.first(), a.get(1))),
            "PowerPlatform.Dataflows" | "PowerBI.Dataflows" => Val::Dataflow { function: name.to_string(), keys: Vec::new() },
            _ if FILE_ACCESS.contains(&name) => Val::File(vec![name.to_string()]),
            _ if UNREAD_LIBRARY.contains(&name) => miss(MissKind::UnsupportedMFunction, name),
            _ if FILE_FORMATS.contains(&name) => match args.first() {
                Some(Val::File(inner)) => {
                    let mut fns = vec![name.to_string()];
                    fns.extend(inner.iter().cloned());
                    Val::File(fns)
                }
                Some(Val::Text(_)) => self.pass_through(args)?,
                _ if FILE_FORMATS[..4].contains(&name) => Val::File(vec![name.to_string()]),
                _ => self.pass_through(args)?,
            },
            _ if is_library(name) => self.pass_through(args)?,
            _ => miss(MissKind::UnsupportedMFunction, name),
        })
    }

    /// A transformation: what its arguments read. The first argument is its table (a name
    /// there that has no value is a miss); the others count only when they are sources, and
    /// functions passed in (`each …`) are looked into with unknown arguments.
    fn pass_through(&mut self, args: Vec<Val>) -> Result<Val, Abort> {
        let mut out = Vec::new();
        for (i, a) in args.into_iter().enumerate() {
            self.sources(a, i == 0, &mut out)?;
        }
        Ok(match out.len() {
            0 => Val::Opaque,
            1 => out.pop().unwrap_or(Val::Opaque),
            _ => Val::Many(out),
        })
    }

    fn sources(&mut self, v: Val, strict: bool, out: &mut Vec<Val>) -> Result<(), Abort> {
        match v {
            Val::Conn(_) | Val::Row(_) | Val::File(_) | Val::Dataflow { .. } | Val::Found(_) => out.push(v),
            Val::Unresolved(_) if strict => out.push(v),
            Val::Many(vs) | Val::List(vs) => {
                for v in vs {
                    self.sources(v, strict, out)?;
                }
            }
            Val::Record(fields) => {
                for (_, v) in fields {
                    self.sources(v, false, out)?;
                }
            }
            Val::Lambda(l) => {
                let args = vec![Val::Opaque; l.params.len()];
                let v = self.invoke(&l, args)?;
                if !matches!(v, Val::Lambda(_)) {
                    self.sources(v, false, out)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The findings of a final value.
    fn collect(&self, v: &Val, strict: bool, out: &mut Vec<Found>) {
        match v {
            Val::Conn(c) | Val::Row(c) => out.push(connectors::finish(c)),
            Val::File(fns) => {
                let mut shown = String::new();
                for f in fns {
                    shown.push_str(f);
                    shown.push('(');
                }
                shown.push('…');
                shown.push_str(&")".repeat(fns.len()));
                out.push(Found::Miss { reason: MissKind::FileConnection, detail: format!("a file or web source: {shown}") });
            }
            Val::Dataflow { function, keys } => {
                let keys: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let detail = if keys.is_empty() {
                    format!("a dataflow ({function})")
                } else {
                    format!("a dataflow ({function}: {})", keys.join(", "))
                };
                out.push(Found::Miss { reason: MissKind::Dataflow, detail });
            }
            Val::Found(fs) => out.extend(fs.iter().cloned()),
            Val::Many(vs) | Val::List(vs) => {
                for v in vs {
                    self.collect(v, strict, out);
                }
            }
            Val::Record(fields) => {
                for (_, v) in fields {
                    self.collect(v, false, out);
                }
            }
            Val::Unresolved(name) if strict => {
                out.push(Found::Miss { reason: MissKind::UnresolvedParameter, detail: name.clone() })
            }
            _ => {}
        }
    }
}

fn is_parameter(meta: &Expr) -> bool {
    matches!(meta, Expr::Record(fields) if fields.iter().any(|(k, v)| k == "IsParameterQuery" && *v == Expr::Logical(true)))
}

fn is_library(name: &str) -> bool {
    name.starts_with('#') || name.split_once('.').is_some_and(|(ns, _)| LIBRARY_NAMESPACES.contains(&ns))
}

/// Alternatives flattened into one list.
fn many(vals: Vec<Val>) -> Val {
    let mut out = Vec::new();
    for v in vals {
        match v {
            Val::Many(inner) => out.extend(inner),
            v => out.push(v),
        }
    }
    if out.len() > MAX_ALTERNATIVES {
        return miss(MissKind::Unreadable, format!("more than {MAX_ALTERNATIVES} alternative sources"));
    }
    match out.len() {
        1 => out.pop().unwrap_or(Val::Opaque),
        _ => Val::Many(out),
    }
}

/// The alternatives of one value: its branches, and for a record, every combination of its
/// fields' branches.
fn alternatives(v: &Val) -> Vec<Val> {
    match v {
        Val::Many(vs) => vs.clone(),
        Val::Record(fields) => {
            let mut combos: Vec<Vec<(String, Val)>> = vec![Vec::new()];
            for (k, fv) in fields {
                let alts = alternatives(fv);
                let mut next = Vec::new();
                for c in &combos {
                    for a in &alts {
                        let mut c = c.clone();
                        c.push((k.clone(), a.clone()));
                        next.push(c);
                    }
                }
                combos = next;
                if combos.len() > MAX_ALTERNATIVES {
                    return vec![miss(MissKind::Unreadable, format!("more than {MAX_ALTERNATIVES} alternative sources"))];
                }
            }
            combos.into_iter().map(Val::Record).collect()
        }
        v => vec![v.clone()],
    }
}

/// `f` over every combination of the arguments' alternatives.
fn per_alternative(args: &[Val], f: impl Fn(&[Val]) -> Val) -> Val {
    let mut combos: Vec<Vec<Val>> = vec![Vec::new()];
    for a in args {
        let alts = alternatives(a);
        let mut next = Vec::new();
        for c in &combos {
            for alt in &alts {
                let mut c = c.clone();
                c.push(alt.clone());
                next.push(c);
            }
        }
        combos = next;
        if combos.len() > MAX_ALTERNATIVES {
            return miss(MissKind::Unreadable, format!("more than {MAX_ALTERNATIVES} alternative sources"));
        }
    }
    if combos.len() == 1 && args.is_empty() {
        return f(&[]);
    }
    many(combos.iter().map(|c| f(c)).collect())
}

/// `a & b & …`: a text when every part is one (each combination of alternatives), else the
/// sources of the parts (`&` of tables combines them).
fn concat(vals: Vec<Val>) -> Val {
    if let Some(Val::Unresolved(n)) = vals.iter().find(|v| matches!(v, Val::Unresolved(_))) {
        return Val::Unresolved(n.clone());
    }
    let all_text = vals.iter().all(|v| alternatives(v).iter().all(|a| matches!(a, Val::Text(_))));
    if all_text {
        return per_alternative(&vals, |parts| {
            let mut s = String::new();
            for p in parts {
                if let Val::Text(t) = p {
                    if s.len() + t.len() > MAX_TEXT {
                        return Val::Opaque;
                    }
                    s.push_str(t);
                }
            }
            Val::Text(s)
        });
    }
    let sources: Vec<Val> = vals
        .into_iter()
        .filter(|v| matches!(v, Val::Conn(_) | Val::Row(_) | Val::File(_) | Val::Dataflow { .. } | Val::Found(_) | Val::Many(_)))
        .collect();
    if sources.is_empty() {
        Val::Opaque
    } else {
        many(sources)
    }
}

/// `v{sel}`.
fn item(v: Val, sel: &Val) -> Val {
    match v {
        Val::Conn(c) if c.table.is_some() => Val::Conn(c),
        Val::Conn(c) | Val::Row(c) => {
            let alts = alternatives(sel);
            many(
                alts.iter()
                    .map(|s| match s {
                        Val::Record(fields) => connectors::navigate(&c, fields),
                        Val::Unresolved(n) => miss(MissKind::UnresolvedParameter, n.clone()),
                        f @ Val::Found(_) => f.clone(),
                        _ => miss(
                            MissKind::Unreadable,
                            format!("{}: navigation by position or a computed key, not by name", c.spec.name),
                        ),
                    })
                    .collect(),
            )
        }
        Val::Dataflow { function, mut keys } => {
            if let Val::Record(fields) = sel {
                for (k, fv) in fields {
                    let shown = match fv {
                        Val::Text(s) => s.clone(),
                        _ => "?".to_string(),
                    };
                    keys.push((k.clone(), shown));
                }
            }
            Val::Dataflow { function, keys }
        }
        Val::List(items) => many(items),
        Val::Many(vs) => many(vs.into_iter().map(|v| item(v, sel)).collect()),
        v @ (Val::Found(_) | Val::File(_) | Val::Unresolved(_)) => v,
        _ => Val::Opaque,
    }
}

/// `v[name]`.
fn field(v: Val, name: &str) -> Val {
    match v {
        Val::Row(c) if name == "Data" || c.table.is_some() => Val::Conn(c),
        Val::Row(_) => Val::Opaque,
        Val::Conn(c) => Val::Conn(c),
        Val::Record(fields) => fields.into_iter().find(|(k, _)| k == name).map_or(Val::Opaque, |(_, v)| v),
        Val::Many(vs) => many(vs.into_iter().map(|v| field(v, name)).collect()),
        v @ (Val::Found(_) | Val::File(_) | Val::Dataflow { .. } | Val::Unresolved(_)) => v,
        _ => Val::Opaque,
    }
}
