//! Turning people (and a few organizations) into records, versions and
//! retractions, and those into observation lines and truth lines. The rates
//! are the ones documented on the module root.

use super::dice::{self, Dice};
use super::emit::{json_str, json_ts, json_u64, TruthWriter};
use super::ids::{IdType, Junk, Salts};
use super::people::{Households, Owned, Person, CITIES, DAY, EPOCH, PLANS, SPAN};
use super::shuffle::Lines;
use super::variants::spell;
use super::{GenerateError, GenerateOptions};
use rand::RngCore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Crm,
    Web,
    App,
    Billing,
    Support,
}

impl Source {
    const WEIGHTS: [(Source, u32); 5] = [
        (Source::Crm, 25),
        (Source::Web, 25),
        (Source::App, 20),
        (Source::Billing, 15),
        (Source::Support, 15),
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Source::Crm => "crm",
            Source::Web => "web",
            Source::App => "app",
            Source::Billing => "billing",
            Source::Support => "support",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Source::Crm => "c-",
            Source::Web => "w-",
            Source::App => "a-",
            Source::Billing => "b-",
            Source::Support => "s-",
        }
    }

    /// The identifier types this kind of system knows about a person. Every
    /// source knows emails, which is what keeps a person's records connected.
    fn carries(self, ty: IdType) -> bool {
        use IdType::*;
        match self {
            Source::Crm => matches!(ty, Email | Phone | AccountId),
            Source::Web => matches!(ty, Cookie | Email | AccountId),
            Source::App => matches!(ty, DeviceId | AccountId | Email),
            Source::Billing => matches!(ty, AccountId | Email),
            Source::Support => matches!(ty, Phone | Email),
        }
    }
}

/// Where an identifier occurrence takes its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// The owner's identifier at this index of `Person::owned`.
    Own(usize),
    /// The owner's household tablet.
    Tablet,
    Junk(Junk),
    /// A value the owner does not hold (another person's, an organization's).
    Other(IdType, String),
}

#[derive(Debug, Clone)]
enum Attr {
    Text(&'static str),
    Number(u64),
    Null,
}

#[derive(Debug, Clone)]
struct Relationship {
    rel_type: &'static str,
    kind: &'static str,
    ty: IdType,
    slot: Slot,
}

#[derive(Debug)]
struct Version {
    ts: i64,
    attributes: Vec<(&'static str, Attr)>,
}

#[derive(Debug, Clone, Copy)]
enum Entity {
    Person(u64),
    Organization(u64),
    /// A record no entity owns in the end (it is retracted).
    Nobody,
}

#[derive(Debug)]
struct Record {
    source: Source,
    entity: Entity,
    /// Identifiers of every version (but see `typo`).
    ids: Vec<Slot>,
    /// A value that the first version holds in place of the record's first
    /// email (or beside its identifiers, when it has no email).
    typo: Option<Slot>,
    relationships: Vec<Relationship>,
    /// By increasing ts.
    versions: Vec<Version>,
    retract_at: Option<i64>,
}

impl Record {
    fn last_ts(&self) -> i64 {
        self.versions.last().map_or(EPOCH, |v| v.ts)
    }

    fn add(&mut self, slot: Slot) {
        if !self.ids.contains(&slot) {
            self.ids.push(slot);
        }
    }
}

/// Timestamps of `count` versions, the first within the span, each later one
/// 1 h to 15 days after the previous one: never equal, so the tie rules of
/// docs/design.md §2 never decide which version is live.
fn version_times<R: RngCore>(rng: &mut R, count: u64) -> Vec<i64> {
    let mut ts = EPOCH + rng.below(SPAN as u64) as i64;
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        out.push(ts);
        ts += 3600 + rng.below((15 * DAY) as u64) as i64;
    }
    out
}

/// A retraction time strictly after `ts`.
fn retraction_after<R: RngCore>(rng: &mut R, ts: i64) -> i64 {
    ts + 3600 + rng.below((10 * DAY) as u64) as i64
}

const APP_VERSIONS: [&str; 6] = ["3.0.0", "3.1.0", "3.1.2", "3.2.0", "3.3.1", "3.4.0"];
const CHANNELS: [&str; 5] = ["newsletter", "search", "social", "direct", "partner"];

/// A person's attributes as a source knows them at `ts`: cities and plans
/// follow the person's changes, so the most recent value is the right one.
fn person_attributes<R: RngCore>(
    p: &Person,
    source: Source,
    ts: i64,
    rng: &mut R,
) -> Vec<(&'static str, Attr)> {
    match source {
        Source::Crm => vec![
            ("given_name", Attr::Text(p.given)),
            ("surname", Attr::Text(p.surname)),
            ("city", Attr::Text(p.city_at(ts))),
        ],
        Source::Web => vec![("channel", Attr::Text(rng.pick(&CHANNELS)))],
        Source::App => {
            let release = (((ts - EPOCH) / (20 * DAY)) as usize).min(APP_VERSIONS.len() - 1);
            vec![
                ("app_version", Attr::Text(APP_VERSIONS[release])),
                ("os", Attr::Text(rng.pick(&["ios", "android"]))),
            ]
        }
        Source::Billing => vec![
            ("plan", Attr::Text(p.plan_at(ts))),
            ("city", Attr::Text(p.city_at(ts))),
            ("lifetime_value", Attr::Number(rng.below(500_000))),
        ],
        Source::Support => {
            let given = match p.nickname {
                Some(nick) if rng.chance(0.5) => nick,
                _ => p.given,
            };
            let city = if rng.chance(0.2) {
                Attr::Null
            } else {
                Attr::Text(p.city_at(ts))
            };
            vec![
                ("given_name", Attr::Text(given)),
                ("surname", Attr::Text(p.surname)),
                ("city", city),
            ]
        }
    }
}

/// Everything that is fixed for one run.
struct Context<'a> {
    seed: u64,
    people: u64,
    organizations: u64,
    salts: &'a Salts,
}

impl Context<'_> {
    /// A person other than `not` (there must be at least two people).
    fn other_person<R: RngCore>(&self, rng: &mut R, not: u64) -> u64 {
        let other = rng.below(self.people - 1);
        if other >= not {
            other + 1
        } else {
            other
        }
    }

    /// The first email of person `index`, which its first record always holds.
    fn first_email_of(&self, index: u64) -> String {
        // The household only decides whether an account is forced; emails do
        // not depend on it.
        let (person, _) = Person::draw(self.seed, self.salts, index, None);
        person.first_email().to_string()
    }
}

/// The records of one person, drawn from the person's stream.
fn plan_person<R: RngCore>(p: &Person, rng: &mut R, ctx: &Context<'_>) -> Vec<Record> {
    let record_count = rng.weighted(&[(2u64, 25), (3, 35), (4, 25), (5, 15)]);
    let organization = if ctx.organizations > 0 && rng.chance(0.10) {
        Some(rng.below(ctx.organizations))
    } else {
        None
    };
    let mut covered = vec![false; p.owned.len()];
    let mut records: Vec<Record> = Vec::with_capacity(record_count as usize + 2);
    for k in 0..record_count {
        let source = rng.weighted(&Source::WEIGHTS);
        let allowed: Vec<usize> = (0..p.owned.len())
            .filter(|&i| source.carries(p.owned[i].ty))
            .collect();
        let mut own: Vec<usize> = Vec::with_capacity(4);
        if k == 0 {
            own.push(0);
        } else {
            // The link to an earlier record: something this source carries if
            // possible (an email always qualifies), else anything covered.
            let linked: Vec<usize> = allowed.iter().copied().filter(|&i| covered[i]).collect();
            let link = if linked.is_empty() {
                let any: Vec<usize> = (0..covered.len()).filter(|&i| covered[i]).collect();
                rng.pick(&any)
            } else {
                rng.pick(&linked)
            };
            own.push(link);
        }
        for _ in 0..rng.below(3) {
            if !allowed.is_empty() {
                let i = rng.pick(&allowed);
                if !own.contains(&i) {
                    own.push(i);
                }
            }
        }
        for &i in &own {
            covered[i] = true;
        }

        let mut relationships = Vec::new();
        for &i in &own {
            let ty = p.owned[i].ty;
            let (rel_type, kind, rate) = match (source, ty) {
                (Source::App, IdType::DeviceId) => ("uses", "device", 0.7),
                (Source::Billing, IdType::AccountId) => ("owns", "account", 0.5),
                _ => continue,
            };
            if rng.chance(rate) {
                relationships.push(Relationship {
                    rel_type,
                    kind,
                    ty,
                    slot: Slot::Own(i),
                });
            }
        }
        if let (Source::Crm, Some(org)) = (source, organization) {
            relationships.push(Relationship {
                rel_type: "member_of",
                kind: "organization",
                ty: IdType::AccountId,
                slot: Slot::Other(IdType::AccountId, ctx.salts.org_account(org)),
            });
        }

        let version_count = rng.weighted(&[(1u64, 62), (2, 30), (3, 8)]);
        let versions = version_times(rng, version_count)
            .into_iter()
            .map(|ts| Version {
                ts,
                attributes: person_attributes(p, source, ts, rng),
            })
            .collect();
        let typo = (version_count >= 2 && ctx.people >= 2 && rng.chance(0.01)).then(|| {
            Slot::Other(
                IdType::Email,
                ctx.first_email_of(ctx.other_person(rng, p.index)),
            )
        });
        records.push(Record {
            source,
            entity: Entity::Person(p.index),
            ids: own.into_iter().map(Slot::Own).collect(),
            typo,
            relationships,
            versions,
            retract_at: None,
        });
    }

    // Deletion of the last record: no later record links through it, so the
    // person stays connected without it.
    if record_count >= 3 && rng.chance(0.04) {
        if let Some(last) = records.last_mut() {
            last.retract_at = Some(retraction_after(rng, last.last_ts()));
        }
    }
    let live: Vec<usize> = (0..records.len())
        .filter(|&r| records[r].retract_at.is_none())
        .collect();

    if let Some(account) = p.account() {
        if rng.chance(0.04) {
            let junk = rng.pick(&Junk::ALL);
            for _ in 0..rng.between(1, 2) {
                let r = rng.pick(&live);
                // Beside the owner's account, so that the junk value's records
                // show many accounts and generic detection can see it.
                records[r].add(Slot::Own(account));
                records[r].add(Slot::Junk(junk));
            }
        }
    }

    if let (Some(_), Some(account)) = (&p.household, p.account()) {
        let r = live
            .iter()
            .copied()
            .find(|&r| records[r].source == Source::App)
            .unwrap_or(live[0]);
        let tablet_use = Relationship {
            rel_type: "uses",
            kind: "device",
            ty: IdType::DeviceId,
            slot: Slot::Tablet,
        };
        records[r].add(Slot::Own(account));
        records[r].add(Slot::Tablet);
        records[r].relationships.push(tablet_use.clone());
        if rng.chance(0.5) {
            let versions = version_times(rng, 1)
                .into_iter()
                .map(|ts| Version {
                    ts,
                    attributes: person_attributes(p, Source::App, ts, rng),
                })
                .collect();
            records.push(Record {
                source: Source::App,
                entity: Entity::Person(p.index),
                ids: vec![Slot::Own(0), Slot::Tablet],
                typo: None,
                relationships: vec![tablet_use],
                versions,
                retract_at: None,
            });
        }
    }

    if ctx.people >= 2 && rng.chance(0.01) {
        records.push(bridge(p, &records, rng, ctx));
    }
    records
}

/// A wrong record joining this person to a random other one, retracted later.
fn bridge<R: RngCore>(p: &Person, records: &[Record], rng: &mut R, ctx: &Context<'_>) -> Record {
    // This person's side: a phone that a live record holds, else the first
    // email (on the first record, which is never retracted).
    let live_phone = records
        .iter()
        .filter(|r| r.retract_at.is_none())
        .flat_map(|r| &r.ids)
        .find(|s| matches!(s, Slot::Own(i) if p.owned[*i].ty == IdType::Phone));
    let mine = live_phone.cloned().unwrap_or(Slot::Own(0));
    let theirs = Slot::Other(
        IdType::Email,
        ctx.first_email_of(ctx.other_person(rng, p.index)),
    );
    let source = if rng.chance(0.5) {
        Source::Support
    } else {
        Source::Crm
    };
    let ts = version_times(rng, 1)[0];
    Record {
        source,
        entity: Entity::Nobody,
        ids: vec![mine, theirs],
        typo: None,
        relationships: Vec::new(),
        versions: vec![Version {
            ts,
            attributes: vec![
                ("given_name", Attr::Text(p.given)),
                ("surname", Attr::Text(rng.pick(&["Doe", "Roe"]))),
            ],
        }],
        retract_at: Some(retraction_after(rng, ts)),
    }
}

const ORG_WORDS: [&str; 12] = [
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Litware",
    "Proseware",
    "Adatum",
    "Wingtip",
    "Lucerne",
    "Margie",
    "Alpine",
    "Coho",
];
const ORG_SUFFIXES: [&str; 5] = ["Labs", "Holdings", "Traders", "Systems", "Group"];
const INDUSTRIES: [&str; 5] = ["retail", "software", "logistics", "finance", "health"];

/// An organization's two records (crm and billing), holding its account.
fn plan_organization<R: RngCore>(org: u64, rng: &mut R, ctx: &Context<'_>) -> Vec<Record> {
    let name = rng.pick(&ORG_WORDS);
    let suffix = rng.pick(&ORG_SUFFIXES);
    let industry = rng.pick(&INDUSTRIES);
    let account = Slot::Other(IdType::AccountId, ctx.salts.org_account(org));
    let mut records = Vec::with_capacity(2);
    for source in [Source::Crm, Source::Billing] {
        let count = rng.between(1, 2);
        let versions = version_times(rng, count)
            .into_iter()
            .map(|ts| Version {
                ts,
                attributes: match source {
                    Source::Billing => vec![("plan", Attr::Text(rng.pick(&PLANS)))],
                    _ => vec![
                        ("name", Attr::Text(name)),
                        ("name_suffix", Attr::Text(suffix)),
                        ("industry", Attr::Text(industry)),
                        ("city", Attr::Text(rng.pick(&CITIES))),
                    ],
                },
            })
            .collect();
        records.push(Record {
            source,
            entity: Entity::Organization(org),
            ids: vec![account.clone()],
            typo: None,
            relationships: Vec::new(),
            versions,
            retract_at: None,
        });
    }
    records
}

/// Appends observation lines and truth lines.
struct Writer<'a, 'w> {
    lines: &'a mut Lines,
    truth: Option<&'a mut TruthWriter<'w>>,
    next_number: [u64; 5],
    records: u64,
    spelling: String,
}

impl Writer<'_, '_> {
    fn write<R: RngCore>(
        &mut self,
        record: &Record,
        owned: &[Owned],
        tablet: Option<&str>,
        rng: &mut R,
    ) -> Result<(), GenerateError> {
        let number = self.next_number[record.source as usize];
        self.next_number[record.source as usize] += 1;
        self.records += 1;
        let (kind, entity_prefix, entity) = match record.entity {
            Entity::Person(n) => ("person", "person-", Some(n)),
            Entity::Organization(n) => ("organization", "org-", Some(n)),
            Entity::Nobody => ("person", "", None),
        };
        for (v, version) in record.versions.iter().enumerate() {
            self.head(record, number, version.ts);
            let buf = self.lines.buf();
            buf.extend_from_slice(b",\"kind\":\"");
            buf.extend_from_slice(kind.as_bytes());
            buf.extend_from_slice(b"\",\"identifiers\":[");
            let mut ids: Vec<&Slot> = record.ids.iter().collect();
            if let (0, Some(typo)) = (v, &record.typo) {
                let first_email = ids
                    .iter()
                    .position(|s| slot_type(s, owned) == IdType::Email);
                match first_email {
                    Some(at) => ids[at] = typo,
                    None => ids.push(typo),
                }
            }
            for (i, slot) in ids.into_iter().enumerate() {
                if i > 0 {
                    self.lines.buf().push(b',');
                }
                self.identifier(slot_type(slot, owned), slot, owned, tablet, rng);
            }
            let buf = self.lines.buf();
            buf.extend_from_slice(b"],\"attributes\":{");
            for (i, (name, value)) in version.attributes.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                json_str(buf, name);
                buf.push(b':');
                match value {
                    Attr::Text(s) => json_str(buf, s),
                    Attr::Number(n) => json_u64(buf, *n),
                    Attr::Null => buf.extend_from_slice(b"null"),
                }
            }
            buf.push(b'}');
            if !record.relationships.is_empty() {
                buf.extend_from_slice(b",\"relationships\":[");
                for (i, rel) in record.relationships.iter().enumerate() {
                    let buf = self.lines.buf();
                    if i > 0 {
                        buf.push(b',');
                    }
                    buf.extend_from_slice(b"{\"type\":");
                    json_str(buf, rel.rel_type);
                    buf.extend_from_slice(b",\"kind\":");
                    json_str(buf, rel.kind);
                    buf.extend_from_slice(b",\"identifiers\":[");
                    self.identifier(rel.ty, &rel.slot, owned, tablet, rng);
                    self.lines.buf().extend_from_slice(b"]}");
                }
                self.lines.buf().push(b']');
            }
            self.lines.buf().push(b'}');
            self.lines.end_line();
        }
        if let Some(ts) = record.retract_at {
            self.head(record, number, ts);
            self.lines.buf().extend_from_slice(b",\"retract\":true}");
            self.lines.end_line();
        } else if let (Some(entity), Some(truth)) = (entity, self.truth.as_deref_mut()) {
            let source = record.source;
            truth.record(
                source.name(),
                source.prefix(),
                number,
                kind,
                entity_prefix,
                entity,
            )?;
        }
        Ok(())
    }

    /// `{"source":…,"id":…,"ts":…` of a line.
    fn head(&mut self, record: &Record, number: u64, ts: i64) {
        let buf = self.lines.buf();
        buf.extend_from_slice(b"{\"source\":\"");
        buf.extend_from_slice(record.source.name().as_bytes());
        buf.extend_from_slice(b"\",\"id\":\"");
        buf.extend_from_slice(record.source.prefix().as_bytes());
        json_u64(buf, number);
        buf.extend_from_slice(b"\",\"ts\":");
        json_ts(buf, ts);
    }

    /// `{"type":…,"value":…}`, the value spelled in a variant.
    fn identifier<R: RngCore>(
        &mut self,
        ty: IdType,
        slot: &Slot,
        owned: &[Owned],
        tablet: Option<&str>,
        rng: &mut R,
    ) {
        match slot {
            Slot::Own(i) => spell(ty, &owned[*i].value, rng, &mut self.spelling),
            // A tablet slot only exists on household members' records.
            Slot::Tablet => spell(ty, tablet.unwrap_or_default(), rng, &mut self.spelling),
            Slot::Other(_, value) => spell(ty, value, rng, &mut self.spelling),
            Slot::Junk(junk) => {
                self.spelling.clear();
                self.spelling.push_str(rng.pick(junk.spellings()));
            }
        }
        let buf = self.lines.buf();
        buf.extend_from_slice(b"{\"type\":\"");
        buf.extend_from_slice(ty.name().as_bytes());
        buf.extend_from_slice(b"\",\"value\":");
        json_str(buf, &self.spelling);
        buf.push(b'}');
    }
}

fn slot_type(slot: &Slot, owned: &[Owned]) -> IdType {
    match slot {
        Slot::Own(i) => owned[*i].ty,
        Slot::Tablet => IdType::DeviceId,
        Slot::Junk(junk) => junk.id_type(),
        Slot::Other(ty, _) => *ty,
    }
}

/// Generates the whole workload into `lines` (in generation order) and the
/// truth; returns the number of distinct records.
pub(super) fn build(
    opts: &GenerateOptions,
    lines: &mut Lines,
    truth: Option<&mut TruthWriter<'_>>,
) -> Result<u64, GenerateError> {
    let salts = Salts::new(opts.seed);
    let organizations = if opts.people == 0 {
        0
    } else {
        (opts.people / 500).max(1)
    };
    let ctx = Context {
        seed: opts.seed,
        people: opts.people,
        organizations,
        salts: &salts,
    };
    let mut writer = Writer {
        lines,
        truth,
        next_number: [0; 5],
        records: 0,
        spelling: String::with_capacity(64),
    };
    let mut structure = dice::stream(opts.seed, dice::STREAM_STRUCTURE);

    for org in 0..organizations {
        for record in plan_organization(org, &mut structure, &ctx) {
            writer.write(&record, &[], None, &mut structure)?;
        }
    }
    let mut households = Households::new(opts.people);
    for index in 0..opts.people {
        let household = households.next(index, &mut structure, &salts);
        let (person, mut rng) = Person::draw(opts.seed, &salts, index, household);
        let tablet = person.household.as_ref().map(|h| h.tablet.as_str());
        for record in plan_person(&person, &mut rng, &ctx) {
            writer.write(&record, &person.owned, tablet, &mut rng)?;
        }
    }
    Ok(writer.records)
}
