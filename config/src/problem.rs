//! What went wrong in a configuration, said so that the person who edits
//! `telerad.toml` can fix it without reading Rust.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a configuration, tied to the key that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the problem is, as the TOML would spell it: `dicom.port`,
    /// `sites[1].ae_titles[0]`. Empty when the file could not be read as TOML
    /// at all, before any key was known.
    pub path: String,
    /// What is wrong and what is expected instead.
    pub message: String,
    /// The line of the file where the key is written (or its section, when
    /// the key was left to its default); `None` for a configuration changed
    /// in code, or a problem no line stands for.
    pub line: Option<usize>,
}

impl Problem {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
            line: None,
        }
    }

    pub(crate) fn at_line(mut self, line: Option<usize>) -> Problem {
        self.line = line;
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)?;
        } else {
            write!(f, "{}: {}", self.path, self.message)?;
        }
        match self.line {
            Some(line) => write!(f, " (line {line})"),
            None => Ok(()),
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8). The
    /// reason is part of the message rather than a source, so that it is
    /// printed once however the error is shown.
    #[error("cannot read configuration file {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The text is not TOML, so no key can be read: the one problem is the
    /// position of the syntax error.
    #[error("configuration file does not have the expected form:{}", ProblemList(.0))]
    Parse(Vec<Problem>),
    /// The configuration has unknown or missing keys, values of the wrong
    /// type, or values that telerad cannot run with. Every problem found is
    /// listed, not only the first, so that one round of editing fixes them
    /// all.
    #[error("configuration is not valid:{}", ProblemList(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The problems found, each with its path; empty for [`ConfigError::Io`].
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Io { .. } => &[],
            ConfigError::Parse(problems) | ConfigError::Invalid(problems) => problems,
        }
    }
}

/// One problem a line, so that a long list stays readable in a terminal.
struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_display_puts_the_path_first() {
        let problem = Problem::new("sites[1].time_zone", "unknown time zone \"Europe/Pariss\"");
        assert_eq!(
            problem.to_string(),
            "sites[1].time_zone: unknown time zone \"Europe/Pariss\""
        );
    }

    #[test]
    fn problem_without_path_displays_only_the_message() {
        let problem = Problem::new("", "TOML syntax error at line 3");
        assert_eq!(problem.to_string(), "TOML syntax error at line 3");
    }

    #[test]
    fn error_display_lists_every_problem_on_its_own_line() {
        let error = ConfigError::Invalid(vec![
            Problem::new("dicom.port", "must not be 0"),
            Problem::new("sites", "no site"),
        ]);
        assert_eq!(
            error.to_string(),
            "configuration is not valid:\n  - dicom.port: must not be 0\n  - sites: no site"
        );
        assert_eq!(error.problems().len(), 2);
    }

    #[test]
    fn problem_display_ends_with_its_line() {
        let problem = Problem::new("dicom.port", "must not be 0").at_line(Some(7));
        assert_eq!(problem.to_string(), "dicom.port: must not be 0 (line 7)");
    }

    #[test]
    fn io_error_says_why_once() {
        let error = ConfigError::Io {
            path: PathBuf::from("/etc/telerad.toml"),
            error: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(error.problems().is_empty());
        assert_eq!(
            error.to_string(),
            "cannot read configuration file /etc/telerad.toml: permission denied"
        );
        // Not also a source: `{:#}` chains would print the reason twice.
        assert!(std::error::Error::source(&error).is_none());
    }
}
