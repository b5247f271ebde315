//! Generates a benchmark input set for `just bench` (issue #5): a dbt manifest.json of a given
//! size, a matching Tableau site fixture, and a config that replays recordings of that site.
//!
//! ```text
//! cargo run --release --example gen_bench -- --models N --workbooks M --out DIR
//!     [--seed S] [--adapter snowflake|duckdb] [--powerbi-workspaces W]
//! ```
//!
//! Writes, deterministically for the same arguments (its own seeded PRNG, no `HashMap` order):
//!
//! - `DIR/manifest.json`: compact JSON, manifest v12 as dbt-core 1.10 writes it. Every node
//!   carries the keys dbt writes for its resource type (see the demo project's manifest in
//!   `testdata/dbt/demo/artifacts/`): models with raw and compiled SQL, 5–30 documented
//!   columns, config, refs, sources, macros; about two generic tests per model; seeds,
//!   snapshots, hooks, sources, macros, docs, groups, a few hand-written exposures,
//!   `parent_map`/`child_map`. Some models live in other packages, some are versioned,
//!   ephemeral, private to a group, or disabled. About 7.5 KB per model all in, so 50k
//!   models make about 375 MB.
//! - `DIR/site.json`: a site fixture (testdata/tableau/README.md) with M workbooks in ~50
//!   projects, ~15 upstream tables each across 1–3 embedded data sources: mostly dbt relations
//!   spelled the ways Tableau spells them (3-part, 2-part + database, bare + schema, varying
//!   case), some not in dbt, some in another database, file connections, disabled and
//!   private models, custom SQL (parsed and unsupported), and ~100 shared published data
//!   sources with extracts.
//! - `DIR/autoexpose.yml`: one site, all projects, page_size 25, concurrency 4, replaying
//!   `DIR/http` (made by `examples/bench.rs` with `autoexpose --record`).
//! - `DIR/dbt/dbt_project.yml`: the project the exposures YAML goes into.
//! - `DIR/gen_stats.json`: counts of what was generated, for the benchmark's report.
//! - `DIR/truth.json`: what each workbook (by luid) truly depends on, which of those it reaches
//!   only through custom SQL, and the custom SQL queries no parser can read (see `Truth`);
//!   `examples/bench.rs` scores every run against it.
//! - with `--powerbi-workspaces W`: `DIR/powerbi/tenant.json`, a Power BI tenant of W workspaces
//!   and 10 reports each for the local Power BI server, whose datasets' M reads the same dbt
//!   project, and `DIR/powerbi/truth.json` (see `write_powerbi`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

const USAGE: &str =
    "usage: gen_bench --models N --workbooks M --out DIR [--seed S] [--adapter snowflake|duckdb] [--powerbi-workspaces W]";

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

struct Args {
    models: usize,
    workbooks: usize,
    out: PathBuf,
    seed: u64,
    adapter: Adapter,
    /// Power BI workspaces to generate beside the Tableau site (0: none).
    powerbi_workspaces: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Adapter {
    Snowflake,
    Duckdb,
}

fn parse_args(args: Vec<String>) -> Result<Option<Args>, String> {
    let (mut models, mut workbooks, mut out, mut seed, mut adapter) =
        (None, None, None, 42u64, Adapter::Snowflake);
    let mut powerbi_workspaces = 0usize;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let number = |v: String| {
            v.trim()
                .replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--models" => models = Some(number(value()?)? as usize),
            "--workbooks" => workbooks = Some(number(value()?)? as usize),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--seed" => seed = number(value()?)?,
            "--powerbi-workspaces" => powerbi_workspaces = number(value()?)? as usize,
            "--adapter" => {
                adapter = match value()?.as_str() {
                    "snowflake" => Adapter::Snowflake,
                    "duckdb" => Adapter::Duckdb,
                    other => return Err(format!("--adapter: snowflake or duckdb, not {other}")),
                }
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let models = models.ok_or("--models is required")?;
    let workbooks = workbooks.ok_or("--workbooks is required")?;
    if models < 10 {
        return Err("--models: at least 10".into());
    }
    if workbooks < 1 {
        return Err("--workbooks: at least 1".into());
    }
    Ok(Some(Args {
        models,
        workbooks,
        out: out.ok_or("--out is required")?,
        seed,
        adapter,
        powerbi_workspaces,
    }))
}

fn main() {
    let args = match parse_args(std::env::args().skip(1).collect()) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(msg) => {
            eprintln!("gen_bench: {msg}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = generate(&args) {
        eprintln!("gen_bench: {e}");
        std::process::exit(1);
    }
}

fn generate(args: &Args) -> std::io::Result<()> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(args.out.join("dbt"))?;
    let project = build_project(args);
    let mut stats = Stats::default();
    let manifest_path = args.out.join("manifest.json");
    stats.manifest_bytes = write_manifest(&project, &manifest_path, &mut stats)?;
    let site_path = args.out.join("site.json");
    let mut truth = Truth::default();
    stats.site_bytes = write_site(&project, args, &site_path, &mut stats, &mut truth)?;
    std::fs::write(args.out.join("truth.json"), truth.to_json())?;
    write_config(args, &project)?;
    if args.powerbi_workspaces > 0 {
        let (reports, tables) = write_powerbi(&project, args, args.powerbi_workspaces)?;
        println!(
            "gen_bench: Power BI tenant: {} workspaces, {reports} reports, {tables} dataset tables -> {}",
            args.powerbi_workspaces,
            args.out.join("powerbi/tenant.json").display()
        );
    }
    let stats_json = stats.to_json(args);
    std::fs::write(args.out.join("gen_stats.json"), stats_json)?;
    println!(
        "gen_bench: {} models, {} tests, {} sources -> {} ({:.1} MB); {} workbooks, {} table references -> {} ({:.1} MB) in {:.1}s",
        stats.models,
        stats.tests,
        stats.sources,
        manifest_path.display(),
        stats.manifest_bytes as f64 / 1e6,
        stats.workbooks,
        stats.table_refs.values().sum::<usize>(),
        site_path.display(),
        stats.site_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A small seeded PRNG (SplitMix64): deterministic across platforms and runs.
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// An independent stream for one purpose, so adding draws in one place does not shift
    /// every other part of the output.
    fn fork(&self, salt: u64) -> Rng {
        let mut r = Rng(self.0 ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 11) as u128 * n as u128) >> 53) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// Skewed towards the start of 0..n: a few items are picked very often (popular marts,
    /// shared data sources), most rarely.
    fn skewed(&mut self, n: usize, power: f64) -> usize {
        ((self.unit().powf(power)) * n as f64) as usize % n.max(1)
    }
    fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            let _ = write!(s, "{:016x}", self.next());
        }
        s.truncate(len);
        s
    }
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }
}

/// A stable id from a name: the same table gets the same Tableau id wherever it appears.
fn uuid_for(seed: u64, text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Rng(h).uuid()
}

// ---------------------------------------------------------------------------------------------
// A compact JSON writer that keeps keys in the order dbt writes them.
// ---------------------------------------------------------------------------------------------

fn quote(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Obj<'a> {
    o: &'a mut String,
    n: usize,
}

impl<'a> Obj<'a> {
    fn open(o: &'a mut String) -> Obj<'a> {
        o.push('{');
        Obj { o, n: 0 }
    }
    fn key(&mut self, k: &str) -> &mut String {
        if self.n > 0 {
            self.o.push(',');
        }
        self.n += 1;
        quote(self.o, k);
        self.o.push(':');
        self.o
    }
    fn s(&mut self, k: &str, v: &str) -> &mut Self {
        let o = self.key(k);
        quote(o, v);
        self
    }
    fn os(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.s(k, v),
            None => self.null(k),
        }
    }
    fn raw(&mut self, k: &str, json: &str) -> &mut Self {
        self.key(k).push_str(json);
        self
    }
    /// Writes a shared run of keys in the middle of a chain.
    fn with(&mut self, f: impl FnOnce(&mut Obj)) -> &mut Self {
        f(self);
        self
    }

    fn null(&mut self, k: &str) -> &mut Self {
        self.raw(k, "null")
    }
    fn b(&mut self, k: &str, v: bool) -> &mut Self {
        self.raw(k, if v { "true" } else { "false" })
    }
    fn num(&mut self, k: &str, v: impl std::fmt::Display) -> &mut Self {
        let o = self.key(k);
        let _ = write!(o, "{v}");
        self
    }
    fn strs<S: AsRef<str>>(&mut self, k: &str, items: &[S]) -> &mut Self {
        let o = self.key(k);
        str_list(o, items);
        self
    }
    fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj)) -> &mut Self {
        let o = self.key(k);
        let mut inner = Obj::open(o);
        f(&mut inner);
        inner.close();
        self
    }
    fn arr(&mut self, k: &str, f: impl FnOnce(&mut Arr)) -> &mut Self {
        let o = self.key(k);
        let mut inner = Arr::open(o);
        f(&mut inner);
        inner.close();
        self
    }
    fn close(self) {
        self.o.push('}');
    }
}

struct Arr<'a> {
    o: &'a mut String,
    n: usize,
}

impl<'a> Arr<'a> {
    fn open(o: &'a mut String) -> Arr<'a> {
        o.push('[');
        Arr { o, n: 0 }
    }
    fn item(&mut self) -> &mut String {
        if self.n > 0 {
            self.o.push(',');
        }
        self.n += 1;
        self.o
    }
    fn obj(&mut self, f: impl FnOnce(&mut Obj)) -> &mut Self {
        let o = self.item();
        let mut inner = Obj::open(o);
        f(&mut inner);
        inner.close();
        self
    }
    fn close(self) {
        self.o.push(']');
    }
}

fn str_list<S: AsRef<str>>(o: &mut String, items: &[S]) {
    o.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        quote(o, s.as_ref());
    }
    o.push(']');
}

// ---------------------------------------------------------------------------------------------
// Vocabulary (invented; any resemblance to a real company's warehouse is the point)
// ---------------------------------------------------------------------------------------------

const ROOT: &str = "acme_analytics";
const PACKAGES: &[&str] = &["acme_finance", "acme_marketing", "acme_platform"];

const DOMAINS: &[&str] = &[
    "finance",
    "marketing",
    "sales",
    "product",
    "support",
    "logistics",
    "inventory",
    "people",
    "billing",
    "payments",
    "growth",
    "operations",
    "risk",
    "compliance",
    "partners",
    "web",
    "mobile",
    "crm",
    "procurement",
    "supply_chain",
    "legal",
    "research",
    "security",
    "platform",
];

const NOUNS: &[&str] = &[
    "orders",
    "order_lines",
    "customers",
    "accounts",
    "invoices",
    "invoice_lines",
    "payments",
    "refunds",
    "subscriptions",
    "sessions",
    "events",
    "pageviews",
    "campaigns",
    "ad_spend",
    "leads",
    "opportunities",
    "contacts",
    "tickets",
    "shipments",
    "returns",
    "products",
    "skus",
    "prices",
    "discounts",
    "warehouses",
    "stock_levels",
    "employees",
    "departments",
    "budgets",
    "forecasts",
    "vendors",
    "contracts",
    "claims",
    "transactions",
    "ledger_entries",
    "journal_lines",
    "cohorts",
    "signups",
    "trials",
    "churn_events",
    "renewals",
    "usage_records",
    "feature_flags",
    "experiments",
    "assignments",
    "emails",
    "clicks",
    "impressions",
    "regions",
    "stores",
    "channels",
    "resellers",
    "commissions",
    "quotas",
    "targets",
    "devices",
    "installs",
    "crashes",
    "reviews",
    "surveys",
];

const QUALIFIERS: &[&str] = &[
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "by_region",
    "by_channel",
    "enriched",
    "latest",
    "history",
    "summary",
    "rollup",
    "current",
    "joined",
    "deduped",
    "pivoted",
    "agg",
    "scd",
    "base",
    "cleaned",
    "final",
];

const SOURCE_SYSTEMS: &[&str] = &[
    "salesforce",
    "stripe",
    "zendesk",
    "hubspot",
    "shopify",
    "netsuite",
    "workday",
    "segment",
    "google_ads",
    "facebook_ads",
    "app_postgres",
    "billing_mysql",
    "jira",
    "greenhouse",
    "intercom",
    "marketo",
    "braze",
    "snowplow",
    "quickbooks",
    "sap_erp",
];
const SOURCE_REGIONS: &[&str] = &[
    "", "_eu", "_us", "_apac", "_latam", "_emea", "_na", "_legacy",
];

/// Column templates: name (`{e}` = the entity), description. The first is the primary key.
const COLUMNS: &[(&str, &str)] = &[
    (
        "{e}_id",
        "Primary key of the {e} record. Unique and never null; stable across loads.",
    ),
    (
        "{e}_key",
        "Surrogate key built with a hash of the natural key columns of the {e}.",
    ),
    (
        "customer_id",
        "Foreign key to the customer who owns this record (see dim_customers).",
    ),
    (
        "account_id",
        "Foreign key to the billing account; null for records created before the 2021 migration.",
    ),
    (
        "order_id",
        "Foreign key to the order this record belongs to.",
    ),
    ("product_id", "Foreign key to the product catalogue."),
    (
        "region_code",
        "Sales region as ISO-3166 alpha-2 country code rolled up to the commercial region.",
    ),
    (
        "country_code",
        "ISO-3166 alpha-2 country code of the billing address.",
    ),
    (
        "currency_code",
        "ISO-4217 code of the currency the amounts are recorded in.",
    ),
    (
        "amount",
        "Gross amount in the record's currency, before tax and discounts.",
    ),
    (
        "amount_usd",
        "Gross amount converted to USD at the daily rate of the transaction date.",
    ),
    ("tax_amount", "Tax charged, in the record's currency."),
    (
        "discount_amount",
        "Total discount applied, in the record's currency.",
    ),
    ("quantity", "Number of units."),
    (
        "unit_price",
        "Price per unit at the time of the transaction.",
    ),
    (
        "status",
        "Lifecycle status as reported by the source system (lower-cased).",
    ),
    (
        "is_active",
        "True while the record is active in the source system.",
    ),
    (
        "is_deleted",
        "Soft-delete flag carried over from the source; deleted rows are kept for history.",
    ),
    (
        "created_at",
        "When the record was created in the source system (UTC).",
    ),
    (
        "updated_at",
        "When the record was last updated in the source system (UTC).",
    ),
    (
        "deleted_at",
        "When the record was soft-deleted, if it was (UTC).",
    ),
    (
        "loaded_at",
        "When the loader wrote this row into the raw schema (UTC).",
    ),
    (
        "event_ts",
        "Timestamp of the event as sent by the client, converted to UTC.",
    ),
    (
        "event_date",
        "Calendar date of the event in UTC; the partition column.",
    ),
    (
        "fiscal_month",
        "First day of the fiscal month (fiscal year starts in February).",
    ),
    ("fiscal_quarter", "Fiscal quarter label, e.g. FY25-Q3."),
    (
        "channel",
        "Acquisition channel after the attribution rules in int_marketing__touches.",
    ),
    (
        "source_system",
        "Name of the system the row was loaded from.",
    ),
    (
        "owner_email",
        "Email of the record owner; hashed for users outside the EU.",
    ),
    (
        "segment",
        "Customer segment: enterprise, mid_market or smb.",
    ),
    ("tier", "Pricing tier at the time of the record."),
    ("plan_name", "Name of the subscription plan."),
    ("mrr", "Monthly recurring revenue in USD at month end."),
    ("arr", "Annual recurring revenue in USD (12 x mrr)."),
    (
        "lifetime_value",
        "Sum of net revenue in USD since the first order.",
    ),
    ("session_count", "Number of sessions in the period."),
    ("click_count", "Number of clicks in the period."),
    (
        "conversion_rate",
        "Conversions divided by sessions; null when there were no sessions.",
    ),
    ("first_seen_at", "Earliest event timestamp for this entity."),
    ("last_seen_at", "Latest event timestamp for this entity."),
    (
        "days_since_last_order",
        "Whole days between the last order and the run date.",
    ),
    (
        "cohort_month",
        "Month of the first order, truncated to the first day.",
    ),
    (
        "net_revenue",
        "Revenue after refunds and discounts, in USD.",
    ),
    (
        "gross_margin",
        "Net revenue minus cost of goods sold, in USD.",
    ),
    (
        "valid_from",
        "Start of the validity window of this version of the row.",
    ),
    (
        "valid_to",
        "End of the validity window; null for the current version.",
    ),
    ("batch_id", ""),
    ("_fivetran_synced", ""),
    ("notes", ""),
];

const FIRST_NAMES: &[&str] = &[
    "Priya", "Jonas", "Amara", "Mateo", "Yuki", "Olga", "Kwame", "Lena", "Ravi", "Sofia", "Tomás",
    "Chen", "Aisha", "Henrik", "Noor", "Diego", "Ingrid", "Kofi", "Mei", "Elif",
];
const LAST_NAMES: &[&str] = &[
    "Castellano",
    "Bergström",
    "Okafor",
    "Ferreira",
    "Tanaka",
    "Ivanova",
    "Mensah",
    "Schulz",
    "Iyer",
    "Rossi",
    "Álvarez",
    "Wang",
    "Haddad",
    "Lindqvist",
    "Rahman",
    "Moreno",
    "Nilsen",
    "Boateng",
    "Lin",
    "Yilmaz",
];
const WORKBOOK_KINDS: &[&str] = &[
    "Overview",
    "Dashboard",
    "Deep Dive",
    "Scorecard",
    "Tracker",
    "Review",
    "Explorer",
    "Report",
    "KPIs",
    "Pulse",
    "Forecast",
    "Health",
];
const TAGS: &[&str] = &[
    "certified",
    "finance",
    "exec",
    "draft",
    "weekly",
    "pii",
    "self-service",
    "deprecated",
    "tier-1",
];
const PROJECT_EXTRA: &[&str] = &[
    "Executive",
    "Sandbox",
    "Archive",
    "Shared",
    "Regional",
    "Board",
];

fn title(word: &str) -> String {
    word.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn singular(noun: &str) -> String {
    noun.strip_suffix("ies")
        .map(|s| format!("{s}y"))
        .or_else(|| noun.strip_suffix('s').map(str::to_string))
        .unwrap_or_else(|| noun.to_string())
}

// ---------------------------------------------------------------------------------------------
// The dbt project, as plain data first
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Layer {
    Staging,
    Intermediate,
    Mart,
    Reporting,
}

impl Layer {
    fn folder(self) -> &'static str {
        match self {
            Layer::Staging => "staging",
            Layer::Intermediate => "intermediate",
            Layer::Mart => "marts",
            Layer::Reporting => "reporting",
        }
    }
}

struct Model {
    /// Index in `Project::nodes` (unique ids) of this model.
    node: usize,
    package: &'static str,
    name: String,
    /// Physical name: the name, or `name_vN` for versions.
    alias: String,
    version: Option<u32>,
    latest_version: Option<u32>,
    layer: Layer,
    domain: &'static str,
    entity: &'static str,
    schema: String,
    materialized: &'static str,
    access: &'static str,
    group: Option<&'static str>,
    disabled: bool,
    columns: Vec<(String, String)>,
    /// Upstream nodes (indices into `Project::nodes`).
    parents: Vec<usize>,
    /// For staging models: the source (index into `Project::sources`).
    source: Option<usize>,
    uses_macro: bool,
    tests: Vec<Test>,
}

struct Test {
    node: usize,
    kind: &'static str,
    column: String,
    /// For relationships: the node the test points to.
    to: Option<usize>,
}

struct Source {
    node: usize,
    package: &'static str,
    source_name: String,
    name: String,
    identifier: String,
    columns: Vec<(String, String)>,
}

struct Seed {
    node: usize,
    name: String,
}

struct Snapshot {
    node: usize,
    name: String,
    parent: usize,
}

struct Project {
    seed: u64,
    adapter: Adapter,
    database: &'static str,
    raw_database: &'static str,
    /// Every unique id, in writing order; models, seeds, snapshots, sources, tests all here.
    nodes: Vec<String>,
    /// For a node index: (database, schema, identifier) if it is a relation.
    relation: Vec<Option<(String, String, String)>>,
    models: Vec<Model>,
    /// node index -> model index
    model_of: BTreeMap<usize, usize>,
    sources: Vec<Source>,
    /// node index -> source index
    source_of: BTreeMap<usize, usize>,
    seeds: Vec<Seed>,
    snapshots: Vec<Snapshot>,
    macros: Vec<(String, String, &'static str)>,
}

impl Project {
    fn add_node(&mut self, id: String, rel: Option<(String, String, String)>) -> usize {
        self.nodes.push(id);
        self.relation.push(rel);
        self.nodes.len() - 1
    }

    fn relation_name(&self, node: usize) -> Option<String> {
        let (d, s, i) = self.relation[node].as_ref()?;
        Some(match self.adapter {
            Adapter::Snowflake => format!("{d}.{s}.{i}"),
            Adapter::Duckdb => format!("\"{d}\".\"{s}\".\"{i}\""),
        })
    }

    fn ephemeral(&self, node: usize) -> bool {
        self.model_of
            .get(&node)
            .is_some_and(|&m| self.models[m].materialized == "ephemeral")
    }
}

fn build_project(args: &Args) -> Project {
    let rng = Rng::new(args.seed);
    let (database, raw_database) = match args.adapter {
        Adapter::Snowflake => ("ANALYTICS", "RAW"),
        Adapter::Duckdb => ("warehouse", "raw"),
    };
    let mut p = Project {
        seed: args.seed,
        adapter: args.adapter,
        database,
        raw_database,
        nodes: Vec::new(),
        relation: Vec::new(),
        models: Vec::new(),
        model_of: BTreeMap::new(),
        sources: Vec::new(),
        source_of: BTreeMap::new(),
        seeds: Vec::new(),
        snapshots: Vec::new(),
        macros: Vec::new(),
    };
    let n = args.models;

    // Sources: about one table per ten models, in source systems of ~25 tables.
    let mut r = rng.fork(1);
    let n_sources = (n / 10).max(2);
    let n_systems = (n_sources / 25).max(1);
    for i in 0..n_sources {
        let sys = i % n_systems;
        let base = SOURCE_SYSTEMS[sys % SOURCE_SYSTEMS.len()];
        let region = SOURCE_REGIONS[(sys / SOURCE_SYSTEMS.len()) % SOURCE_REGIONS.len()];
        let round = sys / (SOURCE_SYSTEMS.len() * SOURCE_REGIONS.len());
        let source_name = if round == 0 {
            format!("{base}{region}")
        } else {
            format!("{base}{region}_{round}")
        };
        let k = i / n_systems;
        let noun = NOUNS[k % NOUNS.len()];
        let name = if k < NOUNS.len() {
            singular(noun)
        } else {
            format!("{}_{}", singular(noun), k / NOUNS.len())
        };
        // Some loaders name their tables in upper case (dbt matches on `identifier`).
        let identifier = if r.chance(0.1) {
            format!("{}_TBL", name.to_uppercase())
        } else {
            name.clone()
        };
        let package = if r.chance(0.85) {
            ROOT
        } else {
            PACKAGES[r.below(PACKAGES.len())]
        };
        let id = format!("source.{package}.{source_name}.{name}");
        let rel = (
            raw_database.to_string(),
            source_name.clone(),
            identifier.clone(),
        );
        let node = p.add_node(id, Some(rel));
        let cols = columns(&mut r, &singular(noun), 5, 12);
        p.source_of.insert(node, p.sources.len());
        p.sources.push(Source {
            node,
            package,
            source_name,
            name,
            identifier,
            columns: cols,
        });
    }

    // Seeds and snapshots.
    for i in 0..(n / 100).max(2) {
        let name = format!(
            "{}_mapping{}",
            singular(NOUNS[i % NOUNS.len()]),
            if i < NOUNS.len() {
                String::new()
            } else {
                format!("_{}", i / NOUNS.len())
            }
        );
        let node = p.add_node(
            format!("seed.{ROOT}.{name}"),
            Some((database.into(), "seeds".into(), name.clone())),
        );
        p.seeds.push(Seed { node, name });
    }

    // Models, layer by layer so parents come first.
    let mut r = rng.fork(2);
    let layers = [
        (Layer::Staging, 0.35),
        (Layer::Intermediate, 0.20),
        (Layer::Mart, 0.33),
        (Layer::Reporting, 0.12),
    ];
    let combos = DOMAINS.len() * NOUNS.len() * QUALIFIERS.len();
    let mut index = 0usize;
    let mut by_layer: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new(); // layer folder -> referenceable model nodes
    let mut remaining = n;
    for (li, (layer, share)) in layers.iter().enumerate() {
        let count = if li == layers.len() - 1 {
            remaining
        } else {
            ((n as f64) * share) as usize
        };
        remaining -= count.min(remaining);
        let mut made = 0;
        while made < count {
            let i = index;
            index += 1;
            let domain = DOMAINS[i % DOMAINS.len()];
            let noun = NOUNS[(i / DOMAINS.len()) % NOUNS.len()];
            let qual = QUALIFIERS[(i / (DOMAINS.len() * NOUNS.len())) % QUALIFIERS.len()];
            let round = i / combos;
            let suffix = if round > 0 {
                format!("_{}", round + 1)
            } else {
                String::new()
            };
            let name = match layer {
                Layer::Staging => format!("stg_{domain}__{noun}_{qual}{suffix}"),
                Layer::Intermediate => format!("int_{domain}__{noun}_{qual}{suffix}"),
                Layer::Mart => {
                    let prefix = if r.chance(0.6) { "fct" } else { "dim" };
                    format!("{prefix}_{domain}__{noun}_{qual}{suffix}")
                }
                Layer::Reporting => format!("rpt_{domain}__{noun}_{qual}{suffix}"),
            };
            let package = if r.chance(0.75) {
                ROOT
            } else {
                PACKAGES[i % PACKAGES.len()]
            };
            let schema = match layer {
                Layer::Staging => "staging".to_string(),
                Layer::Intermediate => "intermediate".to_string(),
                Layer::Mart => format!("marts_{domain}"),
                Layer::Reporting => "reporting".to_string(),
            };
            let materialized = match layer {
                Layer::Staging => "view",
                Layer::Intermediate => {
                    if r.chance(0.4) {
                        "ephemeral"
                    } else {
                        "view"
                    }
                }
                Layer::Mart => {
                    if r.chance(0.3) {
                        "incremental"
                    } else {
                        "table"
                    }
                }
                Layer::Reporting => "table",
            };
            // A few models are disabled, private to their domain's group, or versioned.
            let disabled = made % 487 == 5;
            let private =
                !disabled && matches!(layer, Layer::Mart | Layer::Intermediate) && made % 97 == 3;
            let versions: &[Option<u32>] = if !disabled
                && !private
                && *layer == Layer::Mart
                && made % 211 == 7
                && made + 1 < count
            {
                &[Some(1), Some(2)]
            } else {
                &[None]
            };
            let entity: &'static str = NOUNS[(i / DOMAINS.len()) % NOUNS.len()];
            let (min_cols, max_cols) = match layer {
                Layer::Staging => (6, 30),
                Layer::Intermediate => (5, 20),
                Layer::Mart => (5, 30),
                Layer::Reporting => (5, 16),
            };
            let cols = columns(&mut r, &singular(entity), min_cols, max_cols);
            // Parents from the layers below (never disabled, private or versioned ones).
            let mut parents = Vec::new();
            let mut source = None;
            match layer {
                Layer::Staging => {
                    let s = (i * 7 + r.below(3)) % p.sources.len();
                    source = Some(s);
                    parents.push(p.sources[s].node);
                }
                _ => {
                    let pool_names: &[&str] = match layer {
                        Layer::Intermediate => &["staging", "intermediate"],
                        Layer::Mart => &["intermediate", "staging", "marts"],
                        _ => &["marts"],
                    };
                    let want = match layer {
                        Layer::Intermediate => r.range(1, 3),
                        Layer::Mart => r.range(2, 4),
                        _ => r.range(1, 3),
                    };
                    for k in 0..want {
                        let pool_name = pool_names[k.min(pool_names.len() - 1)];
                        let pool = match by_layer.get(pool_name).filter(|v| !v.is_empty()) {
                            Some(v) => v,
                            None => match by_layer.get("staging") {
                                Some(v) => v,
                                None => continue,
                            },
                        };
                        let parent = pool[pool.len() - 1 - r.skewed(pool.len(), 1.5)];
                        if !parents.contains(&parent) {
                            parents.push(parent);
                        }
                    }
                    if parents.is_empty() {
                        let s = r.below(p.sources.len());
                        source = Some(s);
                        parents.push(p.sources[s].node);
                    }
                }
            }
            let uses_macro = r.chance(0.2);
            let latest = if versions.len() > 1 { Some(2) } else { None };
            for v in versions {
                let (id, alias) = match v {
                    Some(v) => (
                        format!("model.{package}.{name}.v{v}"),
                        format!("{name}_v{v}"),
                    ),
                    None => (format!("model.{package}.{name}"), name.clone()),
                };
                let rel = (materialized != "ephemeral")
                    .then(|| (database.to_string(), schema.clone(), alias.clone()));
                let node = p.add_node(id, rel);
                let m = Model {
                    node,
                    package,
                    name: name.clone(),
                    alias,
                    version: *v,
                    latest_version: latest,
                    layer: *layer,
                    domain,
                    entity,
                    schema: schema.clone(),
                    materialized,
                    access: if private { "private" } else { "protected" },
                    group: private.then_some(domain),
                    disabled,
                    columns: cols.clone(),
                    parents: parents.clone(),
                    source,
                    uses_macro,
                    tests: Vec::new(),
                };
                p.model_of.insert(node, p.models.len());
                p.models.push(m);
                made += 1;
                if !disabled && !private && v.is_none() {
                    by_layer.entry(layer.folder()).or_default().push(node);
                }
            }
        }
    }

    // Snapshots of some marts.
    let marts = by_layer.get("marts").cloned().unwrap_or_default();
    for i in 0..(n / 250).max(1) {
        let parent = if marts.is_empty() {
            p.models[0].node
        } else {
            marts[(i * 13) % marts.len()]
        };
        let pm = &p.models[p.model_of[&parent]];
        let name = format!("{}_snapshot", pm.name);
        let node = p.add_node(
            format!("snapshot.{ROOT}.{name}"),
            Some((database.into(), "snapshots".into(), name.clone())),
        );
        p.snapshots.push(Snapshot { node, name, parent });
    }

    // About two generic tests per enabled model: unique + not_null on the key, now and then an
    // accepted_values or relationships test instead of one of them.
    let mut r = rng.fork(3);
    for mi in 0..p.models.len() {
        if p.models[mi].disabled {
            continue;
        }
        let m = &p.models[mi];
        let pk = m.columns[0].0.clone();
        let model_name = m.alias.clone();
        let package = m.package;
        let mut tests: Vec<(&'static str, String, Option<usize>)> =
            vec![("unique", pk.clone(), None), ("not_null", pk, None)];
        let roll = r.unit();
        if roll < 0.10 {
            if let Some(c) = m
                .columns
                .iter()
                .find(|c| c.0 == "status" || c.0 == "segment")
            {
                tests[0] = ("accepted_values", c.0.clone(), None);
            }
        } else if roll < 0.20 {
            let parent = m
                .parents
                .iter()
                .copied()
                .find(|x| p.model_of.contains_key(x));
            if let (Some(parent), Some(c)) = (parent, m.columns.get(2)) {
                tests.push(("relationships", c.0.clone(), Some(parent)));
            }
        } else if roll < 0.30 {
            tests.pop();
        }
        let mut made = Vec::new();
        for (kind, column, to) in tests {
            let tname = format!("{kind}_{model_name}_{column}");
            let id = format!("test.{package}.{tname}.{}", r.hex(10));
            let node = p.add_node(id, None);
            made.push(Test {
                node,
                kind,
                column,
                to,
            });
        }
        p.models[mi].tests = made;
    }

    // Macros: dbt's own and the adapter's (as every manifest carries them), and the project's.
    let mut r = rng.fork(4);
    let adapter_pkg: &'static str = match args.adapter {
        Adapter::Snowflake => "dbt_snowflake",
        Adapter::Duckdb => "dbt_duckdb",
    };
    let verbs = [
        "get", "create", "drop", "alter", "rename", "truncate", "make", "load", "list", "check",
        "build", "render",
    ];
    let objects = [
        "table_as",
        "view_as",
        "relation",
        "schema",
        "columns_in_relation",
        "catalog",
        "incremental_sql",
        "merge_sql",
        "delete_insert_sql",
        "snapshot_staging_table",
        "test_sql",
        "where_subquery",
        "limit_subquery_sql",
        "grant_sql",
        "revoke_sql",
        "show_grant_sql",
        "dispatch_list",
        "column_schema_from_query",
        "empty_subquery_sql",
        "relations_by_pattern",
        "intermediate_relation",
        "backup_relation",
        "table_columns_and_constraints",
        "assert_columns_equivalent",
        "select_subquery",
        "batch_size",
    ];
    let mut k = 0;
    'outer: for obj in objects {
        for verb in verbs {
            if k >= 420 {
                break 'outer;
            }
            let name = format!("default__{verb}_{obj}");
            let sql = macro_sql(&mut r, &name);
            p.macros.push((format!("macro.dbt.{name}"), sql, "dbt"));
            k += 1;
        }
    }
    for (i, obj) in objects.iter().enumerate().take(60.min(objects.len() * 3)) {
        let prefix = adapter_pkg.trim_start_matches("dbt_");
        let name = format!("{prefix}__{}_{obj}", verbs[i % verbs.len()]);
        let sql = macro_sql(&mut r, &name);
        p.macros
            .push((format!("macro.{adapter_pkg}.{name}"), sql, adapter_pkg));
    }
    p.macros.push((format!("macro.{ROOT}.cents_to_dollars"), "{% macro cents_to_dollars(column_name, scale=2) -%}\n    ({{ column_name }} / 100)::numeric(16, {{ scale }})\n{%- endmacro %}".into(), ROOT));
    for i in 0..(n / 200) {
        let name = format!(
            "{}_{}",
            verbs[i % verbs.len()],
            objects[(i / verbs.len()) % objects.len()]
        );
        let name = if i >= verbs.len() * objects.len() {
            format!("{name}_{}", i / (verbs.len() * objects.len()))
        } else {
            name
        };
        let sql = macro_sql(&mut r, &name);
        p.macros.push((format!("macro.{ROOT}.{name}"), sql, ROOT));
    }
    p
}

/// 5..=max columns (skewed towards fewer), the first being the key.
fn columns(r: &mut Rng, entity: &str, min: usize, max: usize) -> Vec<(String, String)> {
    let count = min + ((r.unit().powf(1.8)) * (max - min + 1) as f64) as usize;
    let mut out: Vec<(String, String)> = Vec::with_capacity(count);
    let mut used = BTreeSet::new();
    out.push((
        COLUMNS[0].0.replace("{e}", entity),
        COLUMNS[0].1.replace("{e}", entity),
    ));
    used.insert(0);
    let mut tries = 0;
    while out.len() < count && tries < 200 {
        tries += 1;
        let i = 1 + r.below(COLUMNS.len() - 1);
        let (n, d) = COLUMNS[i];
        let name = n.replace("{e}", entity);
        if used.insert(i) && !out.iter().any(|c| c.0 == name) {
            out.push((name, d.replace("{e}", entity)));
        }
    }
    out
}

fn macro_sql(r: &mut Rng, name: &str) -> String {
    let args = ["relation", "sql", "temporary", "columns", "model", "config"];
    let a = args[r.below(args.len())];
    let b = args[r.below(args.len())];
    let mut s = format!("{{% macro {name}({a}, {b}=none) -%}}\n");
    let lines = r.range(4, 14);
    for i in 0..lines {
        match i % 5 {
            0 => {
                let _ = writeln!(
                    s,
                    "  {{%- set target_relation = {a}.incorporate(type='table') -%}}"
                );
            }
            1 => {
                let _ = writeln!(
                    s,
                    "  {{% if {b} is not none and config.get('contract').enforced %}}"
                );
            }
            2 => {
                let _ = writeln!(s, "    {{{{ get_assert_columns_equivalent({b}) }}}}");
            }
            3 => s.push_str("  {% endif %}\n"),
            _ => {
                let _ = writeln!(s, "  {{% call statement('{name}_{i}', fetch_result=True) -%}}\n    select * from {{{{ {a} }}}} where 1 = 0\n  {{%- endcall %}}");
            }
        }
    }
    s.push_str("{%- endmacro %}");
    s
}

// ---------------------------------------------------------------------------------------------
// manifest.json
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    manifest_bytes: u64,
    site_bytes: u64,
    models: usize,
    models_disabled: usize,
    models_private: usize,
    models_versioned: usize,
    models_ephemeral: usize,
    tests: usize,
    seeds: usize,
    snapshots: usize,
    sources: usize,
    macros: usize,
    bytes_by_kind: BTreeMap<&'static str, u64>,
    workbooks: usize,
    projects: usize,
    published_datasources: usize,
    embedded_datasources: usize,
    custom_sql_supported: usize,
    custom_sql_unsupported: usize,
    /// Of the unsupported: queries our parser is meant to reject.
    custom_sql_unparseable: usize,
    /// Supported queries whose Tableau `tables` list holds an alias (DataHub #9841).
    custom_sql_alias_listed: usize,
    /// Per category of table reference (workbook x table, embedded and published paths).
    table_refs: BTreeMap<&'static str, usize>,
    distinct_tables: usize,
}

impl Stats {
    fn to_json(&self, args: &Args) -> String {
        let mut s = String::new();
        let mut o = Obj::open(&mut s);
        o.num("models_arg", args.models)
            .num("workbooks_arg", args.workbooks)
            .num("seed", args.seed)
            .s("adapter", &format!("{:?}", args.adapter).to_lowercase())
            .num("manifest_bytes", self.manifest_bytes)
            .num("site_bytes", self.site_bytes)
            .num("models", self.models)
            .num("models_disabled", self.models_disabled)
            .num("models_private", self.models_private)
            .num("models_versioned", self.models_versioned)
            .num("models_ephemeral", self.models_ephemeral)
            .num("tests", self.tests)
            .num("seeds", self.seeds)
            .num("snapshots", self.snapshots)
            .num("sources", self.sources)
            .num("macros", self.macros)
            .obj("bytes_by_kind", |o| {
                for (k, v) in &self.bytes_by_kind {
                    o.num(k, v);
                }
            })
            .num("workbooks", self.workbooks)
            .num("projects", self.projects)
            .num("published_datasources", self.published_datasources)
            .num("embedded_datasources", self.embedded_datasources)
            .num("custom_sql_supported", self.custom_sql_supported)
            .num("custom_sql_unsupported", self.custom_sql_unsupported)
            .num("custom_sql_unparseable", self.custom_sql_unparseable)
            .num("custom_sql_alias_listed", self.custom_sql_alias_listed)
            .obj("table_refs", |o| {
                for (k, v) in &self.table_refs {
                    o.num(k, v);
                }
            })
            .num("table_refs_total", self.table_refs.values().sum::<usize>())
            .num("distinct_tables", self.distinct_tables);
        o.close();
        s.push('\n');
        s
    }
}

/// Streams the manifest to `path`; returns its size.
fn write_manifest(p: &Project, path: &Path, stats: &mut Stats) -> std::io::Result<u64> {
    let file = std::fs::File::create(path)?;
    let mut out = Counting {
        inner: std::io::BufWriter::with_capacity(1 << 20, file),
        n: 0,
    };
    let mut r = Rng::new(p.seed).fork(10);
    let mut clock = 1_795_493_000.0f64;
    let mut tick = |r: &mut Rng| {
        clock += 0.000_5 + r.unit() * 0.002;
        clock
    };
    let mut buf = String::with_capacity(1 << 16);

    // Children of every node, for child_map (parent_map is each node's own parents).
    let mut parents_of: Vec<Vec<usize>> = vec![Vec::new(); p.nodes.len()];
    for m in &p.models {
        if !m.disabled {
            parents_of[m.node] = m.parents.clone();
            for t in &m.tests {
                parents_of[t.node] = std::iter::once(m.node).chain(t.to).collect();
            }
        }
    }
    for s in &p.snapshots {
        parents_of[s.node] = vec![s.parent];
    }
    let mut children_of: Vec<Vec<usize>> = vec![Vec::new(); p.nodes.len()];
    for (child, parents) in parents_of.iter().enumerate() {
        for &parent in parents {
            children_of[parent].push(child);
        }
    }

    out.write_all(b"{\"metadata\":")?;
    buf.clear();
    {
        let mut o = Obj::open(&mut buf);
        o.s(
            "dbt_schema_version",
            "https://schemas.getdbt.com/dbt/manifest/v12.json",
        )
        .s("dbt_version", "1.10.23")
        .s("generated_at", "2026-11-24T04:03:34.211189Z")
        .s("invocation_id", &r.uuid())
        .s("invocation_started_at", "2026-11-24T04:02:51.903990Z")
        .raw("env", "{}")
        .s("project_name", ROOT)
        .s("project_id", &r.hex(32))
        .null("user_id")
        .b("send_anonymous_usage_stats", false)
        .s(
            "adapter_type",
            match p.adapter {
                Adapter::Snowflake => "snowflake",
                Adapter::Duckdb => "duckdb",
            },
        )
        .obj("quoting", |o| {
            let q = p.adapter == Adapter::Duckdb;
            o.b("database", q)
                .b("schema", q)
                .b("identifier", q)
                .null("column");
        });
        o.close();
    }
    out.write_all(buf.as_bytes())?;

    // nodes
    out.write_all(b",\"nodes\":{")?;
    let mut first = true;
    let mut emit = |out: &mut Counting,
                    id: &str,
                    body: &str,
                    kind: &'static str,
                    stats: &mut Stats|
     -> std::io::Result<()> {
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        let mut k = String::with_capacity(id.len() + 3);
        quote(&mut k, id);
        k.push(':');
        out.write_all(k.as_bytes())?;
        out.write_all(body.as_bytes())?;
        *stats.bytes_by_kind.entry(kind).or_default() += (k.len() + body.len() + 1) as u64;
        Ok(())
    };
    for m in p.models.iter().filter(|m| !m.disabled) {
        buf.clear();
        let created = tick(&mut r);
        model_json(p, m, &mut r, created, &mut buf);
        emit(&mut out, &p.nodes[m.node], &buf, "model", stats)?;
        stats.models += 1;
        stats.models_private += usize::from(m.access == "private");
        stats.models_versioned += usize::from(m.version.is_some());
        stats.models_ephemeral += usize::from(m.materialized == "ephemeral");
    }
    for s in &p.seeds {
        buf.clear();
        let created = tick(&mut r);
        seed_json(p, s, &mut r, created, &mut buf);
        emit(&mut out, &p.nodes[s.node], &buf, "seed", stats)?;
        stats.seeds += 1;
    }
    for s in &p.snapshots {
        buf.clear();
        let created = tick(&mut r);
        snapshot_json(p, s, &mut r, created, &mut buf);
        emit(&mut out, &p.nodes[s.node], &buf, "snapshot", stats)?;
        stats.snapshots += 1;
    }
    for (i, hook) in [
        "create schema if not exists {{ target.schema }}_audit",
        "{{ grant_select_on_schemas(schemas, 'reporter') }}",
    ]
    .iter()
    .enumerate()
    {
        let when = if i == 0 { "on-run-start" } else { "on-run-end" };
        let name = format!("{ROOT}-{when}-0");
        let id = format!("operation.{ROOT}.{name}");
        buf.clear();
        let created = tick(&mut r);
        operation_json(p, &name, &id, when, hook, &mut r, created, &mut buf);
        emit(&mut out, &id, &buf, "operation", stats)?;
    }
    for m in p.models.iter().filter(|m| !m.disabled) {
        for t in &m.tests {
            buf.clear();
            let created = tick(&mut r);
            test_json(p, m, t, &mut r, created, &mut buf);
            emit(&mut out, &p.nodes[t.node], &buf, "test", stats)?;
            stats.tests += 1;
        }
    }
    out.write_all(b"}")?;

    // sources
    out.write_all(b",\"sources\":{")?;
    for (i, s) in p.sources.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        buf.clear();
        quote(&mut buf, &p.nodes[s.node]);
        buf.push(':');
        let created = tick(&mut r);
        source_json(p, s, &mut r, created, &mut buf);
        out.write_all(buf.as_bytes())?;
        *stats.bytes_by_kind.entry("source").or_default() += buf.len() as u64;
        stats.sources += 1;
    }
    out.write_all(b"}")?;

    // macros
    out.write_all(b",\"macros\":{")?;
    for (i, (id, sql, package)) in p.macros.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        buf.clear();
        quote(&mut buf, id);
        buf.push(':');
        let name = id.rsplit('.').next().unwrap_or(id);
        let file = if *package == ROOT {
            format!("macros/{name}.sql")
        } else {
            "macros/adapters.sql".to_string()
        };
        let created = tick(&mut r);
        let mut o = Obj::open(&mut buf);
        o.s("name", name)
            .s("resource_type", "macro")
            .s("package_name", package)
            .s("path", &file)
            .s("original_file_path", &file)
            .s("unique_id", id)
            .s("macro_sql", sql)
            .obj("depends_on", |o| {
                o.strs(
                    "macros",
                    &if i % 3 == 0 {
                        vec!["macro.dbt.statement".to_string()]
                    } else {
                        vec![]
                    },
                );
            })
            .s(
                "description",
                if *package == ROOT {
                    "Project macro; see the macros folder README."
                } else {
                    ""
                },
            )
            .raw("meta", "{}")
            .obj("docs", |o| {
                o.b("show", true).null("node_color");
            })
            .null("patch_path")
            .raw("arguments", "[]")
            .num("created_at", created)
            .null("supported_languages");
        o.close();
        out.write_all(buf.as_bytes())?;
        *stats.bytes_by_kind.entry("macro").or_default() += buf.len() as u64;
        stats.macros += 1;
    }
    out.write_all(b"}")?;

    // docs
    buf.clear();
    buf.push_str(",\"docs\":{");
    let overview = "### Welcome!\n\nWelcome to the auto-generated documentation for your dbt project!\n\n### Navigation\n\nYou can use the `Project` and `Database` navigation tabs on the left side of the window to explore the models\nin your project.";
    quote(&mut buf, "doc.dbt.__overview__");
    buf.push(':');
    {
        let mut o = Obj::open(&mut buf);
        o.s("name", "__overview__")
            .s("resource_type", "doc")
            .s("package_name", "dbt")
            .s("path", "overview.md")
            .s("original_file_path", "docs/overview.md")
            .s("unique_id", "doc.dbt.__overview__")
            .s("block_contents", overview);
        o.close();
    }
    for d in DOMAINS {
        buf.push(',');
        let id = format!("doc.{ROOT}.{d}_overview");
        quote(&mut buf, &id);
        buf.push(':');
        let mut o = Obj::open(&mut buf);
        o.s("name", &format!("{d}_overview"))
            .s("resource_type", "doc")
            .s("package_name", ROOT)
            .s("path", &format!("docs/{d}.md"))
            .s("original_file_path", &format!("models/docs/{d}.md"))
            .s("unique_id", &id)
            .s(
                "block_contents",
                &format!(
                    "Models owned by the {} team. Marts are rebuilt nightly at 02:00 UTC; reporting models after them.",
                    title(d)
                ),
            );
        o.close();
    }
    buf.push('}');

    // exposures written by hand (autoexpose must not clash with their names)
    buf.push_str(",\"exposures\":{");
    let marts: Vec<&Model> = p
        .models
        .iter()
        .filter(|m| m.layer == Layer::Mart && !m.disabled && m.access != "private")
        .take(3)
        .collect();
    for (i, m) in marts.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        let name = format!("{}_board_pack", m.domain);
        let id = format!("exposure.{ROOT}.{name}");
        quote(&mut buf, &id);
        buf.push(':');
        let created = tick(&mut r);
        let mut o = Obj::open(&mut buf);
        o.s("name", &name)
            .s("resource_type", "exposure")
            .s("package_name", ROOT)
            .s("path", "exposures.yml")
            .s("original_file_path", "models/exposures.yml")
            .s("unique_id", &id)
            .strs("fqn", &[ROOT, &name])
            .s("type", "dashboard")
            .obj("owner", |o| {
                o.s("email", "bi-team@example.com").s("name", "BI team");
            })
            .s("description", "Monthly board pack, maintained by hand.")
            .s("label", &format!("{} board pack", title(m.domain)))
            .s("maturity", "high")
            .raw("meta", "{}")
            .raw("tags", "[]")
            .obj("config", |o| {
                o.b("enabled", true).raw("tags", "[]").raw("meta", "{}");
            })
            .raw("unrendered_config", "{}")
            .s("url", "https://bi.example.com/board")
            .obj("depends_on", |o| {
                o.raw("macros", "[]").strs("nodes", &[&p.nodes[m.node]]);
            })
            .arr("refs", |a| {
                a.obj(|o| {
                    o.s("name", &m.name).null("package").null("version");
                });
            })
            .raw("sources", "[]")
            .raw("metrics", "[]")
            .num("created_at", created);
        o.close();
    }
    buf.push('}');
    buf.push_str(",\"metrics\":{}");

    // groups: one per domain that has private models
    buf.push_str(",\"groups\":{");
    let groups: BTreeSet<&str> = p.models.iter().filter_map(|m| m.group).collect();
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        let id = format!("group.{ROOT}.{g}");
        quote(&mut buf, &id);
        buf.push(':');
        let mut o = Obj::open(&mut buf);
        o.s("name", g)
            .s("resource_type", "group")
            .s("package_name", ROOT)
            .s("path", &format!("{g}/_{g}.yml"))
            .s("original_file_path", &format!("models/{g}/_{g}.yml"))
            .s("unique_id", &id)
            .obj("owner", |o| {
                o.s("email", &format!("{g}-data@example.com"))
                    .s("name", &format!("{} data team", title(g)));
            })
            .null("description")
            .obj("config", |o| {
                o.raw("meta", "{}").s("materialized", "table");
            });
        o.close();
    }
    buf.push('}');
    buf.push_str(",\"selectors\":{}");
    out.write_all(buf.as_bytes())?;

    // disabled
    out.write_all(b",\"disabled\":{")?;
    for (i, m) in p.models.iter().filter(|m| m.disabled).enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        buf.clear();
        quote(&mut buf, &p.nodes[m.node]);
        buf.push_str(":[");
        let created = tick(&mut r);
        model_json(p, m, &mut r, created, &mut buf);
        buf.push(']');
        out.write_all(buf.as_bytes())?;
        stats.models_disabled += 1;
    }
    out.write_all(b"}")?;

    // parent_map and child_map: every enabled node, source and exposure
    let listed: Vec<usize> = p
        .models
        .iter()
        .filter(|m| !m.disabled)
        .map(|m| m.node)
        .chain(p.seeds.iter().map(|s| s.node))
        .chain(p.snapshots.iter().map(|s| s.node))
        .chain(
            p.models
                .iter()
                .filter(|m| !m.disabled)
                .flat_map(|m| m.tests.iter().map(|t| t.node)),
        )
        .collect();
    let exposure_ids: Vec<(String, usize)> = marts
        .iter()
        .map(|m| (format!("exposure.{ROOT}.{}_board_pack", m.domain), m.node))
        .collect();
    for (map_name, map) in [("parent_map", &parents_of), ("child_map", &children_of)] {
        out.write_all(format!(",\"{map_name}\":{{").as_bytes())?;
        let mut first = true;
        let mut write_entry =
            |out: &mut Counting, id: &str, list: Vec<&str>| -> std::io::Result<()> {
                buf.clear();
                if !first {
                    buf.push(',');
                }
                first = false;
                quote(&mut buf, id);
                buf.push(':');
                str_list(&mut buf, &list);
                out.write_all(buf.as_bytes())?;
                *stats.bytes_by_kind.entry("maps").or_default() += buf.len() as u64;
                Ok(())
            };
        for &node in &listed {
            let mut list: Vec<&str> = map[node].iter().map(|&x| p.nodes[x].as_str()).collect();
            if map_name == "child_map" {
                list.extend(
                    exposure_ids
                        .iter()
                        .filter(|(_, n)| *n == node)
                        .map(|(id, _)| id.as_str()),
                );
            }
            write_entry(&mut out, &p.nodes[node], list)?;
        }
        for s in &p.sources {
            let list = if map_name == "parent_map" {
                vec![]
            } else {
                map[s.node].iter().map(|&x| p.nodes[x].as_str()).collect()
            };
            write_entry(&mut out, &p.nodes[s.node], list)?;
        }
        for hook in ["on-run-start", "on-run-end"] {
            write_entry(
                &mut out,
                &format!("operation.{ROOT}.{ROOT}-{hook}-0"),
                vec![],
            )?;
        }
        for (id, node) in &exposure_ids {
            let list = if map_name == "parent_map" {
                vec![p.nodes[*node].as_str()]
            } else {
                vec![]
            };
            write_entry(&mut out, id, list)?;
        }
        out.write_all(b"}")?;
    }

    // group_map and the rest
    buf.clear();
    buf.push_str(",\"group_map\":{");
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        quote(&mut buf, g);
        buf.push(':');
        let members: Vec<&str> = p
            .models
            .iter()
            .filter(|m| m.group == Some(g) && !m.disabled)
            .map(|m| p.nodes[m.node].as_str())
            .collect();
        str_list(&mut buf, &members);
    }
    buf.push_str("},\"saved_queries\":{},\"semantic_models\":{},\"unit_tests\":{}}");
    out.write_all(buf.as_bytes())?;
    out.inner.flush()?;
    Ok(out.n)
}

struct Counting {
    inner: std::io::BufWriter<std::fs::File>,
    n: u64,
}

impl Counting {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.n += b.len() as u64;
        self.inner.write_all(b)
    }
}

fn model_config(o: &mut Obj, m: &Model) {
    o.b("enabled", !m.disabled)
        .null("alias")
        .null("schema")
        .null("database")
        .strs(
            "tags",
            &if m.layer == Layer::Mart {
                vec![m.domain]
            } else {
                vec![]
            },
        )
        .raw("meta", "{}")
        .os("group", m.group)
        .s("materialized", m.materialized)
        .os(
            "incremental_strategy",
            (m.materialized == "incremental").then_some("merge"),
        )
        .null("batch_size")
        .num("lookback", 1)
        .null("begin")
        .raw("persist_docs", "{}")
        .raw("post-hook", "[]")
        .raw("pre-hook", "[]")
        .raw("quoting", "{}")
        .raw("column_types", "{}")
        .null("full_refresh")
        .os(
            "unique_key",
            (m.materialized == "incremental").then_some(m.columns[0].0.as_str()),
        )
        .s(
            "on_schema_change",
            if m.materialized == "incremental" {
                "append_new_columns"
            } else {
                "ignore"
            },
        )
        .with(config_tail)
        .s("access", m.access)
        .null("freshness");
}

fn columns_json(o: &mut Obj, cols: &[(String, String)], typed: bool) {
    o.obj("columns", |o| {
        for (i, (name, desc)) in cols.iter().enumerate() {
            o.obj(name, |o| {
                let dt = if !typed {
                    None
                } else if name.ends_with("_at") || name.ends_with("_ts") {
                    Some("timestamp_ntz")
                } else if name.ends_with("_id") || name.ends_with("_count") || name == "quantity" {
                    Some("number")
                } else if name.starts_with("is_") {
                    Some("boolean")
                } else {
                    Some("varchar")
                };
                o.s("name", name)
                    .s("description", desc)
                    .raw("meta", "{}")
                    .os("data_type", dt)
                    .raw("constraints", "[]")
                    .null("quote")
                    .obj("config", |o| {
                        o.raw("meta", "{}").raw("tags", "[]");
                    })
                    .raw("tags", if i == 0 { "[\"pk\"]" } else { "[]" })
                    .null("granularity")
                    .raw("doc_blocks", "[]");
            });
        }
    });
}

/// `ref('name')`, or `ref('package', 'name')` across packages.
fn ref_call(p: &Project, from: &Model, node: usize) -> String {
    let m = &p.models[p.model_of[&node]];
    if m.package != from.package && m.package != ROOT {
        format!("ref('{}', '{}')", m.package, m.name)
    } else {
        format!("ref('{}')", m.name)
    }
}

fn upstream_name(p: &Project, node: usize) -> String {
    if let Some(&mi) = p.model_of.get(&node) {
        p.models[mi].name.clone()
    } else if let Some(s) = p.source_of.get(&node).map(|&i| &p.sources[i]) {
        s.name.clone()
    } else {
        "upstream".into()
    }
}

/// raw_code and compiled_code of a model, and the CTEs dbt inlines for ephemeral parents.
fn model_sql(p: &Project, m: &Model) -> (String, String, Vec<(String, String)>) {
    let mut raw = String::with_capacity(2048);
    let mut compiled = String::with_capacity(2048);
    let mut ctes = Vec::new();
    if m.materialized == "incremental" {
        let _ = writeln!(raw, "{{{{\n    config(\n        materialized='incremental',\n        unique_key='{}',\n        on_schema_change='append_new_columns'\n    )\n}}}}\n", m.columns[0].0);
        compiled.push_str("\n\n");
    }
    // One import CTE per upstream.
    let mut aliases = Vec::new();
    for (k, &parent) in m.parents.iter().enumerate() {
        let alias = format!(
            "{}{}",
            upstream_name(p, parent).split("__").last().unwrap_or("src"),
            if k > 0 {
                format!("_{k}")
            } else {
                String::new()
            }
        );
        let alias = alias
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .to_string();
        let is_source = p.source_of.contains_key(&parent);
        let alias = if is_source {
            "source".to_string()
        } else {
            alias
        };
        let (raw_from, compiled_from) =
            if let Some(s) = p.source_of.get(&parent).map(|&i| &p.sources[i]) {
                (
                    format!("{{{{ source('{}', '{}') }}}}", s.source_name, s.name),
                    p.relation_name(parent).unwrap_or_default(),
                )
            } else if p.ephemeral(parent) {
                let pm = &p.models[p.model_of[&parent]];
                let cte = format!("__dbt__cte__{}", pm.name);
                let inner_from = pm
                    .parents
                    .first()
                    .and_then(|&x| p.relation_name(x))
                    .unwrap_or_else(|| "(select 1)".into());
                let cols: Vec<&str> = pm.columns.iter().take(6).map(|c| c.0.as_str()).collect();
                ctes.push((
                    p.nodes[parent].clone(),
                    format!(
                        " {cte} as (\nselect\n    {}\nfrom {inner_from}\n)",
                        cols.join(",\n    ")
                    ),
                ));
                (format!("{{{{ {} }}}}", ref_call(p, m, parent)), cte)
            } else {
                (
                    format!("{{{{ {} }}}}", ref_call(p, m, parent)),
                    p.relation_name(parent).unwrap_or_default(),
                )
            };
        let _ = write!(
            raw,
            "{}{alias} as (\n\n    select * from {raw_from}\n",
            if k == 0 { "with " } else { "" }
        );
        let _ = write!(
            compiled,
            "{}{alias} as (\n\n    select * from {compiled_from}\n",
            if k == 0 { "with " } else { "" }
        );
        if m.materialized == "incremental" && k == 0 {
            raw.push_str("    {% if is_incremental() %}\n    where updated_at > (select max(updated_at) from {{ this }})\n    {% endif %}\n");
            let _ = writeln!(
                compiled,
                "    \n    where updated_at > (select max(updated_at) from {})\n    ",
                p.relation_name(m.node).unwrap_or_default()
            );
        }
        raw.push_str("\n),\n\n");
        compiled.push_str("\n),\n\n");
        aliases.push(alias);
    }
    // The final CTE: the columns, with a join and a filter.
    let base = &aliases[0];
    let mut select_raw = String::new();
    let mut select_compiled = String::new();
    for (i, (c, _)) in m.columns.iter().enumerate() {
        let sep = if i + 1 < m.columns.len() { "," } else { "" };
        if m.uses_macro && (c == "amount" || c == "tax_amount" || c == "discount_amount") {
            let _ = writeln!(
                select_raw,
                "        {{{{ cents_to_dollars('{base}.{c}_cents') }}}} as {c}{sep}"
            );
            let _ = writeln!(
                select_compiled,
                "        ({base}.{c}_cents / 100)::numeric(16, 2) as {c}{sep}"
            );
        } else if m.layer == Layer::Staging && i > 0 && i % 4 == 0 {
            let _ = writeln!(
                select_raw,
                "        cast({base}.{c} as varchar) as {c}{sep}"
            );
            let _ = writeln!(
                select_compiled,
                "        cast({base}.{c} as varchar) as {c}{sep}"
            );
        } else {
            let _ = writeln!(select_raw, "        {base}.{c}{sep}");
            let _ = writeln!(select_compiled, "        {base}.{c}{sep}");
        }
    }
    let mut tail = String::from("    from ");
    tail.push_str(base);
    for other in aliases.iter().skip(1) {
        let key = &m.columns[0].0;
        let _ = write!(
            tail,
            "\n    left join {other} on {other}.{key} = {base}.{key}"
        );
    }
    tail.push_str("\n    where not coalesce(");
    tail.push_str(base);
    tail.push_str(".is_deleted, false)\n\n)\n\nselect * from final");
    let _ = write!(raw, "final as (\n\n    select\n{select_raw}{tail}");
    let _ = write!(
        compiled,
        "final as (\n\n    select\n{select_compiled}{tail}"
    );
    if !ctes.is_empty() {
        let inlined: Vec<String> = ctes.iter().map(|(_, sql)| sql.clone()).collect();
        compiled = format!(
            "with {}, {}",
            inlined.join(", "),
            compiled
                .trim_start_matches("\n")
                .trim_start_matches("with ")
        );
    }
    (raw, compiled, ctes)
}

fn model_json(p: &Project, m: &Model, r: &mut Rng, created: f64, buf: &mut String) {
    let file = format!(
        "{}/{}{}.sql",
        m.layer.folder(),
        m.name,
        m.version.map(|v| format!("_v{v}")).unwrap_or_default()
    );
    let (raw, compiled, ctes) = model_sql(p, m);
    let mut fqn: Vec<String> = vec![m.package.to_string(), m.layer.folder().to_string()];
    if m.layer == Layer::Mart {
        fqn.push(m.domain.to_string());
    }
    fqn.push(m.name.clone());
    if let Some(v) = m.version {
        fqn.push(format!("v{v}"));
    }
    let rel = p.relation_name(m.node);
    let mut o = Obj::open(buf);
    o.s("database", p.database)
        .s("schema", &m.schema)
        .s("name", &m.name)
        .s("resource_type", "model")
        .s("package_name", m.package)
        .s("path", &file)
        .s("original_file_path", &format!("models/{file}"))
        .s("unique_id", &p.nodes[m.node])
        .strs("fqn", &fqn)
        .s("alias", &m.alias)
        .obj("checksum", |o| {
            o.s("name", "sha256").s("checksum", &r.hex(64));
        })
        .obj("config", |o| model_config(o, m))
        .strs("tags", &if m.layer == Layer::Mart { vec![m.domain] } else { vec![] })
        .s(
            "description",
            &format!(
                "{} {} for the {} domain: one row per {}. Built from {} upstream relation(s); refreshed by the nightly job.",
                title(m.layer.folder()),
                m.entity.replace('_', " "),
                m.domain,
                singular(m.entity).replace('_', " "),
                m.parents.len()
            ),
        );
    columns_json(&mut o, &m.columns, m.layer == Layer::Mart);
    o.raw("meta", "{}")
        .os("group", m.group)
        .obj("docs", |o| {
            o.b("show", true).null("node_color");
        })
        .s(
            "patch_path",
            &format!(
                "{}://models/{}/_{}.yml",
                m.package,
                m.layer.folder(),
                m.layer.folder()
            ),
        )
        .os(
            "build_path",
            (!m.disabled)
                .then(|| format!("target/run/{}/models/{file}", m.package))
                .as_deref(),
        )
        .obj("unrendered_config", |o| {
            o.s("materialized", m.materialized);
            if m.disabled {
                o.b("enabled", false);
            }
            if let Some(g) = m.group {
                o.s("group", g).s("access", "private");
            }
        })
        .num("created_at", created)
        .os("relation_name", rel.as_deref())
        .s("raw_code", &raw)
        .raw("doc_blocks", "[]")
        .s("language", "sql")
        .arr("refs", |a| {
            for &x in &m.parents {
                if let Some(&pm) = p.model_of.get(&x) {
                    let pm = &p.models[pm];
                    a.obj(|o| {
                        o.s("name", &pm.name)
                            .os(
                                "package",
                                (pm.package != m.package && pm.package != ROOT)
                                    .then_some(pm.package),
                            )
                            .null("version");
                    });
                }
            }
        })
        .arr("sources", |a| {
            if let Some(s) = m.source.map(|s| &p.sources[s]) {
                let o = a.item();
                str_list(o, &[&s.source_name, &s.name]);
            }
        })
        .raw("metrics", "[]")
        .obj("depends_on", |o| {
            o.strs(
                "macros",
                &if m.uses_macro {
                    vec![format!("macro.{ROOT}.cents_to_dollars")]
                } else {
                    vec![]
                },
            );
            let nodes: Vec<&str> = if m.disabled {
                vec![]
            } else {
                m.parents.iter().map(|&x| p.nodes[x].as_str()).collect()
            };
            o.strs("nodes", &nodes);
        });
    if m.disabled {
        o.null("compiled_path");
    } else {
        o.s(
            "compiled_path",
            &format!("target/compiled/{}/models/{file}", m.package),
        )
        .b("compiled", true)
        .s("compiled_code", &compiled)
        .b("extra_ctes_injected", true)
        .arr("extra_ctes", |a| {
            for (id, sql) in &ctes {
                a.obj(|o| {
                    o.s("id", id).s("sql", sql);
                });
            }
        });
    }
    o.obj("contract", |o| {
        o.b("enforced", false)
            .b("alias_types", true)
            .null("checksum");
    })
    .s("access", m.access)
    .raw("constraints", "[]")
    .raw(
        "version",
        &m.version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "null".into()),
    )
    .raw(
        "latest_version",
        &m.latest_version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "null".into()),
    )
    .null("deprecation_date")
    .strs("primary_key", &[&m.columns[0].0])
    .null("time_spine");
    o.close();
}

/// The keys every dbt 1.10 node config ends with, after `on_schema_change`.
fn config_tail(o: &mut Obj) {
    o.s("on_configuration_change", "apply")
        .raw("grants", "{}")
        .raw("packages", "[]")
        .obj("docs", |o| {
            o.b("show", true).null("node_color");
        })
        .obj("contract", |o| {
            o.b("enforced", false).b("alias_types", true);
        })
        .null("event_time")
        .null("concurrent_batches");
}

fn base_config(o: &mut Obj, materialized: &str) {
    o.b("enabled", true)
        .null("alias")
        .null("schema")
        .null("database")
        .raw("tags", "[]")
        .raw("meta", "{}")
        .null("group")
        .s("materialized", materialized)
        .null("incremental_strategy")
        .null("batch_size")
        .num("lookback", 1)
        .null("begin")
        .raw("persist_docs", "{}")
        .raw("post-hook", "[]")
        .raw("pre-hook", "[]")
        .raw("quoting", "{}")
        .raw("column_types", "{}")
        .null("full_refresh");
}

fn seed_json(p: &Project, s: &Seed, r: &mut Rng, created: f64, buf: &mut String) {
    let mut o = Obj::open(buf);
    o.s("database", p.database)
        .s("schema", "seeds")
        .s("name", &s.name)
        .s("resource_type", "seed")
        .s("package_name", ROOT)
        .s("path", &format!("{}.csv", s.name))
        .s("original_file_path", &format!("seeds/{}.csv", s.name))
        .s("unique_id", &p.nodes[s.node])
        .strs("fqn", &[ROOT, &s.name])
        .s("alias", &s.name)
        .obj("checksum", |o| {
            o.s("name", "sha256").s("checksum", &r.hex(64));
        })
        .obj("config", |o| {
            base_config(o, "seed");
            o.null("unique_key")
                .s("on_schema_change", "ignore")
                .with(config_tail)
                .s("delimiter", ",")
                .null("quote_columns");
        })
        .raw("tags", "[]")
        .s(
            "description",
            "Static mapping maintained by the analytics team.",
        )
        .raw("columns", "{}")
        .raw("meta", "{}")
        .null("group")
        .obj("docs", |o| {
            o.b("show", true).null("node_color");
        })
        .null("patch_path")
        .s(
            "build_path",
            &format!("target/run/{ROOT}/seeds/{}.csv", s.name),
        )
        .raw("unrendered_config", "{}")
        .num("created_at", created)
        .os("relation_name", p.relation_name(s.node).as_deref())
        .s("raw_code", "")
        .raw("doc_blocks", "[]")
        .s("root_path", "/srv/dbt/acme_analytics")
        .obj("depends_on", |o| {
            o.raw("macros", "[]");
        });
    o.close();
}

fn snapshot_json(p: &Project, s: &Snapshot, r: &mut Rng, created: f64, buf: &mut String) {
    let pm = &p.models[p.model_of[&s.parent]];
    let key = pm.columns[0].0.clone();
    let mut o = Obj::open(buf);
    o.s("database", p.database)
        .s("schema", "snapshots")
        .s("name", &s.name)
        .s("resource_type", "snapshot")
        .s("package_name", ROOT)
        .s("path", &format!("{0}.yml/{0}.sql", s.name))
        .s("original_file_path", &format!("snapshots/{}.yml", s.name))
        .s("unique_id", &p.nodes[s.node])
        .strs("fqn", &[ROOT, &s.name])
        .s("alias", &s.name)
        .obj("checksum", |o| {
            o.s("name", "sha256").s("checksum", &r.hex(64));
        })
        .obj("config", |o| {
            base_config(o, "snapshot");
            o.s("unique_key", &key)
                .s("on_schema_change", "ignore")
                .with(config_tail)
                .s("strategy", "timestamp")
                .s("target_schema", "snapshots")
                .null("target_database")
                .s("updated_at", "updated_at")
                .null("check_cols")
                .obj("snapshot_meta_column_names", |o| {
                    o.null("dbt_valid_to")
                        .null("dbt_valid_from")
                        .null("dbt_scd_id")
                        .null("dbt_updated_at")
                        .null("dbt_is_deleted");
                })
                .null("dbt_valid_to_current");
        })
        .raw("tags", "[]")
        .s("description", &format!("History of {} changes.", pm.name))
        .raw("columns", "{}")
        .raw("meta", "{}")
        .null("group")
        .obj("docs", |o| {
            o.b("show", true).null("node_color");
        })
        .s("patch_path", &format!("{ROOT}://snapshots/{}.yml", s.name))
        .s(
            "build_path",
            &format!(
                "target/run/{ROOT}/snapshots/{0}.yml/{0}.yml/{0}.sql",
                s.name
            ),
        )
        .obj("unrendered_config", |o| {
            o.s("target_schema", "snapshots")
                .s("unique_key", &key)
                .s("strategy", "timestamp")
                .s("updated_at", "updated_at");
        })
        .num("created_at", created)
        .os("relation_name", p.relation_name(s.node).as_deref())
        .s(
            "raw_code",
            &format!("select * from {{{{ ref('{}') }}}}", pm.name),
        )
        .raw("doc_blocks", "[]")
        .s("language", "sql")
        .arr("refs", |a| {
            a.obj(|o| {
                o.s("name", &pm.name).null("package").null("version");
            });
        })
        .raw("sources", "[]")
        .raw("metrics", "[]")
        .obj("depends_on", |o| {
            o.raw("macros", "[]").strs("nodes", &[&p.nodes[s.parent]]);
        })
        .null("compiled_path")
        .b("compiled", true)
        .s(
            "compiled_code",
            &format!(
                "select * from {}",
                p.relation_name(s.parent).unwrap_or_default()
            ),
        )
        .b("extra_ctes_injected", true)
        .raw("extra_ctes", "[]")
        .obj("contract", |o| {
            o.b("enforced", false)
                .b("alias_types", true)
                .null("checksum");
        });
    o.close();
}

#[allow(clippy::too_many_arguments)]
fn operation_json(
    p: &Project,
    name: &str,
    id: &str,
    when: &str,
    sql: &str,
    r: &mut Rng,
    created: f64,
    buf: &mut String,
) {
    let mut o = Obj::open(buf);
    o.s("database", p.database)
        .s("schema", "public")
        .s("name", name)
        .s("resource_type", "operation")
        .s("package_name", ROOT)
        .s("path", &format!("hooks/{name}.sql"))
        .s("original_file_path", "./dbt_project.yml")
        .s("unique_id", id)
        .strs("fqn", &[ROOT, "hooks", name])
        .s("alias", name)
        .obj("checksum", |o| {
            o.s("name", "sha256").s("checksum", &r.hex(64));
        })
        .obj("config", |o| {
            base_config(o, "table");
            o.null("unique_key")
                .s("on_schema_change", "ignore")
                .with(config_tail);
        })
        .strs("tags", &[when])
        .s("description", "")
        .raw("columns", "{}")
        .raw("meta", "{}")
        .null("group")
        .obj("docs", |o| {
            o.b("show", true).null("node_color");
        })
        .null("patch_path")
        .null("build_path")
        .obj("unrendered_config", |o| {
            o.s("materialized", "table");
        })
        .num("created_at", created)
        .null("relation_name")
        .s("raw_code", sql)
        .raw("doc_blocks", "[]")
        .s("language", "sql")
        .raw("refs", "[]")
        .raw("sources", "[]")
        .raw("metrics", "[]")
        .obj("depends_on", |o| {
            o.raw("macros", "[]").raw("nodes", "[]");
        })
        .s(
            "compiled_path",
            &format!("target/compiled/{ROOT}/./dbt_project.yml/hooks/{name}.sql"),
        )
        .b("compiled", true)
        .s(
            "compiled_code",
            &sql.replace("{{ target.schema }}", "analytics"),
        )
        .b("extra_ctes_injected", true)
        .raw("extra_ctes", "[]")
        .obj("contract", |o| {
            o.b("enforced", false)
                .b("alias_types", true)
                .null("checksum");
        })
        .num("index", if when == "on-run-start" { 1 } else { 2 });
    o.close();
}

fn test_json(p: &Project, m: &Model, t: &Test, _r: &mut Rng, created: f64, buf: &mut String) {
    let name = format!("{}_{}_{}", t.kind, m.alias, t.column);
    let yml = format!("models/{}/_{}.yml", m.layer.folder(), m.layer.folder());
    let rel = p
        .relation_name(m.node)
        .unwrap_or_else(|| format!("__dbt__cte__{}", m.name));
    let c = &t.column;
    let (compiled, macro_name) = match t.kind {
        "unique" => (
            format!("\n    \n    \n\nselect\n    {c} as unique_field,\n    count(*) as n_records\n\nfrom {rel}\nwhere {c} is not null\ngroup by {c}\nhaving count(*) > 1\n\n\n"),
            "test_unique",
        ),
        "not_null" => (format!("\n    \n    \n\n\n\nselect {c}\nfrom {rel}\nwhere {c} is null\n\n\n"), "test_not_null"),
        "accepted_values" => (
            format!("\n    \n    \n\nwith all_values as (\n\n    select\n        {c} as value_field,\n        count(*) as n_records\n\n    from {rel}\n    group by {c}\n\n)\n\nselect *\nfrom all_values\nwhere value_field not in (\n    'active','inactive','pending','closed'\n)\n\n\n"),
            "test_accepted_values",
        ),
        _ => {
            let to = t.to.map(|x| p.relation_name(x).unwrap_or_else(|| format!("__dbt__cte__{}", upstream_name(p, x)))).unwrap_or_default();
            (
                format!("\n    \n    \n\nwith child as (\n    select {c} as from_field\n    from {rel}\n    where {c} is not null\n),\n\nparent as (\n    select {c} as to_field\n    from {to}\n)\n\nselect\n    from_field\n\nfrom child\nleft join parent\n    on child.from_field = parent.to_field\n\nwhere parent.to_field is null\n\n\n"),
                "test_relationships",
            )
        }
    };
    let mut nodes = vec![p.nodes[m.node].as_str()];
    if let Some(to) = t.to {
        nodes.push(p.nodes[to].as_str());
    }
    let model_ref = format!("{{{{ get_where_subquery(ref('{}')) }}}}", m.name);
    let mut o = Obj::open(buf);
    o.s("database", p.database)
        .s("schema", "dbt_test__audit")
        .s("name", &name)
        .s("resource_type", "test")
        .s("package_name", m.package)
        .s("path", &format!("{name}.sql"))
        .s("original_file_path", &yml)
        .s("unique_id", &p.nodes[t.node])
        .strs("fqn", &[m.package, m.layer.folder(), &name])
        .s("alias", &name)
        .obj("checksum", |o| {
            o.s("name", "none").s("checksum", "");
        })
        .obj("config", |o| {
            o.b("enabled", true)
                .null("alias")
                .s("schema", "dbt_test__audit")
                .null("database")
                .raw("tags", "[]")
                .raw("meta", "{}")
                .null("group")
                .s("materialized", "test")
                .s(
                    "severity",
                    if t.kind == "relationships" {
                        "warn"
                    } else {
                        "ERROR"
                    },
                )
                .null("store_failures")
                .null("store_failures_as")
                .null("where")
                .null("limit")
                .s("fail_calc", "count(*)")
                .s("warn_if", "!= 0")
                .s("error_if", "!= 0");
        })
        .raw("tags", "[]")
        .s("description", "")
        .raw("columns", "{}")
        .raw("meta", "{}")
        .null("group")
        .obj("docs", |o| {
            o.b("show", true).null("node_color");
        })
        .null("patch_path")
        .s(
            "build_path",
            &format!("target/run/{}/{yml}/{name}.sql", m.package),
        )
        .raw(
            "unrendered_config",
            if t.kind == "relationships" {
                "{\"severity\":\"warn\"}"
            } else {
                "{}"
            },
        )
        .num("created_at", created)
        .null("relation_name")
        .s(
            "raw_code",
            &format!("{{{{ {macro_name}(**_dbt_generic_test_kwargs) }}}}"),
        )
        .raw("doc_blocks", "[]")
        .s("language", "sql")
        .arr("refs", |a| {
            a.obj(|o| {
                o.s("name", &m.name).null("package").null("version");
            });
            if let Some(to) = t.to {
                a.obj(|o| {
                    o.s("name", &upstream_name(p, to))
                        .null("package")
                        .null("version");
                });
            }
        })
        .raw("sources", "[]")
        .raw("metrics", "[]")
        .obj("depends_on", |o| {
            o.strs(
                "macros",
                &[
                    &format!("macro.dbt.{macro_name}"),
                    "macro.dbt.get_where_subquery",
                    "macro.dbt.get_limit_subquery_sql",
                    "macro.dbt.should_store_failures",
                    "macro.dbt.statement",
                ],
            )
            .strs("nodes", &nodes);
        })
        .s(
            "compiled_path",
            &format!("target/compiled/{}/{yml}/{name}.sql", m.package),
        )
        .b("compiled", true)
        .s("compiled_code", &compiled)
        .b("extra_ctes_injected", true)
        .raw("extra_ctes", "[]")
        .obj("contract", |o| {
            o.b("enforced", false)
                .b("alias_types", true)
                .null("checksum");
        })
        .s("column_name", c)
        .s("file_key_name", &format!("models.{}", m.name))
        .s("attached_node", &p.nodes[m.node])
        .obj("test_metadata", |o| {
            o.s("name", t.kind)
                .obj("kwargs", |o| {
                    if t.kind == "accepted_values" {
                        o.strs("values", &["active", "inactive", "pending", "closed"]);
                    }
                    if let Some(to) = t.to {
                        o.s("to", &format!("ref('{}')", upstream_name(p, to)))
                            .s("field", c);
                    }
                    o.s("column_name", c).s("model", &model_ref);
                })
                .null("namespace");
        });
    o.close();
}

fn source_json(p: &Project, s: &Source, r: &mut Rng, created: f64, buf: &mut String) {
    let yml = format!(
        "models/staging/{}/_{}__sources.yml",
        s.source_name, s.source_name
    );
    let freshness = |o: &mut Obj| {
        o.obj("warn_after", |o| {
            o.num("count", 12).s("period", "hour");
        })
        .obj("error_after", |o| {
            o.num("count", 24).s("period", "hour");
        })
        .null("filter");
    };
    let mut o = Obj::open(buf);
    o.s("database", p.raw_database)
        .s("schema", &s.source_name)
        .s("name", &s.name)
        .s("resource_type", "source")
        .s("package_name", s.package)
        .s("path", &yml)
        .s("original_file_path", &yml)
        .s("unique_id", &p.nodes[s.node])
        .strs(
            "fqn",
            &[
                s.package,
                "staging",
                &s.source_name,
                &s.source_name,
                &s.name,
            ],
        )
        .s("source_name", &s.source_name)
        .s(
            "source_description",
            &format!(
                "Raw tables loaded from {} by the EL tool every hour.",
                title(&s.source_name)
            ),
        )
        .s("loader", if r.chance(0.5) { "fivetran" } else { "airbyte" })
        .s("identifier", &s.identifier)
        .obj("quoting", |o| {
            o.null("database")
                .null("schema")
                .null("identifier")
                .null("column");
        })
        .s("loaded_at_field", "_loaded_at")
        .null("loaded_at_query")
        .obj("freshness", freshness)
        .null("external")
        .s(
            "description",
            &format!(
                "One row per {} as the source system holds it.",
                s.name.replace('_', " ")
            ),
        );
    columns_json(&mut o, &s.columns, false);
    o.raw("meta", "{}")
        .raw("source_meta", "{}")
        .raw("tags", "[]")
        .obj("config", |o| {
            o.b("enabled", true)
                .null("event_time")
                .obj("freshness", freshness)
                .s("loaded_at_field", "_loaded_at")
                .null("loaded_at_query")
                .raw("meta", "{}")
                .raw("tags", "[]");
        })
        .null("patch_path")
        .obj("unrendered_config", |o| {
            o.s("loaded_at_field", "_loaded_at")
                .null("loaded_at_query")
                .raw("meta", "{}")
                .raw("tags", "[]");
        })
        .os("relation_name", p.relation_name(s.node).as_deref())
        .num("created_at", created)
        .null("unrendered_database")
        .s("unrendered_schema", &s.source_name)
        .raw("doc_blocks", "[]");
    o.close();
}

// ---------------------------------------------------------------------------------------------
// site.json
// ---------------------------------------------------------------------------------------------

/// What a Tableau table reference is, relative to dbt.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Dbt,
    NotInDbt,
    DatabaseMismatch,
    File,
    Disabled,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Dbt => "dbt_relation",
            Kind::NotInDbt => "not_in_dbt",
            Kind::DatabaseMismatch => "database_mismatch",
            Kind::File => "file_connection",
            Kind::Disabled => "disabled_model",
        }
    }
}

/// One Tableau table (a Catalog `DatabaseTable`): the same id wherever it is read.
#[derive(Clone)]
struct TTable {
    kind: Kind,
    /// The dbt node it is the table of (`Kind::Dbt`, `DatabaseMismatch`, `Disabled`).
    node: Option<usize>,
    id: String,
    json: String,
}

struct SiteGen<'a> {
    p: &'a Project,
    seed: u64,
    /// Relations workbooks read, most popular first (marts, reporting, then the rest).
    readable: Vec<usize>,
    private_or_versioned: Vec<usize>,
    disabled: Vec<usize>,
    conn_type: &'static str,
    distinct: BTreeSet<String>,
}

impl SiteGen<'_> {
    fn case(&self, s: &str) -> String {
        match self.p.adapter {
            Adapter::Snowflake => s.to_uppercase(),
            Adapter::Duckdb => s.to_string(),
        }
    }

    fn database_json(&self, name: &str, conn: &str, typename: &str) -> String {
        let mut s = String::new();
        let mut o = Obj::open(&mut s);
        o.s("id", &uuid_for(self.seed, &format!("db:{conn}:{name}")))
            .s("name", name)
            .s("connectionType", conn)
            .s("__typename", typename);
        o.close();
        s
    }

    #[allow(clippy::too_many_arguments)]
    fn table(
        &mut self,
        kind: Kind,
        key: &str,
        name: &str,
        full: &str,
        schema: Option<&str>,
        db: &str,
        conn: &str,
    ) -> TTable {
        let id = uuid_for(self.seed, &format!("table:{key}"));
        self.distinct.insert(id.clone());
        let mut s = String::new();
        let mut o = Obj::open(&mut s);
        o.s("id", &id)
            .s("luid", &uuid_for(self.seed, &format!("table-luid:{key}")))
            .s("name", name)
            .s("fullName", full)
            .os("schema", schema)
            .s("connectionType", conn)
            .raw("database", db);
        o.close();
        TTable {
            kind,
            node: None,
            id,
            json: s,
        }
    }

    /// A dbt relation as Tableau spells it: the style is fixed per relation (one Catalog
    /// table), with a second spelling for some (another connection to the same table).
    fn dbt_table(
        &mut self,
        node: usize,
        r: &mut Rng,
        kind: Kind,
        database_override: Option<&str>,
    ) -> TTable {
        let (d, s, i) = self.p.relation[node].clone().expect("a relation");
        let d = database_override.map(str::to_string).unwrap_or(d);
        let h = uuid_for(self.seed, &self.p.nodes[node]);
        let mut style = usize::from_str_radix(&h[..2], 16).unwrap_or(0) % 10;
        if r.chance(0.15) {
            style = (style + 3) % 10;
        }
        let conn = self.conn_type;
        let (dd, ss, ii) = match style {
            // Tableau on Snowflake shows stored (upper-case) names; some connections keep the case dbt wrote.
            9 => (d.to_lowercase(), s.to_lowercase(), i.to_lowercase()),
            8 => (d.clone(), s.clone(), i.clone()),
            _ => (self.case(&d), self.case(&s), self.case(&i)),
        };
        let db = self.database_json(&dd, conn, "Database");
        let key = format!(
            "{}:{style}:{}",
            self.p.nodes[node],
            database_override.unwrap_or("")
        );
        let mut t = match style {
            0..=4 | 8 | 9 => self.table(
                kind,
                &key,
                &ii,
                &format!("[{dd}].[{ss}].[{ii}]"),
                Some(&ss),
                &db,
                conn,
            ),
            5 | 6 => self.table(
                kind,
                &key,
                &ii,
                &format!("[{ss}].[{ii}]"),
                Some(&ss),
                &db,
                conn,
            ),
            _ => self.table(kind, &key, &ii, &ii, Some(&ss), &db, conn),
        };
        t.node = Some(node);
        t
    }

    fn not_in_dbt(&mut self, r: &mut Rng, pool: usize) -> TTable {
        let k = r.below(pool.max(1));
        let noun = NOUNS[k % NOUNS.len()];
        let conn = self.conn_type;
        if k % 3 == 0 {
            // An old SQL Server warehouse nobody migrated.
            let db = self.database_json("LEGACY_DW", "sqlserver", "Database");
            let name = format!("{}_{k}", title(noun).replace(' ', ""));
            self.table(
                Kind::NotInDbt,
                &format!("legacy:{k}"),
                &name,
                &format!("[dbo].[{name}]"),
                Some("dbo"),
                &db,
                "sqlserver",
            )
        } else {
            // Hand-made tables in a sandbox schema of the dbt database.
            let (d, s, i) = sandbox_table(self.p, k);
            let (d, s, i) = (self.case(&d), self.case(&s), self.case(&i));
            let db = self.database_json(&d, conn, "Database");
            self.table(
                Kind::NotInDbt,
                &format!("sandbox:{k}"),
                &i,
                &format!("[{d}].[{s}].[{i}]"),
                Some(&s),
                &db,
                conn,
            )
        }
    }

    fn file(&mut self, r: &mut Rng, pool: usize) -> TTable {
        let k = r.below(pool.max(1));
        let noun = NOUNS[k % NOUNS.len()];
        if k % 2 == 0 {
            let db = self.database_json(&format!("{noun}_{k}.xlsx"), "excel-direct", "File");
            let name = format!("{}$", title(noun).replace(' ', ""));
            self.table(
                Kind::File,
                &format!("xlsx:{k}"),
                &name,
                &format!("[{name}]"),
                None,
                &db,
                "excel-direct",
            )
        } else {
            let db = self.database_json(&format!("{noun}_{k}.csv"), "textscan", "File");
            let name = format!("{noun}_{k}#csv");
            self.table(
                Kind::File,
                &format!("csv:{k}"),
                &name,
                &format!("[{name}]"),
                None,
                &db,
                "textscan",
            )
        }
    }

    /// One table reference, drawn with the site's mix of kinds.
    fn draw(&mut self, r: &mut Rng, pool: usize) -> TTable {
        let u = r.unit();
        if u < 0.84 {
            // dbt relations, popular ones more often; ~1% of all references hit private or
            // versioned models.
            if r.chance(0.012) && !self.private_or_versioned.is_empty() {
                let node = self.private_or_versioned[r.below(self.private_or_versioned.len())];
                return self.dbt_table(node, r, Kind::Dbt, None);
            }
            let node = self.readable[r.skewed(self.readable.len(), 2.2)];
            self.dbt_table(node, r, Kind::Dbt, None)
        } else if u < 0.89 {
            let node = self.readable[r.skewed(self.readable.len(), 2.0)];
            let other = match self.p.adapter {
                Adapter::Snowflake => {
                    ["ANALYTICS_DEV", "PROD_ANALYTICS", "ANALYTICS_QA"][r.below(3)]
                }
                Adapter::Duckdb => ["warehouse_dev", "prod_warehouse", "warehouse_qa"][r.below(3)],
            };
            self.dbt_table(node, r, Kind::DatabaseMismatch, Some(other))
        } else if u < 0.96 {
            self.not_in_dbt(r, pool)
        } else if u < 0.99 || self.disabled.is_empty() {
            self.file(r, pool / 4)
        } else {
            let node = self.disabled[r.below(self.disabled.len())];
            self.dbt_table(node, r, Kind::Disabled, None)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The truth: what each workbook really depends on
// ---------------------------------------------------------------------------------------------

/// `DIR/truth.json`: for every workbook (by luid), the dbt unique_ids it truly depends on, and
/// which of them it reaches only through custom SQL; and the custom SQL queries our parser is
/// meant to reject. `examples/bench.rs` scores a run's `exposure_dependencies` against it.
///
/// "Truly depends" is what a careful person reading the site (and knowing the warehouse) would
/// say, counted the way the matcher documents (`src/matching.rs`, README "Reasons"):
/// - a dbt relation read through an embedded data source, a published one or custom SQL is a
///   dependency, whether Tableau parsed the SQL or not. Custom SQL counts the tables in its
///   FROM and JOIN at any depth (subqueries, derived tables, UNION branches, CTE bodies); not a
///   CTE named like a real table (it shadows the table), nor names in comments or string
///   literals, nor the alias Tableau sometimes lists as a table (DataHub #9841);
/// - tables not in dbt (sandbox and legacy tables), files, a dbt table read in another
///   database (`database_mismatch`: a dev or QA copy is not what dbt builds) and disabled
///   models are not dependencies;
/// - a private model is not one either: dbt refuses an exposure's reference to it, and the
///   matcher leaves it out (`private_model`). The generator puts no other node on a private
///   model's table, so nothing else stands in for it;
/// - a versioned model is the version whose table is read (`model.p.m.v1` for `m_v1`), each
///   version its own unique_id;
/// - one table under two names — a relation Tableau lists under two spellings (two Catalog
///   tables), or read both through a data source and through custom SQL — is one dependency.
///   The generator puts no two dbt nodes on one table (no source over a model's table), so
///   there is no case of several nodes on one table, which the matcher would count as one
///   dependency each;
/// - a one-part name in custom SQL is read from the connection's default schema, which the
///   generated config gives (`default_schemas`: the dbt database → `reporting`, where all
///   one-part names point); two-part names take the connection's database
///   (`CustomSQLTable.database`), and tables outside it are always written with three parts.
/// - the queries listed as unparseable are in the truth too (their tables count against
///   recall): a person reads them, a parser does not.
#[derive(Default)]
struct Truth {
    /// luid -> (every dependency, those reached only through custom SQL).
    workbooks: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
    /// Custom SQL ids (`CustomSQLTable.id`) our parser should reject, in site order.
    unparseable: Vec<String>,
}

impl Truth {
    fn to_json(&self) -> String {
        let mut s = String::new();
        let mut o = Obj::open(&mut s);
        o.s("integration", "bench")
            .strs("unparseable_custom_sql", &self.unparseable)
            .obj("workbooks", |o| {
                for (luid, (all, only_sql)) in &self.workbooks {
                    o.obj(luid, |o| {
                        let all: Vec<&String> = all.iter().collect();
                        let only: Vec<&String> = only_sql.iter().collect();
                        o.strs("depends_on", &all).strs("custom_sql_only", &only);
                    });
                }
            });
        o.close();
        s.push('\n');
        s
    }
}

/// The unique_id a Tableau table truly makes a dependency, if any (see `Truth`).
fn true_dependency<'a>(p: &'a Project, t: &TTable) -> Option<&'a str> {
    match (t.kind, t.node) {
        (Kind::Dbt, Some(node)) => true_dependency_node(p, node),
        _ => None,
    }
}

/// The unique_id of a dbt node read in the dbt database, unless exposures cannot refer to it.
fn true_dependency_node(p: &Project, node: usize) -> Option<&str> {
    if let Some(&m) = p.model_of.get(&node) {
        let m = &p.models[m];
        if m.disabled || m.access == "private" || m.materialized == "ephemeral" {
            return None;
        }
    }
    p.relation[node].as_ref()?;
    Some(&p.nodes[node])
}

/// A hand-made table in a sandbox schema of the dbt database (not in dbt), uncased.
fn sandbox_table(p: &Project, k: usize) -> (String, String, String) {
    let noun = NOUNS[k % NOUNS.len()];
    (
        p.database.to_string(),
        format!(
            "sandbox_{}",
            FIRST_NAMES[k % FIRST_NAMES.len()].to_lowercase()
        ),
        format!("tmp_{noun}_{k}"),
    )
}

// ---------------------------------------------------------------------------------------------
// Custom SQL as analysts write it
// ---------------------------------------------------------------------------------------------

/// One query in 200 is unparseable (issue #13: enough to exercise it, recall ≥ 0.99 reachable).
const UNPARSEABLE_EVERY: usize = 200;

/// The schema one-part names in custom SQL point into (the generated config's `default_schemas`).
const ONE_PART_SCHEMA: &str = "reporting";

/// How a query spells its names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spelling {
    /// Unquoted, in the case the warehouse stores (Snowflake upper, DuckDB lower).
    Unquoted,
    /// Double-quoted, exactly as stored (Snowflake: upper case; DuckDB: as dbt wrote it).
    Quoted,
    /// Unquoted lower case (Snowflake resolves it upper: the same table).
    Lower,
}

fn sql_part(p: &Project, sp: Spelling, part: &str) -> String {
    // Unquoted identifiers are ASCII letters, digits and `_` (Snowflake: identifiers-syntax);
    // anything else (`sandbox_tomás`) is quoted whatever the query's habit.
    let sp = if part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        sp
    } else {
        Spelling::Quoted
    };
    match (sp, p.adapter) {
        (Spelling::Quoted, Adapter::Snowflake) => format!("\"{}\"", part.to_uppercase()),
        (Spelling::Quoted, Adapter::Duckdb) => format!("\"{part}\""),
        (Spelling::Unquoted, Adapter::Snowflake) => part.to_uppercase(),
        _ => part.to_lowercase(),
    }
}

/// A table's name with its last `parts` parts.
fn sql_name(p: &Project, sp: Spelling, rel: &(String, String, String), parts: usize) -> String {
    let all = [&rel.0, &rel.1, &rel.2];
    all[3 - parts..]
        .iter()
        .map(|x| sql_part(p, sp, x))
        .collect::<Vec<_>>()
        .join(".")
}

/// How many parts a query writes for a dbt relation: three outside the connection's database;
/// inside it two or three, and one for the schema one-part names point into.
fn sql_parts(p: &Project, rq: &mut Rng, rel: &(String, String, String)) -> usize {
    if rel.0 != p.database {
        3
    } else if rel.1 == ONE_PART_SCHEMA && rq.chance(0.4) {
        1
    } else if rq.chance(0.45) {
        3
    } else {
        2
    }
}

/// The text of a custom SQL query reading `reads` (dbt nodes) and maybe a sandbox table, as
/// Tableau stores it: joins, CTEs (one named like a real table it shadows), UNION, derived
/// tables and subqueries; comments and string literals naming other tables; Tableau
/// parameters; on some queries every `<` and `>` doubled (DataHub reports Tableau stores them
/// so). `unparseable`: the n-th query our parser must reject — cut short, or a vendor
/// extension the parser does not know. Also returns an alias the query uses (for DataHub #9841).
fn custom_sql_text(
    p: &Project,
    rq: &mut Rng,
    reads: &[usize],
    sandbox: Option<usize>,
    unparseable: Option<usize>,
) -> (String, &'static str) {
    let sp = match (rq.below(3), p.adapter) {
        (0, _) => Spelling::Unquoted,
        (1, _) => Spelling::Quoted,
        (_, Adapter::Snowflake) => Spelling::Lower,
        _ => Spelling::Unquoted,
    };
    let doubled = rq.chance(0.5);
    let op = |o: &str| {
        if doubled {
            o.replace('<', "<<").replace('>', ">>")
        } else {
            o.to_string()
        }
    };
    let rels: Vec<(String, String, String)> = reads
        .iter()
        .map(|&n| p.relation[n].clone().expect("relation"))
        .collect();
    let names: Vec<String> = rels
        .iter()
        .map(|rel| {
            let parts = sql_parts(p, rq, rel);
            sql_name(p, sp, rel, parts)
        })
        .collect();
    let sandbox = sandbox.map(|k| {
        let rel = sandbox_table(p, k);
        let parts = if rq.chance(0.5) { 3 } else { 2 };
        sql_name(p, sp, &rel, parts)
    });
    // Other dbt relations, named only in comments and strings (never read).
    let decoy = |rq: &mut Rng| -> String {
        loop {
            let node = rq.below(p.relation.len());
            if let Some(rel) = p.relation[node].as_ref().filter(|_| !reads.contains(&node)) {
                return sql_name(p, Spelling::Unquoted, rel, 3);
            }
        }
    };
    let (recent, param) = match p.adapter {
        Adapter::Snowflake => ("dateadd(day, -30, current_date)", "<[Parameters].[Region]>"),
        Adapter::Duckdb => (
            "current_date - interval '30 days'",
            "<[Parameters].[Region]>",
        ),
    };
    let mut q = String::new();
    match rq.below(3) {
        0 => {
            let _ = writeln!(
                q,
                "-- Built for the dashboard; the old version read {}",
                decoy(rq)
            );
        }
        1 => {
            let _ = writeln!(
                q,
                "/* Owner: analytics team.\n   Replaces the extract from {} (retired). */",
                decoy(rq)
            );
        }
        _ => {}
    }

    if let Some(n) = unparseable {
        let t0 = &names[0];
        match n % 2 {
            // Pasted with its end cut off.
            0 => {
                let _ = write!(q, "select t0.*\nfrom {t0} t0\nwhere t0.region = {param}\n  and (t0.amount {} 0 or", op(">"));
            }
            // A vendor's extension the parser does not know: Snowflake's CHANGES clause, DuckDB's
            // positional join.
            _ => {
                match p.adapter {
                    Adapter::Snowflake => {
                        let _ = write!(
                        q,
                        "select c.*\nfrom {t0} c\n  changes (information => default)\n  at (offset => -86400)\nwhere c.region = {param}"
                    );
                    }
                    Adapter::Duckdb => {
                        let _ = write!(q, "select *\nfrom {t0} t0 positional join {t0} t1\nwhere t0.region = {param}");
                    }
                }
            }
        }
        return (q, "t0");
    }

    let shape = rq.below(4);
    match shape {
        // Joins, a filter on a parameter, a string naming another table.
        0 => {
            let _ = writeln!(
                q,
                "select t0.*{}",
                (1..names.len())
                    .map(|k| format!(", t{k}.amount as amount_{k}"))
                    .collect::<String>()
            );
            let _ = writeln!(q, "from {} t0", names[0]);
            for (k, n) in names.iter().enumerate().skip(1) {
                let _ = writeln!(q, "join {n} t{k} on t{k}.id = t0.id");
            }
            if let Some(x) = &sandbox {
                let _ = writeln!(q, "left join {x} x on x.id = t0.id -- Priya's adjustments");
            }
            let _ = write!(
                q,
                "where t0.region = {param}\n  and t0.amount {} 0\n  and t0.source_table {} '{}'",
                op("<>"),
                op("<>"),
                decoy(rq)
            );
        }
        // CTEs, the second named like a real table it shadows.
        1 => {
            let shadow = loop {
                let node = g_pick_model(p, rq);
                let alias = &p.models[p.model_of[&node]].alias;
                if rels.iter().all(|r| !r.2.eq_ignore_ascii_case(alias)) {
                    break sql_part(p, Spelling::Unquoted, alias);
                }
            };
            let _ = writeln!(
                q,
                "with base as (\n    select * from {} where updated_at {} {recent}\n),",
                names[0],
                op(">=")
            );
            let _ = writeln!(
                q,
                "{shadow} as (\n    select b.id, b.region, b.amount from base b"
            );
            for (k, n) in names.iter().enumerate().skip(1) {
                let _ = writeln!(q, "    join {n} j{k} on j{k}.id = b.id");
            }
            let _ = writeln!(q, ")\nselect s.*\nfrom {shadow} s");
            if let Some(x) = &sandbox {
                let _ = writeln!(q, "left join {x} x on x.id = s.id");
            }
            let _ = write!(
                q,
                "where s.region = {param} /* {shadow} is the CTE above, not the table */"
            );
        }
        // UNION ALL, each branch saying where its rows come from.
        2 => {
            let mut branches: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(k, n)| {
                    format!(
                        "select '{}' as source, id, amount from {n} where region = {param}",
                        rels[k].2
                    )
                })
                .collect();
            if names.len() == 1 {
                branches.push(format!(
                    "select 'adjustment' as source, id, -amount from {} where status = 'reversed'",
                    names[0]
                ));
            }
            if let Some(x) = &sandbox {
                branches.push(format!("select 'manual' as source, id, amount from {x}"));
            }
            q.push_str(&branches.join("\nunion all\n"));
        }
        // A derived table and subqueries in WHERE.
        _ => {
            let _ = writeln!(q, "select d.*\nfrom (\n    select id, region, sum(amount) as amount\n    from {}\n    group by id, region\n) d", names[0]);
            let _ = write!(q, "where d.region = {param}");
            if let Some(n) = names.get(1) {
                let _ = write!(
                    q,
                    "\n  and d.id in (select id from {n} where status {} 'void')",
                    op("<>")
                );
            }
            if let Some(n) = names.get(2) {
                let _ = write!(
                    q,
                    "\n  and exists (select 1 from {n} e where e.id = d.id and e.amount {} 0)",
                    op(">")
                );
            }
            if let Some(x) = &sandbox {
                let _ = write!(
                    q,
                    "\n  and d.amount {} (select avg(amount) from {x})",
                    op(">=")
                );
            }
        }
    }
    let alias = ["t0", "s", "source", "d"][shape];
    (q, alias)
}

/// A model with a table (for a CTE named like it).
fn g_pick_model(p: &Project, rq: &mut Rng) -> usize {
    loop {
        let m = &p.models[rq.below(p.models.len())];
        if p.relation[m.node].is_some() {
            return m.node;
        }
    }
}

fn write_site(
    p: &Project,
    args: &Args,
    path: &Path,
    stats: &mut Stats,
    truth: &mut Truth,
) -> std::io::Result<u64> {
    let rng = Rng::new(args.seed).fork(20);
    let conn_type = match p.adapter {
        Adapter::Snowflake => "snowflake",
        Adapter::Duckdb => "duckdb",
    };
    // Popularity: marts first, then reporting, seeds, snapshots, staging, sources.
    let mut readable = Vec::new();
    for layer in [Layer::Mart, Layer::Reporting] {
        readable.extend(
            p.models
                .iter()
                .filter(|m| {
                    m.layer == layer
                        && !m.disabled
                        && m.access != "private"
                        && m.version.is_none()
                        && m.materialized != "ephemeral"
                })
                .map(|m| m.node),
        );
    }
    readable.extend(p.seeds.iter().map(|s| s.node));
    readable.extend(p.snapshots.iter().map(|s| s.node));
    readable.extend(
        p.models
            .iter()
            .filter(|m| m.layer == Layer::Staging && !m.disabled && m.access != "private")
            .map(|m| m.node),
    );
    readable.extend(p.sources.iter().map(|s| s.node));
    let private_or_versioned: Vec<usize> = p
        .models
        .iter()
        .filter(|m| {
            !m.disabled
                && (m.access == "private" || m.version.is_some())
                && m.materialized != "ephemeral"
        })
        .map(|m| m.node)
        .collect();
    let disabled: Vec<usize> = p
        .models
        .iter()
        .filter(|m| m.disabled && m.materialized != "ephemeral")
        .map(|m| m.node)
        .collect();
    let mut g = SiteGen {
        p,
        seed: args.seed,
        readable,
        private_or_versioned,
        disabled,
        conn_type,
        distinct: BTreeSet::new(),
    };
    let pool = (args.workbooks / 2).max(20);

    // Projects: one per domain, some nested, plus a few general ones (~50 in all).
    let mut projects: Vec<(String, String, Option<String>)> = Vec::new();
    for d in DOMAINS {
        projects.push((uuid_for(args.seed, &format!("project:{d}")), title(d), None));
    }
    for e in PROJECT_EXTRA {
        projects.push((
            uuid_for(args.seed, &format!("project:{e}")),
            e.to_string(),
            None,
        ));
    }
    for (k, d) in DOMAINS.iter().enumerate().take(20) {
        let parent = projects[k].0.clone();
        let name = if k % 2 == 0 { "Monthly" } else { "Ad hoc" };
        projects.push((
            uuid_for(args.seed, &format!("project:{d}:{name}")),
            name.to_string(),
            Some(parent),
        ));
    }
    stats.projects = projects.len();

    // Shared published data sources (most with extracts), used by many workbooks.
    let mut r = rng.fork(1);
    let n_pds = (args.workbooks / 10).clamp(2, 100);
    let mut pds: Vec<(String, String, String, bool, Vec<TTable>)> = Vec::new();
    for k in 0..n_pds {
        let domain = DOMAINS[k % DOMAINS.len()];
        let noun = NOUNS[(k * 7) % NOUNS.len()];
        let name = format!("{} {} (certified)", title(domain), title(noun));
        let count = r.range(3, 8);
        let mut tables: Vec<TTable> = Vec::new();
        while tables.len() < count {
            let t = if r.chance(0.9) {
                let node = g.readable[r.skewed(g.readable.len(), 2.2)];
                g.dbt_table(node, &mut r, Kind::Dbt, None)
            } else {
                g.draw(&mut r, pool)
            };
            if !tables.iter().any(|x| x.id == t.id) {
                tables.push(t);
            }
        }
        pds.push((
            uuid_for(args.seed, &format!("pds:{k}")),
            uuid_for(args.seed, &format!("pds-luid:{k}")),
            name,
            r.chance(0.85),
            tables,
        ));
    }
    stats.published_datasources = n_pds;

    let users: Vec<(String, String, String)> = (0..300)
        .map(|k| {
            let first = FIRST_NAMES[k % FIRST_NAMES.len()];
            let last = LAST_NAMES[(k / FIRST_NAMES.len() + k) % LAST_NAMES.len()];
            let username = format!(
                "{}{}{}",
                first.to_lowercase().chars().next().unwrap_or('x'),
                last.to_lowercase(),
                k
            );
            (
                username.clone(),
                format!("{username}@example.com"),
                format!("{first} {last}"),
            )
        })
        .collect();

    let file = std::fs::File::create(path)?;
    let mut out = Counting {
        inner: std::io::BufWriter::with_capacity(1 << 20, file),
        n: 0,
    };
    let site_luid = uuid_for(args.seed, "site");
    let mut head = String::new();
    head.push_str("{\"product_version\":\"2024.2.0\",\"rest_api_version\":\"3.23\",\"sites\":[{");
    head.push_str("\"content_url\":\"bench\",\"luid\":");
    quote(&mut head, &site_luid);
    head.push_str(
        ",\"pats\":[{\"name\":\"autoexpose-bench\",\"secret\":\"bench-pat-secret\",\"user_luid\":",
    );
    quote(&mut head, &uuid_for(args.seed, "user"));
    head.push_str("}],\"projects\":[");
    for (k, (id, name, parent)) in projects.iter().enumerate() {
        if k > 0 {
            head.push(',');
        }
        let mut o = Obj::open(&mut head);
        o.s("id", id)
            .s("name", name)
            .os("parentProjectId", parent.as_deref());
        o.close();
    }
    head.push_str("],\"workbooks\":[");
    out.write_all(head.as_bytes())?;

    let mut r = rng.fork(2);
    // The custom SQL's text and what Tableau lists for it: a stream of its own (see `Rng::fork`).
    let mut rq = rng.fork(3);
    let mut custom_sql: Vec<String> = Vec::new();
    let mut buf = String::with_capacity(1 << 16);
    let name_combos = DOMAINS.len() * NOUNS.len() * WORKBOOK_KINDS.len();
    for w in 0..args.workbooks {
        let wid = uuid_for(args.seed, &format!("workbook:{w}"));
        let luid = uuid_for(args.seed, &format!("workbook-luid:{w}"));
        let (project_id, project_name, _) = &projects[r.skewed(projects.len(), 1.3)];
        let domain = DOMAINS[w % DOMAINS.len()];
        let noun = NOUNS[(w / DOMAINS.len() * 7 + w) % NOUNS.len()];
        let kind = WORKBOOK_KINDS[(w / (DOMAINS.len() * NOUNS.len())) % WORKBOOK_KINDS.len()];
        let mut name = format!("{} {} {}", title(domain), title(noun), kind);
        if w >= name_combos && r.chance(0.8) {
            let _ = write!(name, " ({})", w / name_combos + 1);
        }
        match w % 97 {
            11 => name = format!("{name} — Q3 P&L"),
            23 => name = format!("Übersicht {name}"),
            37 => name = format!("{name} (don't use)"),
            _ => {}
        }
        let owner = &users[r.skewed(users.len(), 1.5)];
        let n_tags = r.below(4);
        let tags: BTreeSet<&str> = (0..n_tags).map(|_| *r.pick(TAGS)).collect();
        let created_day = r.range(1, 28);
        let created_month = r.range(1, 12);

        // Table budget ~15 (8..22) across 1-3 embedded data sources, some of them over a
        // published data source, or over custom SQL.
        let budget = r.range(8, 22);
        let n_embedded = r.range(1, 3);
        let uses_pds = if r.chance(0.5) {
            if r.chance(0.2) {
                2
            } else {
                1
            }
        } else {
            0
        };
        let with_sql = r.chance(0.06);
        let mut used = 0usize;
        let mut embedded = Vec::new(); // (id, name, extract, tables, published)
        for e in 0..n_embedded.max(uses_pds) {
            let eid = uuid_for(args.seed, &format!("embedded:{w}:{e}"));
            if e < uses_pds {
                let k = r.skewed(pds.len(), 1.8);
                let (pid, pluid, pname, extract, tables) = &pds[k];
                used += tables.len();
                embedded.push((
                    eid,
                    pname.clone(),
                    false,
                    tables.clone(),
                    Some((
                        pid.clone(),
                        pluid.clone(),
                        pname.clone(),
                        *extract,
                        tables.clone(),
                    )),
                ));
                continue;
            }
            let left = n_embedded.max(uses_pds) - e;
            let share = if left <= 1 {
                budget.saturating_sub(used).max(1)
            } else {
                (budget.saturating_sub(used) / left).max(1)
            };
            let mut tables: Vec<TTable> = Vec::new();
            let mut tries = 0;
            while tables.len() < share && tries < share * 4 {
                tries += 1;
                let t = g.draw(&mut r, pool);
                if !tables.iter().any(|x| x.id == t.id) {
                    tables.push(t);
                }
            }
            used += tables.len();
            let ename = if tables.len() == 1 {
                format!("{} ({})", title(noun), title(domain))
            } else {
                format!("{} + {}", title(domain), title(noun))
            };
            embedded.push((eid, ename, r.chance(0.4), tables, None));
        }
        // What the workbook truly reads through its data sources (see `Truth`).
        let mut through_tables: BTreeSet<String> = BTreeSet::new();
        for (_, _, _, tables, published) in &embedded {
            let published_tables = published.iter().flat_map(|x| x.4.iter());
            for t in tables.iter().chain(published_tables) {
                if let Some(id) = true_dependency(p, t) {
                    through_tables.insert(id.to_string());
                }
            }
        }
        let mut through_sql: BTreeSet<String> = BTreeSet::new();
        if with_sql {
            let eid = uuid_for(args.seed, &format!("embedded:{w}:sql"));
            embedded.push((
                eid,
                "Custom SQL Query (extract)".into(),
                true,
                Vec::new(),
                None,
            ));
            let cid = uuid_for(args.seed, &format!("custom-sql:{w}"));
            // These draws are the ones the site was made with before the SQL got realistic, so
            // the rest of the site is drawn as it was; the SQL's own draws come from `rq`.
            let mut supported = r.chance(0.7);
            let n_tables = r.range(1, 3);
            let mut reads: Vec<usize> = Vec::new();
            for _ in 0..n_tables {
                let node = g.readable[r.skewed(g.readable.len(), 2.2)];
                if !reads.contains(&node) {
                    reads.push(node);
                }
            }
            // About one query in 200 is one our parser must reject (the first is the 51st, so M
            // has one). Tableau could not parse it either.
            let ordinal = custom_sql.len();
            let unparseable = ordinal % UNPARSEABLE_EVERY == UNPARSEABLE_EVERY / 4;
            if unparseable {
                supported = false;
                reads.truncate(1);
            }
            let sandbox = rq.chance(0.2).then(|| {
                let mut k = rq.below(pool.max(3));
                if k % 3 == 0 {
                    k += 1; // sandbox tables are the ones with k % 3 != 0 (`not_in_dbt`)
                }
                k
            });
            let (sql, alias) = custom_sql_text(
                p,
                &mut rq,
                &reads,
                sandbox,
                unparseable.then_some(ordinal / UNPARSEABLE_EVERY),
            );
            let mut tables = Vec::new();
            for &node in &reads {
                let (d, s, i) = p.relation[node].clone().expect("relation");
                let dd = g.case(&d);
                let (ss, ii) = (g.case(&s), g.case(&i));
                let db = g.database_json(&dd, conn_type, "Database");
                let mut t = g.table(
                    Kind::Dbt,
                    &format!("sql:{}", p.nodes[node]),
                    &ii,
                    &format!("[{ss}].[{ii}]"),
                    Some(&ss),
                    &db,
                    conn_type,
                );
                t.node = Some(node);
                if !tables.iter().any(|x: &TTable| x.id == t.id) {
                    tables.push(t);
                }
            }
            if let Some(k) = sandbox {
                let (d, s, i) = sandbox_table(p, k);
                let (dd, ss, ii) = (g.case(&d), g.case(&s), g.case(&i));
                let db = g.database_json(&dd, conn_type, "Database");
                tables.push(g.table(
                    Kind::NotInDbt,
                    &format!("sandbox:{k}"),
                    &ii,
                    &format!("[{dd}].[{ss}].[{ii}]"),
                    Some(&ss),
                    &db,
                    conn_type,
                ));
            }
            // DataHub #9841: now and then Tableau lists a table alias as a table. It is no
            // table, so it is in no truth.
            let alias_listed = supported && rq.chance(0.1);
            if alias_listed {
                let db = g.database_json(&g.case(p.database), conn_type, "Database");
                tables.push(g.table(
                    Kind::NotInDbt,
                    &format!("sql-alias:{cid}"),
                    alias,
                    &format!("[{alias}]"),
                    None,
                    &db,
                    conn_type,
                ));
                stats.custom_sql_alias_listed += 1;
            }
            for &node in &reads {
                if let Some(id) = true_dependency_node(p, node) {
                    through_sql.insert(id.to_string());
                }
            }
            if unparseable {
                truth.unparseable.push(cid.clone());
                stats.custom_sql_unparseable += 1;
            }
            let mut s = String::new();
            let mut o = Obj::open(&mut s);
            o.s("id", &cid)
                .s("name", "Custom SQL Query")
                .s("query", &sql)
                .b("isUnsupportedCustomSql", !supported)
                .s("connectionType", conn_type)
                .raw(
                    "database",
                    &g.database_json(&g.case(p.database), conn_type, "Database"),
                )
                .arr("tables", |a| {
                    if supported {
                        for t in &tables {
                            a.item().push_str(&t.json);
                        }
                    }
                })
                .arr("downstreamWorkbooks", |a| {
                    a.obj(|o| {
                        o.s("id", &wid).s("luid", &luid).s("name", &name);
                    });
                });
            o.close();
            custom_sql.push(s);
            *stats.table_refs.entry("custom_sql_dbt_read").or_default() += reads.len();
            if supported {
                stats.custom_sql_supported += 1;
                *stats.table_refs.entry("custom_sql_table").or_default() += tables.len();
            } else {
                stats.custom_sql_unsupported += 1;
            }
        }
        let only_sql: BTreeSet<String> = through_sql.difference(&through_tables).cloned().collect();
        let mut all = through_tables;
        all.extend(through_sql);
        truth.workbooks.insert(luid.clone(), (all, only_sql));
        stats.embedded_datasources += embedded.len();

        buf.clear();
        if w > 0 {
            buf.push(',');
        }
        let mut o = Obj::open(&mut buf);
        o.s("id", &wid)
            .s("luid", &luid)
            .s("name", &name)
            .s("uri", &format!("sites/1/workbooks/{}", 1000 + w))
            .s("vizportalUrlId", &(1000 + w).to_string())
            .s("projectLuid", project_id)
            .s("projectName", project_name)
            .os(
                "description",
                (w % 3 != 0)
                    .then(|| {
                        format!(
                            "{} {} for the {} team; data refreshed nightly after the dbt build.",
                            kind,
                            noun.replace('_', " "),
                            domain
                        )
                    })
                    .as_deref(),
            )
            .s(
                "createdAt",
                &format!("2023-{created_month:02}-{created_day:02}T08:15:22Z"),
            )
            .s(
                "updatedAt",
                &format!("2025-{created_month:02}-{created_day:02}T14:02:09Z"),
            )
            .obj("owner", |o| {
                o.s("username", &owner.0)
                    .s("email", &owner.1)
                    .s("name", &owner.2);
            })
            .arr("tags", |a| {
                for t in &tags {
                    a.obj(|o| {
                        o.s("name", t);
                    });
                }
            })
            .arr("embeddedDatasources", |a| {
                for (eid, ename, extract, tables, published) in &embedded {
                    a.obj(|o| {
                        o.s("id", eid)
                            .s("name", ename)
                            .b("hasExtracts", *extract)
                            .arr("upstreamTables", |a| {
                                for t in tables {
                                    a.item().push_str(&t.json);
                                }
                            });
                        o.arr("upstreamDatasources", |a| {
                            if let Some((pid, pluid, pname, pextract, ptables)) = published {
                                a.obj(|o| {
                                    o.s("id", pid)
                                        .s("luid", pluid)
                                        .s("name", pname)
                                        .b("hasExtracts", *pextract)
                                        .arr("upstreamTables", |a| {
                                            for t in ptables {
                                                a.item().push_str(&t.json);
                                            }
                                        });
                                });
                            }
                        });
                    });
                    for t in tables {
                        *stats.table_refs.entry(t.kind.label()).or_default() += 1;
                    }
                }
            });
        o.close();
        out.write_all(buf.as_bytes())?;
        stats.workbooks += 1;
    }
    out.write_all(b"],\"custom_sql\":[")?;
    for (k, c) in custom_sql.iter().enumerate() {
        if k > 0 {
            out.write_all(b",")?;
        }
        out.write_all(c.as_bytes())?;
    }
    out.write_all(b"]}]}\n")?;
    out.inner.flush()?;
    stats.distinct_tables = g.distinct.len();
    Ok(out.n)
}

// ---------------------------------------------------------------------------------------------
// autoexpose.yml and the dbt project folder
// ---------------------------------------------------------------------------------------------

fn write_config(args: &Args, p: &Project) -> std::io::Result<()> {
    // One-part names in custom SQL are read from the connection's default schema, which
    // Tableau does not report: `default_schemas` says which it is (see `Truth`).
    let (database, schema) = match p.adapter {
        Adapter::Snowflake => (p.database.to_string(), ONE_PART_SCHEMA.to_uppercase()),
        Adapter::Duckdb => (p.database.to_string(), ONE_PART_SCHEMA.to_string()),
    };
    let config =
        "# Generated by examples/gen_bench.rs: the benchmark's site, replayed from recordings.
# Relative paths are relative to this file. Recordings (http/) are made by examples/bench.rs.
database: autoexpose.db
replay: http
dbt:
  project_dir: dbt
  manifest: manifest.json
tableau:
  - name: bench
    server_url: https://tableau.bench.example.com
    site: bench
    token_name_env: TABLEAU_TOKEN_NAME
    token_secret_env: TABLEAU_TOKEN_SECRET
    projects: []
    page_size: 25
    concurrency: 4
    default_schemas: {DATABASE: SCHEMA}
exposures:
  dir: models/imported_from_tableau
  maturity: medium
";
    let config = config.replace("{DATABASE: SCHEMA}", &format!("{{{database}: {schema}}}"));
    std::fs::write(args.out.join("autoexpose.yml"), config)?;
    std::fs::write(
        args.out.join("dbt/dbt_project.yml"),
        format!("# Generated by examples/gen_bench.rs; its manifest is ../manifest.json.\nname: {ROOT}\nversion: '1.0.0'\nprofile: {ROOT}\n"),
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A Power BI tenant over the same dbt project (issue #14 item 6)
// ---------------------------------------------------------------------------------------------

/// The principal the generated tenant accepts (invented, like the test fixtures').
const PBI_TENANT: &str = "6f1c0000-0000-4000-8000-0000000be1c4";
const PBI_CLIENT_ID: &str = "a11ce000-0000-4000-8000-0000000be1c4";
const PBI_CLIENT_SECRET: &str = "bench-pbi-secret";
const PBI_HOST: &str = "acme-bench.snowflakecomputing.com";
/// Reports per workspace and datasets per workspace.
const PBI_REPORTS_PER_WORKSPACE: usize = 10;
const PBI_DATASETS_PER_WORKSPACE: usize = 3;

/// `DIR/powerbi/tenant.json`, in the format the local Power BI server serves
/// (testdata/powerbi/README.md; the objects shaped as shared/reference/powerbi.md section 3), and
/// `DIR/powerbi/truth.json`: `{integration, reports: {report id: {depends_on: [unique_ids],
/// native_sql_only: [...]}}}`. Each dataset's tables read the dbt project's tables through
/// the shapes the reference lists (section 5): Snowflake navigation (with `Kind`, without, `View`),
/// `Value.NativeQuery` over a database step, a shared expression whose database is a parameter
/// (section 6: one per database, `Database_ANALYTICS`), a SQL Server table (not in dbt), an Excel file on the web (not read: no
/// lineage), a calculated table (no source). A report reads its workspace's dataset, one in
/// 50 a dataset of the previous workspace (`datasetWorkspaceId`); one in 20 workspaces
/// publishes an app, whose copies (`appId`, `[App] …`, `originalReportObjectId`) are no
/// exposures. The truth counts what the tables truly read, as for Tableau (`Truth`).
fn write_powerbi(p: &Project, args: &Args, workspaces: usize) -> std::io::Result<(usize, usize)> {
    let dir = args.out.join("powerbi");
    std::fs::create_dir_all(&dir)?;
    let mut r = Rng::new(args.seed).fork(40);
    let case = |s: &str| match p.adapter {
        Adapter::Snowflake => s.to_uppercase(),
        Adapter::Duckdb => s.to_string(),
    };
    // What reports read, popular first: marts and reporting, then the rest with a table.
    let mut readable: Vec<usize> = Vec::new();
    for layer in [Layer::Mart, Layer::Reporting, Layer::Staging] {
        readable.extend(
            p.models
                .iter()
                .filter(|m| m.layer == layer && m.materialized != "ephemeral")
                .map(|m| m.node),
        );
    }
    readable.extend(p.seeds.iter().map(|s| s.node));
    readable.extend(p.sources.iter().map(|s| s.node));
    readable.retain(|&n| p.relation[n].is_some());
    let id = |kind: &str, n: usize| uuid_for(args.seed, &format!("powerbi:{kind}:{n}"));
    let m_str = |s: &str| s.replace('"', "\"\"");

    // Per dataset: (id, workspace index, JSON, truth of all its tables, truth only via native SQL).
    let mut datasets: Vec<(String, usize, String, BTreeSet<String>, BTreeSet<String>)> = Vec::new();
    let mut tables_total = 0usize;
    for w in 0..workspaces {
        for d in 0..PBI_DATASETS_PER_WORKSPACE {
            let n = w * PBI_DATASETS_PER_WORKSPACE + d;
            let did = id("dataset", n);
            let mut all = BTreeSet::new();
            let mut by_sql = BTreeSet::new();
            let mut by_nav = BTreeSet::new();
            let mut tables: Vec<String> = Vec::new();
            let mut expressions: Vec<(String, String)> = Vec::new();
            let n_tables = r.range(2, 8);
            for t in 0..n_tables {
                let node = readable[r.skewed(readable.len(), 2.2)];
                let (db, schema, ident) = p.relation[node].clone().expect("readable has relations");
                let (db, schema, ident) = (case(&db), case(&schema), case(&ident));
                let truth = true_dependency_node(p, node).map(str::to_string);
                let roll = r.below(100);
                let name = format!("{} {t}", title(&ident.to_lowercase().replace('_', " ")));
                let expression = match roll {
                    // Navigation, the way Power Query's navigator writes it.
                    0..=44 => {
                        by_nav.extend(truth.clone());
                        let kind = if r.chance(0.2) { "View" } else { "Table" };
                        format!(
                            "let\n    Source = Snowflake.Databases(\"{PBI_HOST}\", \"BI_WH\"),\n    #\"{0} Database\" = Source{{[Name=\"{0}\",Kind=\"Database\"]}}[Data],\n    #\"{1} Schema\" = #\"{0} Database\"{{[Name=\"{1}\",Kind=\"Schema\"]}}[Data],\n    #\"{2} {kind}\" = #\"{1} Schema\"{{[Name=\"{2}\",Kind=\"{kind}\"]}}[Data]\nin\n    #\"{2} {kind}\"",
                            m_str(&db), m_str(&schema), m_str(&ident)
                        )
                    }
                    // Navigation without `Kind`, with a step after it (DH PR #19364).
                    45..=54 => {
                        by_nav.extend(truth.clone());
                        format!(
                            "let\n    Source = Snowflake.Databases(\"{PBI_HOST}\", \"BI_WH\"),\n    Db = Source{{[Name=\"{}\"]}}[Data],\n    Sch = Db{{[Name=\"{}\"]}}[Data],\n    Tbl = Sch{{[Name=\"{}\"]}}[Data],\n    #\"Removed Columns\" = Table.RemoveColumns(Tbl,{{\"_LOADED_AT\"}})\nin\n    #\"Removed Columns\"",
                            m_str(&db), m_str(&schema), m_str(&ident)
                        )
                    }
                    // Native SQL over a database step, two parts, lines escaped as #(lf).
                    55..=69 => {
                        by_sql.extend(truth.clone());
                        let sql = format!("select *#(lf)from {schema}.{ident}#(lf)where 1 = 1");
                        format!(
                            "let\n    Source = Value.NativeQuery(Snowflake.Databases(\"{PBI_HOST}\",\"BI_WH\"){{[Name=\"{}\"]}}[Data], \"{}\", null, [EnableFolding=true])\nin\n    Source",
                            m_str(&db), m_str(&sql)
                        )
                    }
                    // A shared expression, its database a parameter.
                    70..=79 => {
                        by_nav.extend(truth.clone());
                        let shared = format!("{}_{t}", ident.to_lowercase());
                        // One parameter per database the dataset reads this way.
                        let param = format!("Database_{}", db.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
                        if !expressions.iter().any(|(n, _)| *n == param) {
                            expressions.push((
                                param.clone(),
                                format!("\"{}\" meta [IsParameterQuery=true, Type=\"Text\", IsParameterQueryRequired=true]", m_str(&db)),
                            ));
                        }
                        expressions.push((
                            shared.clone(),
                            format!(
                                "let\n    Source = Snowflake.Databases(\"{PBI_HOST}\", \"BI_WH\"),\n    Db = Source{{[Name={param},Kind=\"Database\"]}}[Data],\n    Sch = Db{{[Name=\"{}\",Kind=\"Schema\"]}}[Data],\n    T = Sch{{[Name=\"{}\",Kind=\"Table\"]}}[Data]\nin\n    T",
                                m_str(&schema), m_str(&ident)
                            ),
                        ));
                        format!("let\n    Source = {shared}\nin\n    Source")
                    }
                    // A legacy SQL Server table: not in dbt.
                    80..=87 => format!(
                        "let\n    Source = Sql.Database(\"sql01.corp.example\", \"legacy_dw\"),\n    T = Source{{[Schema=\"dbo\",Item=\"{}\"]}}[Data]\nin\n    T",
                        m_str(&ident.to_lowercase())
                    ),
                    // An Excel file on the web: no lineage, an unmatched row with its reason.
                    88..=94 => format!(
                        "let\n    Source = Excel.Workbook(Web.Contents(\"https://contoso.sharepoint.com/sites/finance/{}.xlsx\"), null, true),\n    Sheet = Source{{[Item=\"Sheet1\",Kind=\"Sheet\"]}}[Data]\nin\n    Sheet",
                        ident.to_lowercase()
                    ),
                    // A calculated table: no source.
                    _ => String::new(),
                };
                let mut s = String::new();
                let mut o = Obj::open(&mut s);
                o.s("name", &name).b("isHidden", false);
                if expression.is_empty() {
                    o.arr("source", |_| {});
                } else {
                    o.arr("source", |a| {
                        a.obj(|o| {
                            o.s("expression", &expression);
                        });
                    });
                }
                o.close();
                tables.push(s);
                tables_total += 1;
            }
            all.extend(by_nav.iter().cloned());
            all.extend(by_sql.iter().cloned());
            let sql_only: BTreeSet<String> = by_sql.difference(&by_nav).cloned().collect();
            let mut s = String::new();
            let mut o = Obj::open(&mut s);
            o.s("id", &did)
                .s(
                    "name",
                    &format!("{} model {d}", title(DOMAINS[n % DOMAINS.len()])),
                )
                .s(
                    "configuredBy",
                    &format!(
                        "{}@contoso.example",
                        FIRST_NAMES[n % FIRST_NAMES.len()].to_lowercase()
                    ),
                )
                .s("targetStorageMode", "Import")
                .arr("tables", |a| {
                    for t in &tables {
                        a.item().push_str(t);
                    }
                })
                .arr("expressions", |a| {
                    for (name, e) in &expressions {
                        a.obj(|o| {
                            o.s("name", name).s("expression", e);
                        });
                    }
                })
                .arr("datasourceUsages", |a| {
                    a.obj(|o| {
                        o.s("datasourceInstanceId", &id("datasource", 0));
                    });
                });
            o.close();
            datasets.push((did, w, s, all, sql_only));
        }
    }

    let mut truth: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    let mut out = String::new();
    let mut o = Obj::open(&mut out);
    o.s("tenant_id", PBI_TENANT)
        .arr("principals", |a| {
            a.obj(|o| {
                o.s("client_id", PBI_CLIENT_ID)
                    .s("client_secret", PBI_CLIENT_SECRET);
            });
        })
        .arr("workspaces", |a| {
            for w in 0..workspaces {
                let app = w % 20 == 7;
                a.obj(|o| {
                    o.s("id", &id("workspace", w)).s(
                        "name",
                        &format!("{} {w:04}", title(DOMAINS[w % DOMAINS.len()])),
                    );
                    o.arr("reports", |a| {
                        for k in 0..PBI_REPORTS_PER_WORKSPACE {
                            let n = w * PBI_REPORTS_PER_WORKSPACE + k;
                            let rid = id("report", n);
                            let name = format!(
                                "{} {} {n}",
                                title(DOMAINS[n % DOMAINS.len()]),
                                title(NOUNS[n % NOUNS.len()])
                            );
                            // One in 50 reads the previous workspace's first dataset.
                            let elsewhere = w > 0 && n % 50 == 13;
                            let di = if elsewhere {
                                (w - 1) * PBI_DATASETS_PER_WORKSPACE
                            } else {
                                w * PBI_DATASETS_PER_WORKSPACE + k % PBI_DATASETS_PER_WORKSPACE
                            };
                            let ds = &datasets[di];
                            truth.insert(rid.clone(), (ds.3.clone(), ds.4.clone()));
                            let owner = format!(
                                "{}@contoso.example",
                                FIRST_NAMES[n % FIRST_NAMES.len()].to_lowercase()
                            );
                            a.obj(|o| {
                                o.s("id", &rid).s("name", &name).s("datasetId", &ds.0);
                                if elsewhere {
                                    o.s("datasetWorkspaceId", &id("workspace", w - 1));
                                }
                                o.s("reportType", "PowerBIReport");
                                if n % 3 != 0 {
                                    o.s("createdBy", &owner);
                                }
                                o.s("modifiedBy", &owner)
                                    .s("createdDateTime", "2025-03-01T10:00:00.000Z")
                                    .s("modifiedDateTime", "2025-06-01T10:00:00.000Z");
                            });
                            if app && k < 3 {
                                a.obj(|o| {
                                    o.s("id", &id("app-report", n))
                                        .s("name", &format!("[App] {name}"))
                                        .s("datasetId", &ds.0)
                                        .s("reportType", "PowerBIReport")
                                        .s("appId", &id("app", w))
                                        .s("originalReportObjectId", &rid)
                                        .s("modifiedBy", &owner);
                                });
                            }
                        }
                    });
                    o.arr("datasets", |a| {
                        for ds in datasets.iter().filter(|d| d.1 == w) {
                            a.item().push_str(&ds.2);
                        }
                    });
                });
            }
        })
        .arr("datasourceInstances", |a| {
            a.obj(|o| {
                o.s("datasourceType", "Snowflake")
                    .s("datasourceId", &id("datasource", 0))
                    .obj("connectionDetails", |o| {
                        o.s("server", PBI_HOST).s("database", &case(p.database));
                    });
            });
        });
    o.close();
    out.push('\n');
    std::fs::write(dir.join("tenant.json"), out)?;

    let mut s = String::new();
    let mut o = Obj::open(&mut s);
    o.s("integration", "pbi").obj("reports", |o| {
        for (rid, (all, only)) in &truth {
            o.obj(rid, |o| {
                let all: Vec<&String> = all.iter().collect();
                let only: Vec<&String> = only.iter().collect();
                o.strs("depends_on", &all).strs("native_sql_only", &only);
            });
        }
    });
    o.close();
    s.push('\n');
    std::fs::write(dir.join("truth.json"), s)?;
    Ok((truth.len(), tables_total))
}
