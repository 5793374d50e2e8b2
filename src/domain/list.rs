//! The list query model shared by every collection (DESIGN.md §3 "Lists" and
//! "Filters"): page/size/sort with whitelisted fields, filters on any attribute with
//! `_gte`/`_lte`, `created_after`/`created_before`/`updated_after`/`updated_before`,
//! several values meaning "any of", and `me` standing for the caller.
//!
//! Parsing is pure so that it can be tested without a server; the store turns a
//! [`ListQuery`] into SQL and the HTTP layer turns it back into links.

use super::Timestamp;

/// Default page size.
pub const DEFAULT_SIZE: u32 = 5;
/// Largest page size a client may ask for.
pub const MAX_SIZE: u32 = 100;

/// How a field is matched, sorted and parsed.
#[derive(Debug, Clone, Copy)]
pub enum FieldKind {
    /// An identifier: exact match, several values allowed.
    Id,
    /// A user id that also accepts `me`.
    User,
    /// Free text: case-insensitive substring match.
    Text,
    /// Text matched exactly (checksums, names of enumerations kept as text).
    Exact,
    /// An integer: exact match, `_gte`/`_lte`.
    Int,
    /// A boolean (`true`/`false`/`1`/`0`), stored as 0/1.
    Bool,
    /// An enumeration given by code or name.
    Enum(fn(&str) -> Option<i64>),
    /// A point in time (RFC 3339 or a date), `_gte`/`_lte`.
    Timestamp,
}

/// One attribute of a listed entity.
#[derive(Debug)]
pub struct Field {
    /// The name on the wire and in query parameters.
    pub name: &'static str,
    /// The SQL column expression, or a condition template where `{}` stands for an
    /// `IN (...)` list (membership filters such as `owned_by`).
    pub sql: &'static str,
    /// How values are parsed and compared.
    pub kind: FieldKind,
    /// Whether `sort` may name it.
    pub sortable: bool,
}

/// The fields of one collection.
#[derive(Debug)]
pub struct ListSpec {
    /// Filterable and sortable attributes.
    pub fields: &'static [Field],
    /// Sort used when the client gives none (`-created_at`).
    pub default_sort: &'static str,
    /// Column used to break ties so that pages never overlap.
    pub tie_breaker: &'static str,
    /// Query parameters the handler interprets itself (e.g. `type` on resources).
    pub extra_params: &'static [&'static str],
}

impl ListSpec {
    fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A filter value, already typed for binding.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text (ids, free text, exact text).
    Text(String),
    /// Integers, booleans, enum codes and timestamps (microseconds).
    Int(i64),
}

/// One condition of the `WHERE` clause.
#[derive(Debug, Clone)]
pub enum Condition {
    /// The field equals (or, for text, contains) any of the values.
    AnyOf {
        /// The field.
        field: &'static Field,
        /// At least one value.
        values: Vec<Value>,
    },
    /// The field is at least the value.
    AtLeast {
        /// The field.
        field: &'static Field,
        /// The bound (inclusive).
        value: Value,
    },
    /// The field is at most the value.
    AtMost {
        /// The field.
        field: &'static Field,
        /// The bound (inclusive).
        value: Value,
    },
    /// A column is one of a list computed by the handler (e.g. resource types
    /// derived from the one asked for). An empty list matches nothing.
    In {
        /// The column expression.
        column: &'static str,
        /// The accepted values.
        values: Vec<Value>,
    },
}

/// A problem with one query parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamError {
    /// The parameter's name as sent.
    pub param: String,
    /// What is wrong with it.
    pub message: String,
}

/// A parsed list request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// 1-based page number.
    pub page: u32,
    /// Page size.
    pub size: u32,
    /// Sort field.
    pub sort: &'static Field,
    /// Descending order.
    pub descending: bool,
    /// Conditions, all of which must hold.
    pub conditions: Vec<Condition>,
    /// Parameters other than page and size, in the order sent, to rebuild links.
    pub kept_params: Vec<(String, String)>,
    /// Values of the spec's extra parameters, for the handler.
    pub extras: Vec<(String, String)>,
}

impl ListQuery {
    /// Parses query pairs against a spec. `me` is the caller's user id, which `me`
    /// stands for in user fields. Every problem is reported, not only the first.
    pub fn parse(
        pairs: &[(String, String)],
        spec: &'static ListSpec,
        me: Option<&str>,
    ) -> Result<Self, Vec<ParamError>> {
        let mut errors = Vec::new();
        let mut page = 1;
        let mut size = DEFAULT_SIZE;
        let mut sort_text = spec.default_sort.to_string();
        let mut conditions: Vec<Condition> = Vec::new();
        let mut kept_params = Vec::new();
        let mut extras = Vec::new();

        for (name, raw) in pairs {
            let mut err = |message: String| {
                errors.push(ParamError {
                    param: name.clone(),
                    message,
                })
            };
            match name.as_str() {
                "page" => match raw.parse::<u32>() {
                    Ok(p) if p >= 1 => page = p,
                    _ => err(format!("must be an integer of at least 1, got '{raw}'")),
                },
                "size" => match raw.parse::<u32>() {
                    Ok(s) if (1..=MAX_SIZE).contains(&s) => size = s,
                    _ => err(format!(
                        "must be an integer between 1 and {MAX_SIZE}, got '{raw}'"
                    )),
                },
                "sort" => {
                    sort_text = raw.clone();
                    kept_params.push((name.clone(), raw.clone()));
                }
                _ if spec.extra_params.contains(&name.as_str()) => {
                    extras.push((name.clone(), raw.clone()));
                    kept_params.push((name.clone(), raw.clone()));
                }
                _ => {
                    kept_params.push((name.clone(), raw.clone()));
                    match parse_filter(spec, name, raw, me) {
                        Ok(condition) => merge(&mut conditions, condition),
                        Err(message) => err(message),
                    }
                }
            }
        }

        let (descending, sort_name) = match sort_text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, sort_text.trim_start_matches('+')),
        };
        let sort = match spec.field(sort_name).filter(|f| f.sortable) {
            Some(field) => field,
            None => {
                let known: Vec<_> = spec
                    .fields
                    .iter()
                    .filter(|f| f.sortable)
                    .map(|f| f.name)
                    .collect();
                errors.push(ParamError {
                    param: "sort".into(),
                    message: format!(
                        "cannot sort by '{sort_name}'; sortable fields are: {}",
                        known.join(", ")
                    ),
                });
                &spec.fields[0]
            }
        };

        if errors.is_empty() {
            Ok(Self {
                page,
                size,
                sort,
                descending,
                conditions,
                kept_params,
                extras,
            })
        } else {
            Err(errors)
        }
    }

    /// Offset of the first row of the page.
    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.size)
    }

    /// Every value given for a field (after `me` substitution), to check visibility.
    pub fn values_of(&self, name: &str) -> Vec<&Value> {
        self.conditions
            .iter()
            .filter_map(|c| match c {
                Condition::AnyOf { field, values } if field.name == name => Some(values),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Adds a condition computed by the handler.
    pub fn push(&mut self, condition: Condition) {
        self.conditions.push(condition);
    }

    /// The value of an extra parameter, if given.
    pub fn extra(&self, name: &str) -> Option<&str> {
        self.extras
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Repeated parameters for one field mean "any of": fold them into one condition.
fn merge(conditions: &mut Vec<Condition>, condition: Condition) {
    if let Condition::AnyOf { field, values } = &condition {
        for existing in conditions.iter_mut() {
            if let Condition::AnyOf {
                field: f,
                values: v,
            } = existing
            {
                if f.name == field.name {
                    v.extend(values.iter().cloned());
                    return;
                }
            }
        }
    }
    conditions.push(condition);
}

fn parse_filter(
    spec: &'static ListSpec,
    name: &str,
    raw: &str,
    me: Option<&str>,
) -> Result<Condition, String> {
    let range_alias = match name {
        "created_after" => Some(("created_at", true)),
        "created_before" => Some(("created_at", false)),
        "updated_after" => Some(("updated_at", true)),
        "updated_before" => Some(("updated_at", false)),
        _ => None,
    };
    let range = range_alias.or_else(|| {
        name.strip_suffix("_gte")
            .map(|base| (base, true))
            .or_else(|| name.strip_suffix("_lte").map(|base| (base, false)))
    });
    if let Some((base, lower)) = range {
        if let Some(field) = spec.field(base) {
            if !matches!(field.kind, FieldKind::Int | FieldKind::Timestamp) {
                return Err(format!("'{base}' cannot be filtered by range"));
            }
            let value = parse_value(field, raw, me)?;
            return Ok(if lower {
                Condition::AtLeast { field, value }
            } else {
                Condition::AtMost { field, value }
            });
        }
    }
    let Some(field) = spec.field(name) else {
        return Err("unknown query parameter".to_string());
    };
    let pieces: Vec<&str> = match field.kind {
        FieldKind::Text => vec![raw],
        _ => raw
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect(),
    };
    if pieces.is_empty() {
        return Err("must not be empty".to_string());
    }
    let values = pieces
        .into_iter()
        .map(|piece| parse_value(field, piece, me))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Condition::AnyOf { field, values })
}

fn parse_value(field: &Field, raw: &str, me: Option<&str>) -> Result<Value, String> {
    match field.kind {
        FieldKind::Text | FieldKind::Exact => Ok(Value::Text(raw.to_string())),
        FieldKind::Id => uuid::Uuid::parse_str(raw)
            .map(|id| Value::Text(id.to_string()))
            .map_err(|_| format!("must be a UUID, got '{raw}'")),
        FieldKind::User => {
            if raw == "me" {
                return me
                    .map(|id| Value::Text(id.to_string()))
                    .ok_or_else(|| "'me' needs an authenticated caller".to_string());
            }
            uuid::Uuid::parse_str(raw)
                .map(|id| Value::Text(id.to_string()))
                .map_err(|_| format!("must be a user id (UUID) or 'me', got '{raw}'"))
        }
        FieldKind::Int => raw
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| format!("must be an integer, got '{raw}'")),
        FieldKind::Bool => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Value::Int(1)),
            "false" | "0" => Ok(Value::Int(0)),
            _ => Err(format!("must be true or false, got '{raw}'")),
        },
        FieldKind::Enum(parse) => parse(raw)
            .map(Value::Int)
            .ok_or_else(|| format!("'{raw}' is not a valid {}", field.name)),
        FieldKind::Timestamp => Timestamp::parse(raw)
            .map(|t| Value::Int(t.as_micros()))
            .ok_or_else(|| format!("must be an RFC 3339 timestamp or a date, got '{raw}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DeploymentStatus;

    static FIELDS: &[Field] = &[
        Field {
            name: "created_at",
            sql: "t.created_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
        Field {
            name: "name",
            sql: "t.name",
            kind: FieldKind::Text,
            sortable: true,
        },
        Field {
            name: "status",
            sql: "t.status",
            kind: FieldKind::Enum(|s| DeploymentStatus::parse(s).map(|v| v.code())),
            sortable: true,
        },
        Field {
            name: "created_by",
            sql: "t.created_by",
            kind: FieldKind::User,
            sortable: false,
        },
        Field {
            name: "retries",
            sql: "t.retries",
            kind: FieldKind::Int,
            sortable: true,
        },
    ];
    static SPEC: ListSpec = ListSpec {
        fields: FIELDS,
        default_sort: "-created_at",
        tie_breaker: "t.id",
        extra_params: &["type"],
    };

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_first_page_of_five_newest_first() {
        let q = ListQuery::parse(&[], &SPEC, None).unwrap();
        assert_eq!(
            (q.page, q.size, q.sort.name, q.descending),
            (1, 5, "created_at", true)
        );
        assert_eq!(q.offset(), 0);
    }

    #[test]
    fn page_zero_oversized_pages_and_unknown_sorts_name_the_parameter() {
        let errors = ListQuery::parse(
            &pairs(&[("page", "0"), ("size", "1000"), ("sort", "nonexistent")]),
            &SPEC,
            None,
        )
        .unwrap_err();
        let params: Vec<_> = errors.iter().map(|e| e.param.as_str()).collect();
        assert_eq!(params, ["page", "size", "sort"]);
        assert!(errors[2].message.contains("nonexistent"));
    }

    #[test]
    fn the_largest_page_size_is_accepted() {
        let q = ListQuery::parse(&pairs(&[("size", "100"), ("page", "3")]), &SPEC, None).unwrap();
        assert_eq!((q.size, q.offset()), (100, 200));
    }

    #[test]
    fn repeated_and_comma_separated_values_mean_any_of() {
        let q = ListQuery::parse(
            &pairs(&[("status", "1"), ("status", "CREATE_COMPLETE,UPDATE_FAILED")]),
            &SPEC,
            None,
        )
        .unwrap();
        assert_eq!(
            q.values_of("status"),
            [&Value::Int(1), &Value::Int(0), &Value::Int(8)]
        );
    }

    #[test]
    fn me_stands_for_the_caller_and_other_users_must_be_uuids() {
        let me = "0b4c1f52-7d6a-4a49-9e39-4f7c1f0b7a11";
        let q = ListQuery::parse(&pairs(&[("created_by", "me")]), &SPEC, Some(me)).unwrap();
        assert_eq!(q.values_of("created_by"), [&Value::Text(me.into())]);
        let errors =
            ListQuery::parse(&pairs(&[("created_by", "bob")]), &SPEC, Some(me)).unwrap_err();
        assert_eq!(errors[0].param, "created_by");
    }

    #[test]
    fn ranges_and_time_aliases_become_inclusive_bounds() {
        let q = ListQuery::parse(
            &pairs(&[
                ("retries_gte", "2"),
                ("created_after", "2024-01-01"),
                ("created_at_lte", "2024-02-01T00:00:00Z"),
            ]),
            &SPEC,
            None,
        )
        .unwrap();
        assert!(matches!(
            q.conditions[0],
            Condition::AtLeast {
                value: Value::Int(2),
                ..
            }
        ));
        assert!(matches!(q.conditions[1], Condition::AtLeast { .. }));
        assert!(matches!(q.conditions[2], Condition::AtMost { .. }));
    }

    #[test]
    fn ranges_on_text_and_unknown_filters_are_rejected() {
        let errors = ListQuery::parse(
            &pairs(&[("name_gte", "a"), ("colour", "red"), ("retries", "x")]),
            &SPEC,
            None,
        )
        .unwrap_err();
        let params: Vec<_> = errors.iter().map(|e| e.param.as_str()).collect();
        assert_eq!(params, ["name_gte", "colour", "retries"]);
    }

    #[test]
    fn extra_parameters_are_handed_to_the_handler_and_kept_in_links() {
        let q = ListQuery::parse(
            &pairs(&[("type", "tosca.nodes.Compute"), ("page", "2")]),
            &SPEC,
            None,
        )
        .unwrap();
        assert_eq!(q.extra("type"), Some("tosca.nodes.Compute"));
        assert_eq!(q.kept_params, pairs(&[("type", "tosca.nodes.Compute")]));
    }

    #[test]
    fn free_text_keeps_commas() {
        let q = ListQuery::parse(&pairs(&[("name", "a,b")]), &SPEC, None).unwrap();
        assert_eq!(q.values_of("name"), [&Value::Text("a,b".into())]);
    }
}
