//! serde adapters for the card image: byte strings and FIDs as hex. A leaf:
//! every part of the card's state uses it, and it uses none of them.

/// serde adapter: `Vec<u8>` as a hex string.
pub(crate) mod hex_bytes {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&cardsmith_wire::hex::compact(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        cardsmith_wire::hex::parse_compact(&s).ok_or_else(|| D::Error::custom("invalid hex string"))
    }
}

/// serde adapter: `Option<Vec<u8>>` as a hex string or null.
pub(crate) mod opt_hex_bytes {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&cardsmith_wire::hex::compact(b)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => cardsmith_wire::hex::parse_compact(&s)
                .map(Some)
                .ok_or_else(|| D::Error::custom("invalid hex string")),
            None => Ok(None),
        }
    }
}

/// serde adapter: a FID as four hex digits.
pub(crate) mod hex_fid {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u16, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&cardsmith_wire::hex::compact(&v.to_be_bytes()))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        let s = String::deserialize(d)?;
        match cardsmith_wire::hex::parse_compact(&s).as_deref() {
            Some([a, b]) => Ok(u16::from_be_bytes([*a, *b])),
            _ => Err(D::Error::custom("a FID is four hex digits")),
        }
    }
}
