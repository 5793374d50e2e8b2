//! Turns a [`ListQuery`] into SQL: the `WHERE` conditions with their bound values, the
//! `ORDER BY` with a tie-breaker (so consecutive pages never overlap), and the page
//! window. Column names come only from the static field specs, never from the client.

use sqlx::any::AnyArguments;
use sqlx::query::{QueryAs, QueryScalar};
use sqlx::Any;

use crate::domain::list::{Condition, FieldKind, ListQuery, ListSpec, Value};

/// The `WHERE` part of a list query: conditions joined with `AND`, each preceded by
/// ` AND `, so it can follow a base condition such as `WHERE 1 = 1`.
pub struct Filter {
    /// SQL text with `?` placeholders.
    pub sql: String,
    /// Values for the placeholders, in order.
    pub binds: Vec<Value>,
}

/// Escapes `LIKE` wildcards with `!` (portable: no backslash handling differences).
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for ch in text.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '!') {
            out.push('!');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Builds the conditions of a list query.
pub fn filter(query: &ListQuery) -> Filter {
    let mut sql = String::new();
    let mut binds = Vec::new();
    for condition in &query.conditions {
        match condition {
            Condition::AnyOf { field, values } => {
                if matches!(field.kind, FieldKind::Text) {
                    let ors: Vec<String> = values
                        .iter()
                        .map(|_| format!("LOWER({}) LIKE ? ESCAPE '!'", field.sql))
                        .collect();
                    sql.push_str(&format!(" AND ({})", ors.join(" OR ")));
                    for value in values {
                        if let Value::Text(text) = value {
                            binds.push(Value::Text(like_pattern(text)));
                        }
                    }
                } else if field.sql.contains("{}") {
                    let list = format!("({})", placeholders(values.len()));
                    sql.push_str(&format!(" AND {}", field.sql.replace("{}", &list)));
                    binds.extend(values.iter().cloned());
                } else {
                    sql.push_str(&format!(
                        " AND {} IN ({})",
                        field.sql,
                        placeholders(values.len())
                    ));
                    binds.extend(values.iter().cloned());
                }
            }
            Condition::AtLeast { field, value } => {
                sql.push_str(&format!(" AND {} >= ?", field.sql));
                binds.push(value.clone());
            }
            Condition::AtMost { field, value } => {
                sql.push_str(&format!(" AND {} <= ?", field.sql));
                binds.push(value.clone());
            }
            Condition::In { column, values } => {
                if values.is_empty() {
                    sql.push_str(" AND 1 = 0");
                } else {
                    sql.push_str(&format!(
                        " AND {column} IN ({})",
                        placeholders(values.len())
                    ));
                    binds.extend(values.iter().cloned());
                }
            }
        }
    }
    Filter { sql, binds }
}

/// `ORDER BY ... LIMIT ... OFFSET ...` for the query's sort and page.
pub fn order_and_page(query: &ListQuery, spec: &ListSpec) -> String {
    let dir = if query.descending { "DESC" } else { "ASC" };
    format!(
        " ORDER BY {} {dir}, {} {dir} LIMIT {} OFFSET {}",
        query.sort.sql,
        spec.tie_breaker,
        query.size,
        query.offset()
    )
}

/// Binds filter values to a row query.
pub fn bind_rows<'q, O>(
    mut q: QueryAs<'q, Any, O, AnyArguments<'q>>,
    binds: &'q [Value],
) -> QueryAs<'q, Any, O, AnyArguments<'q>> {
    for value in binds {
        q = match value {
            Value::Text(text) => q.bind(text.as_str()),
            Value::Int(n) => q.bind(*n),
        };
    }
    q
}

/// Binds filter values to a scalar query (the count).
pub fn bind_scalar<'q, O>(
    mut q: QueryScalar<'q, Any, O, AnyArguments<'q>>,
    binds: &'q [Value],
) -> QueryScalar<'q, Any, O, AnyArguments<'q>> {
    for value in binds {
        q = match value {
            Value::Text(text) => q.bind(text.as_str()),
            Value::Int(n) => q.bind(*n),
        };
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards_and_ignore_case() {
        assert_eq!(like_pattern("50%_Off!"), "%50!%!_off!!%");
    }
}
