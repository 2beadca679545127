//! `Slug`: the name of a short link, parsed or drawn at random.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{LinkError, RESERVED_SLUGS, random_base62};

/// A short-link name: `[A-Za-z0-9_-]{3,64}`, not a reserved word.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(pub(super) String);

impl Slug {
    /// Validates `raw` as a slug.
    pub fn parse(raw: &str) -> Result<Self, LinkError> {
        let len_ok = (3..=64).contains(&raw.len());
        let chars_ok = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !len_ok || !chars_ok {
            return Err(LinkError::InvalidSlug);
        }
        if is_reserved(raw) {
            return Err(LinkError::ReservedSlug(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A random base62 slug of `len` characters, redrawn while it is a
    /// reserved word (`metrics` and `console` are 7 characters, the default).
    pub fn random(len: usize, rng: &mut impl Rng) -> Self {
        loop {
            let s = random_base62(len, rng);
            if !is_reserved(&s) {
                return Self(s);
            }
        }
    }

    /// A name as the registry may hold it, for deleting only: any text of 1
    /// to [`MAX_REGISTERED_BYTES`] bytes, reserved words included, since an
    /// older version may have stored names [`Slug::parse`] now refuses (the
    /// registry decides whether it names a link). Never used to create one.
    pub fn registered(raw: &str) -> Option<Self> {
        (1..=MAX_REGISTERED_BYTES)
            .contains(&raw.len())
            .then(|| Self(raw.to_owned()))
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest name [`Slug::registered`] accepts.
pub const MAX_REGISTERED_BYTES: usize = 256;

fn is_reserved(raw: &str) -> bool {
    RESERVED_SLUGS.iter().any(|r| r.eq_ignore_ascii_case(raw))
}

impl TryFrom<String> for Slug {
    type Error = LinkError;
    fn try_from(s: String) -> Result<Self, LinkError> {
        Slug::parse(&s)
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> String {
        s.0
    }
}

impl std::fmt::Display for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where random slug candidates come from (swappable in tests). A candidate
/// that is no valid slug (a reserved word) is redrawn like a collision.
pub type SlugSource = std::sync::Arc<dyn Fn(usize) -> String + Send + Sync>;

/// Random base62 slugs from the thread's CSPRNG.
pub fn random_slugs() -> SlugSource {
    std::sync::Arc::new(|len| Slug::random(len, &mut rand::rng()).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_of_the_allowed_alphabet_and_length_parse() {
        for ok in ["abc", "A-b_9", &"x".repeat(64)] {
            assert!(Slug::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn slugs_too_short_too_long_or_with_other_characters_are_refused() {
        for bad in [
            "ab",
            "",
            &"x".repeat(65),
            "a b",
            "ab/c",
            "abc.d",
            "ünï",
            "ab%20",
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reserved_words_are_refused_in_any_case() {
        for bad in ["api", "API", "Health", "metrics"] {
            let err = Slug::parse(bad).unwrap_err();
            assert_eq!(err.code(), "reserved_slug");
        }
    }

    #[test]
    fn a_registered_name_may_be_a_reserved_word_but_not_empty_or_huge() {
        assert_eq!(Slug::registered("metrics").unwrap().as_str(), "metrics");
        assert!(Slug::registered("").is_none());
        assert!(Slug::registered(&"x".repeat(MAX_REGISTERED_BYTES + 1)).is_none());
    }

    #[test]
    fn random_slugs_are_base62_of_the_requested_length() {
        let mut rng = rand::rng();
        for len in [4, 7, 32] {
            let s = Slug::random(len, &mut rng);
            assert_eq!(s.as_str().len(), len);
            assert!(s.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(Slug::parse(s.as_str()).is_ok());
        }
    }
}
