//! Following an M expression to its sources: an evaluator over abstract values.
//!
//! Evaluation starts at the expression's result (a `let`'s body). Each step of a `let` is
//! evaluated once, after the steps it names (a step that names itself is a miss); a step
//! nothing uses costs work but never gives a finding, since findings come from the result's
//! value only. Names resolve through the `let` scopes, function parameters, the dataset's
//! shared expressions (recursively, each once; a cycle is a miss naming it), parameter values
//! from the API, and the library. Values are only what lineage needs:
//!
//! - texts (literals, parameters, `&` of texts) — the names and SQL connectors take;
//! - connections with their navigation so far ([`Conn`]);
//! - finished findings (misses), native SQL not read yet, file and dataflow sources;
//! - alternatives ([`Val::Many`]): both branches of `if`, `try … otherwise`, `??`, and the
//!   tables a transformation reads — `Table.SelectRows(prev, …)` reads what its arguments read,
//!   `Table.Combine({a, b})` both. Navigation and calls apply to each alternative; the same
//!   source twice is one;
//! - everything else is [`Val::Opaque`].
//!
//! Functions the reader does not know and that are not in the standard library's
//! transformation namespaces are data-access functions it does not read: a miss naming them.
//!
//! # Limits
//! Inputs can be built to explode: `b = {a, a}, c = {b, b}, …` doubles a value at each step,
//! a function can call itself. So:
//! - values are shared, never copied (texts, lists and records behind `Rc`), and a step, a
//!   shared expression and a native query are each evaluated or read once;
//! - every unit of work (an evaluation, a part of a value walked, a KiB of text built) spends
//!   from one budget per read, [`MAX_FUEL`]; nesting of evaluations ([`MAX_EVAL_DEPTH`]) and of
//!   values ([`MAX_VALUE_DEPTH`], which also bounds how deep dropping a value recurses) is
//!   capped. Past one of these the whole expression is one unreadable miss naming the limit:
//!   never a stack overflow, never a hang, never part of an answer;
//! - a value with more than [`MAX_ALTERNATIVES`] alternatives, or a text built past
//!   [`MAX_TEXT`], is an unreadable miss in its place;
//! - a `let`'s steps are evaluated in dependency order, iteratively, so a chain of ten
//!   thousand steps nests one level, not ten thousand.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::connectors::{self, miss, Conn};
use super::lexer::{line_col, tokenize};
use super::parser::{parse, Expr, Op, Post};
use super::{Context, Found, MissKind};

/// Nested evaluations (a step naming the step before it is one level): a query of thousands of
/// steps, far more than Power Query writes.
const MAX_EVAL_DEPTH: usize = 5_000;
/// Work in all (evaluations, parts of values walked, KiB of text built): bounds inputs built
/// to explode. The corpus' largest expression spends a few hundred.
pub(super) const MAX_FUEL: usize = 1_000_000;
/// Lists, records and functions' captured arguments within each other.
pub(super) const MAX_VALUE_DEPTH: usize = 64;
/// Alternatives one value may hold before the reader gives up on it.
const MAX_ALTERNATIVES: usize = 64;
/// Longest text `&` builds (SQL is kilobytes).
const MAX_TEXT: usize = 4 << 20;

thread_local! {
    /// What is left of the budget of the read running on this thread (a read does not nest).
    static FUEL: Cell<usize> = const { Cell::new(0) };
}

/// Spends `n` units of the read's budget: false once it is spent (and from then on).
fn burn(n: usize) -> bool {
    FUEL.with(|f| match f.get().checked_sub(n) {
        Some(left) => {
            f.set(left);
            true
        }
        None => {
            f.set(0);
            false
        }
    })
}

fn spent() -> bool {
    FUEL.with(|f| f.get() == 0)
}

fn out_of_fuel() -> Abort {
    Abort(format!(
        "reading the expression takes more than {MAX_FUEL} steps (a limit of the reader)"
    ))
}

#[derive(Debug, Clone)]
pub(super) enum Val {
    Text(Rc<str>),
    /// A number, logical, date, …: known not to be a source.
    Literal,
    Null,
    List(Rc<Vec<Val>>),
    Record(Rc<Vec<(String, Val)>>),
    Conn(Box<Conn>),
    /// A navigation row selected (`{[…]}`) whose `[Data]` is not taken yet.
    Row(Box<Conn>),
    /// A file or web source: the functions, outermost first (`Excel.Workbook`, `File.Contents`).
    File(Vec<String>),
    Dataflow {
        function: String,
        keys: Vec<(String, String)>,
    },
    Found(Vec<Found>),
    /// Native SQL, read when the findings are collected.
    Sql(Rc<connectors::Query>),
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
    Let {
        bindings: Rc<Vec<(String, Rc<Expr>)>>,
        plan: Rc<Plan>,
        slots: RefCell<Vec<Slot>>,
    },
    Params(Vec<(String, Val)>),
}

/// What a `let` needs beyond its text, worked out once per `let` however often it runs: its
/// steps by name, and the order to evaluate them in (each after the steps it names), so that
/// no step's evaluation recurses through a chain of others.
#[derive(Debug)]
struct Plan {
    index: HashMap<String, usize>,
    order: Vec<usize>,
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
    /// Each `let`'s plan, by the address of its bindings (the `Rc` is kept, so the address is
    /// not reused).
    plans: HashMap<*const Vec<(String, Rc<Expr>)>, (Rc<Vec<(String, Rc<Expr>)>>, Rc<Plan>)>,
    depth: usize,
}

/// Namespaces of the standard library that transform values rather than reach a source
/// (learn.microsoft.com/en-us/powerquery-m/power-query-m-function-reference, by category).
const LIBRARY_NAMESPACES: &[&str] = &[
    "Table",
    "List",
    "Record",
    "Text",
    "Number",
    "Date",
    "DateTime",
    "DateTimeZone",
    "Duration",
    "Time",
    "Value",
    "Binary",
    "BinaryFormat",
    "BinaryEncoding",
    "Splitter",
    "Combiner",
    "Comparer",
    "Replacer",
    "Function",
    "Type",
    "Lines",
    "Character",
    "Uri",
    "Logical",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Byte",
    "Single",
    "Double",
    "Decimal",
    "Currency",
    "Percentage",
    "Guid",
    "Error",
    "Diagnostics",
    "Cube",
    "Json",
    "Xml",
    "Culture",
    "Occurrence",
    "Order",
    "JoinKind",
    "JoinAlgorithm",
    "JoinSide",
    "MissingField",
    "ExtraValues",
    "GroupKind",
    "QuoteStyle",
    "RoundingMode",
    "TextEncoding",
    "Compression",
    "Precision",
    "RelativePosition",
    "Day",
    "TraceLevel",
    "LimitClauseKind",
    "Action",
    "Embedded",
    "Variable",
    "Csv",
    "Excel",
    "Parquet",
    "Pdf",
    "Any",
    "None",
    "Null",
    "Expression",
    "Web",
    "File",
    "Folder",
];

/// Functions that reach a file or the web.
const FILE_ACCESS: &[&str] = &[
    "File.Contents",
    "Folder.Files",
    "Folder.Contents",
    "Web.Contents",
    "Web.Page",
    "Web.BrowserContents",
    "SharePoint.Files",
    "SharePoint.Contents",
    "SharePoint.Tables",
    "AzureStorage.Blobs",
    "AzureStorage.DataLake",
    "AzureStorage.Tables",
    "Hdfs.Files",
    "Excel.CurrentWorkbook",
    "Access.Database",
    "OneDrive.Files",
];

/// Functions that read a file's bytes: a file source when their argument is one (and, for the
/// first four, whenever their argument is not inline text).
const FILE_FORMATS: &[&str] = &[
    "Excel.Workbook",
    "Csv.Document",
    "Parquet.Document",
    "Pdf.Tables",
    "Json.Document",
    "Xml.Tables",
    "Xml.Document",
    "Lines.FromBinary",
];

/// Library functions that reach data the reader cannot follow.
const UNREAD_LIBRARY: &[&str] = &["Expression.Evaluate"];

impl<'c, 'a> Eval<'c, 'a> {
    pub(super) fn new(ctx: &'c Context<'a>) -> Self {
        Eval {
            ctx,
            shared: HashMap::new(),
            shared_stack: Vec::new(),
            scopes: Vec::new(),
            plans: HashMap::new(),
            depth: 0,
        }
    }

    /// The sources `text` (a whole expression) ends in.
    pub(super) fn read(&mut self, text: &str) -> Vec<Found> {
        FUEL.with(|f| f.set(MAX_FUEL));
        let mut out = Vec::new();
        match self.parse_text(text) {
            Ok(None) => out.push(Found::Miss {
                reason: MissKind::NoSource,
                detail: "the expression is empty".into(),
            }),
            Ok(Some(e)) => match self.eval(&e, &None) {
                Ok(v) => {
                    let mut queries = Vec::new();
                    self.collect(&v, true, &mut out, &mut queries);
                    // Each distinct query read once.
                    let mut seen = HashSet::new();
                    for q in queries {
                        if seen.insert(q.clone()) && burn(1 + q.sql_len() / 1024) {
                            out.push(q.read());
                        }
                    }
                }
                Err(Abort(why)) => out.push(Found::Miss {
                    reason: MissKind::Unreadable,
                    detail: why,
                }),
            },
            Err(why) => out.push(Found::Miss {
                reason: MissKind::Unreadable,
                detail: why,
            }),
        }
        if spent() {
            // Part of an answer would be a guess: the limit is the answer.
            out = vec![Found::Miss {
                reason: MissKind::Unreadable,
                detail: out_of_fuel().0,
            }];
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
        self.plans.clear();
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
        if !burn(1) {
            return Err(out_of_fuel());
        }
        self.depth += 1;
        if self.depth > MAX_EVAL_DEPTH {
            return Err(Abort(format!(
                "the expression nests deeper than {MAX_EVAL_DEPTH} levels (steps, shared expressions, function calls)"
            )));
        }
        let v = stacker::maybe_grow(64 << 10, 1 << 20, || self.eval_inner(e, env));
        self.depth -= 1;
        if spent() {
            // A walk inside ran out: stop here rather than go on with a placeholder.
            return Err(out_of_fuel());
        }
        v
    }

    /// A list, record or function's argument about to be made part of another value.
    fn nest_check(&self, v: &Val) -> Result<(), Abort> {
        if deeper_than(v, MAX_VALUE_DEPTH) {
            return Err(Abort(format!("a value nests deeper than {MAX_VALUE_DEPTH} levels (lists, records, functions within each other)")));
        }
        if spent() {
            return Err(out_of_fuel());
        }
        Ok(())
    }

    fn eval_inner(&mut self, e: &Expr, env: &Env) -> Result<Val, Abort> {
        Ok(match e {
            Expr::Text(s) => Val::Text(Rc::from(s.as_str())),
            Expr::Logical(_) | Expr::Literal => Val::Literal,
            Expr::Null => Val::Null,
            Expr::Ident(name) => self.lookup(name, env)?,
            Expr::Let(bindings, body) => {
                let slots = RefCell::new(vec![Slot::Todo; bindings.len()]);
                let plan = self.plan(bindings)?;
                let frame = Frame::Let {
                    bindings: bindings.clone(),
                    plan: plan.clone(),
                    slots,
                };
                let scope = Rc::new(Scope {
                    parent: env.clone(),
                    frame,
                });
                self.scopes.push(scope.clone());
                // Every step once, each after those it names: a long chain is not a deep
                // recursion. (A step nothing uses costs work, never a finding.)
                for &i in &plan.order {
                    self.force(&scope, i)?;
                }
                self.eval(body, &Some(scope))?
            }
            Expr::If(_, t, f) => {
                // Both branches: which one runs depends on data the reader does not have.
                let t = self.eval(t, env)?;
                let f = self.eval(f, env)?;
                many(vec![t, f])
            }
            Expr::Function(params, body) => Val::Lambda(Rc::new(Lambda {
                params: params.clone(),
                body: body.clone(),
                env: env.clone(),
            })),
            Expr::Record(fields) => {
                let mut out = Vec::with_capacity(fields.len());
                for (k, v) in fields {
                    let v = self.eval(v, env)?;
                    self.nest_check(&v)?;
                    out.push((k.clone(), v));
                }
                Val::Record(Rc::new(out))
            }
            Expr::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    let v = self.eval(i, env)?;
                    self.nest_check(&v)?;
                    out.push(v);
                }
                Val::List(Rc::new(out))
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
                Frame::Let { plan, .. } => {
                    if let Some(&i) = plan.index.get(name) {
                        let v = self.force(&s, i)?;
                        if !burn(width(&v)) {
                            return Err(out_of_fuel());
                        }
                        return Ok(v);
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

    /// Step `i` of a `let` scope: evaluated the first time, remembered after.
    fn force(&mut self, s: &Rc<Scope>, i: usize) -> Result<Val, Abort> {
        let Frame::Let {
            bindings, slots, ..
        } = &s.frame
        else {
            return Ok(Val::Opaque);
        };
        let slot = slots.borrow().get(i).cloned().unwrap_or(Slot::Todo);
        match slot {
            Slot::Done(v) => Ok(v),
            Slot::Busy => Ok(miss(
                MissKind::Unreadable,
                format!("step {} refers to itself", bindings[i].0),
            )),
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
        }
    }

    fn plan(&mut self, bindings: &Rc<Vec<(String, Rc<Expr>)>>) -> Result<Rc<Plan>, Abort> {
        if let Some((_, p)) = self.plans.get(&Rc::as_ptr(bindings)) {
            return Ok(p.clone());
        }
        let n = bindings.len();
        if !burn(n) {
            return Err(out_of_fuel());
        }
        let mut index = HashMap::with_capacity(n);
        for (i, (name, _)) in bindings.iter().enumerate().rev() {
            index.insert(name.clone(), i); // the first of two steps of one name wins
        }
        // The steps each step names (by name, shadowing ignored: an extra edge only moves a
        // step earlier).
        let mut deps: Vec<Vec<usize>> = Vec::with_capacity(n);
        for (_, e) in bindings.iter() {
            let mut d = Vec::new();
            let mut work = 0usize;
            names_in(e, &mut |name| {
                work += 1;
                if let Some(&j) = index.get(name) {
                    d.push(j);
                }
            });
            if !burn(work) {
                return Err(out_of_fuel());
            }
            d.sort_unstable();
            d.dedup();
            deps.push(d);
        }
        // Post-order of a depth-first walk, iterative; a cycle's back edge is skipped (the
        // step then finds the other busy and says it refers to itself).
        let mut state = vec![0u8; n];
        let mut order = Vec::with_capacity(n);
        for root in 0..n {
            if state[root] != 0 {
                continue;
            }
            state[root] = 1;
            let mut stack = vec![(root, 0usize)];
            while let Some(top) = stack.last_mut() {
                let (i, k) = *top;
                if let Some(&j) = deps[i].get(k) {
                    top.1 += 1;
                    if state[j] == 0 {
                        state[j] = 1;
                        stack.push((j, 0));
                    }
                } else {
                    stack.pop();
                    state[i] = 2;
                    order.push(i);
                }
            }
        }
        let plan = Rc::new(Plan { index, order });
        self.plans
            .insert(Rc::as_ptr(bindings), (bindings.clone(), plan.clone()));
        Ok(plan)
    }

    fn global(&mut self, name: &str) -> Result<Val, Abort> {
        if let Some(i) = self.ctx.expressions.iter().position(|(n, _)| n == name) {
            return self.shared_expression(i);
        }
        if let Some((_, v)) = self.ctx.parameters.iter().find(|(n, _)| n == name) {
            return Ok(Val::Text(Rc::from(v.as_str())));
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
                let from = self
                    .shared_stack
                    .iter()
                    .position(|n| n == name)
                    .unwrap_or(0);
                let mut cycle: Vec<&str> = self.shared_stack[from..]
                    .iter()
                    .map(String::as_str)
                    .collect();
                cycle.push(name);
                return Ok(miss(
                    MissKind::Unreadable,
                    format!(
                        "shared expressions refer to each other in a cycle: {}",
                        cycle.join(" → ")
                    ),
                ));
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
                        Some((_, v)) => Val::Text(Rc::from(v.as_str())),
                        None => Val::Unresolved(name.clone()),
                    },
                }
            }
            Ok(Some(e)) => self.eval(&e, &None)?,
            Err(why) => miss(
                MissKind::Unreadable,
                format!("shared expression {name}: {why}"),
            ),
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
            v @ (Val::Found(_) | Val::Sql(_) | Val::File(_) | Val::Dataflow { .. }) => v,
            _ => Val::Opaque,
        })
    }

    fn invoke(&mut self, l: &Lambda, args: Vec<Val>) -> Result<Val, Abort> {
        for a in &args {
            self.nest_check(a)?;
        }
        let mut args = args.into_iter();
        let params = l
            .params
            .iter()
            .map(|p| (p.clone(), args.next().unwrap_or(Val::Null)))
            .collect();
        let scope = Rc::new(Scope {
            parent: l.env.clone(),
            frame: Frame::Params(params),
        });
        self.eval(&l.body.clone(), &Some(scope))
    }

    fn library(&mut self, name: &str, args: Vec<Val>) -> Result<Val, Abort> {
        if let Some(spec) = connectors::spec(name) {
            return Ok(per_alternative(&args, |a| connectors::connect(spec, a)));
        }
        Ok(match name {
            "Value.NativeQuery" => match args.first() {
                Some(_) => per_alternative(&args[..args.len().min(2)], |a| {
                    connectors::native_query(&a[0], a.get(1))
                }),
                None => miss(MissKind::Unreadable, "Value.NativeQuery without arguments"),
            },
            // A function over each item of a list the reader knows (`Table.Combine(List.Transform(
            // {"2023", "2024"}, each Source{[Name = "ORDERS_" & _]}[Data]))`): each result.
            "List.Transform"
                if matches!(
                    (args.first(), args.get(1)),
                    (Some(Val::List(_)), Some(Val::Lambda(_)))
                ) =>
            {
                let (Some(Val::List(items)), Some(Val::Lambda(f))) = (args.first(), args.get(1))
                else {
                    return Ok(Val::Opaque);
                };
                let (items, f) = (items.clone(), f.clone());
                let mut out = Vec::with_capacity(items.len());
                for item in items.iter() {
                    let v = self.invoke(&f, vec![item.clone()])?;
                    self.nest_check(&v)?;
                    out.push(v);
                }
                Val::List(Rc::new(out))
            }
            "Odbc.Query" => per_alternative(&args[..args.len().min(2)], |a| {
                connectors::odbc_query(a.first(), a.get(1))
            }),
            "PowerPlatform.Dataflows" | "PowerBI.Dataflows" => Val::Dataflow {
                function: name.to_string(),
                keys: Vec::new(),
            },
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

    /// A transformation: what its arguments read. An argument naming something with no value
    /// is a miss wherever it stands (`Table.NestedJoin(a, …, Other, …)` reads `Other` too:
    /// the library's own names all have a dot, so a bare name is a step, query or parameter);
    /// the others count only when they are sources, and functions passed in (`each …`) are
    /// looked into with unknown arguments.
    fn pass_through(&mut self, args: Vec<Val>) -> Result<Val, Abort> {
        let mut out = Vec::new();
        for a in args {
            self.sources(a, true, &mut out)?;
        }
        dedup(&mut out);
        Ok(match out.len() {
            0 => Val::Opaque,
            1 => out.pop().unwrap_or(Val::Opaque),
            _ => Val::Many(out),
        })
    }

    fn sources(&mut self, v: Val, strict: bool, out: &mut Vec<Val>) -> Result<(), Abort> {
        if !burn(1) {
            return Err(out_of_fuel());
        }
        match v {
            Val::Conn(_)
            | Val::Row(_)
            | Val::File(_)
            | Val::Dataflow { .. }
            | Val::Found(_)
            | Val::Sql(_) => out.push(v),
            Val::Unresolved(_) if strict => out.push(v),
            Val::Many(vs) => {
                for v in vs {
                    self.sources(v, strict, out)?;
                }
            }
            Val::List(vs) => {
                for v in vs.iter() {
                    self.sources(v.clone(), strict, out)?;
                }
            }
            Val::Record(fields) => {
                for (_, v) in fields.iter() {
                    self.sources(v.clone(), false, out)?;
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

    /// The findings of a final value (native queries apart, to be read once each).
    fn collect(
        &self,
        v: &Val,
        strict: bool,
        out: &mut Vec<Found>,
        queries: &mut Vec<Rc<connectors::Query>>,
    ) {
        if !burn(1) {
            return;
        }
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
                out.push(Found::Miss {
                    reason: MissKind::FileConnection,
                    detail: format!("a file or web source: {shown}"),
                });
            }
            Val::Dataflow { function, keys } => {
                let keys: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let detail = if keys.is_empty() {
                    format!("a dataflow ({function})")
                } else {
                    format!("a dataflow ({function}: {})", keys.join(", "))
                };
                out.push(Found::Miss {
                    reason: MissKind::Dataflow,
                    detail,
                });
            }
            Val::Found(fs) => out.extend(fs.iter().cloned()),
            Val::Sql(q) => queries.push(q.clone()),
            Val::Many(vs) => {
                for v in vs {
                    self.collect(v, strict, out, queries);
                }
            }
            Val::List(vs) => {
                for v in vs.iter() {
                    self.collect(v, strict, out, queries);
                }
            }
            Val::Record(fields) => {
                for (_, v) in fields.iter() {
                    self.collect(v, false, out, queries);
                }
            }
            Val::Unresolved(name) if strict => out.push(Found::Miss {
                reason: MissKind::UnresolvedParameter,
                detail: name.clone(),
            }),
            _ => {}
        }
    }
}

/// Every name an expression uses (identifiers, `@name`), inner `let`s and functions included.
fn names_in(e: &Expr, f: &mut dyn FnMut(&str)) {
    stacker::maybe_grow(32 << 10, 1 << 20, || match e {
        Expr::Ident(n) => f(n),
        Expr::Text(_) | Expr::Logical(_) | Expr::Literal | Expr::Null => {}
        Expr::Let(bs, body) => {
            for (_, b) in bs.iter() {
                names_in(b, f);
            }
            names_in(body, f);
        }
        Expr::If(c, t, e) => {
            names_in(c, f);
            names_in(t, f);
            names_in(e, f);
        }
        Expr::Function(_, body) => names_in(body, f),
        Expr::Record(fields) => fields.iter().for_each(|(_, v)| names_in(v, f)),
        Expr::List(items) | Expr::Opaque(items) => items.iter().for_each(|v| names_in(v, f)),
        Expr::Postfix(base, posts) => {
            names_in(base, f);
            for p in posts {
                match p {
                    Post::Call(args) => args.iter().for_each(|v| names_in(v, f)),
                    Post::Item(sel) => names_in(sel, f),
                    Post::Field(_) | Post::Project => {}
                }
            }
        }
        Expr::Chain(first, rest) => {
            names_in(first, f);
            rest.iter().for_each(|(_, v)| names_in(v, f));
        }
        Expr::Meta(v, m) => {
            names_in(v, f);
            names_in(m, f);
        }
        Expr::Try(v, o) => {
            names_in(v, f);
            if let Some(o) = o {
                names_in(o, f);
            }
        }
    })
}

fn is_parameter(meta: &Expr) -> bool {
    matches!(meta, Expr::Record(fields) if fields.iter().any(|(k, v)| k == "IsParameterQuery" && *v == Expr::Logical(true)))
}

fn is_library(name: &str) -> bool {
    name.starts_with('#')
        || name
            .split_once('.')
            .is_some_and(|(ns, _)| LIBRARY_NAMESPACES.contains(&ns))
}

/// What copying a value costs: its parts held inline (the rest is shared).
fn width(v: &Val) -> usize {
    match v {
        Val::Many(vs) => 1 + vs.len(),
        Val::Found(fs) => 1 + fs.len(),
        Val::File(fs) => 1 + fs.len(),
        _ => 1,
    }
}

/// Whether two values are the same source or text (other kinds are never merged).
fn same(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Text(x), Val::Text(y)) => x == y,
        (Val::Conn(x), Val::Conn(y)) | (Val::Row(x), Val::Row(y)) => x == y,
        (Val::Found(x), Val::Found(y)) => x == y,
        (Val::Sql(x), Val::Sql(y)) => x == y,
        (Val::File(x), Val::File(y)) => x == y,
        (Val::Unresolved(x), Val::Unresolved(y)) => x == y,
        _ => false,
    }
}

/// Drops repeats (one source reached twice, as `if c then t else t` does), while that is cheap:
/// alternatives are few, and a union of thousands is de-duplicated when its findings are.
fn dedup(vals: &mut Vec<Val>) {
    if vals.len() > 512 || !burn(vals.len() * vals.len() / 16 + 1) {
        return;
    }
    let mut kept: Vec<Val> = Vec::with_capacity(vals.len());
    for v in vals.drain(..) {
        if !kept.iter().any(|k| same(k, &v)) {
            kept.push(v);
        }
    }
    *vals = kept;
}

/// Whether `v` has lists, records or captured arguments nested deeper than `limit`; spends a
/// unit per part looked at (and says no once the budget is spent: evaluation stops there).
fn deeper_than(v: &Val, limit: usize) -> bool {
    if limit == 0 {
        return true;
    }
    if !burn(1) {
        return false;
    }
    stacker::maybe_grow(32 << 10, 1 << 20, || match v {
        Val::List(vs) => vs.iter().any(|x| deeper_than(x, limit - 1)),
        Val::Many(vs) => vs.iter().any(|x| deeper_than(x, limit - 1)),
        Val::Record(fs) => fs.iter().any(|(_, x)| deeper_than(x, limit - 1)),
        Val::Lambda(l) => {
            let mut scope = l.env.clone();
            while let Some(s) = scope {
                if !burn(1) {
                    return false;
                }
                if let Frame::Params(ps) = &s.frame {
                    if ps.iter().any(|(_, x)| deeper_than(x, limit - 1)) {
                        return true;
                    }
                }
                scope = s.parent.clone();
            }
            false
        }
        _ => false,
    })
}

/// Alternatives flattened into one list.
fn many(vals: Vec<Val>) -> Val {
    if !burn(vals.len()) {
        return Val::Opaque;
    }
    let mut out = Vec::new();
    for v in vals {
        match v {
            Val::Many(inner) => out.extend(inner),
            v => out.push(v),
        }
    }
    dedup(&mut out);
    if out.len() > MAX_ALTERNATIVES {
        return miss(
            MissKind::Unreadable,
            format!("more than {MAX_ALTERNATIVES} alternative sources"),
        );
    }
    match out.len() {
        1 => out.pop().unwrap_or(Val::Opaque),
        _ => Val::Many(out),
    }
}

/// The alternatives of one value: its branches, and for a record, every combination of its
/// fields' branches.
fn alternatives(v: &Val) -> Vec<Val> {
    if !burn(width(v)) {
        return vec![Val::Opaque];
    }
    match v {
        Val::Many(vs) => vs.clone(),
        Val::Record(fields) => {
            let mut combos: Vec<Vec<(String, Val)>> = vec![Vec::new()];
            for (k, fv) in fields.iter() {
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
                    return vec![miss(
                        MissKind::Unreadable,
                        format!("more than {MAX_ALTERNATIVES} alternative sources"),
                    )];
                }
            }
            if !burn(combos.len() * fields.len()) {
                return vec![Val::Opaque];
            }
            combos
                .into_iter()
                .map(|c| Val::Record(Rc::new(c)))
                .collect()
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
            return miss(
                MissKind::Unreadable,
                format!("more than {MAX_ALTERNATIVES} alternative sources"),
            );
        }
        if !burn(combos.len() * (1 + args.len())) {
            return Val::Opaque;
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
    let all_text = vals
        .iter()
        .all(|v| alternatives(v).iter().all(|a| matches!(a, Val::Text(_))));
    if all_text {
        return per_alternative(&vals, |parts| {
            let mut s = String::new();
            for p in parts {
                if let Val::Text(t) = p {
                    if s.len() + t.len() > MAX_TEXT {
                        return miss(MissKind::Unreadable, format!("a text built with & grows past {MAX_TEXT} bytes (a limit of the reader)"));
                    }
                    if !burn(1 + t.len() / 1024) {
                        return Val::Opaque;
                    }
                    s.push_str(t);
                }
            }
            Val::Text(Rc::from(s))
        });
    }
    let sources: Vec<Val> = vals
        .into_iter()
        .filter(|v| {
            matches!(
                v,
                Val::Conn(_)
                    | Val::Row(_)
                    | Val::File(_)
                    | Val::Dataflow { .. }
                    | Val::Found(_)
                    | Val::Sql(_)
                    | Val::Many(_)
            )
        })
        .collect();
    // A union of tables, like Table.Combine: as many as there are, not alternatives to cap.
    let mut out = Vec::with_capacity(sources.len());
    for v in sources {
        match v {
            Val::Many(inner) => out.extend(inner),
            v => out.push(v),
        }
    }
    if !burn(out.len()) {
        return Val::Opaque;
    }
    dedup(&mut out);
    match out.len() {
        0 => Val::Opaque,
        1 => out.pop().unwrap_or(Val::Opaque),
        _ => Val::Many(out),
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
                        f @ (Val::Found(_) | Val::Sql(_)) => f.clone(),
                        _ => miss(
                            MissKind::Unreadable,
                            format!(
                                "{}: navigation by position or a computed key, not by name",
                                c.spec.name
                            ),
                        ),
                    })
                    .collect(),
            )
        }
        Val::Dataflow { function, mut keys } => {
            if let Val::Record(fields) = sel {
                for (k, fv) in fields.iter() {
                    let shown = match fv {
                        Val::Text(s) => s.to_string(),
                        _ => "?".to_string(),
                    };
                    keys.push((k.clone(), shown));
                }
            }
            Val::Dataflow { function, keys }
        }
        Val::List(items) => many(items.to_vec()),
        Val::Many(vs) => many(vs.into_iter().map(|v| item(v, sel)).collect()),
        v @ (Val::Found(_) | Val::Sql(_) | Val::File(_) | Val::Unresolved(_)) => v,
        _ => Val::Opaque,
    }
}

/// `v[name]`.
fn field(v: Val, name: &str) -> Val {
    match v {
        Val::Row(c) if name == "Data" || c.table.is_some() => Val::Conn(c),
        Val::Row(_) => Val::Opaque,
        Val::Conn(c) => Val::Conn(c),
        Val::Record(fields) => fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or(Val::Opaque, |(_, v)| v.clone()),
        Val::Many(vs) => many(vs.into_iter().map(|v| field(v, name)).collect()),
        v @ (Val::Found(_)
        | Val::Sql(_)
        | Val::File(_)
        | Val::Dataflow { .. }
        | Val::Unresolved(_)) => v,
        _ => Val::Opaque,
    }
}
