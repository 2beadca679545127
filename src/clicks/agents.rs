//! Browser and OS families with the answers of `woothee` 0.13, without a
//! regex engine.
//!
//! woothee's parser (Apache-2.0) walks a fixed decision list of
//! `contains` / `starts_with` checks and 49 regular expressions, most of
//! which only extract version numbers. We keep only what decides the three
//! fields we store (name, OS, category): the same decision list in the same
//! order, with the few regexes that take part in a decision written out by
//! hand next to their original text. The labels' values come from woothee's
//! own table (`woothee::dataset::DATASET`), so the names are woothee's.
//! Without its parser the regex engine is not linked into the component,
//! and no instance compiles a regex.
//!
//! The answers are identical to `woothee::parser::Parser::parse` for every
//! agent an HTTP header can carry as text (visible ASCII and tab):
//! `tests/classifier_corpus.rs` checks that on isbot's fixture lists and
//! our test agents.

use woothee::dataset::DATASET;
use woothee::woothee::VALUE_UNKNOWN;

/// What we keep of a woothee result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// Browser or crawler name (`Chrome`, `Googlebot`, ... or `UNKNOWN`).
    pub name: &'static str,
    /// `pc`, `smartphone`, `mobilephone`, `crawler`, `appliance`, `misc` or `UNKNOWN`.
    pub category: &'static str,
    /// OS name (`Windows 10`, `Mac OSX`, `Android`, ... or `UNKNOWN`).
    pub os: &'static str,
}

impl Family {
    /// woothee's answer for an empty agent, and our answer when it has none.
    pub const UNKNOWN: Family = Family {
        name: VALUE_UNKNOWN,
        category: VALUE_UNKNOWN,
        os: VALUE_UNKNOWN,
    };
}

/// The kind of device an agent runs on, as redirect rules ask for it
/// (`links::rules`): derived from the family's OS and category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// An Android OS.
    Android,
    /// iPhone, iPad, iPod or iOS.
    Ios,
    /// Another phone or smartphone (`smartphone`, `mobilephone`).
    OtherMobile,
    /// Anything else: PCs, appliances, crawlers, unknown agents.
    Desktop,
}

impl Family {
    /// The device this family runs on.
    pub fn device(&self) -> Device {
        match (self.os, self.category) {
            ("Android", _) => Device::Android,
            ("iPhone" | "iPad" | "iPod" | "iOS", _) => Device::Ios,
            (_, "smartphone" | "mobilephone") => Device::OtherMobile,
            _ => Device::Desktop,
        }
    }
}

type Data = woothee::parser::WootheeResult<'static>;

fn data(label: &str) -> Option<&'static Data> {
    DATASET.get(label)
}

/// woothee's `populate_with`: copies the non-empty fields of a label.
fn populate(r: &mut Family, label: &str) -> bool {
    let Some(d) = data(label) else {
        return false;
    };
    if !d.name.is_empty() {
        r.name = d.name;
    }
    if !d.category.is_empty() {
        r.category = d.category;
    }
    if !d.os.is_empty() {
        r.os = d.os;
    }
    true
}

/// Sets the category and OS from an OS label (whose `name` is the OS).
fn set_os(r: &mut Family, d: Option<&'static Data>) -> bool {
    let Some(d) = d else {
        return false;
    };
    r.category = d.category;
    r.os = d.name;
    true
}

/// Sets the category and OS from a phone or appliance label's `os`.
fn set_device_os(r: &mut Family, d: Option<&'static Data>) -> bool {
    let Some(d) = d else {
        return false;
    };
    r.category = d.category;
    r.os = d.os;
    true
}

/// `parser.parse(agent)`, reduced to name, category and OS.
pub fn parse(agent: &str) -> Option<Family> {
    let mut r = Family::UNKNOWN;
    if agent.is_empty() || agent == "-" {
        return Some(r);
    }
    if try_crawler(agent, &mut r) {
        return Some(r);
    }
    if try_browser(agent, &mut r) {
        try_os(agent, &mut r);
        return Some(r);
    }
    if try_mobilephone(agent, &mut r)
        || try_appliance(agent, &mut r)
        || challenge_desktop_tools(agent, &mut r)
        || try_os(agent, &mut r)
        || try_rare_cases(agent, &mut r)
    {
        return Some(r);
    }
    None
}

// ------------------------------------------------------------ matchers

/// What follows each occurrence of `needle` (which never overlaps itself).
fn after_each<'a>(haystack: &'a str, needle: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    haystack
        .match_indices(needle)
        .map(move |(i, _)| &haystack[i + needle.len()..])
}

fn version_len(s: &str) -> usize {
    s.bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count()
}

fn digits_len(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// `<prefix>([.0-9]+)` matches somewhere.
fn versioned(agent: &str, prefix: &str) -> bool {
    after_each(agent, prefix).any(|rest| version_len(rest) > 0)
}

/// `(?:Chrome|CrMo|CriOS)/([.0-9]+)`
fn chrome_pattern(agent: &str) -> bool {
    ["Chrome/", "CrMo/", "CriOS/"]
        .iter()
        .any(|p| versioned(agent, p))
}

/// `(?:Edge|Edg|EdgiOS|EdgA)/([.0-9]+)`
fn edge_pattern(agent: &str) -> bool {
    ["Edge/", "Edg/", "EdgiOS/", "EdgA/"]
        .iter()
        .any(|p| versioned(agent, p))
}

/// `YaBrowser/(\d+\.\d+\.\d+\.\d+)`
fn yabrowser_pattern(agent: &str) -> bool {
    after_each(agent, "YaBrowser/").any(|mut rest| {
        for i in 0..4 {
            let n = digits_len(rest);
            if n == 0 {
                return false;
            }
            rest = &rest[n..];
            if i < 3 {
                let Some(r) = rest.strip_prefix('.') else {
                    return false;
                };
                rest = r;
            }
        }
        true
    })
}

/// `iP(hone;|ad;|od) .*like Mac OS X`
///
/// Per line (`.` stops at `\n`), only the first occurrence of each needle
/// counts: what follows a later one is part of what follows the first. So
/// each line is searched once per needle, linear in the agent.
fn webview_pattern(agent: &str) -> bool {
    agent.split('\n').any(|line| {
        ["iPhone; ", "iPad; ", "iPod "].iter().any(|p| {
            line.find(p)
                .is_some_and(|i| line[i + p.len()..].contains("like Mac OS X"))
        })
    })
}

/// `Windows ([ .a-zA-Z0-9]+)[;\\)]`: the captured version of the first match.
///
/// A match starting inside a run already scanned ends where that run ended,
/// before the same byte, so it fails as the earlier one did: it is skipped,
/// and every byte is scanned at most once (`"Windows " × n` was quadratic).
fn windows_version(agent: &str) -> Option<&str> {
    let bytes = agent.as_bytes();
    let mut scanned_to = 0;
    for (i, needle) in agent.match_indices("Windows ") {
        let start = i + needle.len();
        if start <= scanned_to {
            continue;
        }
        let run = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b' ' || **b == b'.')
            .count();
        let end = start + run;
        if run > 0 && matches!(bytes.get(end), Some(b';' | b'\\' | b')')) {
            return Some(&agent[start..end]);
        }
        scanned_to = end;
    }
    None
}

/// `^Phone(?: OS)? ([.0-9]+)`
fn win_phone_pattern(version: &str) -> bool {
    version.strip_prefix("Phone").is_some_and(|rest| {
        [" OS ", " "]
            .iter()
            .any(|sep| rest.strip_prefix(sep).is_some_and(|v| version_len(v) > 0))
    })
}

/// `^Mozilla/[.0-9]+ \((?:Mobile|Tablet);(?:.*;)? rv:([.0-9]+)\) Gecko/[.0-9]+ Firefox/[.0-9]+$`
fn firefox_os_pattern(agent: &str) -> bool {
    fn tail(s: &str) -> bool {
        let step = |s: &str, lit: &str| -> Option<usize> {
            let rest = s.strip_prefix(lit)?;
            let n = version_len(rest);
            (n > 0).then_some(s.len() - rest.len() + n)
        };
        let mut s = s;
        for lit in [" rv:", ") Gecko/", " Firefox/"] {
            match step(s, lit) {
                Some(n) => s = &s[n..],
                None => return false,
            }
        }
        s.is_empty()
    }
    let Some(rest) = agent.strip_prefix("Mozilla/") else {
        return false;
    };
    let n = version_len(rest);
    if n == 0 {
        return false;
    }
    let Some(rest) = rest[n..].strip_prefix(" (") else {
        return false;
    };
    let Some(rest) = rest
        .strip_prefix("Mobile;")
        .or_else(|| rest.strip_prefix("Tablet;"))
    else {
        return false;
    };
    // `(?:.*;)?` then the tail, to the end: the tail holds no `;`, so only
    // the last `;` can end the optional group (one pass, not one per `;`).
    tail(rest)
        || rest
            .rfind(';')
            .is_some_and(|j| !rest[..j].contains('\n') && tail(&rest[j + 1..]))
}

/// `KDDI-([^- /;()"']+)`
fn kddi_pattern(agent: &str) -> bool {
    after_each(agent, "KDDI-").any(|rest| {
        rest.chars()
            .next()
            .is_some_and(|c| !"- /;()\"'".contains(c))
    })
}

/// `(?:WILLCOM|DDIPOCKET);[^/]+/([^ /;()]+)`
///
/// `[^/]+` ends at the first `/` after the needle, which is the same for
/// every needle before it: it is searched for again only once passed, so the
/// agent is scanned once per needle.
fn willcom_pattern(agent: &str) -> bool {
    ["WILLCOM;", "DDIPOCKET;"].iter().any(|p| {
        let mut slash: Option<usize> = None;
        for (i, needle) in agent.match_indices(p) {
            let start = i + needle.len();
            let j = match slash {
                Some(j) if j >= start => j,
                _ => match agent[start..].find('/') {
                    Some(k) => start + k,
                    None => return false,
                },
            };
            slash = Some(j);
            let version = agent[j + 1..].chars().next();
            if j > start && version.is_some_and(|c| !" /;()".contains(c)) {
                return true;
            }
        }
        false
    })
}

/// `^(?:Apache-HttpClient/|Jakarta Commons-HttpClient/|Java/)`
fn http_client_pattern(agent: &str) -> bool {
    ["Apache-HttpClient/", "Jakarta Commons-HttpClient/", "Java/"]
        .iter()
        .any(|p| agent.starts_with(p))
}

/// `[- ]HttpClient(/|$)`
fn http_client_other_pattern(agent: &str) -> bool {
    agent.match_indices("HttpClient").any(|(i, m)| {
        let before = i.checked_sub(1).map(|j| agent.as_bytes()[j]);
        let rest = &agent[i + m.len()..];
        matches!(before, Some(b'-' | b' ')) && (rest.is_empty() || rest.starts_with('/'))
    })
}

/// `^(?:PHP|WordPress|CakePHP|PukiWiki|PECL::HTTP)(?:/| |$)`
fn php_pattern(agent: &str) -> bool {
    ["PHP", "WordPress", "CakePHP", "PukiWiki", "PECL::HTTP"]
        .iter()
        .any(|p| {
            agent.strip_prefix(p).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('/') || rest.starts_with(' ')
            })
        })
}

/// `(?:PEAR HTTP_Request|HTTP_Request)(?: class|2)`
fn pear_pattern(agent: &str) -> bool {
    agent.contains("HTTP_Request class") || agent.contains("HTTP_Request2")
}

/// `(?i)rss(?:reader|bar|[-_ /;()]|[ +]*/)`, on the ASCII-lowercased agent.
fn maybe_rss_pattern(lower: &str) -> bool {
    after_each(lower, "rss").any(|rest| {
        rest.starts_with("reader")
            || rest.starts_with("bar")
            || matches!(
                rest.as_bytes().first(),
                Some(b'-' | b'_' | b' ' | b'/' | b';' | b'(' | b')')
            )
            || rest.trim_start_matches([' ', '+']).starts_with('/')
    })
}

/// `(?i)(?:bot|crawler|spider)(?:[-_ ./;@()]|$)`, on the ASCII-lowercased agent.
fn maybe_crawler_pattern(lower: &str) -> bool {
    ["bot", "crawler", "spider"].iter().any(|word| {
        after_each(lower, word).any(|rest| {
            rest.is_empty()
                || matches!(
                    rest.as_bytes()[0],
                    b'-' | b'_' | b' ' | b'.' | b'/' | b';' | b'@' | b'(' | b')'
                )
        })
    })
}

// ------------------------------------------------------------ crawlers

fn try_crawler(agent: &str, r: &mut Family) -> bool {
    challenge_google(agent, r) || challenge_crawlers(agent, r)
}

fn challenge_google(agent: &str, r: &mut Family) -> bool {
    if !agent.contains("Google") {
        return false;
    }
    if agent.contains("compatible; Googlebot") {
        if agent.contains("compatible; Googlebot-Mobile") {
            return populate(r, "GoogleBotMobile");
        }
        return populate(r, "GoogleBot");
    }
    if agent.contains("compatible; AdsBot-Google-Mobile;") {
        return populate(r, "AdsBotGoogleMobile");
    }
    if agent.starts_with("AdsBot-Google") {
        return populate(r, "AdsBotGoogle");
    }
    if agent.contains("Googlebot-Image/") {
        return populate(r, "GoogleBot");
    }
    if agent.contains("Mediapartners-Google")
        && (agent.contains("compatible; Mediapartners-Google") || agent == "Mediapartners-Google")
    {
        return populate(r, "GoogleMediaPartners");
    }
    if agent.contains("Feedfetcher-Google;") {
        return populate(r, "GoogleFeedFetcher");
    }
    if agent.contains("AppEngine-Google") {
        return populate(r, "GoogleAppEngine");
    }
    if agent.contains("Google Web Preview") {
        return populate(r, "GoogleWebPreview");
    }
    false
}

fn challenge_crawlers(agent: &str, r: &mut Family) -> bool {
    if agent.contains("Yahoo")
        || agent.contains("help.yahoo.co.jp/help/jp/")
        || agent.contains("listing.yahoo.co.jp/support/faq/")
    {
        if agent.contains("compatible; Yahoo! Slurp") {
            return populate(r, "YahooSlurp");
        } else if agent.contains("YahooFeedSeekerJp")
            || agent.contains("YahooFeedSeekerBetaJp")
            || agent.contains("crawler (http://listing.yahoo.co.jp/support/faq/")
            || agent.contains("crawler (http://help.yahoo.co.jp/help/jp/")
            || agent.contains("Y!J-BRZ/YATSHA crawler")
            || agent.contains("Y!J-BRY/YATSH crawler")
        {
            return populate(r, "YahooJP");
        } else if agent.contains("Yahoo Pipes") {
            return populate(r, "YahooPipes");
        }
    }
    if agent.contains("msnbot") {
        return populate(r, "msnbot");
    }
    if agent.contains("bingbot") && agent.contains("compatible; bingbot") {
        return populate(r, "bingbot");
    }
    if agent.contains("BingPreview") {
        return populate(r, "BingPreview");
    }
    if agent.contains("Baidu")
        && (agent.contains("compatible; Baiduspider")
            || agent.contains("Baiduspider+")
            || agent.contains("Baiduspider-image+"))
    {
        return populate(r, "Baiduspider");
    }
    if agent.contains("Yeti")
        && (agent.contains("http://help.naver.com/robots")
            || agent.contains("http://help.naver.com/support/robots.html")
            || agent.contains("http://naver.me/bot"))
    {
        return populate(r, "Yeti");
    }
    if agent.contains("FeedBurner/") {
        return populate(r, "FeedBurner");
    }
    if agent.contains("facebookexternalhit") {
        return populate(r, "facebook");
    }
    if agent.contains("Twitterbot/") {
        return populate(r, "twitter");
    }
    if agent.contains("ichiro")
        && (agent.contains("http://help.goo.ne.jp/door/crawler.html")
            || agent.contains("compatible; ichiro/mobile goo;"))
    {
        return populate(r, "goo");
    }
    if agent.contains("gooblogsearch/") {
        return populate(r, "goo");
    }
    if agent.contains("Apple-PubSub") {
        return populate(r, "ApplePubSub");
    }
    if agent.contains("(www.radian6.com/crawler)") {
        return populate(r, "radian6");
    }
    if agent.contains("Genieo/") {
        return populate(r, "Genieo");
    }
    if agent.contains("labs.topsy.com/butterfly/") {
        return populate(r, "topsyButterfly");
    }
    if agent.contains("rogerbot/1.0 (http://www.seomoz.org/dp/rogerbot") {
        return populate(r, "rogerbot");
    }
    if agent.contains("compatible; AhrefsBot/") {
        return populate(r, "AhrefsBot");
    }
    if agent.contains("livedoor FeedFetcher") || agent.contains("Fastladder FeedFetcher") {
        return populate(r, "livedoorFeedFetcher");
    }
    if agent.contains("Hatena Antenna")
        || agent.contains("Hatena Pagetitle Agent")
        || agent.contains("Hatena Diary RSS")
    {
        return populate(r, "Hatena");
    }
    if agent.contains("mixi-check")
        || agent.contains("mixi-crawler")
        || agent.contains("mixi-news-crawler")
    {
        return populate(r, "mixi");
    }
    if agent.contains("Indy Library") && agent.contains("compatible; Indy Library") {
        return populate(r, "IndyLibrary");
    }
    if agent.contains("trendictionbot") {
        return populate(r, "trendictionbot");
    }
    false
}

// ------------------------------------------------------------ browsers

fn try_browser(agent: &str, r: &mut Family) -> bool {
    challenge_msie(agent, r)
        || (edge_pattern(agent) && populate(r, "Edge"))
        || (versioned(agent, "Vivaldi/") && populate(r, "Vivaldi"))
        || (versioned(agent, "FxiOS/") && populate(r, "Firefox"))
        || (agent.contains("YaBrowser/") && yabrowser_pattern(agent) && populate(r, "YaBrowser"))
        || challenge_samsung(agent, r)
        || challenge_safari_chrome(agent, r)
        || (agent.contains("Firefox/") && populate(r, "Firefox"))
        || (agent.contains("Opera") && populate(r, "Opera"))
        || challenge_webview(agent, r)
}

fn challenge_msie(agent: &str, r: &mut Family) -> bool {
    if !agent.contains("compatible; MSIE")
        && !agent.contains("Trident/")
        && !agent.contains("IEMobile")
    {
        return false;
    }
    populate(r, "MSIE")
}

fn challenge_samsung(agent: &str, r: &mut Family) -> bool {
    if !agent.contains("SamsungBrowser/") {
        return false;
    }
    populate(r, "SamsungBrowser");
    true
}

fn challenge_safari_chrome(agent: &str, r: &mut Family) -> bool {
    if agent.contains("Chrome") && agent.contains("wv") {
        return false;
    }
    if !agent.contains("Safari/") {
        return false;
    }
    if chrome_pattern(agent) {
        if versioned(agent, "OPR/") {
            return populate(r, "Opera");
        }
        return populate(r, "Chrome");
    }
    if agent.contains("GSA") && versioned(agent, "GSA/") {
        return populate(r, "GSA");
    }
    populate(r, "Safari")
}

fn challenge_webview(agent: &str, r: &mut Family) -> bool {
    if agent.contains("Chrome") && agent.contains("wv") {
        populate(r, "Webview");
        return true;
    }
    if !webview_pattern(agent) || agent.contains("Safari/") {
        return false;
    }
    populate(r, "Webview")
}

// ------------------------------------------------------------ phones, appliances, tools

fn try_mobilephone(agent: &str, r: &mut Family) -> bool {
    ((agent.contains("DoCoMo") || agent.contains(";FOMA;")) && populate(r, "docomo"))
        || (agent.contains("KDDI-") && populate(r, "au"))
        || ((agent.contains("SoftBank") || agent.contains("Vodafone") || agent.contains("J-PHONE"))
            && populate(r, "SoftBank"))
        || ((agent.contains("WILLCOM") || agent.contains("DDIPOCKET")) && populate(r, "willcom"))
        || challenge_misc_mobilephone(agent, r)
}

fn challenge_misc_mobilephone(agent: &str, r: &mut Family) -> bool {
    if agent.contains("jig browser") {
        return populate(r, "jig");
    }
    if agent.contains("emobile/")
        || agent.contains("OpenBrowser")
        || agent.contains("Browser/Obigo-Browser")
    {
        return populate(r, "emobile");
    }
    if agent.contains("SymbianOS") {
        return populate(r, "SymbianOS");
    }
    if agent.contains("Hatena-Mobile-Gateway/") || agent.contains("livedoor-Mobile-Gateway/") {
        return populate(r, "MobileTranscoder");
    }
    false
}

fn try_appliance(agent: &str, r: &mut Family) -> bool {
    let playstation = if agent.contains("PSP (PlayStation Portable)") {
        Some("PSP")
    } else if agent.contains("PlayStation Vita") {
        Some("PSVita")
    } else if agent.contains("PLAYSTATION 3 ") || agent.contains("PLAYSTATION 3;") {
        Some("PS3")
    } else if agent.contains("PlayStation 4 ") {
        Some("PS4")
    } else {
        None
    };
    // Each woothee challenge stops at its first matching needle, and the
    // search goes on only if that label was missing from the dataset.
    if playstation.is_some_and(|label| populate(r, label)) {
        return true;
    }
    let nintendo = [
        ("Nintendo 3DS;", "Nintendo3DS"),
        ("Nintendo DSi;", "NintendoDSi"),
        ("Nintendo Wii;", "NintendoWii"),
        ("(Nintendo WiiU)", "NintendoWiiU"),
    ]
    .into_iter()
    .find(|(needle, _)| agent.contains(needle));
    if nintendo.is_some_and(|(_, label)| populate(r, label)) {
        return true;
    }
    agent.contains("InettvBrowser/") && populate(r, "DigitalTV")
}

fn challenge_desktop_tools(agent: &str, r: &mut Family) -> bool {
    if agent.contains("AppleSyndication/") {
        return populate(r, "SafariRSSReader");
    }
    if agent.contains("compatible; Google Desktop/") {
        return populate(r, "GoogleDesktop");
    }
    if agent.contains("Windows-RSS-Platform") {
        return populate(r, "WindowsRSSReader");
    }
    false
}

// ------------------------------------------------------------ operating systems

fn try_os(agent: &str, r: &mut Family) -> bool {
    challenge_windows(agent, r)
        || challenge_osx(agent, r)
        || (agent.contains("Linux")
            && set_os(
                r,
                data(if agent.contains("Android") {
                    "Android"
                } else {
                    "Linux"
                }),
            ))
        || challenge_smartphone(agent, r)
        || challenge_mobilephone(agent, r)
        || challenge_appliance(agent, r)
        || challenge_misc_os(agent, r)
}

fn challenge_windows(agent: &str, r: &mut Family) -> bool {
    if !agent.contains("Windows") {
        return false;
    }
    if agent.contains("Xbox") {
        if agent.contains("Xbox; Xbox One)") {
            return populate(r, "XboxOne");
        }
        return populate(r, "Xbox360");
    }
    let Some(win) = data("Win") else {
        return false;
    };
    let Some(version) = windows_version(agent) else {
        r.category = win.category;
        r.os = win.name;
        return true;
    };
    let label = match version {
        "NT 10.0" => "Win10",
        "NT 6.3" => "Win8.1",
        "NT 6.2" => "Win8",
        "NT 6.1" => "Win7",
        "NT 6.0" => "WinVista",
        "NT 5.1" => "WinXP",
        "NT 5.0" => "Win2000",
        "NT 4.0" => "WinNT4",
        "98" => "Win98",
        "95" => "Win95",
        "CE" => "WinCE",
        _ if win_phone_pattern(version) => "WinPhone",
        _ => return false,
    };
    set_os(r, data(label))
}

fn challenge_osx(agent: &str, r: &mut Family) -> bool {
    if !agent.contains("Mac OS X") {
        return false;
    }
    let mut d = data("OSX");
    if d.is_none() {
        return false;
    }
    if agent.contains("like Mac OS X") {
        if agent.contains("iPhone;") {
            d = data("iPhone");
        } else if agent.contains("iPad;") {
            d = data("iPad");
        } else if agent.contains("iPod") {
            d = data("iPod");
        }
    }
    set_os(r, d)
}

fn challenge_smartphone(agent: &str, r: &mut Family) -> bool {
    let mut d = if agent.contains("iPhone") {
        data("iPhone")
    } else if agent.contains("iPad") {
        data("iPad")
    } else if agent.contains("iPod") {
        data("iPod")
    } else if agent.contains("Android") {
        data("Android")
    } else if agent.contains("CFNetwork") {
        data("iOS")
    } else if agent.contains("BB10") {
        data("BlackBerry10")
    } else if agent.contains("BlackBerry") {
        data("BlackBerry")
    } else {
        None
    };
    let Some(firefox) = data("Firefox") else {
        return false;
    };
    if r.name == firefox.name && firefox_os_pattern(agent) {
        d = data("FirefoxOS");
    }
    set_os(r, d)
}

fn challenge_mobilephone(agent: &str, r: &mut Family) -> bool {
    if agent.contains("KDDI-") && kddi_pattern(agent) {
        return set_device_os(r, data("au"));
    }
    if (agent.contains("WILLCOM") || agent.contains("DDIPOCKET")) && willcom_pattern(agent) {
        return set_device_os(r, data("willcom"));
    }
    if agent.contains("SymbianOS") {
        return set_device_os(r, data("SymbianOS"));
    }
    // woothee fills in the transcoder here and still answers "not an OS",
    // so the search goes on with the name set.
    if agent.contains("Google Wireless Transcoder") && !populate(r, "MobileTranscoder") {
        return false;
    }
    if agent.contains("Naver Transcoder") && !populate(r, "MobileTranscoder") {
        return false;
    }
    false
}

fn challenge_appliance(agent: &str, r: &mut Family) -> bool {
    if agent.contains("Nintendo DSi;") {
        return set_device_os(r, data("NintendoDSi"));
    }
    if agent.contains("Nintendo Wii;") {
        return set_device_os(r, data("NintendoWii"));
    }
    false
}

fn challenge_misc_os(agent: &str, r: &mut Family) -> bool {
    let label = if agent.contains("(Win98;") {
        "Win98"
    } else if agent.contains("Macintosh; U; PPC;") || agent.contains("Mac_PowerPC") {
        "MacOS"
    } else if agent.contains("X11; FreeBSD ") {
        "BSD"
    } else if agent.contains("X11; CrOS ") {
        "ChromeOS"
    } else {
        return false;
    };
    set_os(r, data(label))
}

// ------------------------------------------------------------ rare cases

fn try_rare_cases(agent: &str, r: &mut Family) -> bool {
    // Like an iPhone, but only the OS and category are filled in.
    if agent.contains("CFNetwork/") && set_os(r, data("iOS")) {
        return true;
    }
    if agent.contains("Sleipnir/") {
        populate(r, "Sleipnir");
        if set_os(r, data("Win")) {
            return true;
        }
    }
    if challenge_http_library(agent) && populate(r, "HTTPLibrary") {
        return true;
    }
    let lower = agent.to_ascii_lowercase();
    if (maybe_rss_pattern(&lower)
        || agent.to_lowercase().contains("headline-reader")
        || agent.contains("cococ/"))
        && populate(r, "VariousRSSReader")
    {
        return true;
    }
    if maybe_crawler_pattern(&lower)
        || [
            "Rome Client ",
            "UnwindFetchor/",
            "ia_archiver ",
            "Summify ",
            "PostRank/",
        ]
        .iter()
        .any(|p| agent.contains(p))
        || agent.contains("ASP-Ranker Feed Crawler")
        || ["feedparser", "feed parser", "webparser", "web parser"]
            .iter()
            .any(|p| lower.contains(p))
        || lower.contains("watchdog")
        || lower.contains("watch dog")
    {
        return populate(r, "VariousCrawler");
    }
    false
}

fn challenge_http_library(agent: &str) -> bool {
    http_client_pattern(agent)
        || http_client_other_pattern(agent)
        || agent.contains("Java(TM) 2 Runtime Environment,")
        || agent.starts_with("Wget/")
        || [
            "libwww-perl",
            "WWW-Mechanize",
            "LWP::Simple",
            "LWP ",
            "lwp-trivial",
        ]
        .iter()
        .any(|p| agent.starts_with(p))
        || ["Ruby", "feedzirra", "Typhoeus"]
            .iter()
            .any(|p| agent.starts_with(p))
        || agent.starts_with("Python-urllib/")
        || agent.starts_with("Twisted ")
        || php_pattern(agent)
        || pear_pattern(agent)
        || agent.starts_with("curl/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_browsers_get_woothee_names() {
        let chrome = parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36").unwrap();
        assert_eq!(
            (chrome.name, chrome.os, chrome.category),
            ("Chrome", "Windows 10", "pc")
        );
        let iphone = parse("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1").unwrap();
        assert_eq!((iphone.name, iphone.os), ("Safari", "iPhone"));
        let bot = parse("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
            .unwrap();
        assert_eq!(bot.category, "crawler");
        assert_eq!(parse(""), Some(Family::UNKNOWN));
    }

    #[test]
    fn the_hand_written_patterns_match_like_their_regexes() {
        assert_eq!(windows_version("x (Windows NT 6.1; WOW64)"), Some("NT 6.1"));
        assert_eq!(windows_version("Windows NT 6.1"), None);
        assert!(win_phone_pattern("Phone OS 7.5") && win_phone_pattern("Phone 8.0"));
        assert!(!win_phone_pattern("Phone OS"));
        assert!(firefox_os_pattern(
            "Mozilla/5.0 (Mobile; rv:18.0) Gecko/18.0 Firefox/18.0"
        ));
        assert!(firefox_os_pattern(
            "Mozilla/5.0 (Tablet; ZTE; x; rv:26.0) Gecko/26.0 Firefox/26.0"
        ));
        assert!(!firefox_os_pattern(
            "Mozilla/5.0 (Mobile; rv:18.0) Gecko/18.0 Firefox/18.0 x"
        ));
        assert!(yabrowser_pattern("YaBrowser/17.4.1.919 Yowser"));
        assert!(!yabrowser_pattern("YaBrowser/17.4.1"));
        assert!(kddi_pattern("KDDI-SA31 UP.Browser") && !kddi_pattern("KDDI-/x"));
        assert!(willcom_pattern("(WILLCOM;KYOCERA/WX310K/2;1.2.2.16"));
        assert!(maybe_rss_pattern("my rss+ +/x") && !maybe_rss_pattern("rssfeed"));
    }
}
