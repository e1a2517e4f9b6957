//! YAML read into a tree that remembers where every node stands in the file.
//!
//! Error messages must point at the line and column of the YAML text (not of
//! some generated code), so policy files are read with an event parser into
//! [`Node`]s that keep their position and, for scalars, their source style.
//! Anchors and aliases are refused: a policy has no use for them and they are
//! the classic way to make a small file expand into a huge one.

use std::fmt;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Where a node starts: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_marker(m: &Marker) -> Self {
        // The scanner counts lines from 1 and columns from 0.
        Pos {
            line: m.line(),
            column: m.col() + 1,
        }
    }
}

/// How a scalar was written, which decides how offsets inside it map back to
/// the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Scalar(String, Style),
    Seq(Vec<Node>),
    /// Keys are always scalars; duplicates are refused while reading.
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

/// A YAML text that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.pos.line, self.pos.column, self.message)
    }
}

/// Deepest nesting of sequences and mappings accepted in a document.
pub const MAX_DEPTH: usize = 128;

/// Read one YAML document. An empty document is an empty mapping.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    // Open containers: the node being built and, for maps, a key waiting for its value.
    let mut stack: Vec<(Node, Option<Node>)> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| SyntaxError {
            pos: Pos::from_marker(e.marker()),
            message: e.info().to_string(),
        })?;
        let pos = Pos::from_marker(&mark);
        let finished = match event {
            Event::StreamStart | Event::DocumentStart | Event::Nothing => None,
            Event::DocumentEnd => {
                // A second document would be silently ignored by most readers; say so instead.
                match parser.peek() {
                    Ok((Event::StreamEnd, _)) | Err(_) => None,
                    Ok((_, m)) => {
                        return Err(SyntaxError {
                            pos: Pos::from_marker(m),
                            message: "only one YAML document is allowed per file".into(),
                        });
                    }
                }
            }
            Event::StreamEnd => break,
            Event::Alias(_) => {
                return Err(SyntaxError {
                    pos,
                    message: "YAML aliases (*name) are not allowed".into(),
                });
            }
            Event::Scalar(value, style, anchor, _) => {
                refuse_anchor(anchor, pos)?;
                let style = match style {
                    TScalarStyle::Plain => Style::Plain,
                    TScalarStyle::SingleQuoted => Style::SingleQuoted,
                    TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    TScalarStyle::Literal => Style::Literal,
                    TScalarStyle::Folded => Style::Folded,
                };
                Some(Node {
                    kind: Kind::Scalar(value, style),
                    pos,
                })
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                refuse_anchor(anchor, pos)?;
                if stack.len() >= MAX_DEPTH {
                    return Err(SyntaxError {
                        pos,
                        message: format!("nesting deeper than {MAX_DEPTH} levels"),
                    });
                }
                let kind = if matches!(event, Event::SequenceStart(..)) {
                    Kind::Seq(Vec::new())
                } else {
                    Kind::Map(Vec::new())
                };
                stack.push((Node { kind, pos }, None));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => stack.pop().map(|(mut node, _)| {
                // A block mapping's event stands after its first key; its first key is where a reader looks.
                if let Kind::Map(entries) = &node.kind {
                    if let Some((key, _)) = entries.first() {
                        node.pos = key.pos;
                    }
                }
                node
            }),
        };
        let Some(node) = finished else { continue };
        match stack.last_mut() {
            None => {
                root = Some(node);
            }
            Some((parent, pending_key)) => match &mut parent.kind {
                Kind::Seq(items) => items.push(node),
                Kind::Map(entries) => match pending_key.take() {
                    None => {
                        let Kind::Scalar(key, _) = &node.kind else {
                            return Err(SyntaxError {
                                pos: node.pos,
                                message: "mapping keys must be plain strings".into(),
                            });
                        };
                        if let Some((first, _)) =
                            entries.iter().find(|(k, _)| k.as_str() == Some(key))
                        {
                            return Err(SyntaxError {
                                pos: node.pos,
                                message: format!(
                                    "duplicate key \"{key}\" (first at line {})",
                                    first.pos.line
                                ),
                            });
                        }
                        *pending_key = Some(node);
                    }
                    Some(key) => entries.push((key, node)),
                },
                Kind::Scalar(..) => unreachable!("scalars never hold children"),
            },
        }
    }
    Ok(root.unwrap_or(Node {
        kind: Kind::Map(Vec::new()),
        pos: Pos { line: 1, column: 1 },
    }))
}

fn refuse_anchor(anchor: usize, pos: Pos) -> Result<(), SyntaxError> {
    if anchor == 0 {
        Ok(())
    } else {
        Err(SyntaxError {
            pos,
            message: "YAML anchors (&name) are not allowed".into(),
        })
    }
}

impl Node {
    /// The text of a scalar node.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    /// A scalar written without quotes that YAML reads as null (`~`, `null`, empty).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s, Style::Plain) if matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A short name for the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar(..) if self.is_null() => "null",
            Kind::Scalar(s, Style::Plain) if plain_bool(s).is_some() => "a boolean",
            Kind::Scalar(s, Style::Plain) if plain_number(s).is_some() => "a number",
            Kind::Scalar(..) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The node as JSON, reading plain scalars the way YAML 1.2's core schema does.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Scalar(s, Style::Plain) => {
                if self.is_null() {
                    Value::Null
                } else if let Some(b) = plain_bool(s) {
                    Value::Bool(b)
                } else if let Some(n) = plain_number(s) {
                    n
                } else {
                    Value::String(s.clone())
                }
            }
            Kind::Scalar(s, _) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// `true`/`false` as YAML 1.2 spells them (not `yes`/`on`).
pub fn plain_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// An integer or a float written as a plain scalar.
pub fn plain_number(s: &str) -> Option<serde_json::Value> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(i.into());
    }
    let looks_numeric = s
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'-' || b == b'+' || b == b'.')
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if !looks_numeric {
        return None;
    }
    s.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let doc = parse("a: 1\nrules:\n  - name: x\n    condition: |\n      true\n").unwrap();
        let Kind::Map(entries) = &doc.kind else {
            panic!()
        };
        assert_eq!(entries[1].0.pos, Pos { line: 2, column: 1 });
        let Kind::Seq(rules) = &entries[1].1.kind else {
            panic!()
        };
        let Kind::Map(rule) = &rules[0].kind else {
            panic!()
        };
        assert_eq!(
            rule[0].1.pos,
            Pos {
                line: 3,
                column: 11
            }
        );
        assert_eq!(rule[1].1.as_str(), Some("true\n"));
        // A block scalar's position is that of its first line of content.
        assert_eq!(rule[1].1.pos, Pos { line: 5, column: 7 });
    }

    #[test]
    fn refuses_aliases_duplicates_and_second_documents() {
        assert!(
            parse("a: &x 1\nb: *x\n")
                .unwrap_err()
                .message
                .contains("anchors")
        );
        let dup = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(dup.message, "duplicate key \"a\" (first at line 1)");
        assert_eq!(dup.pos.line, 2);
        assert!(
            parse("a: 1\n---\nb: 2\n")
                .unwrap_err()
                .message
                .contains("one YAML document")
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 1) + "]".repeat(MAX_DEPTH + 1).as_str();
        assert!(parse(&deep).unwrap_err().message.contains("nesting deeper"));
        let ok = "[".repeat(MAX_DEPTH) + "]".repeat(MAX_DEPTH).as_str();
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn plain_scalars_read_as_json_types() {
        let doc = parse("{a: 1, b: 2.5, c: true, d: ~, e: '1', f: yes}").unwrap();
        assert_eq!(
            doc.to_json(),
            serde_json::json!({"a": 1, "b": 2.5, "c": true, "d": null, "e": "1", "f": "yes"})
        );
    }
}
