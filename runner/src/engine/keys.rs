//! Compact handles for what the engine stores many times: sources, attribute
//! names and relationship types are interned once; records, identifiers and
//! profiles are dense indexes into slabs.

use ahash::AHashMap;

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $inner);
        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

handle!(
    /// A record slot: a `(source, id)` key with its current version, or a
    /// record derived from a relationship of another record.
    RecordId(u32)
);
handle!(
    /// A distinct `(kind, type, normalized value)` identifier.
    IdentId(u32)
);
handle!(
    /// A profile slot.
    ProfileSlot(u32)
);
handle!(
    /// An interned name (source, attribute or relationship type).
    NameId(u32)
);

/// Interns short strings that repeat across records.
#[derive(Debug, Default)]
pub struct Names {
    names: Vec<Box<str>>,
    by_name: AHashMap<Box<str>, NameId>,
}

impl Names {
    pub fn intern(&mut self, name: &str) -> NameId {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        let id = NameId(self.names.len() as u32);
        self.names.push(name.into());
        self.by_name.insert(name.into(), id);
        id
    }

    /// The id of a name already interned.
    pub fn find(&self, name: &str) -> Option<NameId> {
        self.by_name.get(name).copied()
    }

    pub fn name(&self, id: NameId) -> &str {
        &self.names[id.index()]
    }
}
