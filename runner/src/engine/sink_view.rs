//! What sinks read from the engine between batches: a profile by the slot a
//! change event named (checked against its id, since slots are reused), the
//! profiles that refer to a profile through relationships, and the profiles
//! holding an identifier. Pure reads; the engine thread calls them.

use super::keys::{IdentId, ProfileSlot};
use super::profiles::ProfileId;
use super::view::ProfileView;
use super::Engine;
use crate::config::TypeId;
use crate::observation::Kind;

impl Engine {
    /// The profile at `slot`, when it still is the profile `id`.
    pub fn profile_at(&self, slot: ProfileSlot, id: ProfileId) -> Option<ProfileView> {
        self.profiles
            .try_get(slot)
            .filter(|p| p.id == id)
            .map(|_| self.view(slot))
    }

    /// Whether the profile at `slot` still is the profile `id` (cheap: no view).
    pub fn profile_exists(&self, slot: ProfileSlot, id: ProfileId) -> bool {
        self.profiles.try_get(slot).is_some_and(|p| p.id == id)
    }

    /// The profiles whose relationships name the profile at `slot` (the
    /// owners of its derived members), with their slots.
    pub fn referrers(&self, slot: ProfileSlot) -> Vec<(ProfileSlot, ProfileId)> {
        let Some(profile) = self.profiles.try_get(slot) else {
            return Vec::new();
        };
        let mut out: Vec<(ProfileSlot, ProfileId)> = Vec::new();
        for &m in &profile.members {
            let Some(derived) = self.records.get(m).derived else {
                continue;
            };
            if let Some(p) = self.records.get(derived.parent).profile {
                let id = self.profiles.get(p).id;
                if !out.iter().any(|(_, i)| *i == id) {
                    out.push((p, id));
                }
            }
        }
        out
    }

    /// The type and normalized value of an interned identifier.
    pub fn identifier_key(&self, ident: IdentId) -> (TypeId, &str) {
        (self.idents.get(ident).type_id, self.idents.value(ident))
    }

    /// The name of an identifier type.
    pub fn identifier_type_name(&self, t: TypeId) -> &str {
        self.pipeline.identifiers.name(t)
    }

    /// Every profile (of any kind) holding the identifier `type_id:value`,
    /// sorted by id and without repeats.
    pub fn holders_of(&self, type_id: TypeId, value: &str) -> Vec<ProfileId> {
        let mut ids: Vec<ProfileId> = Vec::new();
        for kind in Kind::ALL {
            let Some(i) = self.idents.find(kind, type_id, value) else {
                continue;
            };
            for h in &self.idents.get(i).holders {
                if let Some(p) = self.records.get(*h).profile {
                    ids.push(self.profiles.get(p).id);
                }
            }
        }
        ids.sort();
        ids.dedup();
        ids
    }
}
