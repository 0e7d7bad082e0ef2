//! Change events: what the change feed says about profiles (docs/design.md §3.6).

use super::keys::{ProfileSlot, RecordId};
use super::profiles::ProfileId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new profile.
    Created,
    /// A profile's members or attributes changed; `related` holds its previous
    /// id when the id changed.
    Updated,
    /// Profiles `related` became the profile `profile_id`.
    Merged,
    /// Profile `profile_id` became the profiles `related`.
    Split,
    /// The profile's last record was retracted.
    Deleted,
    /// Entity resolution found records of this profile and of `related` that
    /// may be the same entity (between the two thresholds): reported, not linked.
    PossibleMatch,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Merged => "merged",
            ChangeKind::Split => "split",
            ChangeKind::Deleted => "deleted",
            ChangeKind::PossibleMatch => "possible_match",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    pub kind: ChangeKind,
    pub profile_id: ProfileId,
    pub related: Vec<ProfileId>,
    /// The record whose new version caused the change.
    pub cause: RecordId,
    /// For a possible match: the probability that the two records match.
    pub probability: Option<f64>,
    /// Where `profile_id` lives right after the change, when it still
    /// exists (not for a split's or a deletion's old id): sinks read the
    /// profile there later, after checking the slot still holds that id.
    pub slot: Option<ProfileSlot>,
    /// Whether the profile's members (and so the holders of its
    /// identifiers) may have changed, rather than only the attributes or
    /// identifiers of the record that caused the change.
    pub members_changed: bool,
}

impl ChangeEvent {
    pub fn new(
        kind: ChangeKind,
        profile_id: ProfileId,
        related: Vec<ProfileId>,
        cause: RecordId,
    ) -> Self {
        ChangeEvent {
            kind,
            profile_id,
            related,
            cause,
            probability: None,
            slot: None,
            members_changed: false,
        }
    }

    /// The event of a profile that exists at `slot` after the change.
    pub(crate) fn at(mut self, slot: ProfileSlot, members_changed: bool) -> Self {
        self.slot = Some(slot);
        self.members_changed = members_changed;
        self
    }
}
