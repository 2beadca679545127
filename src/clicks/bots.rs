//! Bot detection with the answers of `isbot` 0.1.3, without a regex engine.
//!
//! isbot joins 348 regular expressions (its `bot_regex_patterns.txt`, MIT
//! licensed, copied below as data) into one regex and matches the
//! ASCII-lowercased agent against it. Compiling that regex cost every Spin
//! instance milliseconds, and the regex engine was most of the component's
//! size. The patterns are almost all literals, so here:
//!
//! * 277 substrings are searched for one by one (`str::contains`): about
//!   3 µs natively for a browser's agent, and no automaton to build per
//!   instance (an Aho-Corasick NFA over them took 0.3–0.5 ms natively and
//!   ~0.8 ms in the component, for every instance, while
//!   `clicks::Agent::of` remembers each instance's answers, so an agent is
//!   searched once per instance);
//! * 51 `^literal` patterns are prefix checks;
//! * 11 literals with `.` wildcards and the 9 patterns with real regex
//!   syntax are matched by small hand-written functions.
//!
//! The answers are identical to isbot's for every agent an HTTP header can
//! carry as text (visible ASCII and tab): `tests/classifier_corpus.rs`
//! checks that on isbot's own fixture lists and our test agents.

/// Whether isbot 0.1.3 calls `user_agent` a bot.
pub fn is_bot(user_agent: &str) -> bool {
    let ua = user_agent.to_ascii_lowercase();
    PREFIXES.iter().any(|p| ua.starts_with(p))
        || CONTAINS.iter().any(|p| ua.contains(p))
        || DOTTED.iter().any(|p| dotted_match(p, &ua))
        || custom(&ua)
}

/// A regex of literal bytes and `.` (any character but `\n`), `\.` being a
/// literal dot, optionally anchored with `^`.
fn dotted_match(pattern: &str, ua: &str) -> bool {
    let (anchored, pattern) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let matches_at = |start: usize| {
        let mut rest = &ua[start..];
        let mut p = pattern.as_bytes();
        while let Some((&b, tail)) = p.split_first() {
            match b {
                b'.' => {
                    let mut chars = rest.chars();
                    match chars.next() {
                        Some(c) if c != '\n' => rest = chars.as_str(),
                        _ => return false,
                    }
                    p = tail;
                }
                b'\\' => {
                    // `\.`: the only escape these patterns use.
                    let Some(r) = rest.strip_prefix('.') else {
                        return false;
                    };
                    rest = r;
                    p = &tail[1..];
                }
                // An ASCII byte: slicing after it stays on a char boundary.
                _ if rest.as_bytes().first() == Some(&b) => {
                    rest = &rest[1..];
                    p = tail;
                }
                _ => return false,
            }
        }
        true
    };
    if anchored {
        matches_at(0)
    } else {
        ua.char_indices().any(|(i, _)| matches_at(i))
    }
}

/// What follows each occurrence of `needle` (which never overlaps itself).
fn after_each<'a>(haystack: &'a str, needle: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    haystack
        .match_indices(needle)
        .map(move |(i, _)| &haystack[i + needle.len()..])
}

fn starts_with_digit(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

fn starts_with_space_or(s: &str, other: char) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_whitespace() || c == other)
}

/// The patterns of [`CUSTOM`], in order, on the lowercased agent.
fn custom(ua: &str) -> bool {
    // `[ ]+bot`
    ua.contains(" bot")
        // `^[a-z.0-9/ \-_]*bot`: "bot" inside the leading run of those bytes.
        || {
            let run = ua
                .bytes()
                .take_while(|b| matches!(b, b'a'..=b'z' | b'.' | b'0'..=b'9' | b'/' | b' ' | b'-' | b'_'))
                .count();
            ua[..run].contains("bot")
        }
        // `^fdm[\s/]\d`
        || ua.strip_prefix("fdm").is_some_and(|rest| {
            let mut chars = rest.chars();
            chars.next().is_some_and(|c| c.is_whitespace() || c == '/')
                && starts_with_digit(chars.as_str())
        })
        // `^viber$`
        || ua == "viber"
        // `^whatsapp\+?/[0-9\.]+ [a-z]$`
        || ua.strip_prefix("whatsapp").is_some_and(|rest| {
            let rest = rest.strip_prefix('+').unwrap_or(rest);
            rest.strip_prefix('/').is_some_and(|rest| {
                let version = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
                let tail = &rest.as_bytes()[version..];
                version > 0 && tail.len() == 2 && tail[0] == b' ' && tail[1].is_ascii_lowercase()
            })
        })
        // `bot($|[/\);-]+)`
        || after_each(ua, "bot").any(|rest| {
            rest.is_empty() || matches!(rest.as_bytes()[0], b'/' | b')' | b';' | b'-')
        })
        // `daum(oa)?[ /][0-9]`
        || after_each(ua, "daum").any(|rest| {
            let sep_digit = |s: &str| {
                matches!(s.as_bytes().first(), Some(b' ' | b'/')) && starts_with_digit(&s[1..])
            };
            sep_digit(rest) || rest.strip_prefix("oa").is_some_and(sep_digit)
        })
        // `http[s]?://`
        || ua.contains("http://")
        || ua.contains("https://")
        // `ptst[\s/]`
        || after_each(ua, "ptst").any(|rest| starts_with_space_or(rest, '/'))
}

/// Patterns without metacharacters (`\.` unescaped): a substring anywhere.
pub const CONTAINS: &[&str] = &[
    "a6-indexer",
    "aboundex",
    "adbeat",
    "addthis",
    "admantx",
    "adscanner",
    "ahc/",
    "aiohttp",
    "amazon cloudfront",
    "analyzer",
    "anyevent",
    "apachebench/",
    "apercite",
    "apis-google",
    "appengine-google",
    "appinsights",
    "arabot",
    "arachni",
    "archiver",
    "axios",
    "baidu-yunguance",
    "banca caboto",
    "barkrowler",
    "bazqux",
    "biglotron",
    "bingpreview/",
    "binlar",
    "bit.ly/",
    "brandverity",
    "browsershots",
    "btwebclient",
    "bubing",
    "buck/",
    "catchpoint",
    "cc metadata scaper",
    "centuryb",
    "changedetection",
    "check_http",
    "checker",
    "checkmarknetwork/",
    "chrome-lighthouse",
    "cincraw",
    "clickagy",
    "cloudflare",
    "coccoc",
    "contextad bot",
    "convera",
    "crawler",
    "curious george",
    "cyberpatrol",
    "dareboost",
    "datadog agent",
    "datafeedwatch",
    "datanyze",
    "daum/",
    "dcrawl",
    "deusu/",
    "digg deeper",
    "disqus",
    "dmbrowser",
    "domainreanimator",
    "domains project/",
    "drupact",
    "duplexweb-google",
    "ec2linkfinder",
    "electricmonk",
    "embedly",
    "eright",
    "evc-batch",
    "extractor",
    "ezid",
    "ezooms",
    "facebookexternalhit",
    "fedoraplanet",
    "feedly",
    "feedspot",
    "feedvalidator",
    "fetcher",
    "findlink",
    "findthatfile",
    "flamingo_searchengine",
    "flipboardproxy",
    "fluffy",
    "freshrss",
    "friendica",
    "g2 web services",
    "genieo",
    "gigablast",
    "go-http-client",
    "gobuster",
    "gomezagent",
    "google favicon",
    "google page speed insight",
    "google search",
    "google web preview",
    "google-",
    "googleimageproxy",
    "goose/",
    "grouphigh/",
    "guzzlehttp",
    "gwene",
    "hatena",
    "headlesschrome",
    "help@dataminr.com",
    "heritrix",
    "http_get",
    "httpclient",
    "httpunit",
    "httpurlconnection",
    "httpx",
    "httrack",
    "hubspot",
    "ichiro",
    "indeedbot",
    "inoreader.com",
    "integromedb",
    "internetarchive",
    "ips-agent",
    "iskanie",
    "jetslide",
    "jetty",
    "kaspersky",
    "kouio.com",
    "larbin",
    "libwww-perl",
    "linkdex",
    "lipperhey",
    "livelapbot",
    "ltx71",
    "m_bot_tab",
    "mappydata",
    "mastodon",
    "mediapartners-google",
    "megaindex",
    "meltwaternews",
    "metauri",
    "miniflux/",
    "mixnodecache/",
    "mnogosearch",
    "moatbot",
    "monitoring",
    "moreover",
    "muckrack",
    "netcraft",
    "netresearchserver",
    "netsystemsresearch",
    "netvibes",
    "newsblur",
    "newsharecounts",
    "newspaper/",
    "nextcloud",
    "nmap scripting engine",
    "node-fetch/",
    "nutch",
    "nuzzel",
    "okhttp",
    "omgili",
    "optimizer",
    "outbrain",
    "page2rss",
    "pagepeeker/",
    "pandalytics",
    "panscient",
    "pcore-http",
    "phantomjs",
    "phpcrawl",
    "pingdom",
    "pocketparser",
    "postrank",
    "proximic",
    "prtg network monitor",
    "pulsepoint",
    "pycurl",
    "python-requests",
    "python-urllib",
    "qihoobot",
    "qqdownload",
    "qwantify",
    "rivva",
    "robot",
    "robozilla",
    "scoutjet",
    "scraper",
    "scrapy",
    "searchatlas",
    "seewithkids",
    "seobility",
    "seokicks",
    "seolizer",
    "seoscanners",
    "seznam",
    "simplepie",
    "site24x7",
    "sixy.ch",
    "skypeuripreview",
    "slack-imgproxy",
    "slurp",
    "snacktory",
    "sogou",
    "sparkler/",
    "spider",
    "sputnik",
    "statically-",
    "staticlogin:productcbox",
    "statuscake",
    "summify",
    "superfeedr",
    "supybot",
    "swimgbot",
    "sysomos",
    "teoma",
    "thinkchaos",
    "thinklab",
    "tineye",
    "tiny tiny rss",
    "tracemyfile",
    "transcoder",
    "trendsmapresolver",
    "trove",
    "turbotabbee",
    "tweetedtimes",
    "twingly",
    "twurly",
    "um-ln",
    "unshortenit",
    "upflow",
    "uptime",
    "validator.nu",
    "vigil/",
    "virustotal",
    "vkshare",
    "voilabot",
    "w3c-checklink",
    "w3c-mobileok",
    "w3c_css_validator",
    "w3c_unicorn",
    "w3c_validator",
    "webdatastats",
    "webmon ",
    "webreaper",
    "webthumbnail",
    "wesee:search",
    "wget",
    "whatcms/",
    "wordupinfosearch",
    "wotbox",
    "xenu link sleuth",
    "y!j",
    "yahoo link preview",
    "yak/",
    "yandexadnet",
    "yandexblogs",
    "yandexcalendar",
    "yandexdirect",
    "yandexfavicons",
    "yandexfordomain",
    "yandeximageresizer",
    "yandeximages",
    "yandexmarket",
    "yandexmedia",
    "yandexmetrika",
    "yandexnews",
    "yandexontodb",
    "yandexpartner",
    "yandexrca",
    "yandexsearchshop",
    "yandexsitelinks",
    "yandextracker",
    "yandexturbo",
    "yandexverticals",
    "yandexvertis",
    "yandexvideo",
    "yandexwebmaster",
    "yanga",
    "yeti",
    "zabbix",
    "zgrab",
];

/// `^literal` patterns: the agent starts with it.
pub const PREFIXES: &[&str] = &[
    "ad muncher",
    "avsdevicesdk/",
    "bidtellect/",
    "blackboard",
    "blogtrottr",
    "boardreader",
    "castro",
    "collectd",
    "comodo",
    "cortex",
    "curl",
    "ddg_android",
    "duckduckgo",
    "email",
    "expanse",
    "ez publish",
    "feedbin",
    "fever",
    "holmes",
    "java/",
    "javascript",
    "lcc ",
    "lua-resty-http",
    "navermailapp",
    "netlyzer fastprobe",
    "netsurf",
    "newsgator",
    "ning/",
    "octopus",
    "pagepeeker",
    "pagething",
    "php",
    "php-curl-class",
    "postmanruntime",
    "prittorrent",
    "rainmeter",
    "ramblermail",
    "sentry/",
    "server density",
    "sitesucker",
    "snapchat",
    "spotify/",
    "sprinklr",
    "the knowledge ai",
    "unityplayer",
    "websitepulse",
    "windows-rss",
    "wsr-agent",
    "yahoo:linkexpander",
    "yahoocachesystem",
    "zooshot",
];

/// Literals with `.` wildcards (any character but `\n`), as isbot writes them; `^` anchors.
pub const DOTTED: &[&str] = &[
    "^2ip.ru",
    "collection@infegy.com",
    "dataprovider.com",
    "europarchive.org",
    "g00g1e.net",
    "grub.org",
    "pr-cy.ru",
    "siteexplorer.info",
    "siteimprove.com",
    "theoldreader.com",
    "traackr.com",
];

/// The remaining patterns, each matched by a hand-written function in `custom` (same order).
pub const CUSTOM: &[&str] = &[
    "[ ]+bot",
    "^[a-z.0-9/ \\-_]*bot",
    "^fdm[\\s/]\\d",
    "^viber$",
    "^whatsapp\\+?/[0-9\\.]+ [a-z]$",
    "bot($|[/\\);-]+)",
    "daum(oa)?[ /][0-9]",
    "http[s]?://",
    "ptst[\\s/]",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_kinds_of_pattern_match_what_isbot_matches() {
        for bot in [
            "Googlebot/2.1",
            "curl/8.5.0",
            "Mozilla/5.0 (compatible; DataProvider.com)",
            "mozilla/5.0 (compatible; dataproviderxcom)",
            "WhatsApp/2.23.20.0 A",
            "Mozilla/5.0 (compatible; Daum/4.1; +http://cs.daum.net/faq/15/4118.html?faqId=28966)",
            "something ending in a word bot",
            "LCC (+http://corpora.informatik.uni-leipzig.de/crawler_faq.html)",
            "viber",
            "fdm 3.x",
        ] {
            assert!(is_bot(bot), "{bot}");
        }
        for human in [
            "",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            "WhatsApp/2.23.20.0 AB",
            "viber 1",
            "Mozilla/5.0 (abbot 1)",
        ] {
            assert!(!is_bot(human), "{human}");
        }
    }

    #[test]
    fn every_pattern_is_in_exactly_one_table() {
        let total = CONTAINS.len() + PREFIXES.len() + DOTTED.len() + CUSTOM.len();
        assert_eq!(total, 348);
        assert_eq!(
            CUSTOM.len(),
            9,
            "one hand-written matcher per custom pattern"
        );
    }
}
