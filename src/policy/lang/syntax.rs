//! Reading a condition: characters -> tokens -> a checked syntax tree.
//!
//! The tokenizer knows Python's string literals and keywords, so `brand`,
//! `"a and b"` and `'x'` mean what a Python reader expects. The parser is a
//! precedence climber with Python's precedence (`or` < `and` < `not` <
//! comparisons < `+ -` < `* / %` < unary `-` < access and calls) and a depth
//! limit, so a hostile condition ends in an error, never in a stack overflow.
//! Names, fields, functions and methods are resolved here against what the
//! language offers, with a "did you mean" for near misses.

use std::fmt;

/// A byte range in the condition text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// What is wrong with a condition, at a byte offset in its text.
#[derive(Debug, Clone, PartialEq)]
pub struct LangError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for LangError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, LangError> {
    Err(LangError {
        offset,
        message: message.into(),
    })
}

/// Longest condition text accepted, in bytes.
pub const MAX_LEN: usize = 256 * 1024;
/// Deepest nesting of parentheses, brackets, calls and operators.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    /// Operators and punctuation.
    Sym(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    span: Span,
}

const SYMBOLS: [&str; 19] = [
    "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "(", ")", "[", "]", ",", ".", "{",
    "}",
];

fn tokenize(src: &str) -> Result<Vec<Token>, LangError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            // A comment runs to the end of the line, as in Python.
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'"' || c == b'\'' {
            let (text, end) = read_string(src, i)?;
            out.push(Token {
                tok: Tok::Str(text),
                span: Span { start, end },
            });
            i = end;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let (tok, end) = read_number(src, i)?;
            out.push(Token {
                tok,
                span: Span { start, end },
            });
            i = end;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(src[start..i].to_string()),
                span: Span { start, end: i },
            });
            continue;
        }
        if src[i..].starts_with("//") {
            return err(
                i,
                "`//` (floor division) is not part of the language; use int(a / b)",
            );
        }
        if src[i..].starts_with("**") {
            return err(i, "`**` (power) is not part of the language");
        }
        if src[i..].starts_with("&&") || src[i..].starts_with("||") {
            return err(
                i,
                format!("unexpected \"{}\"; write `and` / `or`", &src[i..i + 2]),
            );
        }
        if c == b'!' && !src[i..].starts_with("!=") {
            return err(i, "unexpected \"!\"; write `not`");
        }
        match SYMBOLS.iter().find(|s| src[i..].starts_with(**s)) {
            Some(sym) => {
                i += sym.len();
                out.push(Token {
                    tok: Tok::Sym(sym),
                    span: Span { start, end: i },
                });
            }
            None => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return err(i, format!("unexpected character {ch:?}"));
            }
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        span: Span {
            start: src.len(),
            end: src.len(),
        },
    });
    Ok(out)
}

/// A quoted string with Python's escapes; returns the text and the end offset.
fn read_string(src: &str, start: usize) -> Result<(String, usize), LangError> {
    let quote = src.as_bytes()[start] as char;
    let mut out = String::new();
    let mut chars = src[start + 1..]
        .char_indices()
        .map(|(k, c)| (k + start + 1, c))
        .peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c == quote => return Ok((out, at + 1)),
            '\n' => return err(start, "unterminated string (a string cannot span lines)"),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    '\\' => out.push('\\'),
                    '\'' => out.push('\''),
                    '"' => out.push('"'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    '0' => out.push('\0'),
                    'x' | 'u' | 'U' => {
                        let width = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut code = 0u32;
                        for _ in 0..width {
                            match chars.next().and_then(|(_, h)| h.to_digit(16)) {
                                Some(d) => code = code * 16 + d,
                                None => return err(at, format!("\\{e} needs {width} hex digits")),
                            }
                        }
                        match char::from_u32(code) {
                            Some(ch) => out.push(ch),
                            None => {
                                return err(at, format!("\\{e}{code:x} is not a valid character"));
                            }
                        }
                    }
                    other => {
                        return err(
                            at,
                            format!("unknown escape \"\\{other}\"; write \"\\\\\" for a backslash"),
                        );
                    }
                }
            }
            c => out.push(c),
        }
    }
    err(start, "unterminated string")
}

fn read_number(src: &str, start: usize) -> Result<(Tok, usize), LangError> {
    let bytes = src.as_bytes();
    let mut i = start;
    let mut is_float = false;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    if i < bytes.len()
        && bytes[i] == b'.'
        && bytes
            .get(i + 1)
            .is_none_or(|b| !b.is_ascii_alphabetic() || *b == b'e' || *b == b'E')
    {
        is_float = true;
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let mut j = i + 1;
        if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
            j += 1;
        }
        if j < bytes.len() && bytes[j].is_ascii_digit() {
            is_float = true;
            i = j;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    if i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        return err(start, format!("malformed number \"{}\"", &src[start..=i]));
    }
    let text = &src[start..i];
    if is_float {
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok((Tok::Float(f), i)),
            _ => err(start, format!("number {text} is out of range")),
        }
    } else if text.len() > 1 && text.starts_with('0') {
        err(
            start,
            format!("leading zeros are not allowed in \"{text}\""),
        )
    } else {
        match text.parse::<i64>() {
            Ok(n) => Ok((Tok::Int(n), i)),
            Err(_) => err(start, format!("integer {text} is out of range")),
        }
    }
}

/// A literal value written in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// The names a condition can start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Root {
    ToolName,
    ToolArgs,
    AgentId,
    UserId,
    Metadata,
    Context,
    Session,
    Datetime,
}

impl Root {
    pub const ALL: [(&'static str, Root); 8] = [
        ("tool_name", Root::ToolName),
        ("tool_args", Root::ToolArgs),
        ("agent_id", Root::AgentId),
        ("user_id", Root::UserId),
        ("metadata", Root::Metadata),
        ("context", Root::Context),
        ("session", Root::Session),
        ("datetime", Root::Datetime),
    ];

    pub fn name(self) -> &'static str {
        Root::ALL
            .iter()
            .find(|(_, r)| *r == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Fields known in advance: only these may follow the root.
    pub fn fields(self) -> Option<&'static [&'static str]> {
        match self {
            Root::Session => Some(&[
                "id",
                "action_count",
                "allowed_count",
                "denied_count",
                "approval_count",
                "tool_counts",
                "estimated_cost",
                "started_at",
            ]),
            Root::Datetime => Some(&[
                "hour",
                "minute",
                "second",
                "weekday",
                "day",
                "month",
                "year",
                "timestamp",
            ]),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Len,
    Int,
    Float,
    Str,
    Any,
    All,
}

impl Func {
    pub const ALL: [(&'static str, Func); 6] = [
        ("len", Func::Len),
        ("int", Func::Int),
        ("float", Func::Float),
        ("str", Func::Str),
        ("any", Func::Any),
        ("all", Func::All),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    StartsWith,
    EndsWith,
    Contains,
    Lower,
    Upper,
    Strip,
    Matches,
    Glob,
}

impl Method {
    pub const ALL: [(&'static str, Method); 8] = [
        ("startswith", Method::StartsWith),
        ("endswith", Method::EndsWith),
        ("contains", Method::Contains),
        ("lower", Method::Lower),
        ("upper", Method::Upper),
        ("strip", Method::Strip),
        ("matches", Method::Matches),
        ("glob", Method::Glob),
    ];

    fn arity(self) -> usize {
        match self {
            Method::Lower | Method::Upper | Method::Strip => 0,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl CmpOp {
    pub fn is_ordering(self) -> bool {
        matches!(self, CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Lit),
    List(Vec<Node>),
    Root(Root),
    /// `a.b` and `a["b"]` with a literal key.
    Field(Box<Node>, String),
    /// `a[i]` with any other index.
    Index(Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
    Method(Box<Node>, Method, Vec<Node>),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    /// `a < b <= c`: the first operand, then each operator with its right side.
    Compare(Box<Node>, Vec<(CmpOp, Node)>),
    Arith(ArithOp, Box<Node>, Box<Node>),
    Neg(Box<Node>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub expr: Expr,
    pub span: Span,
}

/// The closest of `candidates` to `word`, if it is close enough to suggest.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match did_you_mean(word, candidates) {
        Some(c) => format!(" (did you mean \"{c}\"?)"),
        None => String::new(),
    }
}

/// Parse a condition into a tree whose names are all resolved.
pub fn parse(src: &str) -> Result<Node, LangError> {
    if src.len() > MAX_LEN {
        return err(
            0,
            format!(
                "condition is {} bytes long; the limit is {MAX_LEN}",
                src.len()
            ),
        );
    }
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    if p.peek() == &Tok::Eof {
        return err(0, "condition is empty");
    }
    let node = p.expr()?;
    match p.peek() {
        Tok::Eof => Ok(node),
        _ => {
            let t = p.current();
            err(
                t.span.start,
                format!(
                    "unexpected {} after the end of the expression",
                    describe(&t.tok)
                ),
            )
        }
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) => format!("\"{s}\""),
        Tok::Str(_) => "string".into(),
        Tok::Int(_) | Tok::Float(_) => "number".into(),
        Tok::Sym(s) => format!("\"{s}\""),
        Tok::Eof => "end of condition".into(),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

const KEYWORDS: [&str; 5] = ["and", "or", "not", "in", "is"];

impl Parser {
    fn current(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }
    fn peek(&self) -> &Tok {
        &self.current().tok
    }
    fn peek_at(&self, k: usize) -> &Tok {
        &self.tokens[(self.at + k).min(self.tokens.len() - 1)].tok
    }
    fn bump(&mut self) -> Token {
        let t = self.current().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        t
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == kw)
    }
    fn is_sym(&self, sym: &str) -> bool {
        matches!(self.peek(), Tok::Sym(s) if *s == sym)
    }
    fn expect_sym(&mut self, sym: &str, what: &str) -> Result<Token, LangError> {
        if self.is_sym(sym) {
            Ok(self.bump())
        } else {
            let t = self.current();
            err(
                t.span.start,
                format!("expected \"{sym}\" {what}, found {}", describe(&t.tok)),
            )
        }
    }
    fn enter(&mut self, offset: usize) -> Result<(), LangError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                offset,
                format!("condition nests deeper than {MAX_DEPTH} levels"),
            );
        }
        Ok(())
    }
    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn expr(&mut self) -> Result<Node, LangError> {
        let start = self.current().span.start;
        self.enter(start)?;
        let node = self.or_expr();
        self.leave();
        node
    }

    fn or_expr(&mut self) -> Result<Node, LangError> {
        let first = self.and_expr()?;
        if !self.is_kw("or") {
            return Ok(first);
        }
        let start = first.span.start;
        let mut items = vec![first];
        while self.is_kw("or") {
            self.bump();
            items.push(self.and_expr()?);
        }
        let end = items.last().map_or(start, |n| n.span.end);
        Ok(Node {
            expr: Expr::Or(items),
            span: Span { start, end },
        })
    }

    fn and_expr(&mut self) -> Result<Node, LangError> {
        let first = self.not_expr()?;
        if !self.is_kw("and") {
            return Ok(first);
        }
        let start = first.span.start;
        let mut items = vec![first];
        while self.is_kw("and") {
            self.bump();
            items.push(self.not_expr()?);
        }
        let end = items.last().map_or(start, |n| n.span.end);
        Ok(Node {
            expr: Expr::And(items),
            span: Span { start, end },
        })
    }

    fn not_expr(&mut self) -> Result<Node, LangError> {
        if self.is_kw("not") {
            let t = self.bump();
            self.enter(t.span.start)?;
            let inner = self.not_expr();
            self.leave();
            let inner = inner?;
            let span = Span {
                start: t.span.start,
                end: inner.span.end,
            };
            return Ok(Node {
                expr: Expr::Not(Box::new(inner)),
                span,
            });
        }
        self.comparison()
    }

    fn cmp_op(&mut self) -> Result<Option<CmpOp>, LangError> {
        let op = match self.peek() {
            Tok::Sym("==") => CmpOp::Eq,
            Tok::Sym("!=") => CmpOp::Ne,
            Tok::Sym("<") => CmpOp::Lt,
            Tok::Sym("<=") => CmpOp::Le,
            Tok::Sym(">") => CmpOp::Gt,
            Tok::Sym(">=") => CmpOp::Ge,
            Tok::Ident(s) if s == "in" => CmpOp::In,
            Tok::Ident(s)
                if s == "not" && matches!(self.peek_at(1), Tok::Ident(n) if n == "in") =>
            {
                self.bump();
                CmpOp::NotIn
            }
            Tok::Ident(s) if s == "is" => {
                let is_at = self.bump().span.start;
                let negated = self.is_kw("not");
                if negated {
                    self.bump();
                }
                if !matches!(self.peek(), Tok::Ident(n) if n == "None" || n == "null") {
                    return err(
                        is_at,
                        "`is` can only test for None: write `x is None` or `x is not None` (use == to compare values)",
                    );
                }
                return Ok(Some(if negated {
                    CmpOp::IsNotNull
                } else {
                    CmpOp::IsNull
                }));
            }
            _ => return Ok(None),
        };
        self.bump();
        Ok(Some(op))
    }

    fn comparison(&mut self) -> Result<Node, LangError> {
        let first = self.additive()?;
        let mut rest = Vec::new();
        while let Some(op) = self.cmp_op()? {
            let right = self.additive()?;
            rest.push((op, right));
        }
        if rest.is_empty() {
            return Ok(first);
        }
        let span = Span {
            start: first.span.start,
            end: rest.last().map_or(first.span.end, |(_, n)| n.span.end),
        };
        Ok(Node {
            expr: Expr::Compare(Box::new(first), rest),
            span,
        })
    }

    fn additive(&mut self) -> Result<Node, LangError> {
        self.arithmetic(
            &[("+", ArithOp::Add), ("-", ArithOp::Sub)],
            Parser::multiplicative,
        )
    }

    fn multiplicative(&mut self) -> Result<Node, LangError> {
        self.arithmetic(
            &[
                ("*", ArithOp::Mul),
                ("/", ArithOp::Div),
                ("%", ArithOp::Rem),
            ],
            Parser::unary,
        )
    }

    /// A left-associative chain of the operators `ops` over operands read by `operand`.
    fn arithmetic(
        &mut self,
        ops: &[(&str, ArithOp)],
        operand: fn(&mut Parser) -> Result<Node, LangError>,
    ) -> Result<Node, LangError> {
        let entered = self.depth;
        let result = (|| {
            let mut left = operand(self)?;
            loop {
                let op = match self.peek() {
                    Tok::Sym(sym) => ops.iter().find(|(s, _)| s == sym).map(|(_, op)| *op),
                    _ => None,
                };
                let Some(op) = op else { return Ok(left) };
                self.bump();
                let right = operand(self)?;
                let span = Span {
                    start: left.span.start,
                    end: right.span.end,
                };
                left = Node {
                    expr: Expr::Arith(op, Box::new(left), Box::new(right)),
                    span,
                };
                // Left-nested chains deepen the tree: count them against the limit too.
                self.enter(span.start)?;
            }
        })();
        self.depth = entered;
        result
    }

    fn unary(&mut self) -> Result<Node, LangError> {
        if self.is_sym("-") {
            let t = self.bump();
            self.enter(t.span.start)?;
            let inner = self.unary();
            self.leave();
            let inner = inner?;
            let span = Span {
                start: t.span.start,
                end: inner.span.end,
            };
            // Fold negative literals so that `-3` is a literal, as it reads.
            let expr = match inner.expr {
                Expr::Lit(Lit::Int(n)) => Expr::Lit(Lit::Int(-n)),
                Expr::Lit(Lit::Float(f)) => Expr::Lit(Lit::Float(-f)),
                other => Expr::Neg(Box::new(Node {
                    expr: other,
                    span: inner.span,
                })),
            };
            return Ok(Node { expr, span });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Node, LangError> {
        let entered = self.depth;
        let result = self.postfix_inner();
        self.depth = entered;
        result
    }

    fn postfix_inner(&mut self) -> Result<Node, LangError> {
        let mut node = self.primary()?;
        loop {
            if self.is_sym(".") {
                self.bump();
                let t = self.bump();
                let Tok::Ident(name) = t.tok else {
                    return err(
                        t.span.start,
                        format!("expected a name after \".\", found {}", describe(&t.tok)),
                    );
                };
                if self.is_sym("(") {
                    node = self.method_call(node, &name, t.span)?;
                } else {
                    let span = Span {
                        start: node.span.start,
                        end: t.span.end,
                    };
                    node = self.field(node, name, t.span)?;
                    node.span = span;
                }
            } else if self.is_sym("[") {
                let open = self.bump();
                self.enter(open.span.start)?;
                let index = self.expr()?;
                let close = self.expect_sym("]", "to close the index")?;
                let span = Span {
                    start: node.span.start,
                    end: close.span.end,
                };
                node = match index.expr {
                    Expr::Lit(Lit::Str(key)) => {
                        let mut n = self.field(node, key, index.span)?;
                        n.span = span;
                        n
                    }
                    _ => Node {
                        expr: Expr::Index(Box::new(node), Box::new(index)),
                        span,
                    },
                };
            } else if self.is_sym("(") {
                let t = self.current().span.start;
                return err(
                    t,
                    "only the functions len, int, float, str, any and all and string methods can be called",
                );
            } else {
                return Ok(node);
            }
            self.enter(node.span.start)?;
        }
    }

    /// `base.name`: checked against the root's known fields, if it has any.
    fn field(&mut self, base: Node, name: String, name_span: Span) -> Result<Node, LangError> {
        if let Expr::Root(root) = base.expr {
            if let Some(fields) = root.fields() {
                if !fields.contains(&name.as_str()) {
                    return err(
                        name_span.start,
                        format!(
                            "{} has no field \"{name}\"{}",
                            root.name(),
                            suggest(&name, fields.iter().copied())
                        ),
                    );
                }
            }
        }
        let span = Span {
            start: base.span.start,
            end: name_span.end,
        };
        Ok(Node {
            expr: Expr::Field(Box::new(base), name),
            span,
        })
    }

    fn method_call(
        &mut self,
        target: Node,
        name: &str,
        name_span: Span,
    ) -> Result<Node, LangError> {
        let Some(method) = Method::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
        else {
            return err(
                name_span.start,
                format!(
                    "unknown method \"{name}\"{}",
                    suggest(name, Method::ALL.iter().map(|(n, _)| *n))
                ),
            );
        };
        let (args, close) = self.arguments()?;
        if args.len() != method.arity() {
            return err(
                name_span.start,
                format!(
                    "{name}() takes {} argument{}, got {}",
                    method.arity(),
                    if method.arity() == 1 { "" } else { "s" },
                    args.len()
                ),
            );
        }
        let span = Span {
            start: target.span.start,
            end: close,
        };
        Ok(Node {
            expr: Expr::Method(Box::new(target), method, args),
            span,
        })
    }

    /// `( a, b, ... )` after a call; returns the arguments and the end offset.
    fn arguments(&mut self) -> Result<(Vec<Node>, usize), LangError> {
        let open = self.expect_sym("(", "to start the arguments")?;
        self.enter(open.span.start)?;
        let mut args = Vec::new();
        while !self.is_sym(")") {
            args.push(self.expr()?);
            if !self.is_sym(",") {
                break;
            }
            self.bump();
        }
        let close = self.expect_sym(")", "to close the arguments")?;
        self.leave();
        Ok((args, close.span.end))
    }

    fn primary(&mut self) -> Result<Node, LangError> {
        let t = self.bump();
        let span = t.span;
        let expr = match t.tok {
            Tok::Str(s) => Expr::Lit(Lit::Str(s)),
            Tok::Int(n) => Expr::Lit(Lit::Int(n)),
            Tok::Float(f) => Expr::Lit(Lit::Float(f)),
            Tok::Sym("(") => {
                self.enter(span.start)?;
                let inner = self.expr()?;
                let close = self.expect_sym(")", "to close the parenthesis")?;
                self.leave();
                return Ok(Node {
                    expr: inner.expr,
                    span: Span {
                        start: span.start,
                        end: close.span.end,
                    },
                });
            }
            Tok::Sym("[") => {
                self.enter(span.start)?;
                let mut items = Vec::new();
                while !self.is_sym("]") {
                    items.push(self.expr()?);
                    if !self.is_sym(",") {
                        break;
                    }
                    self.bump();
                }
                let close = self.expect_sym("]", "to close the list")?;
                self.leave();
                return Ok(Node {
                    expr: Expr::List(items),
                    span: Span {
                        start: span.start,
                        end: close.span.end,
                    },
                });
            }
            Tok::Sym("{") => {
                return err(
                    span.start,
                    "mapping literals ({...}) are not part of the language",
                );
            }
            Tok::Ident(name) => match name.as_str() {
                "true" | "True" => Expr::Lit(Lit::Bool(true)),
                "false" | "False" => Expr::Lit(Lit::Bool(false)),
                "null" | "None" => Expr::Lit(Lit::Null),
                kw if KEYWORDS.contains(&kw) => {
                    return err(
                        span.start,
                        format!("expected a value, found the keyword \"{kw}\""),
                    );
                }
                _ => {
                    if let Some(func) = Func::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
                    {
                        if !self.is_sym("(") {
                            return err(
                                span.start,
                                format!("{name} is a function: call it as {name}(...)"),
                            );
                        }
                        let (args, close) = self.arguments()?;
                        if args.len() != 1 {
                            return err(
                                span.start,
                                format!("{name}() takes 1 argument, got {}", args.len()),
                            );
                        }
                        return Ok(Node {
                            expr: Expr::Call(func, args),
                            span: Span {
                                start: span.start,
                                end: close,
                            },
                        });
                    }
                    match Root::ALL.iter().find(|(n, _)| *n == name) {
                        Some((_, root)) => Expr::Root(*root),
                        None => {
                            let names = Root::ALL
                                .iter()
                                .map(|(n, _)| *n)
                                .chain(Func::ALL.iter().map(|(n, _)| *n));
                            let hint = suggest(&name, names);
                            let hint = if hint.is_empty() && name.contains('_') {
                                String::new()
                            } else {
                                hint
                            };
                            return err(span.start, format!("unknown name \"{name}\"{hint}"));
                        }
                    }
                }
            },
            Tok::Eof => {
                return err(
                    span.start,
                    "unexpected end of condition; an operand is missing",
                );
            }
            other => {
                return err(
                    span.start,
                    format!("expected a value, found {}", describe(&other)),
                );
            }
        };
        Ok(Node { expr, span })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(src: &str) -> LangError {
        parse(src).expect_err(src)
    }

    #[test]
    fn keywords_inside_names_and_strings_stay_what_they_are() {
        let n = parse("tool_args.brand == 'and or not' and tool_args.order").unwrap();
        let Expr::And(items) = n.expr else {
            panic!("{n:?}")
        };
        assert_eq!(items.len(), 2);
        let Expr::Compare(left, rest) = &items[0].expr else {
            panic!()
        };
        assert_eq!(
            left.expr,
            Expr::Field(
                Box::new(Node {
                    expr: Expr::Root(Root::ToolArgs),
                    span: Span { start: 0, end: 9 }
                }),
                "brand".into()
            )
        );
        assert_eq!(rest[0].1.expr, Expr::Lit(Lit::Str("and or not".into())));
    }

    #[test]
    fn python_precedence() {
        // not binds looser than ==, and looser than not, or looser than and.
        let n = parse("not a_b == 1").unwrap_err();
        assert!(n.message.contains("unknown name"));
        let n = parse("not tool_name == 'x' or true and false").unwrap();
        let Expr::Or(items) = n.expr else { panic!() };
        assert!(matches!(items[0].expr, Expr::Not(_)));
        assert!(matches!(items[1].expr, Expr::And(_)));
        let n = parse("1 + 2 * 3 == 7").unwrap();
        let Expr::Compare(left, _) = n.expr else {
            panic!()
        };
        assert!(matches!(left.expr, Expr::Arith(ArithOp::Add, _, _)));
    }

    #[test]
    fn escapes_follow_python() {
        let n = parse(r#""a\"b\\c\n\x41\u00e9\U0001F600" == 'it\'s'"#).unwrap();
        let Expr::Compare(left, rest) = n.expr else {
            panic!()
        };
        assert_eq!(left.expr, Expr::Lit(Lit::Str("a\"b\\c\nAé😀".into())));
        assert_eq!(rest[0].1.expr, Expr::Lit(Lit::Str("it's".into())));
    }

    #[test]
    fn errors_point_at_the_offending_text() {
        let e = fails("tool_args.path.startwith('/tmp')");
        assert_eq!(
            e.message,
            "unknown method \"startwith\" (did you mean \"startswith\"?)"
        );
        assert_eq!(e.offset, 15);
        assert_eq!(
            fails("tool_arg.path == 1").message,
            "unknown name \"tool_arg\" (did you mean \"tool_args\"?)"
        );
        assert_eq!(
            fails("session.action_cont > 1").message,
            "session has no field \"action_cont\" (did you mean \"action_count\"?)"
        );
        assert_eq!(fails("'abc").message, "unterminated string");
        assert_eq!(
            fails("1 +").message,
            "unexpected end of condition; an operand is missing"
        );
        assert_eq!(
            fails("(1 == 1").message,
            "expected \")\" to close the parenthesis, found end of condition"
        );
        assert!(
            fails("tool_name is 3")
                .message
                .contains("`is` can only test for None")
        );
        assert!(fails("a && b").message.contains("write `and` / `or`"));
        assert_eq!(
            fails("tool_name == 1 1").message,
            "unexpected number after the end of the expression"
        );
        assert_eq!(
            fails("'a\\q'").message,
            "unknown escape \"\\q\"; write \"\\\\\" for a backslash"
        );
        assert_eq!(
            fails("tool_name.lower(1)").message,
            "lower() takes 0 arguments, got 1"
        );
        assert_eq!(fails("").message, "condition is empty");
    }

    #[test]
    fn depth_is_bounded_without_overflowing_the_stack() {
        let deep = "(".repeat(5000) + "true" + ")".repeat(5000).as_str();
        assert!(fails(&deep).message.contains("nests deeper than"));
        let nots = "not ".repeat(5000) + "true";
        assert!(fails(&nots).message.contains("nests deeper than"));
        let sums = "1".to_string() + " + 1".repeat(5000).as_str() + " > 0";
        assert!(fails(&sums).message.contains("nests deeper than"));
        let fine = "(".repeat(20) + "true" + ")".repeat(20).as_str();
        assert!(parse(&fine).is_ok());
    }

    #[test]
    fn long_flat_chains_parse() {
        let terms: Vec<String> = (0..10_000)
            .map(|i| format!("tool_name == 't{i}'"))
            .collect();
        let n = parse(&terms.join(" or ")).unwrap();
        let Expr::Or(items) = n.expr else { panic!() };
        assert_eq!(items.len(), 10_000);
    }
}
