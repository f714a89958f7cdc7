//! The two JSON objects of a JWS compact token (RFC 7515 §7.1): the JOSE
//! header and the JWT claims set, read member by member.
//!
//! Only the members a rule reads are kept, their strings borrowed from the
//! decoded bytes unless they carry an escape. The rest of each object is
//! still read to its end by serde_json, so JSON that is not well formed,
//! bytes after the object, or anything but an object at the top are refused
//! as a `serde_json::Value` refuses them. One difference: serde_json skips
//! a value with a loop, not by recursion, so its nesting limit (128) now
//! holds only inside the members a rule reads; a deeper value elsewhere is
//! skipped, with no stack to exhaust. A repeated member keeps its
//! last value, as `serde_json::Map` does and as RFC 7515 §4 and RFC 7519 §4
//! allow ("use a JSON parser that returns only the lexically last duplicate
//! member name"); both objects are covered by the signature, so only the
//! issuer could repeat one.
//!
//! Why not a `serde_json::Value`: building the two trees (a map, a `String`
//! for every name and string) and dropping them cost 15,000 instructions of
//! a cold verification under callgrind, 40 % of a whole request with a
//! cached token; reading them here costs 7,200 (README, "Benchmarks").

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de};

/// Header parameters that point at keys the token chooses for itself, or
/// demand extensions we do not implement (RFC 7515 §4.1.11: a recipient
/// that does not understand a `crit` extension must reject the token).
pub const FORBIDDEN_HEADER_PARAMETERS: &[&str] = &["crit", "jku", "jwk", "x5u", "x5c"];

/// A member's value, as far as a rule reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Member<'a> {
    Null,
    /// Any JSON number, as `serde_json::Value::as_f64` reads it.
    Number(f64),
    String(Cow<'a, str>),
    Array(Vec<Member<'a>>),
    /// `true`, `false` or an object: never what a rule here accepts.
    Other,
}

impl Member<'_> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Member::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Member::Number(number) => Some(*number),
            _ => None,
        }
    }
}

/// The JOSE header (RFC 7515 §4), as far as the RS256 rules read it.
#[derive(Debug, Default, PartialEq)]
pub struct Header<'a> {
    pub alg: Option<Member<'a>>,
    pub kid: Option<Member<'a>>,
    /// Whether one of [`FORBIDDEN_HEADER_PARAMETERS`] is present, whatever
    /// its value (`"jku": null` included).
    pub forbidden: bool,
}

/// The registered claims (RFC 7519 §4.1) the claim rules read; the other
/// claims (Clerk's `sid`, `fva`, `v` and custom ones) are read and dropped.
#[derive(Debug, Default, PartialEq)]
pub struct Claims<'a> {
    pub exp: Option<Member<'a>>,
    pub nbf: Option<Member<'a>>,
    pub iat: Option<Member<'a>>,
    pub iss: Option<Member<'a>>,
    pub aud: Option<Member<'a>>,
    pub azp: Option<Member<'a>>,
    pub sub: Option<Member<'a>>,
}

impl<'a> Header<'a> {
    /// Reads a decoded header. Errors: the bytes are not one JSON object.
    pub fn parse(json: &'a [u8]) -> Result<Self, serde_json::Error> {
        parse_object(json)
    }
}

impl<'a> Claims<'a> {
    /// Reads a decoded claims set. Errors: the bytes are not one JSON object.
    pub fn parse(json: &'a [u8]) -> Result<Self, serde_json::Error> {
        parse_object(json)
    }
}

/// An object whose members are read by name.
trait Members<'de>: Default {
    /// Reads the value of the member `name` into `self`, or skips it.
    fn read<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error>;
}

impl<'de> Members<'de> for Header<'de> {
    fn read<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "alg" => self.alg = Some(map.next_value()?),
            "kid" => self.kid = Some(map.next_value()?),
            _ => {
                map.next_value::<IgnoredAny>()?;
                self.forbidden |= FORBIDDEN_HEADER_PARAMETERS.contains(&name);
            }
        }
        Ok(())
    }
}

impl<'de> Members<'de> for Claims<'de> {
    fn read<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        let slot = match name {
            "exp" => &mut self.exp,
            "nbf" => &mut self.nbf,
            "iat" => &mut self.iat,
            "iss" => &mut self.iss,
            "aud" => &mut self.aud,
            "azp" => &mut self.azp,
            "sub" => &mut self.sub,
            _ => {
                map.next_value::<IgnoredAny>()?;
                return Ok(());
            }
        };
        *slot = Some(map.next_value()?);
        Ok(())
    }
}

fn parse_object<'de, T: Members<'de>>(json: &'de [u8]) -> Result<T, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let object = deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))?;
    deserializer.end()?;
    Ok(object)
}

struct ObjectVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Members<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut object = T::default();
        while let Some(Name(name)) = map.next_key()? {
            object.read(&name, &mut map)?;
        }
        Ok(object)
    }
}

/// A member name, unescaped: `"\u0065xp"` is `exp`, as it is to a `Map`.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(name)))
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(name.to_owned())))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

impl<'de> Deserialize<'de> for Member<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MemberVisitor)
    }
}

struct MemberVisitor;

impl<'de> Visitor<'de> for MemberVisitor {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Member<'de>, E> {
        Ok(Member::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Member<'de>, E> {
        Ok(Member::Other)
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Member<'de>, E> {
        Ok(Member::Number(number as f64))
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Member<'de>, E> {
        Ok(Member::Number(number as f64))
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Member<'de>, E> {
        Ok(Member::Number(number))
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Member<'de>, E> {
        Ok(Member::String(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Member<'de>, E> {
        Ok(Member::String(Cow::Owned(text.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Member<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Member::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Member<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Member::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// What a `serde_json::Value` makes of the same bytes, member by member:
    /// the reading this module replaces.
    fn through_value(json: &[u8]) -> Option<Claims<'static>> {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(json) else {
            return None;
        };
        fn member(value: &Value) -> Member<'static> {
            match value {
                Value::Null => Member::Null,
                Value::Number(number) => Member::Number(number.as_f64().expect("f64")),
                Value::String(text) => Member::String(Cow::Owned(text.clone())),
                Value::Array(items) => Member::Array(items.iter().map(member).collect()),
                Value::Bool(_) | Value::Object(_) => Member::Other,
            }
        }
        let get = |name: &str| map.get(name).map(member);
        Some(Claims {
            exp: get("exp"),
            nbf: get("nbf"),
            iat: get("iat"),
            iss: get("iss"),
            aud: get("aud"),
            azp: get("azp"),
            sub: get("sub"),
        })
    }

    #[test]
    fn claims_read_as_a_json_value_reads_them() {
        let cases: &[&[u8]] = &[
            br#"{"azp":"https://app.example","exp":1764000060,"fva":[0,-1],"iat":1764000000,"iss":"https://clerk.example","nbf":1763999990,"sid":"sess_1","sub":"user_1","v":2}"#,
            // Escapes in names and values, numbers of every JSON form.
            br#"{"\u0065xp":1.764e9,"s\u0075b":"user_\u0031","iss":"a\/b","nbf":-0,"iat":18446744073709551615}"#,
            br#"{"exp":1e400}"#,
            // Repeated members: the last one counts, as in a Map.
            br#"{"sub":"first","sub":"second","exp":1,"exp":null}"#,
            // Types a rule refuses, and nested values it skips.
            br#"{"aud":["a",["b"],{"c":1},null,2],"azp":true,"iss":{"x":[1,{"y":null}]},"sub":[]}"#,
            br#"{}"#,
            br#" { "sub" : "padded" } "#,
            // Not one object: refused both ways.
            br#"[]"#,
            br#"["sub","user"]"#,
            br#"null"#,
            br#""{}""#,
            br#"{"sub":"a"} {"sub":"b"}"#,
            br#"{"sub":"a",}"#,
            br#"{"sub":"a"#,
            b"{\"sub\":\"\xff\"}",
            br#"{"sub":"\ud800"}"#,
            br#"{sub:"a"}"#,
            b"",
        ];
        for json in cases {
            let ours = Claims::parse(json).ok();
            assert_eq!(
                ours,
                through_value(json),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn deep_nesting_is_skipped_without_recursion_where_no_rule_reads() {
        // serde_json skips a value with a loop, not by recursion, so its
        // nesting limit (128) applies only inside a member a rule reads.
        let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let unread = format!(r#"{{"x":{},"sub":"user_1"}}"#, nested(10_000));
        assert!(serde_json::from_str::<Value>(&unread).is_err());
        let claims = Claims::parse(unread.as_bytes()).expect("skipped");
        assert_eq!(claims.sub.as_ref().and_then(Member::as_str), Some("user_1"));
        let read = format!(r#"{{"aud":{}}}"#, nested(200));
        assert!(Claims::parse(read.as_bytes()).is_err());
        let unclosed = format!(r#"{{"x":{}}}"#, "[".repeat(10_000));
        assert!(Claims::parse(unclosed.as_bytes()).is_err());
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let json = br#"{"sub":"user_1","iss":"a\/b"}"#;
        let claims = Claims::parse(json).expect("object");
        assert!(matches!(
            claims.sub,
            Some(Member::String(Cow::Borrowed("user_1")))
        ));
        assert!(matches!(claims.iss, Some(Member::String(Cow::Owned(ref iss))) if iss == "a/b"));
    }

    #[test]
    fn a_forbidden_header_parameter_counts_whatever_its_value() {
        for name in FORBIDDEN_HEADER_PARAMETERS {
            for value in [json!(null), json!(""), json!({"kty": "RSA"}), json!(["x"])] {
                let json = json!({"alg": "RS256", "kid": "k", *name: value}).to_string();
                let header = Header::parse(json.as_bytes()).expect("object");
                assert!(header.forbidden, "{json}");
            }
        }
        let escaped = br#"{"alg":"RS256","\u006aku":"https://evil.example"}"#;
        assert!(Header::parse(escaped).expect("object").forbidden);
        let plain = br#"{"alg":"RS256","kid":"k","typ":"JWT","cty":"x"}"#;
        let header = Header::parse(plain).expect("object");
        assert!(!header.forbidden);
        assert_eq!(header.kid.as_ref().and_then(Member::as_str), Some("k"));
    }
}
