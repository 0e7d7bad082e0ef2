//! Identifier values in their canonical (normalized) form. Each is a bijective
//! function of an integer key, so values never repeat between owners, yet look
//! unrelated to the person number (an engine cannot stitch by pattern).

use std::fmt::Write;

/// The identifier types of the canonical pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IdType {
    Email,
    Phone,
    DeviceId,
    AccountId,
    Cookie,
}

impl IdType {
    pub(super) fn name(self) -> &'static str {
        match self {
            IdType::Email => "email",
            IdType::Phone => "phone",
            IdType::DeviceId => "device_id",
            IdType::AccountId => "account_id",
            IdType::Cookie => "cookie",
        }
    }
}

/// A bijection of `u64` that scatters consecutive keys (each step, an
/// xor-shift or a multiplication by an odd constant, can be undone).
pub(super) fn scatter(mut z: u64) -> u64 {
    z ^= z >> 31;
    z = z.wrapping_mul(0x7fb5_d329_728e_a185);
    z ^= z >> 27;
    z = z.wrapping_mul(0x81da_def4_bc2d_d44d);
    z ^ (z >> 33)
}

/// A bijection of `u32`, for values that must stay short.
fn scatter32(mut z: u32) -> u32 {
    z ^= z >> 16;
    z = z.wrapping_mul(0x9e37_79b1);
    z ^= z >> 13;
    z = z.wrapping_mul(0x85eb_ca77);
    z ^ (z >> 16)
}

/// Per-seed salts, one per value family, so two seeds give different values.
#[derive(Debug, Clone, Copy)]
pub(super) struct Salts {
    account: u64,
    device: u64,
    cookie: u64,
    org: u64,
    email: u32,
    phone: u64,
}

impl Salts {
    pub(super) fn new(seed: u64) -> Salts {
        let salt = |family: u64| scatter(seed ^ scatter(family));
        Salts {
            account: salt(1),
            device: salt(2),
            cookie: salt(3),
            org: salt(4),
            email: salt(5) as u32,
            phone: salt(6) % PHONE_CAPACITY,
        }
    }

    /// The number in a person's email addresses: unique per person (people
    /// are fewer than 2^32), unrelated to the person number.
    pub(super) fn email_number(&self, person: u64) -> u32 {
        scatter32(person as u32 ^ self.email)
    }

    /// The 10-digit national number of phone `i` (0 or 1) of a person.
    pub(super) fn phone(&self, person: u64, i: u64) -> String {
        // An affine map modulo the capacity is a bijection when the factor
        // shares no prime with it (the capacity's primes are 2 and 5).
        const FACTOR: u128 = 2_654_435_761;
        let key = ((person * 2 + i) as u128 * FACTOR + self.phone as u128) % PHONE_CAPACITY as u128;
        national_number(key as u64)
    }

    pub(super) fn account(&self, person: u64) -> String {
        format!("acct-{:016x}", scatter(person ^ self.account))
    }

    /// Own devices use keys `4n` and `4n + 1`, a household's tablet `4m + 2`
    /// where `m` is its first member: no two devices share a key.
    pub(super) fn own_device(&self, person: u64, i: u64) -> String {
        self.device(person * 4 + i)
    }

    pub(super) fn tablet(&self, first_member: u64) -> String {
        self.device(first_member * 4 + 2)
    }

    /// UUID-shaped. The first 64 bits are unique per key; the variant nibble
    /// (8-b) keeps every value away from the all-zero junk placeholder.
    fn device(&self, key: u64) -> String {
        let hi = scatter(key ^ self.device);
        let lo = scatter(hi ^ self.device.rotate_left(17));
        let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        let mut s = String::with_capacity(36);
        let _ = write!(
            s,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        );
        s
    }

    pub(super) fn cookie(&self, person: u64, i: u64) -> String {
        format!("ck-{:016x}", scatter((person * 2 + i) ^ self.cookie))
    }

    pub(super) fn org_account(&self, org: u64) -> String {
        format!("org-{:016x}", scatter(org ^ self.org))
    }
}

/// Area codes of the national numbers; exchanges 200-999 and 10 000 lines
/// under each make 8M numbers per area code.
const AREA_CODES: [u16; 40] = [
    206, 212, 213, 214, 303, 305, 312, 313, 314, 404, 412, 415, 502, 503, 504, 512, 602, 612, 615,
    617, 702, 704, 713, 718, 801, 804, 808, 813, 816, 818, 901, 904, 907, 912, 916, 919, 949, 952,
    971, 972,
];
pub(super) const PHONE_CAPACITY: u64 = AREA_CODES.len() as u64 * 800 * 10_000;

/// The number of phone key `key`, which must be below [`PHONE_CAPACITY`].
fn national_number(key: u64) -> String {
    let area = AREA_CODES[(key % AREA_CODES.len() as u64) as usize];
    let rest = key / AREA_CODES.len() as u64;
    format!("{area}{:03}{:04}", 200 + rest / 10_000, rest % 10_000)
}

const HOME_DOMAINS: [&str; 5] = [
    "example.com",
    "example.net",
    "example.org",
    "mail.example",
    "inbox.example",
];
const WORK_DOMAINS: [&str; 4] = [
    "corp.example",
    "acme.example",
    "initech.example",
    "globex.example",
];

/// `given.surname.n@home-domain` for the first email, `givensurnamen@work-domain`
/// for the second: the number (see [`Salts::email_number`]) keeps them unique,
/// the two domain lists keep a first email from ever equalling someone's second.
pub(super) fn email(given: &str, surname: &str, number: u32, i: u64, domain_roll: u64) -> String {
    let (g, s) = (given.to_ascii_lowercase(), surname.to_ascii_lowercase());
    if i == 0 {
        format!(
            "{g}.{s}.{number}@{}",
            HOME_DOMAINS[(domain_roll % HOME_DOMAINS.len() as u64) as usize]
        )
    } else {
        format!(
            "{g}{s}{number}@{}",
            WORK_DOMAINS[(domain_roll % WORK_DOMAINS.len() as u64) as usize]
        )
    }
}

/// Values many unrelated people share: the blocklist catches some, generic
/// identifier detection must catch the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Junk {
    TestEmail,
    ZeroPhone,
    NoEmail,
    NullDevice,
}

impl Junk {
    pub(super) const ALL: [Junk; 4] = [
        Junk::TestEmail,
        Junk::ZeroPhone,
        Junk::NoEmail,
        Junk::NullDevice,
    ];

    pub(super) fn id_type(self) -> IdType {
        match self {
            Junk::TestEmail | Junk::NoEmail => IdType::Email,
            Junk::ZeroPhone => IdType::Phone,
            Junk::NullDevice => IdType::DeviceId,
        }
    }

    /// The ways the value is written; all normalize to the same value.
    pub(super) fn spellings(self) -> &'static [&'static str] {
        match self {
            Junk::TestEmail => &[
                "test@test.com",
                "TEST@test.com",
                " Test@Test.com ",
                "test@TEST.COM",
            ],
            Junk::ZeroPhone => &[
                "0000000000",
                "000-000-0000",
                "(000) 000-0000",
                "+1 000 000 0000",
            ],
            Junk::NoEmail => &["noemail@none.com", "NoEmail@none.com", " noemail@NONE.com"],
            Junk::NullDevice => &[
                "00000000-0000-0000-0000-000000000000",
                " 00000000-0000-0000-0000-000000000000 ",
            ],
        }
    }
}
