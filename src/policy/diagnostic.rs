//! What `tame check`, the loader and `/policy/validate` report: an error or
//! warning with the file, line, column and rule it concerns.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding, printed as `file:line:col rule "name": message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    #[serde(skip)]
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The rule it concerns, if any.
    pub rule: Option<String>,
    pub message: String,
    #[serde(skip)]
    pub severity: Severity,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)?;
        if let Some(rule) = &self.rule {
            write!(f, " rule \"{rule}\"")?;
        }
        let kind = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        write!(f, ": {kind}{}", self.message)
    }
}

/// A policy that was refused, with every error found in it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct LoadError {
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, e) in self.errors.iter().enumerate() {
            if k > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
