//! Tables of the inventory that a concern reads and checks itself (`[motd]`), so that a
//! new concern brings its own section without a change to the inventory's types.
//!
//! While the inventory is validated, each registered concern with a section is handed
//! the inventory text through a [`SectionCheck`]: it parses its table (with spans),
//! reports problems at their line and column like every other check, and returns its
//! validated value, which the rest of closetctl reads back with [`Sections::get`].

use std::any::Any;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

/// A concern's validated section.
pub type Section = Arc<dyn Any + Send + Sync>;

/// The concerns' own sections of one inventory, by table name.
#[derive(Clone, Default)]
pub struct Sections(BTreeMap<&'static str, Section>);

impl Sections {
    /// The section `name` as its concern stored it; `None` when the inventory has no
    /// such table (or it is of another type).
    pub fn get<T: Any>(&self, name: &str) -> Option<&T> {
        self.0.get(name)?.downcast_ref()
    }

    pub(super) fn insert(&mut self, name: &'static str, section: Section) {
        self.0.insert(name, section);
    }
}

impl std::fmt::Debug for Sections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// What a concern checking its section sees: the inventory's text, and a place to
/// report problems by byte span.
pub struct SectionCheck<'a> {
    pub(super) source: &'a str,
    pub(super) found: Vec<(Range<usize>, String)>,
}

impl<'a> SectionCheck<'a> {
    /// The whole inventory text (parse your table out of it with `toml` and spans).
    pub fn source(&self) -> &'a str {
        self.source
    }

    /// Report a problem at `span` of the text.
    pub fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.found.push((span, message.into()));
    }

    /// Report a `toml` error (a wrong type in the section) at its place.
    pub fn toml_error(&mut self, e: &toml::de::Error) {
        self.at(e.span().unwrap_or(0..0), e.message().trim().to_string());
    }
}
