//! Tags: `Tag` (1 to 32 of `[a-z0-9-]`, folded to lowercase) and `Tags`
//! (at most [`MAX_TAGS`] distinct tags, in the order first given).
//!
//! A link's tags live in its record (`Link::tags`, absent in records written
//! before tags existed: they decode as none). The registry mirrors them
//! (`links.tags`, and `link_tags (tag, slug)` kept by triggers from it), so
//! that lists filter by tag in SQL; see `links::store`.

use serde::{Deserialize, Serialize};

use super::LinkError;

/// Most tags a link carries.
pub const MAX_TAGS: usize = 10;
/// Longest tag, in characters (ASCII, so bytes).
pub const MAX_TAG_CHARS: usize = 32;

/// One tag: 1 to [`MAX_TAG_CHARS`] of `[a-z0-9-]`; ASCII upper case is
/// folded to lower case on the way in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

impl Tag {
    /// Validates and folds `raw`.
    pub fn parse(raw: &str) -> Result<Self, LinkError> {
        let folded = raw.to_ascii_lowercase();
        let ok = (1..=MAX_TAG_CHARS).contains(&folded.len())
            && folded
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(folded))
        } else {
            Err(LinkError::InvalidTag)
        }
    }

    /// The tag's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Tag {
    type Error = LinkError;
    fn try_from(raw: String) -> Result<Self, LinkError> {
        Tag::parse(&raw)
    }
}

impl From<Tag> for String {
    fn from(tag: Tag) -> String {
        tag.0
    }
}

/// A link's tags: at most [`MAX_TAGS`], each once, in the order first given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Tag>", into = "Vec<Tag>")]
pub struct Tags(Vec<Tag>);

impl Tags {
    /// Validates a list as a client sends it: at most [`MAX_TAGS`] entries,
    /// each a [`Tag`]; repeats (after folding) are kept once.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, LinkError> {
        if raw.len() > MAX_TAGS {
            return Err(LinkError::InvalidTag);
        }
        let tags = raw
            .iter()
            .map(|t| Tag::parse(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::try_from(tags)
    }

    /// Validates a JSON value as a client sends it: `null` is no tags, an
    /// array of strings is [`Tags::parse`]d, anything else is
    /// [`LinkError::InvalidTag`].
    pub fn from_json(value: &serde_json::Value) -> Result<Self, LinkError> {
        match value {
            serde_json::Value::Null => Ok(Self::default()),
            serde_json::Value::Array(items) => {
                let texts = items
                    .iter()
                    .map(|v| v.as_str().ok_or(LinkError::InvalidTag))
                    .collect::<Result<Vec<_>, _>>()?;
                Self::parse(&texts)
            }
            _ => Err(LinkError::InvalidTag),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `tag` is among them.
    pub fn contains(&self, tag: &Tag) -> bool {
        self.0.contains(tag)
    }

    /// The tags, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    /// The tags' texts, in order.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|t| t.0.clone()).collect()
    }

    /// These tags with `from` renamed to `to` (kept once, in `from`'s place,
    /// when `to` is there already); unchanged when `from` is not among them.
    pub fn renamed(&self, from: &Tag, to: &Tag) -> Self {
        let mut out: Vec<Tag> = Vec::with_capacity(self.0.len());
        for t in &self.0 {
            let t = if t == from { to } else { t };
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        // Nothing is added, so the bound still holds.
        Self(out)
    }

    /// These tags without `tag`.
    pub fn without(&self, tag: &Tag) -> Self {
        Self(self.0.iter().filter(|t| *t != tag).cloned().collect())
    }
}

impl TryFrom<Vec<Tag>> for Tags {
    type Error = LinkError;
    fn try_from(tags: Vec<Tag>) -> Result<Self, LinkError> {
        let mut out: Vec<Tag> = Vec::with_capacity(tags.len());
        for t in tags {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        if out.len() > MAX_TAGS {
            return Err(LinkError::InvalidTag);
        }
        Ok(Self(out))
    }
}

impl From<Tags> for Vec<Tag> {
    fn from(tags: Tags) -> Vec<Tag> {
        tags.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_one_to_32_of_lowercase_letters_digits_and_dashes_folded() {
        assert_eq!(Tag::parse("Launch-2030").unwrap().as_str(), "launch-2030");
        assert_eq!(Tag::parse("a").unwrap().as_str(), "a");
        assert!(Tag::parse(&"x".repeat(32)).is_ok());
        for bad in ["", &"x".repeat(33), "a_b", "a b", "été", "a/b", "x."] {
            let err = Tag::parse(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_tag", "{bad:?}");
        }
    }

    #[test]
    fn tags_keep_their_order_drop_repeats_and_hold_at_most_ten() {
        let tags = Tags::parse(&["b", "A", "a", "c"]).unwrap();
        assert_eq!(tags.to_strings(), ["b", "a", "c"]);
        let ten: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse(&ten).is_ok());
        let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        assert_eq!(Tags::parse(&eleven).unwrap_err().code(), "invalid_tag");
        assert_eq!(
            Tags::parse(&["ok", "not ok"]).unwrap_err().code(),
            "invalid_tag"
        );
    }

    #[test]
    fn tags_from_json_accept_null_or_an_array_of_strings_only() {
        use serde_json::json;
        assert!(Tags::from_json(&json!(null)).unwrap().is_empty());
        assert_eq!(
            Tags::from_json(&json!(["X", "y"])).unwrap().to_strings(),
            ["x", "y"]
        );
        for bad in [
            json!("x"),
            json!([1]),
            json!({"a": 1}),
            json!([null]),
            json!(true),
        ] {
            assert_eq!(Tags::from_json(&bad).unwrap_err().code(), "invalid_tag");
        }
    }

    #[test]
    fn renaming_onto_a_tag_already_there_keeps_it_once() {
        let t = |s| Tag::parse(s).unwrap();
        let tags = Tags::parse(&["a", "b", "c"]).unwrap();
        assert_eq!(tags.renamed(&t("b"), &t("z")).to_strings(), ["a", "z", "c"]);
        assert_eq!(tags.renamed(&t("b"), &t("c")).to_strings(), ["a", "c"]);
        assert_eq!(tags.renamed(&t("q"), &t("z")), tags);
        assert_eq!(tags.without(&t("a")).to_strings(), ["b", "c"]);
    }

    #[test]
    fn stored_tags_decode_and_invalid_stored_tags_do_not() {
        let tags: Tags = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert_eq!(serde_json::to_string(&tags).unwrap(), r#"["a","b"]"#);
        assert!(serde_json::from_str::<Tags>(r#"["A B"]"#).is_err());
    }
}
