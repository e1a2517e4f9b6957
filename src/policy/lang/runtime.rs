//! What a compiled condition runs on: the values it sees, the functions the
//! translator calls, and the sandboxed Rhai engine that evaluates it.
//!
//! Every operation of the language is one of the functions registered here,
//! so its meaning is Python's (or the language's, where it says otherwise)
//! rather than Rhai's: ints and floats compare by value, a missing field is
//! null, ordering against null is false, `%` takes the sign of the divisor.
//! The engine starts from `Engine::new_raw()` (no packages) and gets only
//! these functions, an operation limit and depth limits. Evaluation is
//! per thread: each thread keeps its own engine, because one engine shared by
//! all threads does not scale past one core.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::cell::RefCell;

use rhai::{
    AST, Array, Caches, Dynamic, Engine, EvalAltResult, ImmutableString, OptimizationLevel, Scope,
};

/// Operations one condition may take before it is stopped.
pub const MAX_OPERATIONS: u64 = 200_000;
/// Longest string an operation in a condition may build, in bytes.
pub const MAX_STRING: usize = 4 * 1024 * 1024;

/// A value as conditions see it. Containers are shared, so that passing
/// `tool_args` or a big list between functions never copies it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(ImmutableString),
    List(Arc<Vec<Value>>),
    Map(Arc<BTreeMap<String, Value>>),
}

impl Value {
    pub fn from_json(json: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::Str(s.as_str().into()),
            J::Array(items) => Value::List(Arc::new(items.iter().map(Value::from_json).collect())),
            J::Object(map) => Value::Map(Arc::new(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            )),
        }
    }

    pub fn map(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
        Value::Map(Arc::new(entries.into_iter().collect()))
    }

    pub fn opt_str(s: Option<&str>) -> Value {
        s.map_or(Value::Null, |s| Value::Str(s.into()))
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "mapping",
        }
    }

    /// Python's truth: null, false, 0, 0.0, "", [] and {} are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
        }
    }

    pub(super) fn into_dynamic(self) -> Dynamic {
        match self {
            Value::Null => Dynamic::UNIT,
            Value::Bool(b) => b.into(),
            Value::Int(i) => i.into(),
            Value::Float(f) => f.into(),
            Value::Str(s) => s.into(),
            container => Dynamic::from(container),
        }
    }

    fn of(d: &Dynamic) -> Value {
        if d.is_unit() {
            Value::Null
        } else if let Ok(b) = d.as_bool() {
            Value::Bool(b)
        } else if let Ok(i) = d.as_int() {
            Value::Int(i)
        } else if let Ok(f) = d.as_float() {
            Value::Float(f)
        } else if let Some(v) = d.read_lock::<Value>() {
            v.clone()
        } else if d.is_string() {
            Value::Str(d.clone().into_immutable_string().unwrap_or_default())
        } else if let Some(items) = d.read_lock::<Array>() {
            Value::List(Arc::new(items.iter().map(Value::of).collect()))
        } else {
            Value::Null
        }
    }
}

type Res<T> = Result<T, Box<EvalAltResult>>;

fn fail<T>(message: String) -> Res<T> {
    Err(message.into())
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Two numbers by value, exactly, as Python compares them: an int is never
/// rounded to a float first (9007199254740993 is more than 9007199254740992.0).
/// `None` when either is not a number, or is NaN.
fn num_order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Int(i), Value::Float(f)) => int_against_float(*i, *f),
        (Value::Float(f), Value::Int(i)) => int_against_float(*i, *f).map(|o| o.reverse()),
        _ => None,
    }
}

fn int_against_float(i: i64, f: f64) -> Option<std::cmp::Ordering> {
    use std::cmp::Ordering;
    // 2^63, exact as a float: every float below it and at or above -2^63
    // has an integer part that fits an i64 exactly.
    const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        return None;
    }
    if f >= TWO_TO_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_TO_63 {
        return Some(Ordering::Greater);
    }
    let whole = f.trunc();
    Some(i.cmp(&(whole as i64)).then_with(|| {
        // The same integer part: the fraction decides.
        0.0_f64.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal)
    }))
}

/// `==` with ints and floats equal by value and no truthiness across types.
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            num_order(a, b) == Some(std::cmp::Ordering::Equal)
        }
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

/// Python's ordering; `None` where an operand is null (the comparison is
/// then false), an error between types that do not order.
fn order(a: &Value, b: &Value) -> Res<Option<std::cmp::Ordering>> {
    Ok(match (a, b) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => num_order(a, b),
        (Value::Str(x), Value::Str(y)) => Some(x.as_str().cmp(y.as_str())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::List(x), Value::List(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                if !equal(p, q) {
                    return order(p, q);
                }
            }
            Some(x.len().cmp(&y.len()))
        }
        _ => {
            return fail(format!(
                "cannot order a {} against a {}",
                a.type_name(),
                b.type_name()
            ));
        }
    })
}

fn compare(a: Dynamic, b: Dynamic, test: fn(std::cmp::Ordering) -> bool) -> Res<bool> {
    let (a, b) = (Value::of(&a), Value::of(&b));
    if matches!(a, Value::Null) || matches!(b, Value::Null) {
        return Ok(false);
    }
    Ok(order(&a, &b)?.is_some_and(test))
}

/// `needle in haystack`.
fn contains(haystack: &Value, needle: &Value) -> Res<bool> {
    match haystack {
        Value::Null => Ok(false),
        Value::Str(s) => match needle {
            Value::Str(n) => Ok(s.contains(n.as_str())),
            other => fail(format!(
                "'in <string>' needs a string on the left, not a {}",
                other.type_name()
            )),
        },
        Value::List(items) => Ok(items.iter().any(|item| equal(item, needle))),
        Value::Map(map) => Ok(matches!(needle, Value::Str(k) if map.contains_key(k.as_str()))),
        other => fail(format!(
            "'in' needs a string, list or mapping on the right, not a {}",
            other.type_name()
        )),
    }
}

/// `x.key`. The first argument is a reference, so that a variable (a whole
/// `tool_args`, say) is read in place rather than copied for the call.
fn get(x: &mut Dynamic, key: ImmutableString) -> Dynamic {
    match x.read_lock::<Value>().as_deref() {
        Some(Value::Map(m)) => m
            .get(key.as_str())
            .cloned()
            .unwrap_or(Value::Null)
            .into_dynamic(),
        _ => Dynamic::UNIT,
    }
}

/// `x[i]`; the first argument is a reference, as in [`get`].
fn index(x: &mut Dynamic, i: Dynamic) -> Res<Dynamic> {
    let (x, i) = (Value::of(x), Value::of(&i));
    let position = |len: usize, i: i64| -> Option<usize> {
        let len = i64::try_from(len).ok()?;
        let at = if i < 0 { len + i } else { i };
        (0..len).contains(&at).then_some(at as usize)
    };
    Ok(match (&x, &i) {
        (Value::Map(m), Value::Str(k)) => m.get(k.as_str()).cloned().unwrap_or(Value::Null),
        (Value::List(items), Value::Int(n)) => {
            position(items.len(), *n).map_or(Value::Null, |at| items[at].clone())
        }
        (Value::Str(s), Value::Int(n)) => position(s.chars().count(), *n)
            .and_then(|at| s.chars().nth(at))
            .map_or(Value::Null, |c| Value::Str(c.to_string().into())),
        (Value::List(_) | Value::Str(_), Value::Float(_) | Value::Bool(_)) => {
            return fail(format!(
                "an index must be an integer, not a {}",
                i.type_name()
            ));
        }
        _ => Value::Null,
    }
    .into_dynamic())
}

fn arith(op: &str, a: Dynamic, b: Dynamic) -> Res<Dynamic> {
    let (a, b) = (Value::of(&a), Value::of(&b));
    let overflow = || -> Res<Dynamic> { fail(format!("integer overflow in {op}")) };
    match (&a, &b) {
        (Value::Int(x), Value::Int(y)) => {
            let (x, y) = (*x, *y);
            let r = match op {
                "+" => x.checked_add(y),
                "-" => x.checked_sub(y),
                "*" => x.checked_mul(y),
                "/" => {
                    if y == 0 {
                        return fail("division by zero".into());
                    }
                    return Ok(Dynamic::from_float(x as f64 / y as f64));
                }
                _ => {
                    if y == 0 {
                        return fail("modulo by zero".into());
                    }
                    x.checked_rem(y).map(|r| {
                        if r != 0 && (r < 0) != (y < 0) {
                            r + y
                        } else {
                            r
                        }
                    })
                }
            };
            r.map_or_else(overflow, |r| Ok(r.into()))
        }
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (x, y) = (num(&a).unwrap_or(0.0), num(&b).unwrap_or(0.0));
            let r = match op {
                "+" => x + y,
                "-" => x - y,
                "*" => x * y,
                "/" if y == 0.0 => return fail("division by zero".into()),
                "/" => x / y,
                _ if y == 0.0 => return fail("modulo by zero".into()),
                _ => {
                    let r = x % y;
                    if r != 0.0 && (r < 0.0) != (y < 0.0) {
                        r + y
                    } else {
                        r
                    }
                }
            };
            Ok(Dynamic::from_float(r))
        }
        (Value::Str(x), Value::Str(y)) if op == "+" => {
            if x.len() + y.len() > MAX_STRING {
                return fail(format!("string longer than {MAX_STRING} bytes"));
            }
            Ok(Dynamic::from(ImmutableString::from(format!("{x}{y}"))))
        }
        _ => fail(format!(
            "unsupported operand types for {op}: {} and {}",
            a.type_name(),
            b.type_name()
        )),
    }
}

fn negate(a: Dynamic) -> Res<Dynamic> {
    match Value::of(&a) {
        Value::Int(i) => i
            .checked_neg()
            .map_or_else(|| fail("integer overflow in -".into()), |r| Ok(r.into())),
        Value::Float(f) => Ok((-f).into()),
        other => fail(format!("cannot negate a {}", other.type_name())),
    }
}

/// Whitespace as Python's `str.strip()` sees it.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

fn to_int(x: Dynamic) -> Res<Dynamic> {
    match Value::of(&x) {
        Value::Int(i) => Ok(i.into()),
        Value::Bool(b) => Ok(i64::from(b).into()),
        Value::Float(f) if f.is_finite() && f.trunc().abs() < 9.2e18 => {
            Ok((f.trunc() as i64).into())
        }
        Value::Str(s) => {
            let t = s.trim_matches(py_space);
            let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
            let valid = !digits.is_empty()
                && !digits.starts_with('_')
                && !digits.ends_with('_')
                && !digits.contains("__")
                && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
            match valid
                .then(|| t.replace('_', "").parse::<i64>().ok())
                .flatten()
            {
                Some(i) => Ok(i.into()),
                None => fail(format!("int() cannot read {:?} as an integer", s.as_str())),
            }
        }
        other => fail(format!("int() cannot convert a {}", other.type_name())),
    }
}

fn to_float(x: Dynamic) -> Res<Dynamic> {
    match Value::of(&x) {
        Value::Int(i) => Ok(Dynamic::from_float(i as f64)),
        Value::Float(f) => Ok(f.into()),
        Value::Bool(b) => Ok(Dynamic::from_float(if b { 1.0 } else { 0.0 })),
        Value::Str(s) => match s.trim_matches(py_space).parse::<f64>() {
            Ok(f) => Ok(f.into()),
            Err(_) => fail(format!("float() cannot read {:?} as a number", s.as_str())),
        },
        other => fail(format!("float() cannot convert a {}", other.type_name())),
    }
}

/// Python's `repr` of a float: the shortest digits that read back the same,
/// in positional notation for exponents from -4 to 15, scientific otherwise.
pub fn py_float(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "nan".into()
        } else if f > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let body = if exp >= 0 {
            let int_len = exp as usize + 1;
            let padded = format!("{digits:0<int_len$}");
            let (int_part, frac) = padded.split_at(int_len);
            format!("{int_part}.{}", if frac.is_empty() { "0" } else { frac })
        } else {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!(
            "{sign}{first}{frac}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str()` of a value (`repr` for the items of containers).
pub fn py_str(v: &Value, top: bool) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => py_float(*f),
        Value::Str(s) if top => s.to_string(),
        Value::Str(s) => py_repr_str(s),
        Value::List(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| py_str(i, false))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_repr_str(k), py_str(v, false)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn length(x: Dynamic) -> Res<i64> {
    Ok(match Value::of(&x) {
        Value::Str(s) => s.chars().count() as i64,
        Value::List(l) => l.len() as i64,
        Value::Map(m) => m.len() as i64,
        other => return fail(format!("len() of a {} is undefined", other.type_name())),
    })
}

fn elements(x: &Value, func: &str) -> Res<Vec<bool>> {
    Ok(match x {
        Value::List(l) => l.iter().map(Value::truthy).collect(),
        Value::Map(m) => m.keys().map(|k| !k.is_empty()).collect(),
        Value::Str(s) => s.chars().map(|_| true).collect(),
        other => {
            return fail(format!(
                "{func}() needs a list, not a {}",
                other.type_name()
            ));
        }
    })
}

/// The target of a string method: `None` for null (the method is then false
/// or null), an error for any other non-string.
fn string_target(x: &Dynamic, method: &str) -> Res<Option<ImmutableString>> {
    match Value::of(x) {
        Value::Null => Ok(None),
        Value::Str(s) => Ok(Some(s)),
        other => fail(format!(
            "{method}() needs a string, not a {}",
            other.type_name()
        )),
    }
}

fn affix(x: Dynamic, arg: Dynamic, method: &str, test: fn(&str, &str) -> bool) -> Res<bool> {
    let Some(s) = string_target(&x, method)? else {
        return Ok(false);
    };
    // A list literal of the condition arrives as Rhai's array: read in place.
    if let Some(options) = arg.read_lock::<Array>() {
        let mut hit = false;
        for o in options.iter() {
            match o.read_lock::<ImmutableString>() {
                Some(p) => hit = hit || test(&s, &p),
                None => {
                    return fail(format!(
                        "{method}() takes strings, not a {}",
                        Value::of(o).type_name()
                    ));
                }
            }
        }
        return Ok(hit);
    }
    match Value::of(&arg) {
        Value::Str(p) => Ok(test(&s, &p)),
        Value::List(options) => {
            let mut hit = false;
            for o in options.iter() {
                match o {
                    Value::Str(p) => hit = hit || test(&s, p),
                    other => {
                        return fail(format!(
                            "{method}() takes strings, not a {}",
                            other.type_name()
                        ));
                    }
                }
            }
            Ok(hit)
        }
        other => fail(format!(
            "{method}() takes a string or a list of strings, not a {}",
            other.type_name()
        )),
    }
}

fn text_map(x: Dynamic, method: &str, f: fn(&str) -> String) -> Res<Dynamic> {
    Ok(match string_target(&x, method)? {
        Some(s) => bounded(f(&s))?.into(),
        None => Dynamic::UNIT,
    })
}

/// A string an operation built, refused past [`MAX_STRING`].
fn bounded(s: String) -> Res<ImmutableString> {
    if s.len() > MAX_STRING {
        return fail(format!("string longer than {MAX_STRING} bytes"));
    }
    Ok(s.into())
}

/// A pattern compiled at load time, used by `matches()` and `glob()`.
#[derive(Debug, Clone)]
pub enum Pattern {
    Regex(regex::Regex),
    Glob(globset::GlobMatcher),
}

/// The patterns of one policy, visible to its conditions as `__patterns`.
#[derive(Debug, Clone, Default)]
pub struct Patterns(pub Arc<Vec<Pattern>>);

fn pattern(x: Dynamic, patterns: Patterns, at: i64, method: &str) -> Res<bool> {
    let Some(s) = string_target(&x, method)? else {
        return Ok(false);
    };
    Ok(match patterns.0.get(at as usize) {
        Some(Pattern::Regex(re)) => re.is_match(&s),
        Some(Pattern::Glob(g)) => g.is_match(s.as_str()),
        None => return fail("internal error: unknown pattern".into()),
    })
}

fn as_bool(x: Dynamic) -> Res<bool> {
    match Value::of(&x) {
        Value::Bool(b) => Ok(b),
        other => fail(format!(
            "the condition produced a {}, not true or false",
            other.type_name()
        )),
    }
}

fn build_engine() -> Engine {
    let mut e = Engine::new_raw();
    e.set_optimization_level(OptimizationLevel::Simple);
    e.set_max_operations(MAX_OPERATIONS);
    // The translator's own nesting limit keeps expressions far below these.
    e.set_max_expr_depths(1024, 1024);
    for symbol in ["eval", "print", "debug", "Fn", "call", "curry", "this"] {
        e.disable_symbol(symbol);
    }
    e.register_type_with_name::<Value>("value");
    e.register_type_with_name::<Patterns>("patterns");
    e.register_fn("get", get);
    e.register_fn("idx", index);
    e.register_fn("eq", |a: Dynamic, b: Dynamic| {
        equal(&Value::of(&a), &Value::of(&b))
    });
    e.register_fn("ne", |a: Dynamic, b: Dynamic| {
        !equal(&Value::of(&a), &Value::of(&b))
    });
    e.register_fn("lt", |a: Dynamic, b: Dynamic| compare(a, b, |o| o.is_lt()));
    e.register_fn("le", |a: Dynamic, b: Dynamic| compare(a, b, |o| o.is_le()));
    e.register_fn("gt", |a: Dynamic, b: Dynamic| compare(a, b, |o| o.is_gt()));
    e.register_fn("ge", |a: Dynamic, b: Dynamic| compare(a, b, |o| o.is_ge()));
    e.register_fn("has", |hay: &mut Dynamic, needle: Dynamic| {
        contains(&Value::of(hay), &Value::of(&needle))
    });
    e.register_fn("is_null", |a: Dynamic| a.is_unit());
    e.register_fn("add", |a: Dynamic, b: Dynamic| arith("+", a, b));
    e.register_fn("sub", |a: Dynamic, b: Dynamic| arith("-", a, b));
    e.register_fn("mul", |a: Dynamic, b: Dynamic| arith("*", a, b));
    e.register_fn("div", |a: Dynamic, b: Dynamic| arith("/", a, b));
    e.register_fn("rem", |a: Dynamic, b: Dynamic| arith("%", a, b));
    e.register_fn("neg", negate);
    e.register_fn("truthy", |a: Dynamic| Value::of(&a).truthy());
    e.register_fn("as_bool", as_bool);
    e.register_fn("f_len", length);
    e.register_fn("f_int", to_int);
    e.register_fn("f_float", to_float);
    e.register_fn("f_str", |a: Dynamic| bounded(py_str(&Value::of(&a), true)));
    e.register_fn("f_any", |a: Dynamic| {
        Ok::<_, Box<EvalAltResult>>(elements(&Value::of(&a), "any")?.into_iter().any(|b| b))
    });
    e.register_fn("f_all", |a: Dynamic| {
        Ok::<_, Box<EvalAltResult>>(elements(&Value::of(&a), "all")?.into_iter().all(|b| b))
    });
    e.register_fn("m_startswith", |x: Dynamic, p: Dynamic| {
        affix(x, p, "startswith", |s, p| s.starts_with(p))
    });
    e.register_fn("m_endswith", |x: Dynamic, p: Dynamic| {
        affix(x, p, "endswith", |s, p| s.ends_with(p))
    });
    e.register_fn("m_contains", |x: Dynamic, n: Dynamic| match Value::of(&x) {
        Value::Null => Ok(false),
        Value::List(_) => contains(&Value::of(&x), &Value::of(&n)),
        _ => affix(x, n, "contains", |s, p| s.contains(p)),
    });
    e.register_fn("m_lower", |x: Dynamic| {
        text_map(x, "lower", str::to_lowercase)
    });
    e.register_fn("m_upper", |x: Dynamic| {
        text_map(x, "upper", str::to_uppercase)
    });
    e.register_fn("m_strip", |x: Dynamic| {
        text_map(x, "strip", |s| s.trim_matches(py_space).to_string())
    });
    e.register_fn("m_matches", |x: Dynamic, p: Patterns, at: i64| {
        pattern(x, p, at, "matches")
    });
    e.register_fn("m_glob", |x: Dynamic, p: Patterns, at: i64| {
        pattern(x, p, at, "glob")
    });
    e
}

thread_local! {
    static ENGINE: Engine = build_engine();
    /// Which registered function each call resolves to, kept from one
    /// evaluation to the next. Every function takes `Dynamic`s, so a fresh
    /// resolution searches each combination of the arguments' types; the
    /// functions never change, so what was resolved once holds for good.
    static CACHES: RefCell<Caches> = const { RefCell::new(Caches::new()) };
}

/// Run `f` with this thread's engine.
pub fn with_engine<T>(f: impl FnOnce(&Engine) -> T) -> T {
    ENGINE.with(f)
}

/// Evaluate a compiled condition with this thread's engine and resolution
/// cache. The operation count starts from zero each time.
pub fn eval_bool(ast: &AST, scope: &mut Scope<'static>) -> Res<bool> {
    ENGINE.with(|engine| {
        CACHES.with(|caches| {
            // No registered function evaluates a condition, so the cache is
            // free here; were it not, a fresh one would do, only slower.
            let mut fresh = Caches::new();
            let mut held = caches.try_borrow_mut();
            let caches = held.as_deref_mut().unwrap_or(&mut fresh);
            let mut global = engine.new_global_runtime_state();
            #[allow(deprecated)]
            let result =
                engine.eval_statements_raw(&mut global, caches, scope, ast.statements())?;
            result.as_bool().map_err(|actual| {
                EvalAltResult::ErrorMismatchOutputType(
                    "bool".into(),
                    actual.into(),
                    rhai::Position::NONE,
                )
                .into()
            })
        })
    })
}

/// A run-time failure as one line, without Rhai's positions (they point into
/// generated code, which means nothing to the policy's author).
pub fn describe_error(e: &EvalAltResult) -> String {
    match e.unwrap_inner() {
        EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
        EvalAltResult::ErrorTooManyOperations(_) => {
            format!("condition exceeded its limit of {MAX_OPERATIONS} operations")
        }
        EvalAltResult::ErrorStackOverflow(_) => "condition nested too deeply".into(),
        EvalAltResult::ErrorDataTooLarge(what, _) => format!("{what} exceeded its size limit"),
        other => {
            let text = other.to_string();
            match text.find(" (line ") {
                Some(at) => text[..at].to_string(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_prints_them() {
        for (f, s) in [
            (10.0, "10.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e-7, "1.5e-07"),
            (123456789.125, "123456789.125"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e100, "1e+100"),
        ] {
            assert_eq!(py_float(f), s, "{f}");
        }
    }

    #[test]
    fn python_modulo_and_division() {
        let r = |a: Dynamic, b: Dynamic| Value::of(&arith("%", a, b).unwrap());
        assert_eq!(r((-7i64).into(), 3i64.into()), Value::Int(2));
        assert_eq!(r(7i64.into(), (-3i64).into()), Value::Int(-2));
        assert_eq!(r((-7.5f64).into(), 2i64.into()), Value::Float(0.5));
        assert_eq!(
            Value::of(&arith("/", 7i64.into(), 2i64.into()).unwrap()),
            Value::Float(3.5)
        );
        assert!(arith("/", 1i64.into(), 0i64.into()).is_err());
        assert!(arith("+", i64::MAX.into(), 1i64.into()).is_err());
    }

    #[test]
    fn ints_and_floats_compare_exactly_as_python_compares_them() {
        use std::cmp::Ordering::*;
        let (i, f) = (Value::Int, Value::Float);
        for (a, b, want) in [
            // Rounded to a float, the int would equal it.
            (
                i(9_007_199_254_740_993),
                f(9_007_199_254_740_992.0),
                Some(Greater),
            ),
            (i(10_000_000_000_000_001), f(1e16), Some(Greater)),
            (i(i64::MAX), f(9_223_372_036_854_775_808.0), Some(Less)),
            (i(i64::MIN), f(-9_223_372_036_854_775_808.0), Some(Equal)),
            (i(i64::MIN), f(-1e19), Some(Greater)),
            (i(2), f(2.5), Some(Less)),
            (i(-2), f(-2.5), Some(Greater)),
            (i(0), f(-0.5), Some(Greater)),
            (i(0), f(-0.0), Some(Equal)),
            (i(3), f(f64::INFINITY), Some(Less)),
            (i(3), f(f64::NEG_INFINITY), Some(Greater)),
            (i(3), f(f64::NAN), None),
            (f(2.5), i(2), Some(Greater)),
        ] {
            assert_eq!(num_order(&a, &b), want, "{a:?} against {b:?}");
        }
        assert!(!equal(
            &i(9_007_199_254_740_993),
            &f(9_007_199_254_740_992.0)
        ));
        assert!(equal(&i(1 << 53), &f(9_007_199_254_740_992.0)));
    }

    #[test]
    fn equality_and_ordering_follow_the_language() {
        assert!(equal(&Value::Int(10), &Value::Float(10.0)));
        assert!(!equal(&Value::Int(1), &Value::Bool(true)));
        assert!(!equal(&Value::Str("1".into()), &Value::Int(1)));
        assert_eq!(
            compare(Dynamic::UNIT, 1i64.into(), |o| o.is_lt()).unwrap(),
            false
        );
        assert!(compare("a".into(), 1i64.into(), |o| o.is_lt()).is_err());
    }
}
