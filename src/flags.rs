//! The access flags of the group/profile model (access model §4) as a bit set.

use std::fmt;

/// Every flag name, in the order of access model §4; a flag's bit is its
/// position here.
pub const FLAG_NAMES: [&str; 38] = [
    "IR", "IW", "IM", "IC", "SI", "QA", "KR", "KW", "KM", "FRR", "FRW", "FRM", "VR", "VW", "VM",
    "RR", "RM", "WR", "WW", "WM", "PR", "PM", "CR", "CW", "CM", "CIR", "CIW", "CIM", "CLR", "CLW",
    "CLM", "AR", "AW", "AM", "UM", "DM", "FM", "HR",
];

/// One access flag.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flag(u8);

impl Flag {
    pub const IR: Flag = Flag(0);
    pub const IW: Flag = Flag(1);
    pub const IM: Flag = Flag(2);
    pub const IC: Flag = Flag(3);
    pub const SI: Flag = Flag(4);
    pub const CR: Flag = Flag(22);
    pub const CW: Flag = Flag(23);
    pub const CM: Flag = Flag(24);
    // The service-desk sections (access model §8).
    pub const FRR: Flag = Flag(9);
    pub const FRW: Flag = Flag(10);
    pub const FRM: Flag = Flag(11);
    pub const VR: Flag = Flag(12);
    pub const VW: Flag = Flag(13);
    pub const VM: Flag = Flag(14);
    pub const WR: Flag = Flag(17);
    pub const WW: Flag = Flag(18);
    pub const WM: Flag = Flag(19);
    pub const PR: Flag = Flag(20);
    pub const PM: Flag = Flag(21);
    pub const CIR: Flag = Flag(25);
    pub const CIW: Flag = Flag(26);
    pub const CIM: Flag = Flag(27);
    pub const CLR: Flag = Flag(28);
    pub const CLW: Flag = Flag(29);
    pub const CLM: Flag = Flag(30);
    pub const AR: Flag = Flag(31);
    pub const AW: Flag = Flag(32);
    pub const AM: Flag = Flag(33);
    pub const UM: Flag = Flag(34);

    /// Parses an upper-case flag name; anything else (lower case included)
    /// is not a flag.
    pub fn parse(name: &str) -> Option<Flag> {
        FLAG_NAMES
            .iter()
            .position(|known| *known == name)
            .and_then(|bit| u8::try_from(bit).ok())
            .map(Flag)
    }

    pub fn name(self) -> &'static str {
        FLAG_NAMES.get(usize::from(self.0)).copied().unwrap_or("?")
    }
}

impl fmt::Debug for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of flags: what a profile holds, or what a user holds on a group.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlagSet(u64);

impl FlagSet {
    pub const EMPTY: FlagSet = FlagSet(0);

    pub fn contains(self, flag: Flag) -> bool {
        self.0 & (1 << flag.0) != 0
    }

    pub fn insert(&mut self, flag: Flag) {
        self.0 |= 1 << flag.0;
    }

    pub fn remove(&mut self, flag: Flag) {
        self.0 &= !(1 << flag.0);
    }

    pub fn union(self, other: FlagSet) -> FlagSet {
        FlagSet(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Flag> {
        (0u8..64)
            .filter(move |bit| self.0 & (1 << bit) != 0)
            .map(Flag)
    }
}

impl FromIterator<Flag> for FlagSet {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Self {
        let mut set = FlagSet::EMPTY;
        for flag in iter {
            set.insert(flag);
        }
        set
    }
}

impl fmt::Debug for FlagSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for FlagSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Flag::name).collect();
        write!(f, "[{}]", names.join(", "))
    }
}

/// The bits [`FLAG_NAMES`] names; any other bit is no flag.
const KNOWN_BITS: u64 = (1 << FLAG_NAMES.len()) - 1;

// Flags travel as their bit position and sets as their bits (an image's
// encoding, compact and stable while `FLAG_NAMES` only grows at the end).
// Reading refuses a bit no name stands for: a set shifts by it, and a flag
// this build does not know would be silently ignored otherwise.
impl serde::Serialize for Flag {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Flag {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bit = u8::deserialize(deserializer)?;
        if usize::from(bit) < FLAG_NAMES.len() {
            Ok(Flag(bit))
        } else {
            Err(serde::de::Error::custom(format!("unknown flag bit {bit}")))
        }
    }
}

impl serde::Serialize for FlagSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for FlagSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bits = u64::deserialize(deserializer)?;
        if bits & !KNOWN_BITS == 0 {
            Ok(FlagSet(bits))
        } else {
            Err(serde::de::Error::custom(format!(
                "unknown flag bits {:#x}",
                bits & !KNOWN_BITS
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_names() {
        for (flag, name) in [
            (Flag::IR, "IR"),
            (Flag::IW, "IW"),
            (Flag::IM, "IM"),
            (Flag::IC, "IC"),
            (Flag::SI, "SI"),
            (Flag::CR, "CR"),
            (Flag::CW, "CW"),
            (Flag::CM, "CM"),
        ] {
            assert_eq!(flag.name(), name);
            assert_eq!(Flag::parse(name), Some(flag));
        }
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn flags_travel_as_bits_and_unknown_bits_are_refused() {
        let all: FlagSet = FLAG_NAMES.iter().filter_map(|n| Flag::parse(n)).collect();
        let bytes = postcard::to_stdvec(&all).unwrap();
        assert_eq!(postcard::from_bytes::<FlagSet>(&bytes).unwrap(), all);
        let flag = postcard::to_stdvec(&Flag::UM).unwrap();
        assert_eq!(postcard::from_bytes::<Flag>(&flag).unwrap(), Flag::UM);
        let beyond = postcard::to_stdvec(&38u8).unwrap();
        assert!(postcard::from_bytes::<Flag>(&beyond).is_err());
        let beyond = postcard::to_stdvec(&(1u64 << 38)).unwrap();
        assert!(postcard::from_bytes::<FlagSet>(&beyond).is_err());
    }

    #[test]
    fn only_upper_case_names_are_flags() {
        assert_eq!(Flag::parse("ir"), None);
        assert_eq!(Flag::parse("XX"), None);
        assert_eq!(Flag::parse(""), None);
        assert_eq!(FLAG_NAMES.iter().filter_map(|n| Flag::parse(n)).count(), 38);
    }
}
