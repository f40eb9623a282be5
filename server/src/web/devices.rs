//! `GET /devices`: every enrolled device with where it stands (last seen, online or offline, backlog, agent
//! version, revoked), a chart of the backlog per device, and the revoke action. Live: the page subscribes to
//! `/live/devices` ([`super::live`]) and updates its cells as devices come and go, so a device that stops syncing
//! turns "offline" on the open page without a reload.
//!
//! - A device is online when it was seen (an authenticated push or pull) within the server's
//!   `device_offline_after_secs` ([`AppState`]'s `offline_after`); "never seen" when it never synced.
//! - Parameters: `site` (filter), `format=csv` (the table as CSV), `revoked` (the id just revoked, for the notice).
//! - Revoking is two posts, each with the session's CSRF token: the list's button posts to
//!   `/devices/{id}/revoke`, which answers a confirmation page; its button posts again with `confirm=yes`, which
//!   revokes through the same registry call as `POST /v1/devices/{id}/revoke` and answers 303 to the list. The
//!   confirmation is a page, not a script dialog, so it works on any tablet and in a test browser alike.
//!
//! # Selectors
//!
//! ```text
//! #device-filters (GET form) with #filter-site #filter-apply; #revoked-notice after a revocation
//! #device-count, #online-count, #devices-table, #empty when no device matches, #csv-link
//! tr#device-<id> [data-test=device-row] with data-device data-site data-status (online|offline|never)
//!   and cells td[data-field=id|site|last-seen|ago|status|backlog|version|revoked]
//!   (status cell: span.badge with the word; last-seen: a time element)
//! button#revoke-<id> (list; only for devices not revoked)
//! confirmation page: #revoke-form with button#revoke-confirm, a#revoke-cancel
//! chart figure#backlog-chart (see charts.rs), #live (data-live: the stream), #live-state (connection),
//! #live-new-device (hidden until a device not on the page reports)
//! ```

use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use maud::{html, Markup};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::charts::{self, Bar};
use super::csv::{self, Cell};
use super::layout::{self, Nav};
use super::live;
use super::{blocking, see_other, CsrfForm, Fields, Format, PageError, PageResult, Session};
use crate::devices::{is_valid_name, DeviceRecord};
use crate::error::ApiError;
use crate::state::AppState;

/// What the page (and a `device` event of the live stream) shows of one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct DeviceStatus {
    /// The device id.
    pub(crate) id: String,
    /// Its site.
    pub(crate) site: String,
    /// `online`, `offline` or `never` (never seen).
    pub(crate) status: &'static str,
    /// The status in words: `online`, `offline`, `never seen`.
    pub(crate) label: &'static str,
    /// The last authenticated push or pull, RFC 3339.
    pub(crate) last_seen: Option<String>,
    /// The same for people: `2026-11-27 08:15 UTC`.
    pub(crate) last_seen_text: String,
    /// How long ago, for people: `just now`, `3 min ago`, `2 h ago`, `4 days ago`, `never`.
    pub(crate) ago: String,
    /// Unacknowledged movements it last reported.
    pub(crate) backlog: Option<u64>,
    /// The agent version its `User-Agent` named.
    pub(crate) version: Option<String>,
    /// Revoked by the office.
    pub(crate) revoked: bool,
}

impl DeviceStatus {
    /// `record` as seen at `now` by a server that counts a device offline after `offline_after` of silence.
    pub(crate) fn of(record: &DeviceRecord, now: OffsetDateTime, offline_after: Duration) -> Self {
        let status = match record.last_seen {
            None => "never",
            Some(seen) if (now - seen).unsigned_abs() <= offline_after || seen > now => "online",
            Some(_) => "offline",
        };
        DeviceStatus {
            id: record.device_id.clone(),
            site: record.site.clone(),
            status,
            label: match status {
                "never" => "never seen",
                other => other,
            },
            last_seen: record.last_seen.and_then(|t| t.format(&Rfc3339).ok()),
            last_seen_text: record.last_seen.map_or_else(|| "never".into(), human_time),
            ago: ago(record.last_seen, now),
            backlog: record.backlog,
            version: record.version().map(str::to_string),
            revoked: record.revoked_at.is_some(),
        }
    }
}

/// `2026-11-27 08:15 UTC` (minutes are what an office cares about).
pub(crate) fn human_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// How long before `now` `seen` was, in the largest unit that fits; a time in the future (a clock ahead of
/// ours) is "just now".
pub(crate) fn ago(seen: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    let Some(seen) = seen else {
        return "never".into();
    };
    let secs = (now - seen).whole_seconds();
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 48 * 3600 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

/// The devices matching `site` (all when `None`), by id, as of now.
pub(crate) async fn statuses(
    state: &AppState,
    site: Option<String>,
) -> Result<Vec<DeviceStatus>, PageError> {
    let devices = state.devices.clone();
    let offline_after = state.offline_after;
    blocking(move || {
        let now = OffsetDateTime::now_utc();
        Ok(devices
            .list()
            .map_err(ApiError::from)?
            .iter()
            .filter(|r| site.as_ref().is_none_or(|s| *s == r.site))
            .map(|r| DeviceStatus::of(r, now, offline_after))
            .collect())
    })
    .await
}

const CSV_HEADER: &[&str] = &[
    "device_id",
    "site",
    "status",
    "last_seen",
    "backlog",
    "version",
    "revoked",
];

/// `GET /devices[?site=S][&format=csv][&revoked=ID]`.
pub(super) async fn page(
    session: Session,
    State(state): State<AppState>,
    mut q: Fields,
) -> PageResult {
    let site = q.name("site")?;
    let revoked = q.name("revoked")?;
    let format = q.format()?;
    q.finish()?;
    let list = statuses(&state, site.clone()).await?;
    if format == Format::Csv {
        return Ok(csv::download("devices.csv", CSV_HEADER, move |out| {
            for d in &list {
                let backlog = d.backlog.map_or(Cell::Empty, |b| Cell::Int(to_i64(b)));
                out.row(&[
                    Cell::Text(&d.id),
                    Cell::Text(&d.site),
                    Cell::Text(d.label),
                    d.last_seen.as_deref().into(),
                    backlog,
                    d.version.as_deref().into(),
                    Cell::Text(if d.revoked { "yes" } else { "no" }),
                ])?;
            }
            Ok(())
        }));
    }
    let online = list.iter().filter(|d| d.status == "online").count();
    let csv_href = layout::href(
        "/devices",
        &[("site", site.as_deref().unwrap_or("")), ("format", "csv")],
    );
    let backlog: Vec<Bar> = list
        .iter()
        .map(|d| Bar {
            label: d.id.clone(),
            value: d.backlog.unwrap_or(0),
            tooltip: match d.backlog {
                Some(b) => format!("{}: {b} movements not yet acknowledged", d.id),
                None => format!("{}: backlog not reported yet", d.id),
            },
        })
        .collect();
    let content = html! {
        @if let Some(id) = &revoked {
            p #revoked-notice .notice role="status" {
                "Device " strong { (id) } " is revoked: its pushes and pulls are refused from now on; its movements stay."
            }
        }
        form #device-filters .filters method="get" action="/devices" {
            label for="filter-site" { "Site"
                input #filter-site name="site" value=(site.as_deref().unwrap_or("")) maxlength="64" size="8";
            }
            button #filter-apply type="submit" { "Show" }
        }
        p #live-new-device .notice role="status" hidden {
            "A device not on this page has synced (newly enrolled?): "
            a href=(layout::href("/devices", &[("site", site.as_deref().unwrap_or(""))])) { "reload" }
        }
        p {
            span #device-count { (list.len()) } " devices, "
            span #online-count { (online) } " online (seen within " (secs(state.offline_after)) "). "
            span #live-state .muted data-state="connecting" { "Live updates: connecting…" }
        }
        @if list.is_empty() {
            p #empty { "No device is enrolled" @if site.is_some() { " at this site" } "." }
        } @else {
            div.table-wrap {
                table #devices-table {
                    thead {
                        tr {
                            th scope="col" { "Device" }
                            th scope="col" { "Site" }
                            th scope="col" { "Last seen" }
                            th scope="col" { "" }
                            th scope="col" { "Status" }
                            th scope="col" { "Backlog" }
                            th scope="col" { "Version" }
                            th scope="col" { "Revoked" }
                            th scope="col" { span.visually-hidden { "Action" } }
                        }
                    }
                    tbody {
                        @for d in &list {
                            (row(&session, d))
                        }
                    }
                }
            }
        }
        (layout::csv_link(&csv_href))
        h2 { "Backlog per device" }
        @if list.is_empty() {
            p { "No devices, no backlog." }
        } @else {
            (charts::bars("backlog-chart", "Unacknowledged movements per device", "devices", &backlog))
            p.hint { "The same figures are in the Backlog column above and in the CSV." }
        }
        (live::subscribe(&layout::href("/live/devices", &[("site", site.as_deref().unwrap_or(""))])))
    };
    Ok(layout::page(&session, Nav::Devices, "Devices", content).into_response())
}

fn row(session: &Session, d: &DeviceStatus) -> Markup {
    html! {
        tr id=(format!("device-{}", d.id)) data-test="device-row" data-device=(d.id) data-site=(d.site)
            data-status=(d.status) {
            td data-field="id" { (d.id) }
            td data-field="site" { (d.site) }
            td data-field="last-seen" {
                @if let Some(iso) = &d.last_seen {
                    time datetime=(iso) { (d.last_seen_text) }
                } @else {
                    "never"
                }
            }
            td data-field="ago" { (d.ago) }
            td data-field="status" { span class=(format!("badge {}", d.status)) { (d.label) } }
            td.num data-field="backlog" {
                @if let Some(b) = d.backlog { (b) } @else { "–" }
            }
            td data-field="version" {
                @if let Some(v) = &d.version { (v) } @else { "unknown" }
            }
            td data-field="revoked" { @if d.revoked { "revoked" } @else { "no" } }
            td {
                @if !d.revoked {
                    form.inline method="post" action=(revoke_href(&d.id)) {
                        (layout::csrf_field(session))
                        button id=(format!("revoke-{}", d.id)) type="submit" { "Revoke…" }
                    }
                }
            }
        }
    }
}

fn revoke_href(id: &str) -> String {
    format!("/devices/{}/revoke", layout::path_segment(id))
}

fn secs(d: Duration) -> String {
    match d.as_secs() {
        s if s % 60 == 0 && s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `POST /devices/{id}/revoke` (CSRF form): without `confirm=yes` the confirmation page; with it, revokes through
/// the device registry and answers 303 to the list. An unknown device is a 404 page.
pub(super) async fn revoke(
    id: Result<Path<String>, PathRejection>,
    State(state): State<AppState>,
    form: CsrfForm,
) -> PageResult {
    let CsrfForm {
        session,
        mut fields,
    } = form;
    let confirmed = fields.one_of("confirm", &["yes"])?.is_some();
    fields.finish()?;
    let Path(id) = id.map_err(|e| PageError::BadRequest(e.body_text()))?;
    let devices = state.devices.clone();
    let lookup = id.clone();
    let not_found = || PageError::NotFound(format!("no device {id:?} is enrolled"));
    if !is_valid_name(&id) {
        return Err(not_found());
    }
    if !confirmed {
        let record = blocking(move || devices.get(&lookup).map_err(|e| ApiError::from(e).into()))
            .await?
            .ok_or_else(not_found)?;
        return Ok(layout::page(
            &session,
            Nav::Devices,
            &format!("Revoke {}?", record.device_id),
            confirm_page(&session, &record),
        )
        .into_response());
    }
    let revoked = blocking(move || {
        devices
            .revoke(&lookup)
            .map_err(|e| ApiError::from(e).into())
    })
    .await?
    .ok_or_else(not_found)?;
    tracing::info!(device = %revoked.device_id, "device revoked from the dashboard");
    Ok(see_other(&layout::href(
        "/devices",
        &[("revoked", &revoked.device_id)],
    )))
}

fn confirm_page(session: &Session, record: &DeviceRecord) -> Markup {
    html! {
        p {
            "Device " strong { (record.device_id) } " at site " strong { (record.site) }
            " will be refused from its next push or pull (401 revoked). Its movements stay. To use it again, \
             enroll it again with --rotate, which issues a new token."
        }
        @if record.revoked_at.is_some() {
            p.notice { "It is revoked already; confirming changes nothing." }
        }
        form #revoke-form .stacked method="post" action=(revoke_href(&record.device_id)) {
            (layout::csrf_field(session))
            input type="hidden" name="confirm" value="yes";
            button #revoke-confirm .danger type="submit" { "Revoke " (record.device_id) }
            " "
            a #revoke-cancel href="/devices" { "Cancel" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(last_seen: Option<OffsetDateTime>, user_agent: Option<&str>) -> DeviceRecord {
        DeviceRecord {
            device_id: "hh-01".into(),
            site: "WH1".into(),
            token_sha256: "0".repeat(64),
            enrolled_at: OffsetDateTime::UNIX_EPOCH,
            revoked_at: None,
            last_seen,
            backlog: Some(3),
            user_agent: user_agent.map(Into::into),
        }
    }

    #[test]
    fn status_table() {
        let now = time::macros::datetime!(2026-11-27 08:15:30 UTC);
        let after = Duration::from_secs(120);
        let s = time::Duration::seconds;
        // (last seen, status, ago)
        let cases: &[(Option<OffsetDateTime>, &str, &str)] = &[
            (None, "never", "never"),
            (Some(now), "online", "just now"),
            (Some(now + s(30)), "online", "just now"),
            (Some(now - s(59)), "online", "just now"),
            (Some(now - s(120)), "online", "2 min ago"),
            (Some(now - s(121)), "offline", "2 min ago"),
            (Some(now - s(3599)), "offline", "59 min ago"),
            (Some(now - s(3600)), "offline", "1 h ago"),
            (Some(now - s(47 * 3600 + 3599)), "offline", "47 h ago"),
            (Some(now - s(48 * 3600)), "offline", "2 days ago"),
        ];
        for (seen, status, ago_text) in cases {
            let d = DeviceStatus::of(&record(*seen, None), now, after);
            assert_eq!((d.status, d.ago.as_str()), (*status, *ago_text), "{seen:?}");
        }
    }

    #[test]
    fn status_carries_version_and_times() {
        let now = time::macros::datetime!(2026-11-27 08:15:30 UTC);
        let d = DeviceStatus::of(
            &record(Some(now), Some("dockhand-agent/0.3.1")),
            now,
            Duration::from_secs(1),
        );
        assert_eq!(d.version.as_deref(), Some("0.3.1"));
        assert_eq!(d.last_seen.as_deref(), Some("2026-11-27T08:15:30Z"));
        assert_eq!(d.last_seen_text, "2026-11-27 08:15 UTC");
        assert_eq!(d.label, "online");
        let unknown = DeviceStatus::of(&record(None, Some("curl/8")), now, Duration::from_secs(1));
        assert_eq!((unknown.version, unknown.label), (None, "never seen"));
    }
}
