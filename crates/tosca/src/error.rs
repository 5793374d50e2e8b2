//! Errors of template parsing, located by line and column so that a user can find
//! the problem in their file.

/// What kind of problem a template has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not YAML.
    Yaml,
    /// YAML, but not a valid TOSCA template.
    Tosca,
    /// An import that was not provided (the caller fetches imports).
    MissingImport,
}

/// A problem in a template; `line` and `column` are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    /// Line of the problem, when known.
    pub line: Option<usize>,
    /// Column of the problem, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What kind of problem.
    pub kind: ErrorKind,
}

impl Error {
    /// A TOSCA problem at a position.
    pub fn at(pos: Pos, message: impl Into<String>) -> Self {
        Self {
            line: Some(pos.line),
            column: Some(pos.column),
            message: message.into(),
            kind: ErrorKind::Tosca,
        }
    }

    /// An import that must be fetched first.
    pub fn missing_import(pos: Pos, url: &str) -> Self {
        Self {
            kind: ErrorKind::MissingImport,
            ..Self::at(pos, format!("import '{url}' was not provided"))
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            (Some(l), None) => write!(f, "line {l}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// A position in the source (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line.
    pub line: usize,
    /// Column.
    pub column: usize,
}
