//! The population: who each person is and which identifiers they own. A person
//! is a pure function of the seed, their number and their household, so any
//! person can be recomputed on demand.

use super::dice::{self, Dice};
use super::ids::{self, IdType, Salts};
use rand_chacha::ChaCha8Rng;

/// Given names, with the nickname some records use instead.
const GIVEN_NAMES: [(&str, Option<&str>); 40] = [
    ("Ann", Some("Annie")),
    ("Robert", Some("Bob")),
    ("Maria", None),
    ("James", Some("Jim")),
    ("Linda", None),
    ("Michael", Some("Mike")),
    ("Elizabeth", Some("Liz")),
    ("William", Some("Bill")),
    ("Priya", None),
    ("Wei", None),
    ("Fatima", None),
    ("Jose", Some("Pepe")),
    ("Olga", None),
    ("Kenji", None),
    ("Amara", None),
    ("Thomas", Some("Tom")),
    ("Susan", Some("Sue")),
    ("Daniel", Some("Dan")),
    ("Katherine", Some("Kate")),
    ("Ahmed", None),
    ("Chloe", None),
    ("Lucas", None),
    ("Ingrid", None),
    ("Mateo", None),
    ("Yuki", None),
    ("Nadia", None),
    ("Samuel", Some("Sam")),
    ("Grace", None),
    ("Oliver", Some("Ollie")),
    ("Sofia", None),
    ("Arjun", None),
    ("Hannah", None),
    ("Ivan", Some("Vanya")),
    ("Leila", None),
    ("Patrick", Some("Pat")),
    ("Rosa", None),
    ("Victor", Some("Vic")),
    ("Zoe", None),
    ("Benjamin", Some("Ben")),
    ("Emma", None),
];

const SURNAMES: [&str; 48] = [
    "Lee", "Smith", "Garcia", "Chen", "Johnson", "Patel", "Nguyen", "Kim", "Brown", "Martinez",
    "Davis", "Lopez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin",
    "White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "Allen", "King", "Wright",
    "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts",
    "Carter", "Phillips", "Evans", "Turner", "Torres", "Parker", "Collins", "Edwards", "Stewart",
    "Sanchez",
];

pub(super) const CITIES: [&str; 24] = [
    "Seattle",
    "Portland",
    "San Francisco",
    "Los Angeles",
    "Denver",
    "Austin",
    "Dallas",
    "Chicago",
    "Detroit",
    "Atlanta",
    "Miami",
    "Boston",
    "New York",
    "Philadelphia",
    "Pittsburgh",
    "Nashville",
    "Phoenix",
    "Minneapolis",
    "Charlotte",
    "Raleigh",
    "Honolulu",
    "Anchorage",
    "Salt Lake City",
    "New Orleans",
];

pub(super) const PLANS: [&str; 4] = ["free", "basic", "pro", "enterprise"];

/// The workload's time span starts here: 2026-01-01T00:00:00Z.
pub(super) const EPOCH: i64 = 1_767_225_600;
pub(super) const DAY: i64 = 86_400;
/// First versions fall within this many seconds after [`EPOCH`].
pub(super) const SPAN: i64 = 60 * DAY;

/// A household the person belongs to: the members share a tablet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Household {
    pub first_member: u64,
    pub tablet: String,
}

/// One identifier a person owns, canonical.
#[derive(Debug, Clone)]
pub(super) struct Owned {
    pub ty: IdType,
    pub value: String,
}

#[derive(Debug)]
pub(super) struct Person {
    pub index: u64,
    pub given: &'static str,
    pub nickname: Option<&'static str>,
    pub surname: &'static str,
    pub home_city: &'static str,
    /// The city moved to, and when.
    pub moved: Option<(&'static str, i64)>,
    pub plan: &'static str,
    /// A plan change (upgrade or downgrade), and when.
    pub plan_change: Option<(&'static str, i64)>,
    /// Emails first (the first email at index 0), then phones, the account,
    /// devices and cookies.
    pub owned: Vec<Owned>,
    pub household: Option<Household>,
}

impl Person {
    /// Draws person `index` from its stream; the generator is returned so that
    /// the person's records continue the same stream.
    pub(super) fn draw(
        seed: u64,
        salts: &Salts,
        index: u64,
        household: Option<Household>,
    ) -> (Person, ChaCha8Rng) {
        let mut rng = dice::stream(seed, index);
        let (given, nickname) = rng.pick(&GIVEN_NAMES);
        let surname = rng.pick(&SURNAMES);
        let home_city = rng.pick(&CITIES);
        // Draw every value even when unused, so that each draw below sits at
        // the same place in the stream whatever came before.
        let moved_city = rng.pick(&CITIES);
        let moves = rng.chance(0.30);
        let move_at = EPOCH + rng.below((SPAN + 30 * DAY) as u64) as i64;
        let plan = rng.pick(&PLANS);
        let new_plan = rng.pick(&PLANS);
        let plan_changes = rng.chance(0.25);
        let plan_at = EPOCH + rng.below((SPAN + 30 * DAY) as u64) as i64;
        let emails = if rng.chance(0.30) { 2 } else { 1 };
        let phones = rng.weighted(&[(0u64, 25), (1, 55), (2, 20)]);
        let has_account = rng.chance(0.85) || household.is_some();
        let devices = rng.weighted(&[(0u64, 30), (1, 50), (2, 20)]);
        let cookies = if rng.chance(0.40) { 2 } else { 1 };
        let domain_rolls = [rng.below(1 << 32), rng.below(1 << 32)];

        let mut owned = Vec::with_capacity(8);
        for i in 0..emails {
            owned.push(Owned {
                ty: IdType::Email,
                value: ids::email(
                    given,
                    surname,
                    salts.email_number(index),
                    i,
                    domain_rolls[i as usize],
                ),
            });
        }
        for i in 0..phones {
            owned.push(Owned {
                ty: IdType::Phone,
                value: salts.phone(index, i),
            });
        }
        if has_account {
            owned.push(Owned {
                ty: IdType::AccountId,
                value: salts.account(index),
            });
        }
        for i in 0..devices {
            owned.push(Owned {
                ty: IdType::DeviceId,
                value: salts.own_device(index, i),
            });
        }
        for i in 0..cookies {
            owned.push(Owned {
                ty: IdType::Cookie,
                value: salts.cookie(index, i),
            });
        }
        let person = Person {
            index,
            given,
            nickname,
            surname,
            home_city,
            moved: (moves && moved_city != home_city).then_some((moved_city, move_at)),
            plan,
            plan_change: (plan_changes && new_plan != plan).then_some((new_plan, plan_at)),
            owned,
            household,
        };
        (person, rng)
    }

    /// The person's first email, which their first record always holds.
    pub(super) fn first_email(&self) -> &str {
        &self.owned[0].value
    }

    pub(super) fn account(&self) -> Option<usize> {
        self.owned.iter().position(|o| o.ty == IdType::AccountId)
    }

    pub(super) fn city_at(&self, ts: i64) -> &'static str {
        match self.moved {
            Some((city, at)) if ts >= at => city,
            _ => self.home_city,
        }
    }

    pub(super) fn plan_at(&self, ts: i64) -> &'static str {
        match self.plan_change {
            Some((plan, at)) if ts >= at => plan,
            _ => self.plan,
        }
    }
}

/// Assigns consecutive people to households as the population is walked, from
/// the structure stream (households cross people, so no person's stream can
/// decide them).
pub(super) struct Households {
    people: u64,
    current: Option<Household>,
    remaining: u64,
}

impl Households {
    pub(super) fn new(people: u64) -> Households {
        Households {
            people,
            current: None,
            remaining: 0,
        }
    }

    /// The household of the next person, who is `index`. People must be asked
    /// about in order.
    pub(super) fn next(
        &mut self,
        index: u64,
        structure: &mut ChaCha8Rng,
        salts: &Salts,
    ) -> Option<Household> {
        if self.remaining == 0 {
            self.current = None;
            if structure.chance(0.03) {
                let size = structure.between(2, 5).min(self.people - index);
                if size >= 2 {
                    self.current = Some(Household {
                        first_member: index,
                        tablet: salts.tablet(index),
                    });
                    self.remaining = size;
                }
            }
        }
        if self.remaining > 0 {
            self.remaining -= 1;
        }
        self.current.clone()
    }
}
