//! Typed values and constraints: what an input (or a data type property) accepts.
//! Values arrive as JSON; strings that spell a number or a boolean are accepted for
//! those types (legacy clients send everything as strings) and normalised.

use std::cmp::Ordering;

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::{Error, Pos};
use crate::types::{Family, Registry, PRIMITIVES};
use crate::yaml::Node;

/// A constraint clause.
#[derive(Debug, Clone)]
pub enum Constraint {
    /// `equal`.
    Equal(Value),
    /// `greater_than`.
    GreaterThan(Value),
    /// `greater_or_equal`.
    GreaterOrEqual(Value),
    /// `less_than`.
    LessThan(Value),
    /// `less_or_equal`.
    LessOrEqual(Value),
    /// `in_range` (inclusive).
    InRange(Value, Value),
    /// `valid_values`.
    ValidValues(Vec<Value>),
    /// `length`.
    Length(u64),
    /// `min_length`.
    MinLength(u64),
    /// `max_length`.
    MaxLength(u64),
    /// `pattern`, anchored to the whole value.
    Pattern(Regex, String),
}

/// What a value must be: a type, constraints, and for collections the schema of the
/// entries.
#[derive(Debug, Clone)]
pub struct Schema {
    /// The type's name as written (primitive or data type).
    pub type_name: String,
    /// Constraints.
    pub constraints: Vec<Constraint>,
    /// For `list` and `map`: what the entries must be.
    pub entry_schema: Option<Box<Schema>>,
}

fn u64_operand(node: &Node, op: &str) -> Result<u64, Error> {
    match node.to_json().as_u64() {
        Some(n) => Ok(n),
        None => Err(Error::at(
            node.pos,
            format!("constraint '{op}' needs a non-negative integer"),
        )),
    }
}

/// Parses a `constraints` list.
pub fn parse_constraints(node: &Node) -> Result<Vec<Constraint>, Error> {
    let Some(items) = node.as_seq() else {
        return Err(Error::at(node.pos, "'constraints' must be a list"));
    };
    let mut out = Vec::new();
    for item in items {
        let entries = match item.as_map() {
            Some(e) if e.len() == 1 => e,
            _ => {
                return Err(Error::at(
                    item.pos,
                    "a constraint must be a single 'operator: value' entry",
                ))
            }
        };
        let (key, operand) = &entries[0];
        let value = operand.to_json();
        out.push(match key.text.as_str() {
            "equal" => Constraint::Equal(value),
            "greater_than" => Constraint::GreaterThan(value),
            "greater_or_equal" => Constraint::GreaterOrEqual(value),
            "less_than" => Constraint::LessThan(value),
            "less_or_equal" => Constraint::LessOrEqual(value),
            "in_range" => match value.as_array() {
                Some(bounds) if bounds.len() == 2 => {
                    Constraint::InRange(bounds[0].clone(), bounds[1].clone())
                }
                _ => {
                    return Err(Error::at(
                        operand.pos,
                        "constraint 'in_range' needs a list of two bounds",
                    ))
                }
            },
            "valid_values" => match value {
                Value::Array(values) => Constraint::ValidValues(values),
                _ => {
                    return Err(Error::at(
                        operand.pos,
                        "constraint 'valid_values' needs a list",
                    ))
                }
            },
            "length" => Constraint::Length(u64_operand(operand, "length")?),
            "min_length" => Constraint::MinLength(u64_operand(operand, "min_length")?),
            "max_length" => Constraint::MaxLength(u64_operand(operand, "max_length")?),
            "pattern" => {
                let text = operand
                    .as_str()
                    .ok_or_else(|| Error::at(operand.pos, "constraint 'pattern' needs a string"))?;
                let regex = Regex::new(&format!("^(?:{text})$")).map_err(|e| {
                    Error::at(
                        operand.pos,
                        format!("constraint 'pattern' is not a valid regular expression: {e}"),
                    )
                })?;
                Constraint::Pattern(regex, text.to_string())
            }
            other => {
                return Err(Error::at(
                    key.pos,
                    format!("unknown constraint operator '{other}'"),
                ))
            }
        });
    }
    Ok(out)
}

/// Parses a schema (`type`, `constraints`, `entry_schema`) from a definition.
pub fn parse_schema(node: &Node, registry: &Registry, what: &str) -> Result<Schema, Error> {
    if let Some(short) = node.as_str() {
        // `entry_schema: string` short form.
        let schema = Schema {
            type_name: short.to_string(),
            constraints: vec![],
            entry_schema: None,
        };
        check_type_exists(&schema.type_name, node.pos, registry, what)?;
        return Ok(schema);
    }
    let type_node = node
        .get("type")
        .ok_or_else(|| Error::at(node.pos, format!("{what} has no 'type'")))?;
    let type_name = type_node
        .as_str()
        .ok_or_else(|| Error::at(type_node.pos, format!("the type of {what} must be a name")))?
        .to_string();
    check_type_exists(&type_name, type_node.pos, registry, what)?;
    let constraints = match node.get("constraints") {
        Some(c) => parse_constraints(c)?,
        None => vec![],
    };
    let entry_schema = match node.get("entry_schema") {
        Some(e) => Some(Box::new(parse_schema(
            e,
            registry,
            &format!("the entry_schema of {what}"),
        )?)),
        None => None,
    };
    let mut schema = Schema {
        type_name,
        constraints,
        entry_schema,
    };
    // Each constraint item is one `operator: operand` entry; problems are located at
    // the operator or at the operand.
    let items = node
        .get("constraints")
        .and_then(Node::as_seq)
        .unwrap_or_default();
    let item = |i: usize| {
        items
            .get(i)
            .and_then(Node::as_map)
            .and_then(|entries| entries.first())
    };
    let base = primitive_base(&schema.type_name, registry);
    for (i, c) in schema.constraints.iter().enumerate() {
        if !applies(c, &base) {
            let pos = item(i).map_or(node.pos, |(key, _)| key.pos);
            return Err(Error::at(
                pos,
                format!(
                    "constraint '{}' of {what} does not apply to type '{}'",
                    operator(c),
                    schema.type_name
                ),
            ));
        }
    }
    // Operands must themselves be values of the type (with its entry schema); they
    // are normalised like the values they are compared with.
    let unconstrained = Schema {
        type_name: schema.type_name.clone(),
        constraints: vec![],
        entry_schema: schema.entry_schema.clone(),
    };
    for (i, c) in schema.constraints.iter_mut().enumerate() {
        let operand_node = item(i).map(|(_, operand)| operand);
        let in_range = matches!(c, Constraint::InRange(..));
        let several = in_range || matches!(c, Constraint::ValidValues(_));
        for (j, operand) in operands_mut(c).into_iter().enumerate() {
            // `in_range: [1, UNBOUNDED]`: an upper bound that is not a value.
            if in_range && j == 1 && *operand == "UNBOUNDED" {
                continue;
            }
            let mut problems = Vec::new();
            match check(
                operand,
                &unconstrained,
                registry,
                "",
                "the operand",
                &mut problems,
            ) {
                Some(normalised) if problems.is_empty() => *operand = normalised,
                _ => {
                    let problem = problems.into_iter().next().unwrap_or_else(|| Violation {
                        pointer: String::new(),
                        message: "the operand is invalid".into(),
                    });
                    let at = operand_node.map(|n| match (several, n.as_seq()) {
                        (true, Some(values)) => values.get(j).unwrap_or(n),
                        _ => n,
                    });
                    let pos = at
                        .map(|n| node_at(n, &problem.pointer).pos)
                        .unwrap_or(node.pos);
                    return Err(Error::at(
                        pos,
                        format!(
                            "a constraint of {what} has an operand that is not of type '{}': {}",
                            schema.type_name, problem.message
                        ),
                    ));
                }
            }
        }
    }
    Ok(schema)
}

/// The node a JSON pointer (relative to `node`) designates, or the deepest one found.
fn node_at<'a>(node: &'a Node, pointer: &str) -> &'a Node {
    let mut current = node;
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        let next = match &current.value {
            crate::yaml::Yaml::Seq(items) => {
                segment.parse::<usize>().ok().and_then(|i| items.get(i))
            }
            crate::yaml::Yaml::Map(_) => current.get(&segment),
            _ => None,
        };
        match next {
            Some(n) => current = n,
            None => break,
        }
    }
    current
}

/// The operator's name as written in templates.
fn operator(c: &Constraint) -> &'static str {
    match c {
        Constraint::Equal(_) => "equal",
        Constraint::GreaterThan(_) => "greater_than",
        Constraint::GreaterOrEqual(_) => "greater_or_equal",
        Constraint::LessThan(_) => "less_than",
        Constraint::LessOrEqual(_) => "less_or_equal",
        Constraint::InRange(..) => "in_range",
        Constraint::ValidValues(_) => "valid_values",
        Constraint::Length(_) => "length",
        Constraint::MinLength(_) => "min_length",
        Constraint::MaxLength(_) => "max_length",
        Constraint::Pattern(..) => "pattern",
    }
}

/// Whether a constraint can hold for values whose primitive base is `base`: a
/// constraint that never can is a mistake in the template, refused when parsing
/// rather than at every deployment.
fn applies(c: &Constraint, base: &str) -> bool {
    match c {
        Constraint::Length(_) | Constraint::MinLength(_) | Constraint::MaxLength(_) => {
            matches!(base, "string" | "list" | "map")
        }
        Constraint::Pattern(..) => base == "string",
        Constraint::GreaterThan(_)
        | Constraint::GreaterOrEqual(_)
        | Constraint::LessThan(_)
        | Constraint::LessOrEqual(_)
        | Constraint::InRange(..) => !matches!(base, "list" | "map" | "range" | "null" | "complex"),
        Constraint::Equal(_) | Constraint::ValidValues(_) => true,
    }
}

fn operands_mut(c: &mut Constraint) -> Vec<&mut Value> {
    match c {
        Constraint::Equal(v)
        | Constraint::GreaterThan(v)
        | Constraint::GreaterOrEqual(v)
        | Constraint::LessThan(v)
        | Constraint::LessOrEqual(v) => vec![v],
        Constraint::InRange(a, b) => vec![a, b],
        Constraint::ValidValues(vs) => vs.iter_mut().collect(),
        _ => vec![],
    }
}

fn check_type_exists(name: &str, pos: Pos, registry: &Registry, what: &str) -> Result<(), Error> {
    if PRIMITIVES.contains(&name) || registry.contains(Family::Data, name) {
        Ok(())
    } else {
        Err(Error::at(pos, format!("{what} has unknown type '{name}'")))
    }
}

/// A value ready for comparison.
#[derive(Debug, Clone, PartialEq)]
enum Cmp {
    /// Integers and timestamps (microseconds), compared exactly.
    Int(i64),
    /// Floats and scalar units (in their base unit).
    Num(f64),
    Str(String),
    Bool(bool),
    Version(Vec<u64>, String, u64),
    Other,
}

impl PartialOrd for Cmp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Cmp::Int(a), Cmp::Int(b)) => Some(a.cmp(b)),
            (Cmp::Num(a), Cmp::Num(b)) => a.partial_cmp(b),
            (Cmp::Str(a), Cmp::Str(b)) => a.partial_cmp(b),
            (Cmp::Bool(a), Cmp::Bool(b)) => a.partial_cmp(b),
            (Cmp::Version(a, qa, ba), Cmp::Version(b, qb, bb)) => {
                Some(a.cmp(b).then(qa.cmp(qb)).then(ba.cmp(bb)))
            }
            _ => None,
        }
    }
}

const SIZE_UNITS: &[(&str, f64)] = &[
    ("b", 1.0),
    ("kb", 1e3),
    ("kib", 1024.0),
    ("mb", 1e6),
    ("mib", 1_048_576.0),
    ("gb", 1e9),
    ("gib", 1_073_741_824.0),
    ("tb", 1e12),
    ("tib", 1_099_511_627_776.0),
];
const TIME_UNITS: &[(&str, f64)] = &[
    ("d", 86_400.0),
    ("h", 3_600.0),
    ("m", 60.0),
    ("s", 1.0),
    ("ms", 1e-3),
    ("us", 1e-6),
    ("ns", 1e-9),
];
const FREQUENCY_UNITS: &[(&str, f64)] = &[("hz", 1.0), ("khz", 1e3), ("mhz", 1e6), ("ghz", 1e9)];
const BITRATE_UNITS: &[(&str, f64)] = &[
    ("bps", 1.0),
    ("kbps", 1e3),
    ("kibps", 1024.0),
    ("mbps", 1e6),
    ("mibps", 1_048_576.0),
    ("gbps", 1e9),
    ("gibps", 1_073_741_824.0),
];

fn scalar_unit(text: &str, units: &[(&str, f64)], kind: &str) -> Result<f64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| format!("'{text}' is not a {kind} (a number and a unit, e.g. '4 GB')"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a {kind} (a number and a unit, e.g. '4 GB')"))?;
    let unit_lower = unit.trim().to_ascii_lowercase();
    let factor = units
        .iter()
        .find(|(u, _)| *u == unit_lower)
        .map(|(_, f)| *f)
        .ok_or_else(|| {
            let known: Vec<_> = units.iter().map(|(u, _)| *u).collect();
            format!(
                "'{}' is not a unit of {kind} (known: {})",
                unit.trim(),
                known.join(", ")
            )
        })?;
    if number < 0.0 {
        return Err(format!("'{text}' must not be negative"));
    }
    Ok(number * factor)
}

fn parse_version(text: &str) -> Result<Cmp, String> {
    let invalid = || format!("'{text}' is not a version (major.minor[.fix[.qualifier[-build]]])");
    let caps = version_regex()
        .and_then(|re| re.captures(text))
        .ok_or_else(invalid)?;
    // An absent part is 0; a part too large for a u64 is no version (it would
    // otherwise compare as 0).
    let n = |i: usize| match caps.get(i) {
        Some(m) => m.as_str().parse::<u64>().map_err(|_| invalid()),
        None => Ok(0),
    };
    Ok(Cmp::Version(
        vec![n(1)?, n(2)?, n(3)?],
        caps.get(4)
            .map(|m| m.as_str().to_string())
            .unwrap_or_default(),
        n(5)?,
    ))
}

fn version_regex() -> Option<&'static Regex> {
    static RE: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(\d+)\.(\d+)(?:\.(\d+)(?:\.([A-Za-z0-9_]+)(?:-(\d+))?)?)?$").ok()
    })
    .as_ref()
}

/// The YAML 1.1 timestamp (https://yaml.org/type/timestamp.html), which TOSCA's
/// `timestamp` refers to: a date alone, or a date and a time separated by `T`, `t`
/// or spaces, with an optional fraction and an optional zone (`Z`, `+1`, `-05`,
/// `+05:30`, also `+0530` as ISO 8601 writes it) that spaces may precede. Without a
/// zone the time is UTC.
fn timestamp_regex() -> Option<&'static Regex> {
    static RE: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            r"^(\d{4})-(\d{2})-(\d{2})$",
            r"|^(\d{4})-(\d{1,2})-(\d{1,2})(?:[Tt]|[ \t]+)(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d*))?",
            r"(?:[ \t]*(Z|[-+]\d{1,2}(?::?\d{2})?))?$",
        ))
        .ok()
    })
    .as_ref()
}

fn parse_timestamp(text: &str) -> Result<i64, String> {
    let invalid = || format!("'{text}' is not a timestamp (ISO 8601, e.g. 2024-01-31T10:00:00Z)");
    let caps = timestamp_regex()
        .and_then(|re| re.captures(text.trim()))
        .ok_or_else(invalid)?;
    let num = |i: usize| -> u32 {
        caps.get(i)
            .and_then(|m| m.as_str().parse().ok())
            .unwrap_or(0)
    };
    let year = |i: usize| -> i32 {
        caps.get(i)
            .and_then(|m| m.as_str().parse().ok())
            .unwrap_or(0)
    };
    if caps.get(1).is_some() {
        return chrono::NaiveDate::from_ymd_opt(year(1), num(2), num(3))
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|dt| dt.and_utc().timestamp_micros())
            .ok_or_else(invalid);
    }
    let nanos = caps.get(10).map_or(0, |m| {
        let digits: String = m
            .as_str()
            .chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .collect();
        digits.parse().unwrap_or(0)
    });
    let local = chrono::NaiveDate::from_ymd_opt(year(4), num(5), num(6))
        .and_then(|d| d.and_hms_nano_opt(num(7), num(8), num(9), nanos))
        .ok_or_else(invalid)?;
    let offset_seconds = match caps.get(11).map(|m| m.as_str()) {
        None | Some("Z") => 0,
        Some(zone) => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let digits: String = zone[1..].chars().filter(char::is_ascii_digit).collect();
            let (hours, minutes) = if digits.len() > 2 {
                digits.split_at(digits.len() - 2)
            } else {
                (digits.as_str(), "0")
            };
            let (hours, minutes): (i32, i32) =
                (hours.parse().unwrap_or(0), minutes.parse().unwrap_or(0));
            if hours > 23 || minutes > 59 {
                return Err(invalid());
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let offset = chrono::FixedOffset::east_opt(offset_seconds).ok_or_else(invalid)?;
    local
        .and_local_timezone(offset)
        .single()
        .map(|dt| dt.timestamp_micros())
        .ok_or_else(invalid)
}

fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(57).collect::<String>())
    } else {
        text
    }
}

/// Converts a value of a primitive or data type to its comparable form and its
/// normalised JSON (numbers and booleans given as strings become typed).
fn comparable(type_name: &str, value: &Value, registry: &Registry) -> Result<(Cmp, Value), String> {
    let base = primitive_base(type_name, registry);
    match (base.as_str(), value) {
        ("string", Value::String(s)) => Ok((Cmp::Str(s.clone()), value.clone())),
        ("string", other) => Err(format!("must be a string, got {}", describe(other))),
        ("integer", Value::Number(n)) if n.as_i64().is_some() => {
            Ok((Cmp::Int(n.as_i64().unwrap_or(0)), value.clone()))
        }
        ("integer", Value::Number(n))
            if n.as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.0e15) =>
        {
            let i = n.as_f64().unwrap_or(0.0) as i64;
            Ok((Cmp::Int(i), Value::from(i)))
        }
        ("integer", Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
            let i = s.trim().parse::<i64>().unwrap_or(0);
            Ok((Cmp::Int(i), Value::from(i)))
        }
        ("integer", other) => Err(format!("must be an integer, got {}", describe(other))),
        ("float", Value::Number(n)) => {
            let f = n.as_f64().unwrap_or(0.0);
            Ok((Cmp::Num(f), Value::from(f)))
        }
        ("float", Value::String(s)) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
            let f = s.trim().parse::<f64>().unwrap_or(0.0);
            Ok((Cmp::Num(f), Value::from(f)))
        }
        ("float", other) => Err(format!("must be a number, got {}", describe(other))),
        ("boolean", Value::Bool(b)) => Ok((Cmp::Bool(*b), value.clone())),
        ("boolean", Value::String(s))
            if matches!(s.to_ascii_lowercase().as_str(), "true" | "false") =>
        {
            let b = s.eq_ignore_ascii_case("true");
            Ok((Cmp::Bool(b), Value::Bool(b)))
        }
        ("boolean", other) => Err(format!("must be true or false, got {}", describe(other))),
        ("timestamp", Value::String(s)) => parse_timestamp(s).map(|t| (Cmp::Int(t), value.clone())),
        ("timestamp", other) => Err(format!(
            "must be a timestamp string, got {}",
            describe(other)
        )),
        ("version", Value::String(s)) => parse_version(s.trim()).map(|v| (v, value.clone())),
        ("version", Value::Number(n)) => {
            let text = n.to_string();
            parse_version(&text).map(|v| (v, Value::String(text)))
        }
        ("version", other) => Err(format!("must be a version string, got {}", describe(other))),
        ("scalar-unit.size", Value::String(s)) => {
            scalar_unit(s, SIZE_UNITS, "size").map(|f| (Cmp::Num(f), value.clone()))
        }
        ("scalar-unit.time", Value::String(s)) => {
            scalar_unit(s, TIME_UNITS, "time").map(|f| (Cmp::Num(f), value.clone()))
        }
        ("scalar-unit.frequency", Value::String(s)) => {
            scalar_unit(s, FREQUENCY_UNITS, "frequency").map(|f| (Cmp::Num(f), value.clone()))
        }
        ("scalar-unit.bitrate", Value::String(s)) => {
            scalar_unit(s, BITRATE_UNITS, "bitrate").map(|f| (Cmp::Num(f), value.clone()))
        }
        (t, other) if t.starts_with("scalar-unit.") => Err(format!(
            "must be a {t} string such as '4 GB', got {}",
            describe(other)
        )),
        ("range", Value::Array(bounds)) if bounds.len() == 2 => {
            let bound = |v: &Value| match v {
                Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(0)),
                Value::String(s) if s == "UNBOUNDED" => Ok(i64::MAX),
                other => Err(format!(
                    "range bounds must be integers or UNBOUNDED, got {}",
                    describe(other)
                )),
            };
            let (lo, hi) = (bound(&bounds[0])?, bound(&bounds[1])?);
            if bounds[0] == "UNBOUNDED" {
                return Err("a range's lower bound cannot be UNBOUNDED".into());
            }
            if lo > hi {
                return Err(format!(
                    "range [{lo}, {}] has its lower bound above its upper bound",
                    describe(&bounds[1])
                ));
            }
            Ok((Cmp::Other, value.clone()))
        }
        ("range", other) => Err(format!(
            "must be a range [min, max], got {}",
            describe(other)
        )),
        ("list", Value::Array(_)) => Ok((Cmp::Other, value.clone())),
        ("list", other) => Err(format!("must be a list, got {}", describe(other))),
        ("map", Value::Object(_)) => Ok((Cmp::Other, value.clone())),
        ("map", other) => Err(format!("must be a map, got {}", describe(other))),
        ("null", Value::Null) => Ok((Cmp::Other, Value::Null)),
        ("null", other) => Err(format!("must be null, got {}", describe(other))),
        ("complex", Value::Object(_)) => Ok((Cmp::Other, value.clone())),
        ("complex", other) => Err(format!(
            "must be a map of the properties of '{type_name}', got {}",
            describe(other)
        )),
        (t, _) => Err(format!("has unknown type '{t}'")),
    }
}

/// The primitive a data type reduces to, or `complex` for property-based types.
fn primitive_base(type_name: &str, registry: &Registry) -> String {
    if PRIMITIVES.contains(&type_name) {
        return type_name.to_string();
    }
    for ancestor in registry.ancestors(Family::Data, type_name) {
        if PRIMITIVES.contains(&ancestor.as_str()) {
            return ancestor;
        }
        if let Some(parent) = registry
            .get(Family::Data, &ancestor)
            .and_then(|t| t.derived_from.clone())
        {
            if PRIMITIVES.contains(&parent.as_str()) {
                return parent;
            }
        }
    }
    "complex".into()
}

/// Where a problem is, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer relative to the inputs object.
    pub pointer: String,
    /// Readable description naming the input and the rule.
    pub message: String,
}

/// Escapes a JSON pointer segment (RFC 6901).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Checks a value against a schema, collecting every violation, and returns the
/// normalised value (when the value's type is right).
pub fn check(
    value: &Value,
    schema: &Schema,
    registry: &Registry,
    pointer: &str,
    label: &str,
    out: &mut Vec<Violation>,
) -> Option<Value> {
    let (cmp, mut normalized) = match comparable(&schema.type_name, value, registry) {
        Ok(ok) => ok,
        Err(msg) => {
            out.push(Violation {
                pointer: pointer.to_string(),
                message: format!("{label} {msg}"),
            });
            return None;
        }
    };
    // Entries are normalised before the value's own constraints are checked, so that
    // `equal` and `valid_values` compare normalised values; the value's violations
    // are still reported before its entries'.
    let mut entries = Vec::new();
    match (&mut normalized, &schema.entry_schema) {
        (Value::Array(items), Some(entry)) => {
            for (i, item) in items.iter_mut().enumerate() {
                if let Some(v) = check(
                    item,
                    entry,
                    registry,
                    &format!("{pointer}/{i}"),
                    &format!("{label} entry {i}"),
                    &mut entries,
                ) {
                    *item = v;
                }
            }
        }
        (Value::Object(map), Some(entry)) => {
            for (k, item) in map.iter_mut() {
                if let Some(v) = check(
                    item,
                    entry,
                    registry,
                    &format!("{pointer}/{}", escape(k)),
                    &format!("{label} entry '{k}'"),
                    &mut entries,
                ) {
                    *item = v;
                }
            }
        }
        _ => {}
    }
    // Data types: their own constraints and properties apply too.
    let mut constraints: Vec<&Constraint> = schema.constraints.iter().collect();
    let data_type_constraints = data_type_constraints(&schema.type_name, registry);
    constraints.extend(data_type_constraints.iter());
    for c in constraints {
        if let Some(msg) = violates(c, &cmp, &normalized, &schema.type_name, registry) {
            out.push(Violation {
                pointer: pointer.to_string(),
                message: format!("{label} {msg}"),
            });
        }
    }
    out.append(&mut entries);
    if primitive_base(&schema.type_name, registry) == "complex" {
        if let Value::Object(map) = &mut normalized {
            check_properties(map, &schema.type_name, registry, pointer, label, out);
        }
    }
    Some(normalized)
}

fn data_type_constraints(type_name: &str, registry: &Registry) -> Vec<Constraint> {
    let mut out = Vec::new();
    for ancestor in registry.ancestors(Family::Data, type_name) {
        // The one normative data type with a constraint (TOSCA 1.3, 5.3.5): built in
        // without a definition, so its constraint is written here.
        if ancestor == "tosca.datatypes.network.PortDef" {
            out.push(Constraint::InRange(Value::from(1), Value::from(65535)));
        }
        if let Some(def) = registry
            .get(Family::Data, &ancestor)
            .and_then(|t| t.definition.as_ref())
        {
            if let Some(Ok(cs)) = def.get("constraints").map(parse_constraints) {
                out.extend(cs);
            }
        }
    }
    out
}

fn check_properties(
    map: &mut Map<String, Value>,
    type_name: &str,
    registry: &Registry,
    pointer: &str,
    label: &str,
    out: &mut Vec<Violation>,
) {
    let mut declared = Vec::new();
    // The normative complex types (PortSpec, Credential...) are built in without
    // their property definitions, so a type that is or extends one of them may have
    // properties this registry does not know: only the declared ones are checked.
    let mut open = false;
    for ancestor in registry.ancestors(Family::Data, type_name) {
        if ancestor != "tosca.datatypes.Root"
            && registry
                .get(Family::Data, &ancestor)
                .is_some_and(|t| t.definition.is_none())
        {
            open = true;
        }
        let Some(def) = registry
            .get(Family::Data, &ancestor)
            .and_then(|t| t.definition.as_ref())
        else {
            continue;
        };
        let Some(props) = def.get("properties").and_then(Node::as_map) else {
            continue;
        };
        for (name, prop) in props {
            if declared.iter().any(|(n, _, _)| n == &name.text) {
                continue;
            }
            let Ok(schema) = parse_schema(prop, registry, &format!("property '{}'", name.text))
            else {
                continue;
            };
            let required = prop
                .get("required")
                .map(|r| r.value != crate::yaml::Yaml::Bool(false))
                .unwrap_or(true);
            let default = prop.get("default").map(Node::to_json);
            declared.push((name.text.clone(), schema, (required, default)));
        }
    }
    for (name, schema, (required, default)) in &declared {
        let p = format!("{pointer}/{}", escape(name));
        match map.get_mut(name) {
            Some(v) => {
                if let Some(n) = check(
                    v,
                    schema,
                    registry,
                    &p,
                    &format!("{label} property '{name}'"),
                    out,
                ) {
                    *v = n;
                }
            }
            None => match default {
                Some(d) => {
                    map.insert(name.clone(), d.clone());
                }
                None if *required => out.push(Violation {
                    pointer: p,
                    message: format!("{label} is missing required property '{name}'"),
                }),
                None => {}
            },
        }
    }
    if open {
        return;
    }
    for key in map.keys() {
        if !declared.iter().any(|(n, _, _)| n == key) {
            out.push(Violation {
                pointer: format!("{pointer}/{}", escape(key)),
                message: format!(
                    "{label} has property '{key}', which type '{type_name}' does not declare"
                ),
            });
        }
    }
}

fn length_of(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => Some(s.chars().count() as u64),
        Value::Array(a) => Some(a.len() as u64),
        Value::Object(m) => Some(m.len() as u64),
        _ => None,
    }
}

fn violates(
    c: &Constraint,
    cmp: &Cmp,
    value: &Value,
    type_name: &str,
    registry: &Registry,
) -> Option<String> {
    let operand = |v: &Value| comparable(type_name, v, registry).ok().map(|(c, _)| c);
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let got = show(value);
    match c {
        Constraint::Equal(v) => {
            // Lists, maps and ranges have no comparable form: compare them whole.
            let equal = match cmp {
                Cmp::Other => v == value,
                _ => operand(v).as_ref() == Some(cmp),
            };
            (!equal).then(|| format!("must be equal to {}, got {got}", show(v)))
        }
        Constraint::GreaterThan(v) => (operand(v).and_then(|o| cmp.partial_cmp(&o))
            != Some(Ordering::Greater))
        .then(|| format!("must be greater than {}, got {got}", show(v))),
        Constraint::GreaterOrEqual(v) => matches!(
            operand(v).and_then(|o| cmp.partial_cmp(&o)),
            Some(Ordering::Less) | None
        )
        .then(|| format!("must be greater than or equal to {}, got {got}", show(v))),
        Constraint::LessThan(v) => (operand(v).and_then(|o| cmp.partial_cmp(&o))
            != Some(Ordering::Less))
        .then(|| format!("must be less than {}, got {got}", show(v))),
        Constraint::LessOrEqual(v) => matches!(
            operand(v).and_then(|o| cmp.partial_cmp(&o)),
            Some(Ordering::Greater) | None
        )
        .then(|| format!("must be less than or equal to {}, got {got}", show(v))),
        Constraint::InRange(lo, hi) => {
            let lo_ok = matches!(
                operand(lo).and_then(|o| cmp.partial_cmp(&o)),
                Some(Ordering::Greater | Ordering::Equal)
            );
            let hi_ok = hi == "UNBOUNDED"
                || matches!(
                    operand(hi).and_then(|o| cmp.partial_cmp(&o)),
                    Some(Ordering::Less | Ordering::Equal)
                );
            (!(lo_ok && hi_ok)).then(|| {
                format!(
                    "must be in the range [{}, {}], got {got}",
                    show(lo),
                    show(hi)
                )
            })
        }
        Constraint::ValidValues(vs) => (!vs
            .iter()
            .any(|v| operand(v).as_ref() == Some(cmp) && !matches!(cmp, Cmp::Other) || v == value))
        .then(|| {
            format!(
                "must be one of {}, got {got}",
                vs.iter().map(show).collect::<Vec<_>>().join(", ")
            )
        }),
        Constraint::Length(n) => match length_of(value) {
            Some(len) if len == *n => None,
            Some(len) => Some(format!("must have length {n}, got length {len}")),
            None => Some("cannot have a length".into()),
        },
        Constraint::MinLength(n) => match length_of(value) {
            Some(len) if len >= *n => None,
            Some(len) => Some(format!(
                "must have length of at least {n}, got length {len}"
            )),
            None => Some("cannot have a length".into()),
        },
        Constraint::MaxLength(n) => match length_of(value) {
            Some(len) if len <= *n => None,
            Some(len) => Some(format!("must have length of at most {n}, got length {len}")),
            None => Some("cannot have a length".into()),
        },
        Constraint::Pattern(re, text) => match value {
            Value::String(s) if re.is_match(s) => None,
            Value::String(_) => Some(format!("must match the pattern '{text}', got {got}")),
            _ => Some("cannot match a pattern".into()),
        },
    }
}
