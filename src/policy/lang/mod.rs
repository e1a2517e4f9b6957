//! The condition language: Python-like expressions translated into Rhai.
//!
//! A condition is read into a syntax tree (`syntax`), type-checked as far as
//! it can be seen statically, and translated into a Rhai expression in which
//! every operation is a call to one of the functions in `runtime`; Rhai
//! itself contributes only `&&`, `||` and `!` (which short-circuit) and the
//! sandbox. The translation happens once, when the policy loads; a request
//! then only evaluates the compiled AST against an [`Env`].

pub mod runtime;
pub mod syntax;

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Timelike, Utc};
use rhai::{AST, Scope};

pub use runtime::{Pattern, Patterns, Value};
use syntax::{ArithOp, CmpOp, Expr, Func, Lit, Method, Node};
pub use syntax::{LangError, Root, Span};

use super::SessionView;

/// What the checker can tell about a value before the policy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Bool,
    Num,
    Str,
    List,
    Map,
    Null,
    /// A sum with an operand known only at run time: a number or a string, never a boolean.
    NumOrStr,
    /// Known only at run time (a field of the request, an index).
    Any,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Bool => "a boolean",
            Ty::Num => "a number",
            Ty::Str => "a string",
            Ty::List => "a list",
            Ty::Map => "a mapping",
            Ty::Null => "null",
            Ty::NumOrStr => "a number or a string",
            Ty::Any => "a value",
        }
    }
}

/// Something in a condition that is legal but probably not what was meant.
#[derive(Debug, Clone, PartialEq)]
pub struct LangWarning {
    pub offset: usize,
    pub message: String,
}

/// A condition compiled for evaluation, with what the loader needs to know of it.
#[derive(Debug, Clone)]
pub struct Condition {
    ast: AST,
    /// The tool names the condition requires (`tool_name == "x"` or
    /// `tool_name in [..]` at its top level), for the rule index.
    pub pinned_tools: Option<Vec<String>>,
    /// The condition is the literal `true`.
    pub always_true: bool,
    /// The names it reads as a whole (not those it reads only by a fixed
    /// path: the environment has those ready).
    pub roots: Roots,
    pub warnings: Vec<LangWarning>,
}

/// What a policy's conditions share: the compiled patterns of `matches()`
/// and `glob()`, and the fields they read by a fixed path
/// (`tool_args.path`, `session.action_count`), which a request's
/// environment reads once, up front, rather than each condition step by step.
#[derive(Debug, Default)]
pub struct Shared {
    pub patterns: Vec<Pattern>,
    pub fields: Vec<Field>,
}

/// Fields read by a fixed path that a policy's environment reads up front;
/// paths beyond these are read by each condition as it runs.
pub const MAX_FIELDS: usize = 16;

/// A field read by a fixed path: a root and the keys below it.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    root: Root,
    keys: Vec<String>,
}

impl Field {
    pub fn root(&self) -> Root {
        self.root
    }
}

/// Compile a condition, adding the patterns and fields it uses to `shared`.
pub fn compile(src: &str, shared: &mut Shared) -> Result<Condition, LangError> {
    let tree = syntax::parse(src)?;
    let mut t = Translator {
        src,
        shared,
        roots: Roots::default(),
        out: String::with_capacity(src.len() * 2),
    };
    let ty = t.emit(&tree)?;
    let roots = t.roots;
    let rhai_src = match ty {
        Ty::Bool => t.out,
        Ty::Any => format!("as_bool({})", t.out),
        other => {
            return Err(LangError {
                offset: tree.span.start,
                message: format!(
                    "a condition must be true or false, but this is {}",
                    other.name()
                ),
            });
        }
    };
    let ast = runtime::with_engine(|e| e.compile_expression(&rhai_src)).map_err(|e| LangError {
        offset: 0,
        message: format!("internal error translating the condition: {e}"),
    })?;
    let mut warnings = Vec::new();
    unguarded_nots(&tree, &tree, &mut warnings);
    Ok(Condition {
        ast,
        pinned_tools: pinned_tools(&tree),
        roots,
        always_true: tree.expr == Expr::Lit(Lit::Bool(true)),
        warnings,
    })
}

impl Condition {
    /// Evaluate against a request. `Err` carries a one-line reason.
    pub fn eval(&self, env: &mut Env) -> Result<bool, String> {
        runtime::eval_bool(&self.ast, &mut env.scope).map_err(|e| runtime::describe_error(&e))
    }
}

/// A set of the names conditions start from ([`Root`]): a request's
/// environment holds only the ones its policy's conditions read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roots(u16);

impl Roots {
    pub fn contains(self, root: Root) -> bool {
        self.0 & (1 << root as u16) != 0
    }

    pub fn insert(&mut self, root: Root) {
        self.0 |= 1 << root as u16;
    }

    pub fn union(self, other: Roots) -> Roots {
        Roots(self.0 | other.0)
    }
}

/// Everything a condition can see, built once per request.
pub struct Env {
    scope: Scope<'static>,
}

/// The request as conditions see it.
pub struct Input<'a> {
    pub tool_name: &'a str,
    pub tool_args: Value,
    pub agent_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub metadata: Value,
    pub session: &'a SessionView,
    /// The clock, already in the policy's timezone.
    pub now: DateTime<chrono_tz::Tz>,
}

/// The keys `context` has besides the metadata's (which they override).
const CONTEXT_KEYS: [&str; 3] = ["session_id", "agent_id", "user_id"];

/// The environment's names for the fields read by a fixed path, by slot.
const FIELD_NAMES: [&str; MAX_FIELDS] = [
    "__f0", "__f1", "__f2", "__f3", "__f4", "__f5", "__f6", "__f7", "__f8", "__f9", "__f10",
    "__f11", "__f12", "__f13", "__f14", "__f15",
];

impl Input<'_> {
    /// `root.key`.
    fn field(&self, root: Root, key: &str) -> Value {
        let s = self.session;
        let now = self.now;
        match (root, key) {
            (Root::ToolArgs, _) => lookup(&self.tool_args, key),
            (Root::Metadata, _) => lookup(&self.metadata, key),
            (Root::Context, "session_id") | (Root::Session, "id") => {
                Value::Str(s.id.as_str().into())
            }
            (Root::Context, "agent_id") => Value::opt_str(self.agent_id),
            (Root::Context, "user_id") => Value::opt_str(self.user_id),
            (Root::Context, _) => lookup(&self.metadata, key),
            (Root::Session, "action_count") => Value::Int(clamp(s.action_count)),
            (Root::Session, "allowed_count") => Value::Int(clamp(s.allowed_count)),
            (Root::Session, "denied_count") => Value::Int(clamp(s.denied_count)),
            (Root::Session, "approval_count") => Value::Int(clamp(s.approval_count)),
            (Root::Session, "tool_counts") => Value::map(
                s.tool_counts
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::Int(clamp(*v)))),
            ),
            (Root::Session, "estimated_cost") => Value::Float(s.estimated_cost),
            (Root::Session, "started_at") => Value::Int(s.started_at),
            (Root::Datetime, "hour") => Value::Int(now.hour().into()),
            (Root::Datetime, "minute") => Value::Int(now.minute().into()),
            (Root::Datetime, "second") => Value::Int(now.second().into()),
            (Root::Datetime, "weekday") => Value::Int(now.weekday().num_days_from_monday().into()),
            (Root::Datetime, "day") => Value::Int(now.day().into()),
            (Root::Datetime, "month") => Value::Int(now.month().into()),
            (Root::Datetime, "year") => Value::Int(now.year().into()),
            (Root::Datetime, "timestamp") => Value::Int(now.timestamp()),
            // Strings (and null) have no fields; nor do unknown keys.
            _ => Value::Null,
        }
    }

    /// A root that is a mapping built for conditions, whole: `session` and
    /// `datetime` with their fields, `context` as the metadata plus its own.
    fn mapping(&self, root: Root) -> Value {
        let keys = root.fields().unwrap_or(&CONTEXT_KEYS);
        let mut map = match (root, &self.metadata) {
            (Root::Context, Value::Map(m)) => (**m).clone(),
            _ => std::collections::BTreeMap::new(),
        };
        for key in keys {
            map.insert(key.to_string(), self.field(root, key));
        }
        Value::Map(std::sync::Arc::new(map))
    }

    /// The value at the end of `field`'s path.
    fn path(&self, field: &Field) -> Value {
        let (first, mut rest) = field.keys.split_first().expect("a path has a key");
        let start = match (field.root, first.as_str(), rest.split_first()) {
            // One tool's count, without building the mapping of them all.
            // A session past MAX_TOOLS names counts further names together:
            // a tool not counted by name may be among them, so it is taken
            // to have run as often as they all have (a limit on it then
            // holds, rather than reading null and never firing).
            (Root::Session, "tool_counts", Some((tool, more))) => {
                rest = more;
                let counts = &self.session.tool_counts;
                let count = counts
                    .get(tool.as_str())
                    .or_else(|| counts.get(crate::session::OTHER_TOOLS));
                count.map_or(Value::Null, |n| Value::Int(clamp(*n)))
            }
            _ => self.field(field.root, first),
        };
        rest.iter().fold(start, |v, key| lookup(&v, key))
    }
}

/// `value.key`: null unless `value` is a mapping that has `key`.
fn lookup(value: &Value, key: &str) -> Value {
    match value {
        Value::Map(m) => m.get(key).cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

impl Env {
    /// The environment of one request: the names in `roots` (the others are
    /// left out, as no condition of the policy reads them whole) and the
    /// values at the ends of `fields`.
    pub fn new(input: Input<'_>, patterns: &Patterns, roots: Roots, fields: &[Field]) -> Env {
        let mut scope = Scope::with_capacity(9 + fields.len());
        for root in [Root::Session, Root::Datetime, Root::Context] {
            if roots.contains(root) {
                scope.push_dynamic(root.name(), rhai::Dynamic::from(input.mapping(root)));
            }
        }
        if roots.contains(Root::ToolName) {
            scope.push_dynamic(
                "tool_name",
                rhai::ImmutableString::from(input.tool_name).into(),
            );
        }
        if roots.contains(Root::AgentId) {
            scope.push_dynamic("agent_id", opt_dynamic(input.agent_id));
        }
        if roots.contains(Root::UserId) {
            scope.push_dynamic("user_id", opt_dynamic(input.user_id));
        }
        if !patterns.0.is_empty() {
            scope.push_dynamic("__patterns", rhai::Dynamic::from(patterns.clone()));
        }
        for (slot, field) in fields.iter().enumerate() {
            scope.push_dynamic(FIELD_NAMES[slot], input.path(field).into_dynamic());
        }
        if roots.contains(Root::Metadata) {
            scope.push_dynamic("metadata", rhai::Dynamic::from(input.metadata));
        }
        if roots.contains(Root::ToolArgs) {
            scope.push_dynamic("tool_args", rhai::Dynamic::from(input.tool_args));
        }
        Env { scope }
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn opt_dynamic(s: Option<&str>) -> rhai::Dynamic {
    s.map_or(rhai::Dynamic::UNIT, |s| {
        rhai::ImmutableString::from(s).into()
    })
}

/// A condition evaluated on its own, for tests and tools: compile `src` and
/// run it once against `input`.
pub fn eval_once(src: &str, input: Input<'_>) -> Result<Result<bool, String>, LangError> {
    let mut shared = Shared::default();
    let cond = compile(src, &mut shared)?;
    let patterns = Patterns(std::sync::Arc::new(shared.patterns));
    let mut env = Env::new(input, &patterns, cond.roots, &shared.fields);
    Ok(cond.eval(&mut env))
}

/// The UTC clock as a condition in a UTC policy sees it.
pub fn utc(now: DateTime<Utc>) -> DateTime<chrono_tz::Tz> {
    now.with_timezone(&chrono_tz::UTC)
}

struct Translator<'a> {
    src: &'a str,
    shared: &'a mut Shared,
    roots: Roots,
    out: String,
}

impl Translator<'_> {
    fn text(&self, node: &Node) -> &str {
        self.src
            .get(node.span.start..node.span.end)
            .unwrap_or("?")
            .trim()
    }

    /// The environment's slot for a field read by a fixed path, if it has
    /// (or can take) one.
    fn field_slot(&mut self, node: &Node) -> Option<usize> {
        let mut keys = Vec::new();
        let mut at = node;
        let root = loop {
            match &at.expr {
                Expr::Field(base, key) => {
                    keys.push(key.clone());
                    at = base;
                }
                Expr::Root(root) => break *root,
                _ => return None,
            }
        };
        keys.reverse();
        let field = Field { root, keys };
        let fields = &mut self.shared.fields;
        match fields.iter().position(|f| *f == field) {
            Some(slot) => Some(slot),
            None if fields.len() < MAX_FIELDS => {
                fields.push(field);
                Some(fields.len() - 1)
            }
            None => None,
        }
    }

    fn type_error<T>(&self, node: &Node, message: String) -> Result<T, LangError> {
        Err(LangError {
            offset: node.span.start,
            message,
        })
    }

    /// Emit `node` as a Rhai expression and return its static type.
    fn emit(&mut self, node: &Node) -> Result<Ty, LangError> {
        match &node.expr {
            Expr::Lit(lit) => Ok(self.literal(lit)),
            Expr::List(items) => {
                self.out.push('[');
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        self.out.push_str(", ");
                    }
                    self.emit(item)?;
                }
                self.out.push(']');
                Ok(Ty::List)
            }
            Expr::Root(root) => {
                self.roots.insert(*root);
                self.out.push_str(root.name());
                Ok(match root {
                    Root::ToolName => Ty::Str,
                    Root::AgentId | Root::UserId => Ty::Any,
                    _ => Ty::Map,
                })
            }
            Expr::Field(base, key) => {
                let ty = match &base.expr {
                    Expr::Root(Root::Session) => match key.as_str() {
                        "id" => Ty::Str,
                        "tool_counts" => Ty::Map,
                        _ => Ty::Num,
                    },
                    Expr::Root(Root::Datetime) => Ty::Num,
                    _ => Ty::Any,
                };
                if let Some(slot) = self.field_slot(node) {
                    self.out.push_str(FIELD_NAMES[slot]);
                    return Ok(ty);
                }
                self.out.push_str("get(");
                self.emit(base)?;
                self.out.push_str(", ");
                string_literal(&mut self.out, key);
                self.out.push(')');
                Ok(ty)
            }
            Expr::Index(base, index) => {
                self.out.push_str("idx(");
                self.emit(base)?;
                self.out.push_str(", ");
                let ty = self.emit(index)?;
                self.out.push(')');
                if matches!(ty, Ty::Bool | Ty::List | Ty::Map) {
                    return self.type_error(
                        index,
                        format!("an index must be an integer or a string, not {}", ty.name()),
                    );
                }
                Ok(Ty::Any)
            }
            Expr::Call(func, args) => self.call(node, *func, &args[0]),
            Expr::Method(target, method, args) => self.method(target, *method, args.first()),
            Expr::Not(inner) => {
                self.out.push('!');
                self.boolean(inner)?;
                Ok(Ty::Bool)
            }
            Expr::And(items) | Expr::Or(items) => {
                let joiner = if matches!(node.expr, Expr::And(_)) {
                    " && "
                } else {
                    " || "
                };
                self.chain(items, joiner)?;
                Ok(Ty::Bool)
            }
            Expr::Compare(first, rest) => {
                self.out.push('(');
                let mut left = first.as_ref();
                for (k, (op, right)) in rest.iter().enumerate() {
                    if k > 0 {
                        self.out.push_str(" && ");
                    }
                    self.comparison(left, *op, right)?;
                    left = right;
                }
                self.out.push(')');
                Ok(Ty::Bool)
            }
            Expr::Arith(op, a, b) => {
                let name = match op {
                    ArithOp::Add => "add",
                    ArithOp::Sub => "sub",
                    ArithOp::Mul => "mul",
                    ArithOp::Div => "div",
                    ArithOp::Rem => "rem",
                };
                let _ = write!(self.out, "{name}(");
                let ta = self.emit(a)?;
                self.out.push_str(", ");
                let tb = self.emit(b)?;
                self.out.push(')');
                let symbol = ["+", "-", "*", "/", "%"][*op as usize];
                match (ta, tb) {
                    (Ty::Num, Ty::Num) => Ok(Ty::Num),
                    (Ty::Str, Ty::Str) if *op == ArithOp::Add => Ok(Ty::Str),
                    (Ty::Any | Ty::NumOrStr, _) | (_, Ty::Any | Ty::NumOrStr)
                        if *op == ArithOp::Add =>
                    {
                        Ok(Ty::NumOrStr)
                    }
                    (Ty::Any | Ty::NumOrStr, _) | (_, Ty::Any | Ty::NumOrStr) => Ok(Ty::Num),
                    _ => self.type_error(
                        node,
                        format!(
                            "unsupported operand types for {symbol}: {} and {}",
                            ta.name(),
                            tb.name()
                        ),
                    ),
                }
            }
            Expr::Neg(inner) => {
                self.out.push_str("neg(");
                let ty = self.emit(inner)?;
                self.out.push(')');
                match ty {
                    Ty::Num | Ty::Any | Ty::NumOrStr => Ok(Ty::Num),
                    other => self.type_error(inner, format!("cannot negate {}", other.name())),
                }
            }
        }
    }

    fn literal(&mut self, lit: &Lit) -> Ty {
        match lit {
            Lit::Null => {
                self.out.push_str("()");
                Ty::Null
            }
            Lit::Bool(b) => {
                self.out.push_str(if *b { "true" } else { "false" });
                Ty::Bool
            }
            Lit::Int(n) => {
                let _ = write!(self.out, "({n})");
                Ty::Num
            }
            Lit::Float(f) => {
                // Rhai reads `1.5e3` but not `1e3`: always give the mantissa a point.
                let sci = format!("{f:e}");
                let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
                let point = if mantissa.contains('.') { "" } else { ".0" };
                let _ = write!(self.out, "({mantissa}{point}e{exp})");
                Ty::Num
            }
            Lit::Str(s) => {
                string_literal(&mut self.out, s);
                Ty::Str
            }
        }
    }

    /// An `and`/`or` chain. Rhai counts each operator of a flat chain as a
    /// level of nesting, so long chains are emitted as groups of at most
    /// `GROUP` operands, nested: 10,000 terms are three levels of groups.
    fn chain(&mut self, items: &[Node], joiner: &str) -> Result<(), LangError> {
        const GROUP: usize = 32;
        self.out.push('(');
        if items.len() <= GROUP {
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    self.out.push_str(joiner);
                }
                self.boolean(item)?;
            }
        } else {
            let size = items.len().div_ceil(GROUP);
            for (k, group) in items.chunks(size).enumerate() {
                if k > 0 {
                    self.out.push_str(joiner);
                }
                self.chain(group, joiner)?;
            }
        }
        self.out.push(')');
        Ok(())
    }

    /// Emit a node where a boolean is needed: as is if it is one, else by its truth.
    fn boolean(&mut self, node: &Node) -> Result<(), LangError> {
        let mark = self.out.len();
        let ty = self.emit(node)?;
        if ty != Ty::Bool {
            self.out.insert_str(mark, "truthy(");
            self.out.push(')');
        }
        Ok(())
    }

    fn comparison(&mut self, left: &Node, op: CmpOp, right: &Node) -> Result<(), LangError> {
        let (name, swapped) = match op {
            CmpOp::Eq => ("eq", false),
            CmpOp::Ne => ("ne", false),
            CmpOp::Lt => ("lt", false),
            CmpOp::Le => ("le", false),
            CmpOp::Gt => ("gt", false),
            CmpOp::Ge => ("ge", false),
            CmpOp::In => ("has", true),
            CmpOp::NotIn => ("!has", true),
            CmpOp::IsNull => {
                self.out.push_str("is_null(");
                self.emit(left)?;
                self.out.push(')');
                return Ok(());
            }
            CmpOp::IsNotNull => {
                self.out.push_str("!is_null(");
                self.emit(left)?;
                self.out.push(')');
                return Ok(());
            }
        };
        let _ = write!(self.out, "{name}(");
        let (first, second) = if swapped {
            (right, left)
        } else {
            (left, right)
        };
        let t1 = self.emit(first)?;
        self.out.push_str(", ");
        let t2 = self.emit(second)?;
        self.out.push(')');
        let (tl, tr) = if swapped { (t2, t1) } else { (t1, t2) };
        let known = |t: Ty| !matches!(t, Ty::Any | Ty::Null | Ty::NumOrStr);
        if op.is_ordering() && known(tl) && known(tr) && tl != tr {
            return self.type_error(
                left,
                format!("cannot order {} against {}", tl.name(), tr.name()),
            );
        }
        if matches!(op, CmpOp::In | CmpOp::NotIn) {
            if matches!(tr, Ty::Num | Ty::Bool) {
                return self.type_error(
                    right,
                    format!(
                        "'in' needs a string, list or mapping on the right, not {}",
                        tr.name()
                    ),
                );
            }
            if tr == Ty::Str && known(tl) && tl != Ty::Str {
                return self.type_error(
                    left,
                    format!(
                        "'in <string>' needs a string on the left, not {}",
                        tl.name()
                    ),
                );
            }
        }
        Ok(())
    }

    fn call(&mut self, node: &Node, func: Func, arg: &Node) -> Result<Ty, LangError> {
        let (name, result, accepts): (&str, Ty, &[Ty]) = match func {
            Func::Len => ("f_len", Ty::Num, &[Ty::Str, Ty::List, Ty::Map]),
            Func::Int => ("f_int", Ty::Num, &[Ty::Num, Ty::Str, Ty::Bool]),
            Func::Float => ("f_float", Ty::Num, &[Ty::Num, Ty::Str, Ty::Bool]),
            Func::Str => (
                "f_str",
                Ty::Str,
                &[Ty::Num, Ty::Str, Ty::Bool, Ty::Null, Ty::List, Ty::Map],
            ),
            Func::Any => ("f_any", Ty::Bool, &[Ty::List, Ty::Map, Ty::Str]),
            Func::All => ("f_all", Ty::Bool, &[Ty::List, Ty::Map, Ty::Str]),
        };
        let _ = write!(self.out, "{name}(");
        let ty = self.emit(arg)?;
        self.out.push(')');
        if !matches!(ty, Ty::Any | Ty::NumOrStr) && !accepts.contains(&ty) {
            let func_name = &name[2..];
            let _ = node;
            return self.type_error(
                arg,
                format!(
                    "{func_name}() cannot take {} ({})",
                    ty.name(),
                    self.text(arg)
                ),
            );
        }
        Ok(result)
    }

    fn method(
        &mut self,
        target: &Node,
        method: Method,
        arg: Option<&Node>,
    ) -> Result<Ty, LangError> {
        let name = Method::ALL
            .iter()
            .find(|(_, m)| *m == method)
            .map_or("?", |(n, _)| *n);
        let _ = write!(self.out, "m_{name}(");
        let ty = self.emit(target)?;
        let allowed = match method {
            Method::Contains => {
                matches!(ty, Ty::Str | Ty::List | Ty::Any | Ty::Null | Ty::NumOrStr)
            }
            _ => matches!(ty, Ty::Str | Ty::Any | Ty::Null | Ty::NumOrStr),
        };
        if !allowed {
            return self.type_error(
                target,
                format!(
                    "{name}() needs a string, but {} is {}",
                    self.text(target),
                    ty.name()
                ),
            );
        }
        match (method, arg) {
            (Method::Matches | Method::Glob, Some(arg)) => {
                let Expr::Lit(Lit::Str(pattern)) = &arg.expr else {
                    return self.type_error(
                        arg,
                        format!("{name}() takes a pattern written as a string literal"),
                    );
                };
                let compiled = if method == Method::Matches {
                    regex::RegexBuilder::new(pattern)
                        .size_limit(1 << 20)
                        .build()
                        .map(Pattern::Regex)
                        .map_err(|e| {
                            format!(
                                "invalid regular expression: {}",
                                e.to_string()
                                    .lines()
                                    .last()
                                    .unwrap_or("")
                                    .trim_start_matches("error: ")
                            )
                        })
                } else {
                    globset::GlobBuilder::new(pattern)
                        .literal_separator(true)
                        .build()
                        .map(|g| Pattern::Glob(g.compile_matcher()))
                        .map_err(|e| format!("invalid glob: {e}"))
                };
                let compiled = compiled.map_err(|message| LangError {
                    offset: arg.span.start,
                    message,
                })?;
                let _ = write!(self.out, ", __patterns, {})", self.shared.patterns.len());
                self.shared.patterns.push(compiled);
                Ok(Ty::Bool)
            }
            (_, Some(arg)) => {
                self.out.push_str(", ");
                let at = self.emit(arg)?;
                self.out.push(')');
                let ok = match method {
                    Method::Contains => true,
                    _ => matches!(at, Ty::Str | Ty::List | Ty::Any),
                };
                if !ok {
                    return self.type_error(
                        arg,
                        format!(
                            "{name}() takes a string or a list of strings, not {}",
                            at.name()
                        ),
                    );
                }
                Ok(Ty::Bool)
            }
            (_, None) => {
                self.out.push(')');
                Ok(if ty == Ty::Str { Ty::Str } else { Ty::Any })
            }
        }
    }
}

/// A Rhai string literal with the same characters as `s`.
fn string_literal(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The tool names that a condition requires at its top level.
fn pinned_tools(node: &Node) -> Option<Vec<String>> {
    match &node.expr {
        Expr::Compare(first, rest) if rest.len() == 1 => {
            let (op, right) = (&rest[0].0, &rest[0].1);
            let is_tool = |n: &Node| n.expr == Expr::Root(Root::ToolName);
            let lit = |n: &Node| match &n.expr {
                Expr::Lit(Lit::Str(s)) => Some(s.clone()),
                _ => None,
            };
            match op {
                CmpOp::Eq if is_tool(first) => lit(right).map(|s| vec![s]),
                CmpOp::Eq if is_tool(right) => lit(first).map(|s| vec![s]),
                CmpOp::In if is_tool(first) => match &right.expr {
                    Expr::List(items) => items.iter().map(lit).collect(),
                    _ => None,
                },
                _ => None,
            }
        }
        Expr::And(items) => items
            .iter()
            .filter_map(pinned_tools)
            .reduce(|a, b| a.into_iter().filter(|x| b.contains(x)).collect()),
        Expr::Or(items) => {
            let mut all = Vec::new();
            for item in items {
                all.extend(pinned_tools(item)?);
            }
            Some(all)
        }
        _ => None,
    }
}

/// `tool_args.a.b` -> "tool_args.a.b", for the request fields a rule may test.
fn field_path(node: &Node) -> Option<String> {
    match &node.expr {
        Expr::Root(r @ (Root::ToolArgs | Root::Metadata | Root::Context)) => {
            Some(r.name().to_string())
        }
        Expr::Field(base, key) => field_path(base).map(|p| format!("{p}.{key}")),
        _ => None,
    }
}

fn walk<'a>(node: &'a Node, f: &mut impl FnMut(&'a Node)) {
    f(node);
    match &node.expr {
        Expr::Lit(_) | Expr::Root(_) => {}
        Expr::List(items) | Expr::And(items) | Expr::Or(items) | Expr::Call(_, items) => {
            items.iter().for_each(|n| walk(n, f));
        }
        Expr::Field(base, _) => walk(base, f),
        Expr::Index(a, b) | Expr::Arith(_, a, b) => {
            walk(a, f);
            walk(b, f);
        }
        Expr::Method(target, _, args) => {
            walk(target, f);
            args.iter().for_each(|n| walk(n, f));
        }
        Expr::Not(inner) | Expr::Neg(inner) => walk(inner, f),
        Expr::Compare(first, rest) => {
            walk(first, f);
            rest.iter().for_each(|(_, n)| walk(n, f));
        }
    }
}

/// Fields the condition checks for presence: `"k" in p`, `p.k != null`, `p.k is not None`.
fn guarded_fields(root: &Node) -> Vec<String> {
    let mut guarded = Vec::new();
    walk(root, &mut |n| {
        if let Expr::Compare(first, rest) = &n.expr {
            let mut left = first.as_ref();
            for (op, right) in rest {
                match (op, &left.expr, &right.expr) {
                    (CmpOp::In, Expr::Lit(Lit::Str(key)), _) => {
                        if let Some(p) = field_path(right) {
                            guarded.push(format!("{p}.{key}"));
                        }
                    }
                    (CmpOp::Ne, _, Expr::Lit(Lit::Null)) | (CmpOp::IsNotNull, _, _) => {
                        guarded.extend(field_path(left));
                    }
                    _ => {}
                }
                left = right;
            }
        }
    });
    guarded
}

/// Warn where `not` covers a request field that the condition never checks
/// for presence: a missing field makes the test under `not` false, so the
/// `not` is true and the rule matches requests that lack the field.
fn unguarded_nots(root: &Node, node: &Node, warnings: &mut Vec<LangWarning>) {
    let guarded = guarded_fields(root);
    walk(node, &mut |n| {
        if let Expr::Not(inner) = &n.expr {
            let mut fields = Vec::new();
            walk(inner, &mut |m| {
                if let (Some(p), Expr::Field(..)) = (field_path(m), &m.expr) {
                    fields.push(p);
                }
            });
            // Only the deepest paths: `tool_args.a.b` also names `tool_args.a`.
            let leaves: Vec<&String> = fields
                .iter()
                .filter(|p| {
                    !fields
                        .iter()
                        .any(|q| q.len() > p.len() && q.starts_with(&format!("{p}.")))
                })
                .collect();
            for p in leaves {
                if !guarded.iter().any(|g| g == p) {
                    let (parent, key) = p.rsplit_once('.').unwrap_or(("tool_args", p));
                    warnings.push(LangWarning {
                        offset: n.span.start,
                        message: format!(
                            "\"not\" covers {p}, which is null when the request lacks it, so this matches such requests; test for it first (\"{key}\" in {parent})"
                        ),
                    });
                }
            }
        }
    });
    warnings.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn session() -> SessionView {
        SessionView {
            id: "s-1".into(),
            action_count: 5,
            estimated_cost: 10.0,
            ..Default::default()
        }
    }

    fn run(src: &str, args: serde_json::Value) -> Result<bool, String> {
        let s = session();
        let input = Input {
            tool_name: "read_file",
            tool_args: Value::from_json(&args),
            agent_id: None,
            user_id: Some("u-1"),
            metadata: Value::from_json(&serde_json::json!({"sensitive": true})),
            session: &s,
            now: utc(Utc.with_ymd_and_hms(2026, 3, 2, 8, 59, 0).unwrap()),
        };
        eval_once(src, input).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn fields_read_by_a_fixed_path_are_read_once_up_front() {
        let mut shared = Shared::default();
        let cond = compile(
            "session.action_count > 1 and datetime.hour < 5 or \"x\" in context \
             or tool_args.a.b == session.action_count",
            &mut shared,
        )
        .unwrap();
        let paths: Vec<(Root, Vec<&str>)> = shared
            .fields
            .iter()
            .map(|f| (f.root, f.keys.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            paths,
            [
                (Root::Session, vec!["action_count"]),
                (Root::Datetime, vec!["hour"]),
                (Root::ToolArgs, vec!["a", "b"]),
            ]
        );
        // Only `context` is read whole.
        for root in Root::ALL.map(|(_, r)| r) {
            assert_eq!(cond.roots.contains(root), root == Root::Context, "{root:?}");
        }
        // Past the limit, paths are read as the condition runs, and mean the same.
        let many: Vec<String> = (0..MAX_FIELDS + 4)
            .map(|i| format!("tool_args.k{i} == {i}"))
            .collect();
        let src = many.join(" or ");
        let mut shared = Shared::default();
        let cond = compile(&src, &mut shared).unwrap();
        assert_eq!(shared.fields.len(), MAX_FIELDS);
        assert!(cond.roots.contains(Root::ToolArgs));
        for i in [0, MAX_FIELDS - 1, MAX_FIELDS, MAX_FIELDS + 3] {
            let key = format!("k{i}");
            assert_eq!(run(&src, serde_json::json!({ key: i })), Ok(true), "k{i}");
        }
        assert_eq!(run(&src, serde_json::json!({"k0": "0"})), Ok(false));
    }

    #[test]
    fn a_tools_count_read_by_path_or_by_index_is_the_same() {
        let mut s = session();
        s.tool_counts.insert("read_file".into(), 3);
        let input = || Input {
            tool_name: "read_file",
            tool_args: Value::Null,
            agent_id: None,
            user_id: None,
            metadata: Value::Null,
            session: &s,
            now: utc(Utc.with_ymd_and_hms(2026, 3, 2, 8, 59, 0).unwrap()),
        };
        for src in [
            "session.tool_counts.read_file == 3 and session.tool_counts.other == null",
            "session.tool_counts[tool_name] == 3 and session.tool_counts.read_file.x == null",
            "len(session.tool_counts) == 1",
        ] {
            assert_eq!(eval_once(src, input()).unwrap(), Ok(true), "{src}");
        }
    }

    #[test]
    fn calls_resolved_in_one_evaluation_fit_other_types_in_the_next() {
        // The same calls see an int, a string, a float, a list and null in
        // turn; the resolution kept from the first must not decide the rest.
        let src = "tool_args.x == 1 or tool_args.x.startswith(\"a\")";
        for (x, expected) in [
            (serde_json::json!(1), Ok(true)),
            (serde_json::json!("abc"), Ok(true)),
            (serde_json::json!(1.0), Ok(true)),
            (serde_json::json!("b"), Ok(false)),
            (serde_json::json!(2), Err(())),
            (serde_json::json!(null), Ok(false)),
            (serde_json::json!(1), Ok(true)),
        ] {
            let got = run(src, serde_json::json!({ "x": x })).map_err(|_| ());
            assert_eq!(got, expected, "x = {x}");
        }
    }

    #[test]
    fn the_seeds_conditions_evaluate_as_documented() {
        let tmp = serde_json::json!({"path": "/tmp/a.txt"});
        assert_eq!(
            run(
                "tool_name == \"read_file\" and \n tool_args.path.startswith(\"/tmp/\")",
                tmp.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            run(
                "tool_args.path.startswith('/etc/') or tool_args.path.startswith('/sys/')",
                tmp
            ),
            Ok(false)
        );
        assert_eq!(
            run(
                "tool_args.sensitive == true and (datetime.hour < 9 or datetime.hour > 17)",
                serde_json::json!({})
            ),
            Ok(false)
        );
        assert_eq!(
            run(
                "tool_args.sensitive == true and (datetime.hour < 9 or datetime.hour > 17)",
                serde_json::json!({"sensitive": true})
            ),
            Ok(true)
        );
        assert_eq!(
            run(
                "tool_args.sensitive == true",
                serde_json::json!({"sensitive": "true"})
            ),
            Ok(false)
        );
        assert_eq!(
            run("session.estimated_cost > 10.0", serde_json::json!({})),
            Ok(false)
        );
        assert_eq!(
            run(
                "tool_args.model in ['gpt-4', 'gpt-4-turbo']",
                serde_json::json!({"model": "gpt-4"})
            ),
            Ok(true)
        );
    }

    #[test]
    fn affixes_take_a_list_written_in_the_condition_or_sent_in_the_arguments() {
        let args = serde_json::json!({"path": "/etc/passwd", "roots": ["/sys/", "/etc/"], "bad": ["/etc/", 1]});
        for (src, expected) in [
            ("tool_args.path.startswith(['/sys/', '/etc/'])", Ok(true)),
            ("tool_args.path.startswith(['/sys/', '/tmp/'])", Ok(false)),
            ("tool_args.path.endswith(['wd', 'x'])", Ok(true)),
            ("tool_args.path.startswith(tool_args.roots)", Ok(true)),
            ("tool_args.path.startswith([])", Ok(false)),
            (
                "tool_args.path.startswith(['/etc/', 1])",
                Err("startswith() takes strings, not a number".to_string()),
            ),
            (
                "tool_args.path.startswith(['/etc/', null])",
                Err("startswith() takes strings, not a null".to_string()),
            ),
            (
                "tool_args.path.startswith(tool_args.bad)",
                Err("startswith() takes strings, not a number".to_string()),
            ),
        ] {
            assert_eq!(run(src, args.clone()), expected, "{src}");
        }
    }

    #[test]
    fn missing_fields_are_null() {
        let none = serde_json::json!({});
        assert_eq!(
            run("tool_args.path.startswith('/tmp')", none.clone()),
            Ok(false)
        );
        assert_eq!(
            run("not tool_args.path.endswith('.env')", none.clone()),
            Ok(true)
        );
        assert_eq!(run("tool_args.a.b.c == null", none.clone()), Ok(true));
        assert_eq!(run("tool_args.count > 3", none.clone()), Ok(false));
        assert_eq!(run("tool_args.count <= 3", none.clone()), Ok(false));
        assert_eq!(run("tool_args.items[0] is None", none), Ok(true));
    }

    #[test]
    fn run_time_errors_are_reported_not_swallowed() {
        let e = run("tool_args.x < 1", serde_json::json!({"x": "a"})).unwrap_err();
        assert_eq!(e, "cannot order a string against a number");
        let e = run("tool_args.x", serde_json::json!({"x": "a"})).unwrap_err();
        assert_eq!(e, "the condition produced a string, not true or false");
        assert_eq!(run("tool_args.x", serde_json::json!({"x": true})), Ok(true));
    }

    #[test]
    fn static_type_errors_are_load_errors() {
        let mut p = Shared::default();
        let e = compile("tool_name.lower()", &mut p).unwrap_err();
        assert_eq!(
            e.message,
            "a condition must be true or false, but this is a string"
        );
        let e = compile("session.action_count.startswith('1')", &mut p).unwrap_err();
        assert_eq!(
            e.message,
            "startswith() needs a string, but session.action_count is a number"
        );
        let e = compile("'a' < 1", &mut p).unwrap_err();
        assert_eq!(e.message, "cannot order a string against a number");
        let e = compile("tool_name.matches('(')", &mut p).unwrap_err();
        assert!(
            e.message.starts_with("invalid regular expression"),
            "{}",
            e.message
        );
        assert_eq!(e.offset, 18);
    }

    #[test]
    fn pinned_tools_come_from_the_top_level_only() {
        let mut p = Shared::default();
        let pins = |src: &str| compile(src, &mut Shared::default()).unwrap().pinned_tools;
        assert_eq!(
            pins("tool_name == 'a' and session.action_count > 1"),
            Some(vec!["a".to_string()])
        );
        assert_eq!(
            pins("tool_name in ['a', 'b']"),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            pins("tool_name == 'a' or tool_name == 'b'"),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(pins("tool_name == 'a' or true"), None);
        assert_eq!(pins("not tool_name == 'a'"), None);
        let _ = compile("true", &mut p);
    }

    #[test]
    fn unguarded_not_is_warned_and_a_guard_silences_it() {
        let c = compile(
            "not tool_args.path.endswith('.env')",
            &mut Shared::default(),
        )
        .unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0]
                .message
                .starts_with("\"not\" covers tool_args.path"),
            "{:?}",
            c.warnings
        );
        let c = compile(
            "'path' in tool_args and not tool_args.path.endswith('.env')",
            &mut Shared::default(),
        )
        .unwrap();
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn patterns_work() {
        assert_eq!(
            run(
                "tool_args.path.glob('/home/**')",
                serde_json::json!({"path": "/home/u/a/b"})
            ),
            Ok(true)
        );
        assert_eq!(
            run(
                "tool_args.path.glob('/home/*')",
                serde_json::json!({"path": "/home/u/a"})
            ),
            Ok(false)
        );
        assert_eq!(
            run(
                "tool_args.path.matches('^/tmp/[a-z]+\\\\.txt$')",
                serde_json::json!({"path": "/tmp/ab.txt"})
            ),
            Ok(true)
        );
        assert_eq!(
            run(
                "tool_args.path.contains('tmp')",
                serde_json::json!({"path": "/tmp/ab.txt"})
            ),
            Ok(true)
        );
        assert_eq!(
            run(
                "tool_args.tags.contains('x')",
                serde_json::json!({"tags": ["x"]})
            ),
            Ok(true)
        );
    }
}
