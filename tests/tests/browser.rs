//! The office dashboard in a real browser: headless Chromium (Debian's) driven over WebDriver against the real
//! `dockhand-server` process on real TLS, with a real `dockhand-agent` syncing from a pty scanner.
//!
//! One journey, as the office lives it: log in, filter stock, open an item's trail, download a CSV, resolve a
//! discrepancy and see the stock change, watch a device go offline on an open page. A screenshot of each main
//! page is saved to `target/browser-artifacts/` (the path is printed) for a person to look at.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use dockhand_protocol::sync::{Movement, MovementKind, MovementSource, PushRequest};
use dockhand_tests::browser::{Browser, Element};
use dockhand_tests::{
    bin_dir, enroll, free_port, item_scan, wait_until, AgentProc, AgentSpec, Office, Scanner,
    ServerProc, GTINS, NAK,
};
use serde_json::json;

const SITE: &str = "WH1";
/// An item whose description is markup: it must show as text, never run.
const HOSTILE: &str = "Widget <script>alert(1)</script>\"><img src=x onerror=alert(2)>";
const WAIT: Duration = Duration::from_secs(15);

/// Where the screenshots go: `<target>/browser-artifacts/`.
fn artifacts() -> PathBuf {
    bin_dir()
        .parent()
        .map(|target| target.join("browser-artifacts"))
        .unwrap_or_else(|| PathBuf::from("browser-artifacts"))
}

fn shot(browser: &Browser, name: &str) -> Result<()> {
    let path = artifacts().join(format!("{name}.png"));
    browser.screenshot(&path)?;
    eprintln!("screenshot: {}", path.display());
    Ok(())
}

/// Pushes `movements` as device `device` straight to the API (a second, scripted device next to the real agent).
fn push(server: &ServerProc, token: &str, device: &str, movements: Vec<Movement>) -> Result<()> {
    let body = PushRequest {
        device_id: device.into(),
        movements,
        backlog: None,
    };
    server
        .client()?
        .post(format!("{}/v1/sync/push", server.url()))
        .bearer_auth(token)
        .json(&body)
        .send()?
        .error_for_status()?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn movement(
    device: &str,
    seq: u64,
    kind: MovementKind,
    gtin: &str,
    lot: &str,
    expiry: Option<String>,
    qty: u64,
    from: Option<&str>,
    to: Option<&str>,
) -> Movement {
    Movement {
        device_id: device.into(),
        seq,
        at: time::OffsetDateTime::now_utc(),
        kind,
        gtin: gtin.into(),
        lot: Some(lot.into()),
        expiry,
        serials: vec![],
        qty,
        from_location: from.map(Into::into),
        to_location: to.map(Into::into),
        sscc: None,
        reference: None,
        operator: None,
        source: MovementSource::Manual,
    }
}

/// Every `data-*` value `attr` of the elements matching `css`.
fn attrs(browser: &Browser, css: &str, attr: &str) -> Result<Vec<String>> {
    browser
        .find_all(css)?
        .iter()
        .map(|e| Ok(browser.attr(e, attr)?.unwrap_or_default()))
        .collect()
}

fn submit(browser: &Browser, button: &Element) -> Result<()> {
    browser.click(button)
}

#[test]
fn office_reconciles_in_a_browser() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server_data = dir.path().join("server");
    std::fs::create_dir_all(&server_data)?;
    // A device silent for 2 s is offline, so the test watches one go offline in seconds.
    let config = server_data.join("server.toml");
    std::fs::write(&config, "device_offline_after_secs = 2\n")?;
    let server = ServerProc::start_with_config(&server_data, free_port(), Some(&config))?;
    let office = Office::new(&server)?;
    let admin = server.admin_token()?;

    // Master data: a hostile description, and a lot that expires in ten days.
    office.put(
        &format!("/v1/sites/{SITE}"),
        json!({"name": "Main warehouse"}),
    )?;
    office.put(
        &format!("/v1/items/{}", GTINS[0]),
        json!({"description": HOSTILE, "unit": "EA", "lot_tracked": true}),
    )?;
    office.put(
        &format!("/v1/items/{}", GTINS[1]),
        json!({"description": "Gadget", "unit": "EA", "lot_tracked": true, "expiry_tracked": true}),
    )?;
    // Gadgets are reordered 50 at a time below 100 units: the reports page shows the notice.
    office.put(
        &format!("/v1/sites/{SITE}/replenishment/{}", GTINS[1]),
        json!({"reorder_point": 100, "reorder_qty": 50}),
    )?;
    for code in ["DOCK-1", "A-01-02", "B-04-01"] {
        office.put(&format!("/v1/sites/{SITE}/locations/{code}"), json!({}))?;
    }
    office.post(
        "/v1/asns",
        Some(json!({"id": "ASN-1", "site": SITE, "lines": [{"gtin": GTINS[0], "lot": "LOT-A", "qty": 5}]})),
    )?;
    office.post(
        "/v1/pick-lists",
        Some(json!({"id": "PL-1", "site": SITE, "lines": [
            {"line": 1, "location": "B-04-01", "gtin": GTINS[1], "lot": "LOT-B", "qty": 2}]})),
    )?;

    // A real agent on a pty scanner receives three units of the hostile item against the ASN.
    let agent_data = dir.path().join("hh-01");
    let mut scanner = Scanner::new()?;
    let token = enroll(&server_data, "hh-01", SITE)?;
    let spec = AgentSpec {
        device: "hh-01",
        site: SITE,
        data: &agent_data,
        server: Some((server.url(), server_data.join("ca.pem"), token)),
        scanner: &scanner.path,
        max_backoff_ms: 500,
    };
    let mut agent = AgentProc::start(&spec.write_config()?, &agent_data)?;
    // Receiving against the ASN, once the agent has pulled it (the scan is refused until then).
    wait_until(WAIT, || {
        Ok(scanner.scan_and_wait("DH:RECEIVE:ASN-1", WAIT)? == Some(0x06))
    })?;
    for _ in 0..3 {
        let ack = scanner.scan_and_wait(&item_scan(GTINS[0], "LOT-A"), WAIT)?;
        ensure!(ack == Some(0x06), "scan not confirmed: {ack:?}");
    }
    wait_until(WAIT, || Ok(office.movements(SITE)?.len() == 3))?;
    // A barcode that does not decode: refused, and counted for the reports page's pick accuracy.
    let nak = scanner.scan_and_wait("]C1NOT-GS1", WAIT)?;
    ensure!(nak == Some(NAK), "an undecodable scan: {nak:?}");

    // A scripted second device: 5 gadgets expiring soon into B-04-01, and 2 moved out of A-01-02, which holds
    // none: stock there goes negative, a discrepancy for the office.
    let token2 = enroll(&server_data, "hh-02", SITE)?;
    let soon = (time::OffsetDateTime::now_utc().date() + time::Duration::days(10)).to_string();
    push(
        &server,
        &token2,
        "hh-02",
        vec![
            movement(
                "hh-02",
                1,
                MovementKind::Receive,
                GTINS[1],
                "LOT-B",
                Some(soon.clone()),
                5,
                None,
                Some("B-04-01"),
            ),
            movement(
                "hh-02",
                2,
                MovementKind::Move,
                GTINS[1],
                "LOT-B",
                Some(soon),
                2,
                Some("A-01-02"),
                Some("DOCK-1"),
            ),
        ],
    )?;
    ensure!(
        !office.discrepancies(SITE)?.is_empty(),
        "no discrepancy raised"
    );

    let downloads = dir.path().join("downloads");
    let browser = Browser::start(&downloads)?;
    let base = server.url();

    log_in(&browser, &base, &admin)?;
    stock_and_trail(&browser, &base)?;
    csv_download(&browser, &base, &downloads)?;
    resolve_discrepancy(&browser, &base)?;
    receipts_and_pick_lists(&browser, &base)?;
    reports_page(&browser, &base, &office)?;
    device_goes_offline(&browser, &base, &mut agent)?;
    overview_and_tablet(&browser, &base)?;
    drop(scanner);
    Ok(())
}

/// The login page, a wrong token, the right one, and the session cookie's attributes.
fn log_in(browser: &Browser, base: &str, admin: &str) -> Result<()> {
    browser.goto(&format!("{base}/stock"))?;
    ensure!(
        browser.url()?.contains("/login"),
        "not sent to the login: {}",
        browser.url()?
    );
    browser.wait_for("#login-form", WAIT)?;
    shot(browser, "01-login")?;

    browser.fill(&browser.find("#token")?, "not-the-token")?;
    submit(browser, &browser.find("#login-button")?)?;
    browser.wait_for("#login-error", WAIT)?;
    ensure!(
        browser
            .cookies()?
            .iter()
            .all(|c| c["name"] != "__Host-dockhand_session"),
        "a cookie for a wrong token"
    );

    browser.fill(&browser.find("#token")?, admin)?;
    submit(browser, &browser.find("#login-button")?)?;
    browser.wait_for("#stock-table", WAIT)?;
    ensure!(
        browser.url()?.ends_with("/stock"),
        "after login: {}",
        browser.url()?
    );
    let cookies = browser.cookies()?;
    let session = cookies
        .iter()
        .find(|c| c["name"] == "__Host-dockhand_session")
        .context("no session cookie")?;
    ensure!(session["httpOnly"] == true, "{session}");
    ensure!(session["secure"] == true, "{session}");
    ensure!(session["sameSite"] == "Strict", "{session}");
    // HttpOnly: the page's script cannot read it.
    let visible = browser.execute("return document.cookie", vec![])?;
    ensure!(
        !visible.as_str().unwrap_or("").contains("dockhand_session"),
        "script sees the cookie: {visible}"
    );
    Ok(())
}

/// The stock table, its filters, the hostile description shown as text, the expiry marker, and an item's trail.
fn stock_and_trail(browser: &Browser, base: &str) -> Result<()> {
    browser.goto(&format!("{base}/stock"))?;
    let rows = attrs(browser, "tr[data-test=stock-row]", "data-gtin")?;
    ensure!(
        rows.len() == 4,
        "want DOCK-1 ×2 items, B-04-01 and the negative A-01-02: {rows:?}"
    );
    shot(browser, "02-stock")?;

    // The description is text: no element was injected and no dialog opened.
    let injected = browser.execute(
        "return document.querySelectorAll('#stock-table script, #stock-table img').length",
        vec![],
    )?;
    ensure!(
        injected == 0,
        "markup from a description became elements: {injected}"
    );
    let description = browser.find(&format!(
        "tr[data-gtin=\"{}\"] td[data-test=description]",
        GTINS[0]
    ))?;
    ensure!(
        browser.text(&description)? == HOSTILE,
        "description: {:?}",
        browser.text(&description)?
    );

    // Filter by item.
    browser.fill(&browser.find("#filter-gtin")?, GTINS[1])?;
    submit(browser, &browser.find("#filter-apply")?)?;
    browser.wait_for("#filter-gtin", WAIT)?;
    let gtins = attrs(browser, "tr[data-test=stock-row]", "data-gtin")?;
    ensure!(
        gtins.len() == 3 && gtins.iter().all(|g| g == GTINS[1]),
        "filtered rows: {gtins:?}"
    );
    let states = attrs(
        browser,
        "tr[data-location=\"B-04-01\"]",
        "data-expiry-state",
    )?;
    ensure!(
        states == ["soon"],
        "the lot expiring in 10 days is not marked: {states:?}"
    );
    ensure!(
        browser
            .try_find("tr[data-location=\"B-04-01\"] [data-test=expiry-marker]")?
            .is_some(),
        "no visible marker"
    );

    // The hostile item's trail: its three receipts by the agent.
    browser.goto(&format!("{base}/stock"))?;
    let link = browser.find(&format!(
        "tr[data-gtin=\"{}\"] a[data-test=item-link]",
        GTINS[0]
    ))?;
    browser.click(&link)?;
    browser.wait_for("#trail", WAIT)?;
    let kinds = attrs(browser, "#trail tr[data-test=movement-row]", "data-kind")?;
    ensure!(
        kinds == ["receive", "receive", "receive"],
        "trail: {kinds:?}"
    );
    let devices = attrs(browser, "#trail tr[data-test=movement-row]", "data-device")?;
    ensure!(
        devices.iter().all(|d| d == "hh-01"),
        "trail devices: {devices:?}"
    );
    ensure!(
        browser.text(&browser.find("#item-description")?)? == HOSTILE,
        "item page description"
    );
    shot(browser, "03-item-trail")?;
    Ok(())
}

/// The stock table as a CSV download, same rows as the page.
fn csv_download(browser: &Browser, base: &str, downloads: &Path) -> Result<()> {
    browser.goto(&format!("{base}/stock?gtin={}", GTINS[1]))?;
    browser.click(&browser.find("#csv-link")?)?;
    let file = browser.wait_download(".csv", WAIT)?;
    let text = std::fs::read_to_string(&file)?;
    let lines: Vec<&str> = text.lines().collect();
    ensure!(
        lines.len() == 4,
        "header + 3 rows in {}: {text}",
        downloads.display()
    );
    ensure!(
        lines[0].contains("gtin") && lines[0].contains("qty"),
        "header: {}",
        lines[0]
    );
    ensure!(lines[1..].iter().all(|l| l.contains(GTINS[1])), "{text}");
    Ok(())
}

/// Resolve the negative stock at A-01-02 with an adjustment of +2 and see the location's stock become zero.
fn resolve_discrepancy(browser: &Browser, base: &str) -> Result<()> {
    browser.goto(&format!("{base}/discrepancies"))?;
    browser.wait_for("#discrepancies-table", WAIT)?;
    shot(browser, "04-discrepancies")?;
    let kinds = attrs(browser, "tr[data-test=discrepancy-row]", "data-kind")?;
    let at = kinds
        .iter()
        .position(|k| k == "negative_stock")
        .with_context(|| format!("no negative_stock row: {kinds:?}"))?;
    let rows = browser.find_all("tr[data-test=discrepancy-row]")?;
    let link = browser
        .find_all("tr[data-test=discrepancy-row] a[data-test=discrepancy-link]")?
        .into_iter()
        .nth(at)
        .context("discrepancy link")?;
    drop(rows);
    browser.click(&link)?;
    browser.wait_for("#resolve-adjust-form", WAIT)?;
    let movers = attrs(
        browser,
        "#d-movements tr[data-test=movement-row]",
        "data-device",
    )?;
    ensure!(movers == ["hh-02"], "causing movements: {movers:?}");
    shot(browser, "05-discrepancy-detail")?;

    browser.fill(&browser.find("#resolve-location")?, "A-01-02")?;
    browser.fill(&browser.find("#resolve-gtin")?, GTINS[1])?;
    browser.fill(&browser.find("#resolve-lot")?, "LOT-B")?;
    browser.fill(&browser.find("#resolve-delta")?, "2")?;
    browser.fill(&browser.find("#resolve-reason")?, "found two on the floor")?;
    submit(browser, &browser.find("#resolve-adjust-submit")?)?;
    browser.wait_text("#d-status", WAIT, |t| t.to_lowercase().contains("resolved"))?;

    // The stock of A-01-02 was -2; the adjustment brings it to 0, and zero rows are not shown.
    browser.goto(&format!("{base}/stock?location=A-01-02"))?;
    browser.wait_for("#empty", WAIT)?;
    ensure!(
        browser.find_all("tr[data-test=stock-row]")?.is_empty(),
        "A-01-02 still has stock rows"
    );
    browser.goto(&format!("{base}/items/{}", GTINS[1]))?;
    let kinds = attrs(browser, "#trail tr[data-test=movement-row]", "data-kind")?;
    ensure!(
        kinds.iter().any(|k| k == "adjust"),
        "no adjust movement in the trail: {kinds:?}"
    );
    Ok(())
}

/// The receipts and pick lists pages with the documents made above.
fn receipts_and_pick_lists(browser: &Browser, base: &str) -> Result<()> {
    browser.goto(&format!("{base}/receipts"))?;
    browser.wait_for("#receipt-ASN-1", WAIT)?;
    shot(browser, "06-receipts")?;
    browser.click(&browser.find("#receipt-ASN-1 a[data-test=receipt-link]")?)?;
    browser.wait_for("#lines-table", WAIT)?;
    let received = browser.find("tr[data-test=line-row] td[data-field=received]")?;
    ensure!(
        browser.text(&received)?.trim() == "3",
        "ASN-1 received: {}",
        browser.text(&received)?
    );
    shot(browser, "07-receipt-detail")?;

    browser.goto(&format!("{base}/pick-lists"))?;
    browser.wait_for("#pick-list-PL-1", WAIT)?;
    shot(browser, "08-pick-lists")?;
    Ok(())
}

/// The reports page for this week: per-operator totals add up to the site's movements, the replenishment notice
/// names the gadget (below its point of 100), and the expiring lot is listed.
fn reports_page(browser: &Browser, base: &str, office: &Office) -> Result<()> {
    browser.goto(&format!("{base}/reports?site={SITE}"))?;
    browser.wait_for("#productivity-table", WAIT)?;
    let total: u64 = attrs(browser, "tr[data-test=operator-row]", "data-movements")?
        .iter()
        .map(|v| v.parse::<u64>().unwrap_or(0))
        .sum();
    let movements = office.movements(SITE)?.len() as u64;
    ensure!(
        total == movements,
        "operators' movements {total}, the site's {movements}"
    );
    let suggested = attrs(
        browser,
        &format!("#replenishment-notice li[data-gtin=\"{}\"]", GTINS[1]),
        "data-suggested",
    )?;
    ensure!(suggested == ["50"], "replenishment notice: {suggested:?}");
    let expiring = attrs(browser, "tr[data-test=expiry-row]", "data-gtin")?;
    ensure!(
        expiring.iter().any(|g| g == GTINS[1]),
        "expiry rows: {expiring:?}"
    );
    // The refused scans (the undecodable one, and any receipt refused before the ASN was pulled) reach the
    // page once the agent has reported its counters, on its pull cadence.
    wait_until(WAIT, || {
        browser.goto(&format!("{base}/reports?site={SITE}"))?;
        browser.wait_for("#accuracy-table", WAIT)?;
        let refused = attrs(browser, "tr[data-test=accuracy-row]", "data-refused")?;
        Ok(refused.iter().any(|n| n.parse::<u64>().unwrap_or(0) >= 1))
    })?;
    shot(browser, "08b-reports")?;
    Ok(())
}

/// The devices page shows the agent online; the agent dies; the open page turns it offline by itself.
fn device_goes_offline(browser: &Browser, base: &str, agent: &mut AgentProc) -> Result<()> {
    browser.goto(&format!("{base}/devices"))?;
    browser.wait_for("#devices-table", WAIT)?;
    browser.wait_text("#device-hh-01 td[data-field=status]", WAIT, |t| {
        t.contains("online")
    })?;
    // Everything the agent scanned is acknowledged: nothing is left on the device.
    browser.wait_text("#device-hh-01 td[data-field=backlog]", WAIT, |t| {
        t.trim() == "0"
    })?;
    shot(browser, "09-devices-online")?;
    // Mark the page: a reload would lose the mark, so finding it afterwards proves the update was live.
    browser.execute(
        "document.body.dataset.mark = 'no-reload'; return null",
        vec![],
    )?;
    agent.kill();
    browser.wait_text("#device-hh-01 td[data-field=status]", WAIT, |t| {
        t.contains("offline")
    })?;
    let mark = browser.execute("return document.body.dataset.mark || null", vec![])?;
    if mark != "no-reload" {
        bail!("the page was reloaded instead of updated live: {mark}");
    }
    shot(browser, "10-devices-offline")?;
    Ok(())
}

/// The movements-per-hour chart, and the stock page at a tablet's size (portrait, 800 CSS pixels wide): the
/// table must fit the width without a horizontal scrollbar on the page itself.
fn overview_and_tablet(browser: &Browser, base: &str) -> Result<()> {
    browser.goto(&format!("{base}/overview"))?;
    browser.wait_for("svg", WAIT)?;
    shot(browser, "11-overview")?;
    browser.set_window(800, 1280)?;
    browser.goto(&format!("{base}/stock"))?;
    browser.wait_for("#stock-table", WAIT)?;
    let overflow = browser.execute(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        vec![],
    )?;
    ensure!(
        overflow.as_i64() == Some(0),
        "the page scrolls sideways on a tablet by {overflow} px"
    );
    // Every column, quantity included, is visible without scrolling the table either.
    let hidden = browser.execute(
        "const t = document.querySelector('#stock-table'); \
         const w = t.closest('.table-wrap') || t; return w.scrollWidth - w.clientWidth",
        vec![],
    )?;
    ensure!(
        hidden.as_i64().is_some_and(|px| px <= 0),
        "the stock table hides {hidden} px on a tablet"
    );
    shot(browser, "12-stock-tablet")?;
    Ok(())
}
