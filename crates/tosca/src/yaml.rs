//! YAML as a tree that remembers where each node was, read from saphyr's parser
//! events (YAML 1.2 core schema). TOSCA validation reports positions from it, and
//! rendering writes it back out.

use saphyr::Scalar;
use serde_json::{Map, Number, Value};

use crate::error::{Error, ErrorKind, Pos};

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// Its value.
    pub value: Yaml,
}

/// A YAML value. Mapping keys are kept as text, in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    /// `null` or `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping.
    Map(Vec<(Key, Node)>),
}

/// A mapping key with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key as text.
    pub text: String,
    /// Where it is.
    pub pos: Pos,
}

impl Node {
    /// A node without a position (made by the program).
    pub fn synthetic(value: Yaml) -> Self {
        Self {
            pos: Pos::default(),
            value,
        }
    }

    /// The mapping entries, if a mapping.
    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Yaml::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value of a key of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.text == key)
            .map(|(_, v)| v)
    }

    /// The text of a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Yaml::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar as text (strings, numbers, booleans), for names and versions.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Yaml::Str(s) => Some(s.clone()),
            Yaml::Int(i) => Some(i.to_string()),
            Yaml::Float(f) => Some(f.to_string()),
            Yaml::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The sequence items, if a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Yaml::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// Converts to JSON (positions dropped).
    pub fn to_json(&self) -> Value {
        match &self.value {
            Yaml::Null => Value::Null,
            Yaml::Bool(b) => Value::Bool(*b),
            Yaml::Int(i) => Value::Number((*i).into()),
            Yaml::Float(f) => Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(f.to_string())),
            Yaml::Str(s) => Value::String(s.clone()),
            Yaml::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Yaml::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.text.clone(), v.to_json()))
                    .collect::<Map<_, _>>(),
            ),
        }
    }

    /// Converts JSON into a node (used to write input values into the template).
    pub fn from_json(value: &Value) -> Self {
        Self::synthetic(match value {
            Value::Null => Yaml::Null,
            Value::Bool(b) => Yaml::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Yaml::Int(i),
                None => Yaml::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => Yaml::Str(s.clone()),
            Value::Array(items) => Yaml::Seq(items.iter().map(Node::from_json).collect()),
            Value::Object(map) => Yaml::Map(
                map.iter()
                    .map(|(k, v)| {
                        (
                            Key {
                                text: k.clone(),
                                pos: Pos::default(),
                            },
                            Node::from_json(v),
                        )
                    })
                    .collect(),
            ),
        })
    }
}

fn pos_of(marker: &saphyr::Marker) -> Pos {
    // saphyr lines are 1-based and columns 0-based.
    Pos {
        line: marker.line(),
        column: marker.col() + 1,
    }
}

/// A YAML-level problem (as opposed to a TOSCA one) at a position.
fn yaml_error(pos: Pos, message: &str) -> Error {
    Error {
        line: Some(pos.line),
        column: Some(pos.column),
        message: format!("not valid YAML: {message}"),
        kind: ErrorKind::Yaml,
    }
}

/// The deepest nesting of collections a document may have. The conversions, checks
/// and emission of the tree recurse once per level: a document nested a few thousand
/// levels deep (easily written, or built with a chain of aliases) would overflow a
/// thread's stack, which aborts the whole process. Real templates stay under 20.
pub const MAX_DEPTH: usize = 100;

/// How many nodes aliases may copy in one document, as saphyr's own loader allows:
/// a few nested anchors can otherwise expand exponentially ("billion laughs").
const ALIAS_BUDGET: usize = 100_000;

/// A mapping key as text (scalars as written or resolved; other keys as "").
fn key_text(node: &Node) -> String {
    match &node.value {
        Yaml::Str(s) => s.clone(),
        Yaml::Int(i) => i.to_string(),
        Yaml::Float(f) => f.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Null => "null".into(),
        Yaml::Seq(_) | Yaml::Map(_) => String::new(),
    }
}

/// A scalar resolved by the YAML 1.2 core schema as saphyr resolves it (quoted
/// scalars are strings; `!!int` and the like force a type; other tags are ignored).
fn resolve_scalar(
    text: std::borrow::Cow<'_, str>,
    style: saphyr::ScalarStyle,
    tag: Option<&std::borrow::Cow<'_, saphyr::Tag>>,
    pos: Pos,
) -> Result<Node, Error> {
    let value = match Scalar::parse_from_cow_and_metadata(text, style, tag) {
        Some(Scalar::Null) => Yaml::Null,
        Some(Scalar::Boolean(b)) => Yaml::Bool(b),
        Some(Scalar::Integer(i)) => Yaml::Int(i),
        Some(Scalar::FloatingPoint(f)) => Yaml::Float(f.into_inner()),
        Some(Scalar::String(s)) => Yaml::Str(s.into_owned()),
        None => {
            return Err(yaml_error(
                pos,
                "unreadable YAML value (a value that does not match its tag)",
            ))
        }
    };
    Ok(Node { pos, value })
}

/// A collection being read: where it starts, its anchor, and what it holds so far.
struct Open {
    pos: Pos,
    anchor: usize,
    /// The height of its tallest child collection (0 when it has none).
    tallest_child: usize,
    content: Content,
}

enum Content {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Key, Node)>,
        /// The key read, waiting for its value.
        key: Option<Key>,
        /// The keys, for duplicate checks once the mapping is too large to scan.
        seen: std::collections::HashSet<String>,
    },
}

/// Builds the tree from the parser's events, with no recursion (saphyr's own
/// loader recurses once per level): documents of any depth are refused cleanly.
#[derive(Default)]
struct Builder {
    open: Vec<Open>,
    /// Anchored nodes with their height, for the aliases that copy them.
    anchors: std::collections::HashMap<usize, (Node, usize)>,
    alias_budget_used: usize,
    documents: Vec<Node>,
}

fn count_nodes(node: &Node) -> usize {
    let mut count = 0;
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        count += 1;
        match &n.value {
            Yaml::Seq(items) => stack.extend(items),
            Yaml::Map(entries) => stack.extend(entries.iter().map(|(_, v)| v)),
            _ => {}
        }
    }
    count
}

impl Builder {
    fn too_deep(pos: Pos) -> Error {
        yaml_error(
            pos,
            &format!("the document is nested more than {MAX_DEPTH} levels deep"),
        )
    }

    fn start(&mut self, pos: Pos, anchor: usize, content: Content) -> Result<(), Error> {
        if self.open.len() >= MAX_DEPTH {
            return Err(Self::too_deep(pos));
        }
        self.open.push(Open {
            pos,
            anchor,
            tallest_child: 0,
            content,
        });
        Ok(())
    }

    fn end(&mut self) -> Result<(), Error> {
        let Some(open) = self.open.pop() else {
            return Ok(());
        };
        let value = match open.content {
            Content::Seq(items) => Yaml::Seq(items),
            Content::Map { entries, .. } => Yaml::Map(entries),
        };
        let node = Node {
            pos: open.pos,
            value,
        };
        self.add(node, open.anchor, open.tallest_child + 1)
    }

    /// Adds a finished node (of the given height) to the collection being read, or
    /// as a document.
    fn add(&mut self, node: Node, anchor: usize, height: usize) -> Result<(), Error> {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), height));
        }
        let Some(parent) = self.open.last_mut() else {
            self.documents.push(node);
            return Ok(());
        };
        parent.tallest_child = parent.tallest_child.max(height);
        match &mut parent.content {
            Content::Seq(items) => items.push(node),
            Content::Map { entries, key, seen } => match key.take() {
                None => {
                    *key = Some(Key {
                        text: key_text(&node),
                        pos: node.pos,
                    })
                }
                Some(k) => {
                    const SCAN: usize = 16;
                    let duplicate = if entries.len() < SCAN {
                        entries.iter().any(|(e, _)| e.text == k.text)
                    } else {
                        if seen.is_empty() {
                            seen.extend(entries.iter().map(|(e, _)| e.text.clone()));
                        }
                        !seen.insert(k.text.clone())
                    };
                    if duplicate {
                        return Err(yaml_error(k.pos, "duplicated key in mapping"));
                    }
                    entries.push((k, node));
                }
            },
        }
        Ok(())
    }

    fn alias(&mut self, id: usize, pos: Pos) -> Result<(), Error> {
        let Some((node, height)) = self.anchors.get(&id) else {
            return Err(yaml_error(pos, "unknown YAML alias"));
        };
        if self.open.len() + height > MAX_DEPTH {
            return Err(Self::too_deep(pos));
        }
        self.alias_budget_used += count_nodes(node);
        if self.alias_budget_used > ALIAS_BUDGET {
            return Err(yaml_error(
                pos,
                "alias expansion exceeded the maximum node budget (possible billion-laughs attack)",
            ));
        }
        let (mut copy, height) = (node.clone(), *height);
        copy.pos = pos;
        self.add(copy, 0, height)
    }
}

/// Parses the first document of a YAML text (the others must be valid YAML too).
pub fn parse(src: &str) -> Result<Node, Error> {
    use saphyr_parser::{Event, Parser};

    let mut builder = Builder::default();
    for event in Parser::new_from_str(src) {
        let (event, span) = event.map_err(|e| yaml_error(pos_of(e.marker()), e.info()))?;
        let pos = pos_of(&span.start);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let node = resolve_scalar(text, style, tag.as_ref(), pos)?;
                builder.add(node, anchor, 0)?;
            }
            Event::SequenceStart(anchor, _) => builder.start(pos, anchor, Content::Seq(vec![]))?,
            Event::MappingStart(anchor, _) => builder.start(
                pos,
                anchor,
                Content::Map {
                    entries: vec![],
                    key: None,
                    seen: Default::default(),
                },
            )?,
            Event::SequenceEnd | Event::MappingEnd => builder.end()?,
            Event::Alias(id) => builder.alias(id, pos)?,
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => {}
        }
    }
    builder.documents.into_iter().next().ok_or_else(|| Error {
        line: Some(1),
        column: Some(1),
        message: "the document is empty".into(),
        kind: ErrorKind::Yaml,
    })
}

/// Writes a node as block-style YAML. Strings are always double-quoted and floats
/// always have a dot and a signed exponent, so no value changes type when read back
/// by any YAML 1.1/1.2 parser.
pub fn emit(node: &Node) -> String {
    let mut out = String::new();
    match &node.value {
        Yaml::Map(entries) if !entries.is_empty() => emit_map(entries, 0, &mut out),
        Yaml::Seq(items) if !items.is_empty() => emit_seq(items, 0, &mut out),
        _ => {
            out.push_str(&scalar(node));
            out.push('\n');
        }
    }
    out
}

/// A double-quoted YAML scalar. Beyond `"` and `\\`, every character that a YAML 1.1
/// reader (IM's PyYAML) refuses unescaped (C0 and C1 controls, DEL, U+FFFE/U+FFFF)
/// or reads as a line break (NEL, U+2028, U+2029), and the BOM, is escaped.
fn quote(text: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => {
                let _ = write!(out, "\\x{:02X}", u32::from(c));
            }
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A finite float in a form both YAML 1.1 and 1.2 read as a float: YAML 1.1 needs a
/// dot in the mantissa and a sign in the exponent (`1e20` is a string there).
/// Rust's shortest round-trip representation gives the digits.
fn float_text(f: f64) -> String {
    let text = format!("{f:?}");
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m.to_string(), Some(e)),
        None => (text.clone(), None),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa
    } else {
        format!("{mantissa}.0")
    };
    match exponent {
        Some(e) if e.starts_with(['-', '+']) => format!("{mantissa}e{e}"),
        Some(e) => format!("{mantissa}e+{e}"),
        None => mantissa,
    }
}

fn scalar(node: &Node) -> String {
    match &node.value {
        Yaml::Null => "null".into(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Int(i) => i.to_string(),
        Yaml::Float(f) => {
            if f.is_nan() {
                ".nan".into()
            } else if f.is_infinite() {
                if *f > 0.0 {
                    ".inf".into()
                } else {
                    "-.inf".into()
                }
            } else {
                float_text(*f)
            }
        }
        Yaml::Str(s) => quote(s),
        Yaml::Seq(_) => "[]".into(),
        Yaml::Map(_) => "{}".into(),
    }
}

fn is_block(node: &Node) -> bool {
    matches!(&node.value, Yaml::Map(e) if !e.is_empty())
        || matches!(&node.value, Yaml::Seq(i) if !i.is_empty())
}

fn emit_map(entries: &[(Key, Node)], indent: usize, out: &mut String) {
    for (key, value) in entries {
        out.push_str(&" ".repeat(indent));
        out.push_str(&quote(&key.text));
        out.push(':');
        emit_value(value, indent, out);
    }
}

fn emit_seq(items: &[Node], indent: usize, out: &mut String) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        emit_value(item, indent, out);
    }
}

fn emit_value(value: &Node, indent: usize, out: &mut String) {
    if is_block(value) {
        out.push('\n');
        match &value.value {
            Yaml::Map(e) => emit_map(e, indent + 2, out),
            Yaml::Seq(i) => emit_seq(i, indent + 2, out),
            _ => {}
        }
    } else {
        out.push(' ');
        out.push_str(&scalar(value));
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let node = parse("a:\n  b: 1\n  c: [x, y]\n").unwrap();
        let b = node.get("a").unwrap().get("b").unwrap();
        assert_eq!((b.pos.line, b.pos.column), (2, 6));
    }

    #[test]
    fn syntax_errors_carry_their_position() {
        let err = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Yaml);
        assert!(err.line.is_some() && err.column.is_some(), "{err}");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!((err.line, err.column), (Some(3), Some(1)));
    }

    #[test]
    fn emitting_then_parsing_keeps_every_value_and_type() {
        let src = "s: 'yes'\nn: 3\nf: 2.0\nb: true\nnull_v: ~\nl: [1, '2', {k: v}]\nm: {}\ne: []\nq: \"a \\\"quoted\\\" line\\nnext\"\n";
        let node = parse(src).unwrap();
        let again = parse(&emit(&node)).unwrap();
        assert_eq!(node.to_json(), again.to_json());
        assert_eq!(again.get("s").unwrap().value, Yaml::Str("yes".into()));
        assert_eq!(again.get("f").unwrap().value, Yaml::Float(2.0));
    }
}
