//! A plain text table for the check report, readable without colour.

use crate::check::Severity;
use crate::plan::render::Style;
use std::fmt::Write;

pub(super) fn paint(style: Style, severity: Severity, s: &str) -> String {
    match severity {
        Severity::Ok | Severity::Info => style.green(s),
        Severity::Warning => style.yellow(s),
        Severity::Error => style.red(s),
    }
}

/// A plain text table: columns padded to their widest cell, numbers right-aligned, the
/// last column (the verdict) coloured by the row's severity after padding.
pub(super) struct Table {
    header: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<(Vec<String>, Severity)>,
}

impl Table {
    pub(super) fn new(columns: &[(&'static str, bool)]) -> Table {
        Table {
            header: columns.iter().map(|c| c.0).collect(),
            right: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    pub(super) fn row(&mut self, cells: Vec<String>, severity: Severity) {
        self.rows.push((cells, severity));
    }

    pub(super) fn render(&self, style: Style) -> String {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for (cells, _) in &self.rows {
            for (w, c) in widths.iter_mut().zip(cells) {
                *w = (*w).max(c.chars().count());
            }
        }
        let pad = |i: usize, s: &str| {
            let fill = " ".repeat(widths[i].saturating_sub(s.chars().count()));
            if self.right[i] {
                format!("{fill}{s}")
            } else if i + 1 == n {
                s.to_string()
            } else {
                format!("{s}{fill}")
            }
        };
        let mut out = String::new();
        let header: Vec<String> = self
            .header
            .iter()
            .enumerate()
            .map(|(i, h)| pad(i, h))
            .collect();
        let _ = writeln!(out, "{}", header.join("  ").trim_end());
        for (cells, severity) in &self.rows {
            let line: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i + 1 == n {
                        paint(style, *severity, &pad(i, c))
                    } else {
                        pad(i, c)
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", line.join("  ").trim_end());
        }
        out
    }
}
