//! The admin races, each forced: the operation under
//! test runs over a key-value store that, at exactly one of its calls, first
//! runs the competing operation to completion (over the same stores). Then a
//! link's key-value record must be exactly what its registry row says: no
//! record without a row, and never an older link's record over a newer one.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::*;
use crate::links::{OwnOrigins, TargetUrl, random_slugs};
use crate::native::{MemoryKv, SqliteStore};

type Competitor = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Where in the operation under test the competitor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    /// Just before its first key-value `set` reaches the store.
    BeforeSet,
    /// Just after its first key-value `delete` returned.
    AfterDelete,
}

/// A key-value store that runs a competing operation once, at `point`.
struct Paused {
    kv: MemoryKv,
    point: Point,
    competitor: Mutex<Option<Competitor>>,
}

impl Paused {
    async fn compete(&self, here: Point) {
        if here != self.point {
            return;
        }
        // Taken out first: no lock is held while it runs.
        let competitor = self.competitor.lock().unwrap().take();
        if let Some(competitor) = competitor {
            competitor().await;
        }
    }

    fn ran(&self) -> bool {
        self.competitor.lock().unwrap().is_none()
    }
}

#[async_trait::async_trait]
impl KvStore for Paused {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv.get(key).await
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.compete(Point::BeforeSet).await;
        self.kv.set(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let deleted = self.kv.delete(key).await;
        self.compete(Point::AfterDelete).await;
        deleted
    }
}

const ROW: Statement = Statement {
    sql: "SELECT count(*) FROM links WHERE slug = ?1",
    operation: "SELECT",
    table: "links",
};

struct Fixture {
    _dir: tempfile::TempDir,
    kv: MemoryKv,
    sql: Arc<SqliteStore>,
    slugs: SlugSource,
}

fn base() -> OwnOrigins {
    OwnOrigins::new(&url::Url::parse("https://sho.rt").unwrap(), &[]).unwrap()
}

fn new_link(slug: &str, url: &str) -> NewLink {
    NewLink {
        url: TargetUrl::parse(url, &base()).unwrap(),
        slug: Some(Slug::parse(slug).unwrap()),
        expires_at: None,
        options: Default::default(),
        tags: Default::default(),
    }
}

fn retarget(url: &str) -> LinkPatch {
    LinkPatch {
        url: Some(TargetUrl::parse(url, &base()).unwrap()),
        ..Default::default()
    }
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sql = Arc::new(SqliteStore::open(dir.path().join("l.db")).unwrap());
        crate::migrations::run(sql.as_ref(), 0).await.unwrap();
        Self {
            _dir: dir,
            kv: MemoryKv::default(),
            sql,
            slugs: random_slugs(),
        }
    }

    fn links(&self) -> Links<'_> {
        Links {
            kv: &self.kv,
            sql: self.sql.as_ref(),
            slugs: &self.slugs,
        }
    }

    fn over<'a>(&'a self, kv: &'a Paused) -> Links<'a> {
        Links {
            kv,
            sql: self.sql.as_ref(),
            slugs: &self.slugs,
        }
    }

    /// A store that runs `competitor` (given the plain link storage) at `point`.
    fn paused<F>(&self, point: Point, competitor: F) -> Paused
    where
        F: for<'a> FnOnce(Links<'a>) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>
            + Send
            + 'static,
    {
        let (kv, sql, slugs) = (self.kv.clone(), self.sql.clone(), self.slugs.clone());
        let run: Competitor = Box::new(move || {
            Box::pin(async move {
                let links = Links {
                    kv: &kv,
                    sql: sql.as_ref(),
                    slugs: &slugs,
                };
                competitor(links).await;
            })
        });
        Paused {
            kv: self.kv.clone(),
            point,
            competitor: Mutex::new(Some(run)),
        }
    }

    /// What the list (the registry) and a read (key-value) say of `slug`.
    async fn seen(&self, slug: &str) -> (bool, Option<Link>) {
        let slug = Slug::parse(slug).unwrap();
        let rows = self.sql.execute(&ROW, vec![slug.as_str().into()]).await;
        let listed = rows.unwrap().scalar_i64() == 1;
        (listed, self.links().get(&slug).await.unwrap())
    }
}

const T0: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

#[tokio::test]
async fn an_update_racing_a_delete_leaves_no_record_behind() {
    let f = Fixture::new().await;
    f.links()
        .create(new_link("racy", "https://e.com/"), 7, T0)
        .await
        .unwrap();
    // The edit is under way (its registry step done) when the delete runs.
    let kv = f.paused(Point::BeforeSet, |links| {
        Box::pin(async move {
            assert!(links.delete(&Slug::parse("racy").unwrap()).await.unwrap());
        })
    });
    let slug = Slug::parse("racy").unwrap();
    let edited = f.over(&kv).update(&slug, retarget("https://f.com/")).await;
    assert!(kv.ran());
    assert_eq!(edited.unwrap(), None, "the delete wins");
    assert_eq!(f.seen("racy").await, (false, None));
}

/// A key-value store that stops at `point` once: it says so on `arrived`,
/// then waits for `proceed` (for interleavings that need both operations
/// paused half-way).
struct Gated {
    kv: MemoryKv,
    point: Point,
    gate: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

impl Gated {
    fn new(kv: &MemoryKv, point: Point) -> (Self, oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (arrived_tx, arrived_rx) = oneshot::channel();
        let (proceed_tx, proceed_rx) = oneshot::channel();
        let gated = Self {
            kv: kv.clone(),
            point,
            gate: Mutex::new(Some((arrived_tx, proceed_rx))),
        };
        (gated, arrived_rx, proceed_tx)
    }

    async fn stop(&self, here: Point) {
        if here != self.point {
            return;
        }
        let gate = self.gate.lock().unwrap().take();
        if let Some((arrived, proceed)) = gate {
            let _ = arrived.send(());
            let _ = proceed.await;
        }
    }
}

#[async_trait::async_trait]
impl KvStore for Gated {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv.get(key).await
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.stop(Point::BeforeSet).await;
        self.kv.set(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let deleted = self.kv.delete(key).await;
        self.stop(Point::AfterDelete).await;
        deleted
    }
}

#[tokio::test]
async fn an_update_and_a_delete_interleaved_leave_no_record_behind() {
    let f = Fixture::new().await;
    f.links()
        .create(new_link("racy", "https://e.com/"), 7, T0)
        .await
        .unwrap();
    let slug = Slug::parse("racy").unwrap();
    // The edit has read and checked the link and stops before its write;
    // the delete then starts, and stops after its key-value delete; the
    // edit writes and finishes; then the delete finishes.
    let (edit_kv, edit_stopped, edit_go) = Gated::new(&f.kv, Point::BeforeSet);
    let (delete_kv, delete_stopped, delete_go) = Gated::new(&f.kv, Point::AfterDelete);
    let (edit_done_tx, edit_done) = oneshot::channel();
    let sql = f.sql.as_ref();
    let (editing, deleting) = (
        Links {
            kv: &edit_kv,
            sql,
            slugs: &f.slugs,
        },
        Links {
            kv: &delete_kv,
            sql,
            slugs: &f.slugs,
        },
    );
    let edit = async {
        let edited = editing.update(&slug, retarget("https://f.com/")).await;
        let _ = edit_done_tx.send(());
        edited.unwrap()
    };
    let delete = async {
        edit_stopped.await.unwrap();
        deleting.delete(&slug).await.unwrap()
    };
    let conduct = async {
        delete_stopped.await.unwrap();
        edit_go.send(()).unwrap();
        edit_done.await.unwrap();
        delete_go.send(()).unwrap();
    };
    let (_edited, deleted, ()) = tokio::join!(edit, delete, conduct);
    assert!(deleted);
    assert_eq!(f.seen("racy").await, (false, None), "deleted means gone");
}

#[tokio::test]
async fn a_create_whose_claim_a_delete_removes_leaves_no_record_behind() {
    let f = Fixture::new().await;
    // The create has claimed the slug, not yet written its record, when the
    // delete runs (and finds the claim to delete).
    let kv = f.paused(Point::BeforeSet, |links| {
        Box::pin(async move {
            assert!(links.delete(&Slug::parse("fresh").unwrap()).await.unwrap());
        })
    });
    let created = f
        .over(&kv)
        .create(new_link("fresh", "https://e.com/"), 7, T0)
        .await;
    assert!(kv.ran());
    assert!(created.is_ok(), "created, then deleted: {created:?}");
    assert_eq!(f.seen("fresh").await, (false, None));
    // And the slug is free again.
    f.links()
        .create(new_link("fresh", "https://g.com/"), 7, T0)
        .await
        .unwrap();
    let (listed, read) = f.seen("fresh").await;
    assert!(listed);
    assert_eq!(read.unwrap().url, "https://g.com/");
}

#[tokio::test]
async fn an_update_racing_a_delete_and_create_again_never_overwrites_the_new_link() {
    let f = Fixture::new().await;
    f.links()
        .create(new_link("again", "https://old.example/"), 7, T0)
        .await
        .unwrap();
    // The edit of the old link is under way when the slug is deleted and
    // created again (same second, same slug: only the contents differ).
    let kv = f.paused(Point::BeforeSet, |links| {
        Box::pin(async move {
            let slug = Slug::parse("again").unwrap();
            assert!(links.delete(&slug).await.unwrap());
            links
                .create(new_link("again", "https://new.example/"), 7, T0)
                .await
                .unwrap();
        })
    });
    let slug = Slug::parse("again").unwrap();
    let _ = f
        .over(&kv)
        .update(&slug, retarget("https://edited.example/"))
        .await
        .unwrap();
    assert!(kv.ran());
    let (listed, read) = f.seen("again").await;
    assert!(listed);
    assert_eq!(
        read.unwrap().url,
        "https://new.example/",
        "the new link stays"
    );
}

#[tokio::test]
async fn an_update_finishing_after_a_delete_a_create_and_an_edit_leaves_the_latest_edit() {
    let f = Fixture::new().await;
    f.links()
        .create(new_link("again", "https://old.example/"), 7, T0)
        .await
        .unwrap();
    // A second edit is paused inside the first one's write; the first's
    // write runs after the slug was deleted and created again.
    let kv = f.paused(Point::BeforeSet, |links| {
        Box::pin(async move {
            let slug = Slug::parse("again").unwrap();
            assert!(links.delete(&slug).await.unwrap());
            links
                .create(new_link("again", "https://new.example/"), 7, T0)
                .await
                .unwrap();
            let edited = links
                .update(&slug, retarget("https://second.example/"))
                .await
                .unwrap();
            assert_eq!(edited.unwrap().url, "https://second.example/");
        })
    });
    let slug = Slug::parse("again").unwrap();
    let _ = f
        .over(&kv)
        .update(&slug, retarget("https://first.example/"))
        .await
        .unwrap();
    assert!(kv.ran());
    let (listed, read) = f.seen("again").await;
    assert!(listed);
    assert_eq!(read.unwrap().url, "https://second.example/");
}

#[tokio::test]
async fn a_link_registered_by_an_older_version_is_adopted_by_its_first_edit() {
    let f = Fixture::new().await;
    // An older version's create: a row without the record's copy.
    let legacy = Statement {
        sql: "INSERT INTO links (slug, created_at) VALUES ('older', 0)",
        operation: "INSERT",
        table: "links",
    };
    f.sql.execute(&legacy, vec![]).await.unwrap();
    let link = Link {
        slug: Slug::parse("older").unwrap(),
        url: "https://e.com/".into(),
        created_at: T0,
        expires_at: None,
        forward_query: true,
        max_clicks: None,
        valid_from: None,
        rules: Vec::new(),
        tags: Default::default(),
    };
    f.kv.set("link:older", &encode(&link).unwrap())
        .await
        .unwrap();
    let slug = Slug::parse("older").unwrap();
    let edited = f.links().update(&slug, retarget("https://f.com/")).await;
    assert_eq!(edited.unwrap().unwrap().url, "https://f.com/");
    let owner = f.links().owner(&slug).await.unwrap();
    let Owner::Record(copy) = owner else {
        panic!("adopted: {owner:?}");
    };
    assert_eq!(decode(&slug, &copy).unwrap().url, "https://f.com/");
    assert_eq!(f.seen("older").await.1.unwrap().url, "https://f.com/");
    assert!(f.links().delete(&slug).await.unwrap());
    assert_eq!(f.seen("older").await, (false, None));
}

#[tokio::test]
async fn two_edits_racing_on_one_link_both_take_effect() {
    let f = Fixture::new().await;
    f.links()
        .create(new_link("both", "https://e.com/"), 7, T0)
        .await
        .unwrap();
    let later = T0 + time::Duration::days(1);
    // The first edit (the URL) stops before its write while a second edit
    // (the expiry) runs whole.
    let kv = f.paused(Point::BeforeSet, move |links| {
        Box::pin(async move {
            let expiry = LinkPatch {
                expires_at: Some(Some(later)),
                ..Default::default()
            };
            let slug = Slug::parse("both").unwrap();
            links.update(&slug, expiry).await.unwrap().unwrap();
        })
    });
    let slug = Slug::parse("both").unwrap();
    f.over(&kv)
        .update(&slug, retarget("https://f.com/"))
        .await
        .unwrap()
        .unwrap();
    assert!(kv.ran());
    let link = f.seen("both").await.1.unwrap();
    assert_eq!(
        (link.url.as_str(), link.expires_at),
        ("https://f.com/", Some(later)),
        "no lost update"
    );
}
