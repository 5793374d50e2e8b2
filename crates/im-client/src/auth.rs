//! The `Authorization` header IM expects: an "auth file" of credential lines, one
//! `key = value; key = value` line per service (IM itself, then each cloud), squeezed
//! into one header.
//!
//! IM splits the header on the two characters backslash + `n` (`AUTH_LINE_SEPARATOR`),
//! after turning the three characters `\\n` into a real newline (so a PEM key can sit in
//! a value). Within a line, `'...'` or `"..."` protect `;` and `=`; quotes are removed
//! and values are trimmed (`IM/auth.py`, `Authentication.read_auth_data`). The builder
//! quotes values only where that parser needs it, so ordinary headers read exactly as
//! in IM's documentation.
//!
//! Two character sequences cannot travel in a value at all, whatever the quoting:
//! backslash + `n` (it splits the line) and backslash + backslash + `n` (it becomes a
//! newline). Leading and trailing blanks of a value are lost too.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// Between two credential lines: backslash + `n`.
const LINE_SEPARATOR: &str = "\\n";
/// A newline inside a value: backslash + backslash + `n`.
const NEWLINE_IN_VALUE: &str = "\\\\n";
/// Keys shown by `Debug`; every other value is hidden.
const SHOWN_KEYS: [&str; 2] = ["id", "type"];
/// Keys whose values are not secret and are left in error messages.
const PUBLIC_KEYS: [&str; 3] = ["id", "type", "host"];
/// Values shorter than this are not blanked out of error messages: replacing every
/// "im" or "3" would garble the message and hide nothing.
const MIN_REDACTED_LEN: usize = 4;

/// The credentials of one IM call: the `InfrastructureManager` line and the cloud
/// lines. `Debug` shows only each line's `id` and `type`.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthHeader {
    /// Encoded lines (newlines in values already escaped), in order; the first is IM's.
    lines: Vec<String>,
}

impl AuthHeader {
    /// IM credentials from an OIDC access token (IM validates it against its issuers).
    pub fn with_token(access_token: &str) -> Self {
        Self::im_line(&[("token", access_token)])
    }

    /// IM credentials from a user name and password. Without a user database in IM any
    /// pair is accepted, and the pair is the owner of the infrastructures it creates.
    pub fn with_password(username: &str, password: &str) -> Self {
        Self::im_line(&[("username", username), ("password", password)])
    }

    /// Credentials from lines as written in an IM auth file, IM line included (or not:
    /// IM then answers 401 on create and 400 elsewhere, which tests need to provoke).
    pub fn from_lines(lines: &[&str]) -> Self {
        Self {
            lines: lines
                .iter()
                .map(|line| escape_newlines(line.trim()))
                .collect(),
        }
    }

    fn im_line(credentials: &[(&str, &str)]) -> Self {
        let mut fields = vec![("id", "im"), ("type", "InfrastructureManager")];
        fields.extend_from_slice(credentials);
        Self {
            lines: vec![encode_line(&fields)],
        }
    }

    /// Appends a cloud line as written, e.g. `id = dummy; type = Dummy`. Newlines in it
    /// are escaped; quoting is the caller's business (see [`AuthHeader::cloud_fields`]).
    pub fn cloud(mut self, line: &str) -> Self {
        self.lines.push(escape_newlines(line.trim()));
        self
    }

    /// Appends a cloud line from key/value pairs, quoting values that contain `;`, `=`,
    /// quotes or a trailing backslash, so tokens and passwords arrive intact.
    pub fn cloud_fields(mut self, fields: &[(&str, &str)]) -> Self {
        self.lines.push(encode_line(fields));
        self
    }

    /// The header value: the lines joined with backslash + `n`.
    pub fn to_header_value(&self) -> String {
        self.lines.join(LINE_SEPARATOR)
    }

    /// `text` with every secret of this header replaced by `<redacted>`, for error
    /// messages that might echo what was sent.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for line in parse_auth_header(&self.to_header_value()) {
            for (key, value) in line {
                if !PUBLIC_KEYS.contains(&key.as_str()) && value.len() >= MIN_REDACTED_LEN {
                    out = out.replace(&value, "<redacted>");
                }
            }
        }
        out
    }
}

impl fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.lines.iter().map(|line| {
            line_fields(line)
                .into_iter()
                .map(|(key, value)| {
                    if SHOWN_KEYS.contains(&key.as_str()) {
                        format!("{key} = {value}")
                    } else {
                        format!("{key} = <redacted>")
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        });
        f.debug_tuple("AuthHeader")
            .field(&shown.collect::<Vec<_>>())
            .finish()
    }
}

fn encode_line(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(key, value)| format!("{key} = {}", encode_value(value)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn escape_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', NEWLINE_IN_VALUE)
}

fn encode_value(value: &str) -> String {
    // IM drops a `key =` with nothing after it: blank values need quotes to exist.
    let blank = value.trim().is_empty();
    let value = escape_newlines(value);
    let needs_quotes = blank || value.ends_with('\\') || value.contains([';', '=', '\'', '"']);
    if !needs_quotes {
        value
    } else if !value.contains('\'') {
        format!("'{value}'")
    } else if !value.contains('"') {
        format!("\"{value}\"")
    } else {
        // Both quote kinds: IM's parser concatenates quoted pieces, so single quotes go
        // inside double quotes and everything else inside single quotes.
        value
            .split('\'')
            .map(|piece| format!("'{piece}'"))
            .collect::<Vec<_>>()
            .join("\"'\"")
    }
}

/// Reads an `Authorization` header value the way IM 2.0 does
/// (`IM/rest/routers/__init__.py` then `Authentication.read_auth_data`): one map per
/// credential line. A header that is a one-line JSON array of objects is read as such.
/// The fake IM uses this, and tests use it to check the builder against IM's rules.
pub fn parse_auth_header(value: &str) -> Vec<BTreeMap<String, String>> {
    let data = value.replace(NEWLINE_IN_VALUE, "\n");
    let lines: Vec<&str> = data.split(LINE_SEPARATOR).collect();
    if let [only] = lines.as_slice() {
        if let Ok(objects) = serde_json::from_str::<Vec<Map<String, Value>>>(only) {
            return objects.into_iter().map(json_line).collect();
        }
    }
    lines
        .into_iter()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line_fields(line).into_iter().collect())
        .collect()
}

fn json_line(object: Map<String, Value>) -> BTreeMap<String, String> {
    object
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(text) => (key, text),
            other => (key, other.to_string()),
        })
        .collect()
}

/// The `key = value` pairs of one line, in order; like IM, stops at the first token
/// that is not a single `key = value`.
fn line_fields(line: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for token in split_quoted(line, ';', true) {
        let Ok([key, value]) = <[String; 2]>::try_from(split_quoted(&token, '=', false)) else {
            break;
        };
        fields.push((
            key.trim().to_owned(),
            value.trim().replace(LINE_SEPARATOR, "\n"),
        ));
    }
    fields
}

/// IM's `Authentication.split_line`: split on `separator` outside quotes; quotes are
/// kept only when asked; an empty last token counts only if the line had quotes.
fn split_quoted(line: &str, separator: char, keep_quotes: bool) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut in_single, mut in_double, mut has_quotes) = (false, false, false);
    for c in line.chars() {
        if c == '"' && !in_single {
            has_quotes = true;
            in_double = !in_double;
            if keep_quotes {
                token.push(c);
            }
        } else if c == '\'' && !in_double {
            has_quotes = true;
            in_single = !in_single;
            if keep_quotes {
                token.push(c);
            }
        } else if c == separator && !in_single && !in_double {
            tokens.push(std::mem::take(&mut token));
        } else {
            token.push(c);
        }
    }
    if !token.trim().is_empty() || has_quotes {
        tokens.push(token);
    }
    tokens
}
