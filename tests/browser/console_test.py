#!/usr/bin/env python3
"""The web console in a real headless Chromium against a real `spin up`.

Starts the built component under `spin up` on a free loopback port (with
`public_base_url` set to that address, so short URLs work in the browser),
a small landing-page server on another loopback port (the links' targets),
and Chromium through chromedriver (Selenium). Then, as a user would: signs
in (a wrong token first), creates a link, finds it in the list and by search,
follows the short URL, sees the click on the link's page and in the list's
clicks column, sorts the list by clicks and filters it by tag (the link is
created with tags, its tags are edited), decodes the QR code
(the downloaded SVG rasterised by the page into a PNG, and a screenshot of
the shown SVG) with zbarimg back to
the short URL, edits the target and sees the redirect change, deletes the link
behind its confirmation, imports a CSV (a dry run first), downloads both
exports, makes a viewer key on the keys page and signs in with it (no create,
edit, delete, import or keys offered), revokes it, and signs out. On the way,
a second link gets a click limit and a rule in the rules editor, is followed
through the rule (its query forwarded) until the limit ends it, is edited
back, and an orphan visit shows on the orphan-visits page. The browser log must hold no error
except the 401 of the wrong token. Screenshots go to
target/console-screenshots/.

Needs: spin on PATH, the component built (cargo build --target wasm32-wasip2
--release), chromium + chromium-driver + zbar-tools (Debian), selenium (PyPI).
Set SHORTENER_E2E_NO_OTEL=1 for a component built with --no-default-features.

Run: python3 tests/browser/console_test.py
"""

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


def missing_tools():
    """What this test needs and cannot find, by name."""
    missing = [t for t in ("spin", "chromium", "chromedriver", "zbarimg") if not shutil.which(t)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    return missing


if __name__ == "__main__" and missing_tools():
    # Like the e2e suite: skipped on a developer machine, a failure in CI.
    message = "missing: " + ", ".join(missing_tools())
    if os.environ.get("CI") in ("true", "1"):
        sys.exit(f"console browser test cannot run (CI=true): {message}")
    print(f"skipped: console browser test ({message})")
    sys.exit(0)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "target" / "console-screenshots"
TOKEN = "browser-admin-token-0123456789abcdef0123"
SALT = "browser-visitor-salt-0123456789abcdef"
SLUG = "browser-test"
# A desktop Chrome: headless Chromium's own user agent is (rightly) a bot.
DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def step(text):
    print(f"--> {text}", flush=True)


# ------------------------------------------------------------- landing pages


class Landing(http.server.BaseHTTPRequestHandler):
    """`/a` and `/b`: the two targets the test link points at."""

    def do_GET(self):
        path = self.path.split("?")[0]
        if path in ("/a", "/b"):
            name = path[1:].upper()
            body = (
                f'<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">'
                f"<title>Landing {name}</title></head><body><h1>Landing {name}</h1></body></html>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(204)
            self.end_headers()

    def log_message(self, *args):
        pass


# ---------------------------------------------------------------------- spin


def start_spin(workdir, port):
    wasm = ROOT / "target/wasm32-wasip2/release/shortener.wasm"
    if not wasm.exists():
        sys.exit("build the component first: cargo build --target wasm32-wasip2 --release")
    base = f"http://127.0.0.1:{port}"
    # The manifest grants a second database (`unrecorded`) that only a
    # runtime config defines: every store as a file in this run's workdir.
    state = workdir / "state"
    state.mkdir(parents=True, exist_ok=True)
    runtime = workdir / "runtime.toml"
    runtime.write_text(
        f'[key_value_store.default]\ntype = "spin"\npath = "{state / "kv.db"}"\n\n'
        f'[sqlite_database.default]\ntype = "spin"\npath = "{state / "clicks.db"}"\n\n'
        f'[sqlite_database.unrecorded]\ntype = "spin"\npath = "{state / "unrecorded.db"}"\n'
    )
    cmd = [
        "spin", "up", "--from", str(ROOT / "spin.toml"),
        "--listen", f"127.0.0.1:{port}",
        "--state-dir", str(state),
        "--runtime-config-file", str(runtime),
        "--variable", f"admin_token={TOKEN}",
        "--variable", f"visitor_salt={SALT}",
        "--variable", f"public_base_url={base}",
    ]
    if not os.environ.get("SHORTENER_E2E_NO_OTEL"):
        cmd.append("--experimental-wasi-otel")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EXPORTER")}
    log = open(workdir / "spin.log", "w")
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                if r.status == 200:
                    return proc, base
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    proc.kill()
    sys.exit("spin up did not become healthy:\n" + (workdir / "spin.log").read_text())


def status_of(url):
    """The status and Location of a HEAD (not counted as a click), not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, method="HEAD"), timeout=10) as r:
            return r.status, r.headers.get("Location")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location")


def get_status(url):
    """The status of a GET (counted), not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers={"User-Agent": DESKTOP_CHROME}), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def api_link(base, slug):
    """The link as the API returns it (for checks outside the page)."""
    request = urllib.request.Request(
        f"{base}/api/links/{slug}", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.load(r)


# ------------------------------------------------------------------- browser


def start_browser(workdir, downloads):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--no-proxy-server", "--window-size=1280,1000",
        f"--user-data-dir={workdir / 'chrome-profile'}",
    ]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    return driver


class Log:
    """The browser console log, read after each step; errors fail the test."""

    def __init__(self, driver):
        self.driver = driver
        self.all = []

    def check(self, where, allowed=()):
        entries = self.driver.get_log("browser")
        self.all.extend(entries)
        errors = [
            e for e in entries
            if e["level"] == "SEVERE" and not any(a in e["message"] for a in allowed)
        ]
        assert not errors, f"browser errors after {where}: {json.dumps(errors, indent=1)}"
        return entries


def shot(driver, name):
    """A screenshot of the whole page (the window grown to its height)."""
    path = SHOTS / f"{name}.png"
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], min(max(height + 120, size["height"]), 6000))
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.3)
    driver.save_screenshot(str(path))
    driver.set_window_size(size["width"], size["height"])
    print(f"    screenshot {path.relative_to(ROOT)}")


def zbar(path):
    out = subprocess.run(["zbarimg", "--raw", "-q", str(path)], capture_output=True, text=True)
    return out.stdout.strip()


def run(driver, base, landing, downloads):
    wait = WebDriverWait(driver, 15)
    log = Log(driver)
    by_id = lambda i: driver.find_element(By.ID, i)  # noqa: E731
    visible = lambda i: wait.until(EC.visibility_of_element_located((By.ID, i)))  # noqa: E731
    short_url = f"{base}/{SLUG}"

    def text_is(element_id, text):
        wait.until(EC.text_to_be_present_in_element((By.ID, element_id), text))

    step("the bare /console redirects to the page, which asks for the token")
    driver.get(f"{base}/console")
    visible("view-signin")
    assert driver.current_url == f"{base}/console/#/signin" or driver.current_url.startswith(
        f"{base}/console/"
    ), driver.current_url
    assert driver.switch_to.active_element == by_id("token"), "the token field has the focus"
    shot(driver, "01-sign-in")
    log.check("loading the sign-in page")

    step("a wrong token is refused and not kept")
    driver.switch_to.active_element.send_keys("not-the-token", Keys.ENTER)
    visible("error")
    assert by_id("error").get_attribute("data-code") == "unauthorized"
    assert "refused" in by_id("error").text, by_id("error").text
    assert driver.execute_script("return sessionStorage.length") == 0
    assert by_id("view-signin").is_displayed()
    shot(driver, "02-wrong-token")
    log.check("the wrong token", allowed=["401"])

    step("the right token signs in (keyboard only), kept in sessionStorage, not in the URL")
    field = by_id("token")
    field.clear()
    field.send_keys(TOKEN, Keys.ENTER)
    visible("view-links")
    assert TOKEN not in driver.current_url
    assert driver.execute_script("return sessionStorage.getItem('shortener.admin_token')") == TOKEN
    assert driver.get_cookies() == [], driver.get_cookies()
    log.check("signing in")

    step("create a link with a custom slug; the short URL is shown with a copy button")
    by_id("create-url").send_keys(f"{landing}/a")
    by_id("create-slug").send_keys(SLUG)
    by_id("create-tags").send_keys("Launch, docs")
    by_id("create-form").submit()
    visible("created")
    wait.until(lambda d: by_id("created-url").get_attribute("value") == short_url)
    by_id("created").find_element(By.CSS_SELECTOR, "button.copy").click()
    text_is("links-body", SLUG)
    rows = driver.find_elements(By.CSS_SELECTOR, "#links-body tr")
    row = next(r for r in rows if r.find_element(By.CSS_SELECTOR, "td.slug").text == SLUG)
    assert row.find_element(By.CSS_SELECTOR, "td.url").text == f"{landing}/a"
    tags = [b.text for b in row.find_elements(By.CSS_SELECTOR, "td.tags button.tag")]
    assert tags == ["launch", "docs"], tags
    assert row.find_element(By.CSS_SELECTOR, "td.clicks").text == "0"
    assert api_link(base, SLUG)["tags"] == ["launch", "docs"]
    shot(driver, "03-created-and-listed")
    log.check("creating a link")

    step("a second link; the tag filter shows only the tagged one, a tag chip filters too")
    by_id("create-url").send_keys(f"{landing}/b")
    by_id("create-slug").send_keys("other-link")
    by_id("create-form").submit()
    text_is("links-body", "other-link")
    by_id("filter-tag").send_keys("LAUNCH")
    by_id("filter-form").submit()
    text_is("links-caption", "tagged “launch”")
    wait.until(lambda d: "other-link" not in by_id("links-body").text)
    assert SLUG in by_id("links-body").text
    shot(driver, "03a-tag-filter")
    by_id("filter-clear").click()
    text_is("links-body", "other-link")
    chip = driver.find_element(By.CSS_SELECTOR, "#links-body td.tags button.tag")
    chip.click()
    wait.until(lambda d: "other-link" not in by_id("links-body").text)
    by_id("filter-clear").click()
    text_is("links-body", "other-link")
    log.check("filtering by tag")

    step("a taken slug is refused with the API's message")
    by_id("create-url").send_keys(f"{landing}/a")
    by_id("create-slug").send_keys(SLUG)
    by_id("create-form").submit()
    visible("error")
    assert by_id("error").get_attribute("data-code") == "slug_taken", by_id("error").text
    log.check("a taken slug", allowed=["409"])

    step("the search box finds it by target URL and hides it for other text")
    by_id("search").send_keys("LOCALHOST")
    by_id("search-form").submit()
    text_is("links-caption", "LOCALHOST")
    assert SLUG in by_id("links-body").text
    shot(driver, "03b-search")
    by_id("search").clear()
    by_id("search").send_keys("no-such-link-text")
    by_id("search-form").submit()
    wait.until(lambda d: by_id("links-empty").is_displayed())
    by_id("search-clear").click()
    text_is("links-body", SLUG)
    log.check("searching")

    step("following the short URL lands on the target")
    driver.get(short_url)
    wait.until(EC.title_is("Landing A"))
    shot(driver, "04-followed-to-landing-a")
    log.check("following the short link")

    step("the list's clicks column counts it, and sorting by clicks puts it first")
    driver.get(f"{base}/console/#/links")
    visible("view-links")
    text_is("links-body", "other-link")
    from selenium.webdriver.support.ui import Select

    def first_row():
        # Read in one script: the rows are replaced while the list reloads.
        return driver.execute_script(
            "const r = document.querySelector('#links-body tr');"
            "return r ? [r.querySelector('td.slug').textContent,"
            " r.querySelector('td.clicks').textContent] : null")

    Select(by_id("sort")).select_by_value("slug-desc")
    wait.until(lambda d: first_row() == ["other-link", "0"])
    Select(by_id("sort")).select_by_value("clicks-desc")
    wait.until(lambda d: first_row() == [SLUG, "1"])
    Select(by_id("sort")).select_by_value("clicks-asc")
    wait.until(lambda d: first_row() == ["other-link", "0"])
    shot(driver, "04b-sorted-by-clicks")
    Select(by_id("sort")).select_by_value("slug-asc")
    log.check("sorting by clicks")

    step("the link's page counts the click")
    driver.get(f"{base}/console/#/links/{SLUG}")
    visible("view-link")
    text_is("link-title", SLUG)
    text_is("t-total", "1")
    total = int(by_id("t-total").text)
    humans, bots = int(by_id("t-humans").text), int(by_id("t-bots").text)
    assert total == 1 and humans + bots == 1, (total, humans, bots)
    assert int(by_id("t-visitors").text) == 1
    assert by_id("link-target").text == f"{landing}/a"
    wait.until(lambda d: d.execute_script(
        "return document.querySelector('#chart canvas') !== null"))
    wait.until(lambda d: d.execute_script(
        "const i = document.getElementById('qr-img'); return i.complete && i.naturalWidth > 0"))
    shot(driver, "05-link-page")
    log.check("the link page")

    step("the shown QR code and the downloaded PNG decode to the short URL")
    qr = by_id("qr-img")
    driver.execute_script("arguments[0].scrollIntoView()", qr)
    qr_shot = SHOTS / "qr-shown.png"
    qr.screenshot(str(qr_shot))
    assert zbar(qr_shot) == short_url, f"shown QR: {zbar(qr_shot)!r}"
    visible("qr-png")
    by_id("qr-png").click()
    png = downloads / f"{SLUG}-qr.png"
    deadline = time.time() + 15
    while not png.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert png.exists(), f"no download in {list(downloads.iterdir())}"
    assert zbar(png) == short_url, f"downloaded QR: {zbar(png)!r}"
    by_id("qr-svg").click()
    svg = downloads / f"{SLUG}-qr.svg"
    deadline = time.time() + 15
    # Chrome may show the file before it has written all of it: wait for
    # its content, not only its name.
    while time.time() < deadline and not (
        svg.exists() and svg.read_text().startswith("<?xml")
    ):
        time.sleep(0.2)
    assert svg.exists() and svg.read_text().startswith("<?xml"), "SVG download"
    shutil.copy(png, SHOTS / "qr-downloaded.png")
    log.check("the QR code")

    step("a date range with no clicks shows zero")
    driver.execute_script(
        "document.getElementById('range-from').value = '2020-01-01';"
        "document.getElementById('range-to').value = '2020-01-31';")
    by_id("range-form").submit()
    text_is("t-total", "0")
    driver.execute_script(
        "const d = new Date().toISOString().slice(0, 10);"
        "document.getElementById('range-from').value = d;"
        "document.getElementById('range-to').value = d;")
    by_id("range-form").submit()
    text_is("t-total", "1")
    log.check("changing the date range")

    step("an invalid edit is refused with a clear message; a valid one changes the redirect")
    url_field = by_id("edit-url")
    url_field.clear()
    url_field.send_keys(f"{base}/elsewhere")
    by_id("edit-form").submit()
    visible("error")
    assert by_id("error").get_attribute("data-code") == "self_referencing_url", by_id("error").text
    log.check("a refused edit", allowed=["400"])
    url_field.clear()
    url_field.send_keys(f"{landing}/b")
    by_id("edit-form").submit()
    visible("notice")
    text_is("link-target", f"{landing}/b")
    shot(driver, "06-edited")
    log.check("editing the target")
    assert status_of(short_url) == (302, f"{landing}/b"), status_of(short_url)

    step("the edit form changes the tags; emptying it removes them")
    assert by_id("edit-tags").get_attribute("value") == "launch, docs"
    text_is("link-tags", "launch, docs")
    by_id("edit-tags").clear()
    by_id("edit-tags").send_keys("docs q3")
    by_id("edit-form").submit()
    text_is("link-tags", "docs, q3")
    assert api_link(base, SLUG)["tags"] == ["docs", "q3"]
    by_id("edit-tags").clear()
    by_id("edit-tags").send_keys("bad tag!")
    by_id("edit-form").submit()
    visible("error")
    assert by_id("error").get_attribute("data-code") == "invalid_tag", by_id("error").text
    log.check("a refused tag", allowed=["400"])
    by_id("edit-tags").clear()
    by_id("edit-form").submit()
    text_is("link-tags", "none")
    assert api_link(base, SLUG)["tags"] == []
    log.check("editing the tags")

    step("an expiry set in the edit form is stored; 'Never expires' removes it")
    by_id("edit-no-expiry").click()
    assert by_id("edit-expiry").is_enabled()
    driver.execute_script(
        "const e = document.getElementById('edit-expiry');"
        "e.value = '2099-01-01T12:00'; e.dispatchEvent(new Event('input'));")
    by_id("edit-form").submit()
    wait.until(lambda d: "2099" in by_id("link-expires").text)
    stored = api_link(base, SLUG)["expires_at"]
    assert stored and stored.startswith("2099-01-01"), stored
    by_id("edit-no-expiry").click()
    by_id("edit-form").submit()
    text_is("link-expires", "never")
    assert api_link(base, SLUG)["expires_at"] is None
    log.check("setting and clearing the expiry")

    step("a human visit follows the edited link")
    driver.execute_cdp_cmd("Network.setUserAgentOverride", {"userAgent": DESKTOP_CHROME})
    driver.get(short_url)
    wait.until(EC.title_is("Landing B"))
    log.check("following the edited link")

    step("phone width: the page stays readable")
    driver.get(f"{base}/console/#/links/{SLUG}")
    visible("view-link")
    text_is("t-total", "2")
    assert (by_id("t-humans").text, by_id("t-bots").text) == ("1", "1")
    driver.set_window_size(390, 844)
    time.sleep(0.5)
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, f"no sideways scrolling at phone width (scrollWidth {width})"
    shot(driver, "07-link-page-phone")
    driver.get(f"{base}/console/#/links")
    visible("view-links")
    text_is("links-body", SLUG)
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, f"links list scrollWidth {width}"
    shot(driver, "08-links-phone")
    driver.set_window_size(1280, 1000)
    log.check("phone width")

    redirect_options(driver, wait, log, base, landing)

    step("delete asks first; cancel keeps the link, confirm (keyboard) removes it")
    driver.get(f"{base}/console/#/links/{SLUG}")
    visible("view-link")
    text_is("link-title", SLUG)
    by_id("delete-link").click()
    visible("confirm-delete")
    text_is("confirm-slug", SLUG)
    shot(driver, "09-delete-confirmation")
    driver.switch_to.active_element.send_keys(Keys.ENTER)  # Cancel has the focus
    wait.until(lambda d: not by_id("confirm-delete").is_displayed())
    assert status_of(short_url)[0] == 302, "cancel kept the link"
    by_id("delete-link").click()
    visible("confirm-delete")
    active = driver.switch_to.active_element
    active.send_keys(Keys.TAB)
    assert driver.switch_to.active_element.get_attribute("id") == "confirm-ok"
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    visible("view-links")
    text_is("notice", f"Deleted {SLUG}")
    assert SLUG not in by_id("links-body").text
    assert status_of(short_url)[0] == 404
    shot(driver, "10-deleted")
    log.check("deleting")

    transfer_and_roles(driver, base, downloads, wait, log)

    step("sign out forgets the token")
    by_id("sign-out").click()
    visible("view-signin")
    assert driver.execute_script("return sessionStorage.length") == 0
    driver.get(f"{base}/console/#/links")
    visible("view-signin")
    log.check("signing out")
    print(f"    browser log entries: {len(log.all)}, errors other than the expected refusals: 0")


# ------------------------------------------------ import, export, keys, roles


def wait_for_file(path):
    deadline = time.time() + 15
    while not path.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert path.exists(), f"no {path.name} in {[p.name for p in path.parent.iterdir()]}"
    time.sleep(0.3)  # the download may still be written
    return path.read_text()


def sign_in_as(driver, wait, base, bearer):
    by_id = lambda i: driver.find_element(By.ID, i)  # noqa: E731
    driver.find_element(By.ID, "sign-out").click()
    wait.until(EC.visibility_of_element_located((By.ID, "view-signin")))
    by_id("token").send_keys(bearer, Keys.ENTER)
    wait.until(EC.visibility_of_element_located((By.ID, "view-links")))
    wait.until(lambda d: d.execute_script("return document.body.dataset.role || ''"))


def transfer_and_roles(driver, base, downloads, wait, log):
    """The import page (a dry run first), the export buttons, the keys page,
    and what a viewer key is (not) offered."""
    by_id = lambda i: driver.find_element(By.ID, i)  # noqa: E731
    visible = lambda i: wait.until(EC.visibility_of_element_located((By.ID, i)))  # noqa: E731

    def text_is(element_id, text):
        wait.until(EC.text_to_be_present_in_element((By.ID, element_id), text))

    step("the import page shows a dry run first, then imports the same file")
    driver.get(f"{base}/console/#/links")
    visible("view-links")
    visible("nav-import")
    by_id("nav-import").click()
    visible("view-import")
    assert not by_id("import-run").is_enabled(), "no real import before a dry run"
    by_id("import-file").send_keys(str(ROOT / "tests" / "fixtures" / "import" / "links.csv"))
    by_id("import-dry").click()
    text_is("r-created", "2 would be created")
    text_is("import-report-title", "Dry run")
    assert status_of(f"{base}/csv-one")[0] == 404, "the dry run wrote nothing"
    shot(driver, "11-import-dry-run")
    wait.until(lambda d: by_id("import-run").is_enabled())
    by_id("import-run").click()
    text_is("r-created", "2 created")
    assert status_of(f"{base}/csv-one")[0] == 302
    log.check("importing")

    step("the export buttons download the links as CSV and JSON")
    by_id("nav").find_element(By.CSS_SELECTOR, "a[href='#/links']").click()
    visible("view-links")
    text_is("links-body", "csv-one")
    by_id("export-csv").click()
    text = wait_for_file(downloads / "links.csv")
    assert text.startswith("slug,url,created_at,expires_at,tags,clicks"), text[:200]
    assert "csv-one" in text and "csv-two" in text, text
    by_id("export-json").click()
    exported = json.loads(wait_for_file(downloads / "links.json"))
    assert {link["slug"] for link in exported} >= {"csv-one", "csv-two"}, exported
    log.check("exporting")

    step("an admin makes a viewer key on the keys page: shown once, with a copy button")
    visible("nav-keys")
    by_id("nav-keys").click()
    visible("view-keys")
    by_id("key-name").send_keys("console viewer")
    Select(by_id("key-role")).select_by_value("viewer")
    by_id("key-form").submit()
    visible("key-made")
    wait.until(lambda d: by_id("key-secret").get_attribute("value").startswith("shk_"))
    viewer_key = by_id("key-secret").get_attribute("value")
    by_id("key-copy").click()
    text_is("keys-body", "console viewer")
    shot(driver, "12-keys")
    log.check("making a key")

    step("a viewer key signs in and is offered no create, edit, delete, import or keys")
    sign_in_as(driver, wait, base, viewer_key)
    assert driver.execute_script("return document.body.dataset.role") == "viewer"
    text_is("links-body", "csv-one")
    assert not by_id("create-form").is_displayed()
    assert not by_id("nav-keys").is_displayed()
    assert not by_id("nav-import").is_displayed()
    assert by_id("export-csv").is_displayed()
    # Tag chips filter the list, which a viewer may; no other button shows.
    for button in driver.find_elements(By.CSS_SELECTOR, "#links-body button:not(.tag)"):
        assert not button.is_displayed(), button.text
    driver.get(f"{base}/console/#/links/csv-one")
    visible("view-link")
    text_is("link-title", "csv-one")
    assert not by_id("edit-form").is_displayed()
    assert not by_id("delete-link").is_displayed()
    shot(driver, "13-viewer-link-page")
    driver.get(f"{base}/console/#/keys")
    visible("error")
    assert by_id("error").get_attribute("data-code") == "forbidden"
    log.check("signed in as a viewer")

    step("back as the admin, revoking the key refuses it at once")
    sign_in_as(driver, wait, base, TOKEN)
    driver.get(f"{base}/console/#/keys")
    visible("view-keys")
    text_is("keys-body", "console viewer")
    row = driver.find_element(By.CSS_SELECTOR, "#keys-body tr")
    row.find_element(By.CSS_SELECTOR, "button").click()
    driver.switch_to.alert.accept()
    text_is("notice", "Revoked console viewer")
    request = urllib.request.Request(
        f"{base}/api/whoami", headers={"Authorization": f"Bearer {viewer_key}"}
    )
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("a revoked key still works")
    except urllib.error.HTTPError as e:
        assert e.code == 401, e.code
    log.check("revoking the key")
def redirect_options(driver, wait, log, base, landing):
    """Redirect options and rules on create and edit, rule clicks, orphan visits."""
    by_id = lambda i: driver.find_element(By.ID, i)  # noqa: E731
    visible = lambda i: wait.until(EC.visibility_of_element_located((By.ID, i)))  # noqa: E731
    slug = "rules-test"
    short = f"{base}/{slug}"

    step("create a link with a click limit and a desktop rule in the rules editor")
    driver.get(f"{base}/console/#/links")
    visible("view-links")
    by_id("create-url").send_keys(f"{landing}/a")
    by_id("create-slug").send_keys(slug)
    by_id("create-options").find_element(By.TAG_NAME, "summary").click()
    by_id("create-max-clicks").send_keys("2")
    by_id("create-add-rule").click()
    rule = by_id("create-rules").find_element(By.CSS_SELECTOR, "li.rule")
    rule.find_element(By.NAME, "url").send_keys(f"{landing}/b")
    Select(rule.find_element(By.NAME, "device")).select_by_value("desktop")
    shot(driver, "11-create-with-rules")
    by_id("create-form").submit()
    visible("created")
    link = api_link(base, slug)
    assert link["max_clicks"] == 2 and link["forward_query"] is True, link
    assert link["rules"] == [{"url": f"{landing}/b", "device": "desktop"}], link["rules"]
    log.check("creating a link with rules")

    step("a desktop visit follows the rule, with its query forwarded; the limit ends it")
    driver.get(f"{short}?utm_source=console")
    wait.until(EC.title_is("Landing B"))
    assert driver.current_url == f"{landing}/b?utm_source=console", driver.current_url
    assert get_status(short) == 302
    assert get_status(short) == 410, "the third click is over the limit"
    log.check("following a ruled link")

    step("the link's page shows the options and the rule's clicks; the edit form is filled")
    driver.get(f"{base}/console/#/links/{slug}")
    visible("view-link")
    wait.until(EC.text_to_be_present_in_element((By.ID, "link-max-clicks"), "2"))
    wait.until(EC.text_to_be_present_in_element((By.ID, "top-rules"), "Rule 1"))
    assert by_id("top-rules").find_element(By.CSS_SELECTOR, "li .n").text == "2"
    assert by_id("edit-max-clicks").get_attribute("value") == "2"
    assert len(by_id("edit-rules").find_elements(By.CSS_SELECTOR, "li.rule")) == 1
    shot(driver, "12-link-with-rules")
    log.check("the page of a ruled link")

    step("the edit removes the limit and the rule and turns query forwarding off")
    by_id("edit-options").find_element(By.TAG_NAME, "summary").click()
    by_id("edit-max-clicks").clear()
    by_id("edit-forward-query").click()
    by_id("edit-rules").find_element(By.CSS_SELECTOR, "li.rule button").click()
    by_id("edit-form").submit()
    visible("notice")
    wait.until(EC.text_to_be_present_in_element((By.ID, "link-max-clicks"), "no limit"))
    link = api_link(base, slug)
    assert (link["max_clicks"], link["forward_query"], link["rules"]) == (None, False, []), link
    assert status_of(f"{short}?x=1") == (302, f"{landing}/a")
    log.check("editing the redirect options")

    step("orphan visits: a GET of an unknown slug shows on the orphan-visits page")
    assert get_status(f"{base}/no-such-link") == 404
    driver.find_element(By.CSS_SELECTOR, 'a[href="#/orphans"]').click()
    visible("view-orphans")
    wait.until(EC.text_to_be_present_in_element((By.ID, "orphans-paths"), "/no-such-link"))
    assert int(by_id("o-total").text) >= 1
    shot(driver, "13-orphan-visits")
    log.check("the orphan-visits page")


def main():
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    workdir = Path(tempfile.mkdtemp(prefix="console-browser-"))
    downloads = workdir / "downloads"
    downloads.mkdir()
    landing_port = free_port()
    landing_server = http.server.ThreadingHTTPServer(("127.0.0.1", landing_port), Landing)
    threading.Thread(target=landing_server.serve_forever, daemon=True).start()
    # `localhost`, not 127.0.0.1: a target on the shortener's own host is refused.
    landing = f"http://localhost:{landing_port}"
    spin, base = start_spin(workdir, free_port())
    driver = None
    try:
        driver = start_browser(workdir, downloads)
        run(driver, base, landing, downloads)
        print("console browser test: ok")
    except Exception:
        if driver is not None:
            try:
                shot(driver, "failure")
            except Exception:  # noqa: BLE001
                pass
        print("--- spin log ---\n" + (workdir / "spin.log").read_text(), file=sys.stderr)
        raise
    finally:
        if driver is not None:
            driver.quit()
        spin.terminate()
        try:
            spin.wait(timeout=10)
        except subprocess.TimeoutExpired:
            spin.kill()
        landing_server.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
