//! `POST /v1/asns/import`: many expected receipts in one call, all stored or none.
//!
//! CSV has one row per ASN line; rows with the same `asn_id` form one ASN, in the order the ids first appear:
//!
//! ```text
//! asn_id,site,supplier,expected_on,sscc,gtin,lot,qty      (any order; supplier, expected_on, sscc, lot optional)
//! ASN-1,WH1,ACME,2026-12-01,,9506000134352,L1,10          a loose line
//! ASN-1,WH1,ACME,2026-12-01,106141411234567897,5901234123457,,4   a line on that pallet
//! ```
//!
//! The columns map one to one onto `NewAsn` (`POST /v1/asns`): `asn_id`, `site`, `supplier`, `expected_on` are
//! the ASN's and must read the same on every row of it (a row that differs is a bad row naming the first);
//! `gtin`, `lot`, `qty` are a line's, on the pallet `sscc` when one is given. JSON is an array of `NewAsn`.
//!
//! Checks, every one reported (see [`super::import`]): each cell or field as `POST /v1/asns` checks it, an id
//! twice in a JSON array, then each assembled ASN as a whole ([`asns::check`]: at least one line, at most
//! [`asns::MAX_LINES`]). Then, against the store: a deactivated site, and an id that already exists with other
//! content (409 for a single create; here a bad row). An id stored with exactly the same content is not an error:
//! it counts as `unchanged`, so sending a file again is harmless. Finally [`Store::create_asns`] writes the new
//! ones in one transaction, re-checking the ids inside it.

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use dockhand_protocol::sync::{Asn, AsnLine, AsnPallet, DocStatus};

use super::import::{element, json_elements, ImportBody, ImportOptions, ImportResult};
use super::input::{self, Csv, CsvRow};
use super::items::place;
use super::{asns, blocking, sites};
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::import::{message_without, At, BadRows};
use crate::state::AppState;
use crate::store::{Store, StoreError};

const REQUIRED: &[&str] = &["asn_id", "site", "gtin", "qty"];
const OPTIONAL: &[&str] = &["supplier", "expected_on", "sscc", "lot"];

/// The ASN-level columns that every row of one ASN must repeat identically.
const HEAD_COLUMNS: [&str; 3] = ["site", "supplier", "expected_on"];

pub(crate) async fn import(
    _admin: AdminAuth,
    State(state): State<AppState>,
    options: ImportOptions,
    body: ImportBody,
) -> Result<Json<ImportResult>, ApiError> {
    let asns = match body {
        ImportBody::Csv(text) => parse_asns(&text)?,
        ImportBody::Json(bytes) => asns_from_json(&bytes)?,
    };
    let store = state.store.clone();
    blocking(move || {
        let (new, mut unchanged) = against_store(store.as_ref(), &asns)?;
        let mut n = new.len();
        if !options.dry_run {
            let created = match store.create_asns(&new) {
                Ok(created) => created,
                // Another request took one of the ids since the check: report it as the check now does.
                Err(StoreError::Refused(message)) => {
                    against_store(store.as_ref(), &asns)?;
                    return Err(ApiError::bad_field("body", message));
                }
                Err(e) => return Err(e.into()),
            };
            // Fewer than asked only if an identical ASN was created in between: unchanged, then.
            unchanged += n - created;
            n = created;
            tracing::info!(imported = created, unchanged, "ASNs imported");
        }
        let mut result = ImportResult::new(options, n);
        result.unchanged = Some(unchanged);
        Ok(Json(result))
    })
    .await
}

/// The ASNs to create and how many are stored already exactly so; every conflict with the store reported at the
/// ASN's first row.
fn against_store(store: &dyn Store, asns: &[(At, Asn)]) -> Result<(Vec<Asn>, usize), ApiError> {
    let mut bad = BadRows::default();
    let mut site_ok: HashMap<String, Option<String>> = HashMap::new();
    let mut new = Vec::with_capacity(asns.len());
    let mut unchanged = 0;
    for (at, asn) in asns {
        let at = *at;
        let refused = match site_ok.get(&asn.site) {
            Some(r) => r.clone(),
            None => {
                let r = match sites::check_active(store, &asn.site) {
                    Ok(()) => None,
                    Err(ApiError::Refused(m)) => Some(m),
                    Err(e) => return Err(e),
                };
                site_ok.insert(asn.site.clone(), r.clone());
                r
            }
        };
        if let Some(message) = refused {
            bad.add(at, Some("site"), message);
            continue;
        }
        match store.asn(&asn.id)? {
            None => new.push(asn.clone()),
            Some(old) if old == *asn => unchanged += 1,
            Some(old) => bad.add(
                at,
                Some(id_field(at)),
                format!(
                    "ASN {:?} already exists ({}) with different content; ids are never reused",
                    asn.id,
                    status_name(old.status)
                ),
            ),
        }
    }
    bad.into_result()?;
    Ok((new, unchanged))
}

fn id_field(at: At) -> &'static str {
    match at {
        At::Line(_) => "asn_id",
        At::Index(_) => "id",
    }
}

fn status_name(s: DocStatus) -> &'static str {
    match s {
        DocStatus::Open => "open",
        DocStatus::Closed => "closed",
        DocStatus::Cancelled => "cancelled",
    }
}

/// One ASN being assembled from its rows.
struct Draft {
    /// Its first row.
    first: At,
    /// The ASN-level cells of its first row, as written ([`HEAD_COLUMNS`]).
    head: [String; 3],
    asn: Asn,
    /// Index in `asn.pallets` by SSCC.
    pallets: HashMap<String, usize>,
    /// Some row of it is bad: checked to the end, never stored.
    bad: bool,
}

/// Checks every row of an ASN CSV and assembles the ASNs (see the module docs); any error refuses the file.
pub(super) fn parse_asns(text: &str) -> Result<Vec<(At, Asn)>, ApiError> {
    let mut bad = BadRows::default();
    let csv = Csv::parse(text, REQUIRED, OPTIONAL)?;
    let mut drafts: Vec<Draft> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for r in &csv.rows {
        if !csv.fits(r, &mut bad) {
            continue;
        }
        let at = r.at();
        let id = bad.check(at, "asn_id", input::name("asn_id", csv.cell(r, "asn_id")));
        let head = head_of(&csv, r);
        let head_ok = check_head(&mut bad, at, &head);
        let sscc = match csv.cell(r, "sscc") {
            "" => Some(None),
            s => bad
                .check(at, "sscc", input::sscc("sscc", s))
                .map(|()| Some(s.to_string())),
        };
        let line = check_line(&mut bad, &csv, r);
        let Some(id) = id else { continue };
        let d = match by_id.get(&id) {
            Some(&d) => {
                let draft = &mut drafts[d];
                for (i, column) in HEAD_COLUMNS.iter().enumerate() {
                    if head[i] != draft.head[i] {
                        bad.add(
                            at,
                            Some(column),
                            format!(
                                "{:?} differs from {:?} on {}, the first row of ASN {id}",
                                head[i],
                                draft.head[i],
                                place(draft.first)
                            ),
                        );
                        draft.bad = true;
                    }
                }
                d
            }
            None => {
                by_id.insert(id.clone(), drafts.len());
                drafts.push(Draft {
                    first: at,
                    asn: Asn {
                        id,
                        site: head[0].clone(),
                        supplier: some(&head[1]),
                        expected_on: some(&head[2]),
                        lines: Vec::new(),
                        pallets: Vec::new(),
                        status: DocStatus::Open,
                    },
                    head,
                    pallets: HashMap::new(),
                    bad: false,
                });
                drafts.len() - 1
            }
        };
        let draft = &mut drafts[d];
        match (head_ok, line, sscc) {
            (true, Some(line), Some(None)) => draft.asn.lines.push(line),
            (true, Some(line), Some(Some(sscc))) => {
                let p = *draft.pallets.entry(sscc.clone()).or_insert_with(|| {
                    draft.asn.pallets.push(AsnPallet {
                        sscc,
                        lines: Vec::new(),
                    });
                    draft.asn.pallets.len() - 1
                });
                draft.asn.pallets[p].lines.push(line);
            }
            _ => draft.bad = true,
        }
    }
    let mut out = Vec::with_capacity(drafts.len());
    for mut draft in drafts.into_iter().filter(|d| !d.bad) {
        // The cells are fine one by one; what is left is the ASN as a whole (its number of lines).
        match asns::check(&mut draft.asn) {
            Ok(()) => out.push((draft.first, draft.asn)),
            Err(e) => bad.add(draft.first, None, format!("ASN {}: {e}", draft.asn.id)),
        }
    }
    bad.into_result()?;
    Ok(out)
}

fn head_of(csv: &Csv, r: &CsvRow) -> [String; 3] {
    HEAD_COLUMNS.map(|c| csv.cell(r, c).to_string())
}

fn some(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

/// Checks the ASN-level cells of a row; false when one is bad (each reported).
fn check_head(bad: &mut BadRows, at: At, [site, supplier, expected_on]: &[String; 3]) -> bool {
    let site = bad.check(at, "site", input::name("site", site));
    let supplier = match supplier.as_str() {
        "" => Some(()),
        s => bad.check(at, "supplier", input::required_text("supplier", s, 200)),
    };
    let expected_on = match expected_on.as_str() {
        "" => Some(()),
        d => bad.check(at, "expected_on", input::date("expected_on", d)),
    };
    site.is_some() && supplier.is_some() && expected_on.is_some()
}

/// The line of a row, its GTIN normalised, when `gtin`, `lot` and `qty` are fine (each bad one reported).
fn check_line(bad: &mut BadRows, csv: &Csv, r: &CsvRow) -> Option<AsnLine> {
    let at = r.at();
    let gtin = bad.check(at, "gtin", input::gtin("gtin", csv.cell(r, "gtin")));
    let lot = match csv.cell(r, "lot") {
        "" => Some(None),
        l => bad
            .check(at, "lot", input::lot("lot", l))
            .map(|()| Some(l.to_string())),
    };
    let qty = csv.cell(r, "qty");
    let qty = bad.check(
        at,
        "qty",
        qty.parse::<u64>()
            .map_err(|_| ApiError::bad_field("qty", format!("{qty:?} is not a whole number")))
            .and_then(|q| input::qty("qty", q).map(|()| q)),
    );
    Some(AsnLine {
        gtin: gtin?,
        lot: lot?,
        qty: qty?,
    })
}

/// Checks every element of a JSON array of `NewAsn`; any error refuses the file.
pub(super) fn asns_from_json(bytes: &[u8]) -> Result<Vec<(At, Asn)>, ApiError> {
    let mut bad = BadRows::default();
    let values = json_elements(bytes)?;
    let mut first: HashMap<String, At> = HashMap::new();
    let mut out = Vec::with_capacity(values.len());
    for (i, value) in values.into_iter().enumerate() {
        let at = At::Index(i);
        let Some(mut asn) = element::<Asn>(&mut bad, i, value) else {
            continue;
        };
        if let Err(e) = asns::check(&mut asn) {
            let field = match &e {
                ApiError::BadRequest { field, .. } => field.clone(),
                _ => None,
            };
            let message = match &field {
                Some(f) => message_without(f, e),
                None => e.to_string(),
            };
            bad.add(at, field.as_deref(), message);
            continue;
        }
        if let Some(earlier) = first.get(&asn.id) {
            bad.add(
                at,
                Some("id"),
                format!("ASN {:?} is already at {}", asn.id, place(*earlier)),
            );
            continue;
        }
        first.insert(asn.id.clone(), at);
        out.push((at, asn));
    }
    bad.into_result()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::testing::{at_lines, reported};

    /// `(line or index, field)` of each error a case expects.
    type Errors<'a> = &'a [(usize, Option<&'a str>)];

    const HEAD: &str = "asn_id,site,supplier,expected_on,sscc,gtin,lot,qty\n";

    #[test]
    fn csv_groups_rows_into_asns() {
        let text = format!(
            "{HEAD}A1,WH1,ACME,2026-12-01,,9506000134352,L1,10\n\
             A2,WH2,,,,5901234123457,,1\n\
             A1,WH1,ACME,2026-12-01,106141411234567897,5901234123457,,4\n\
             A1,WH1,ACME,2026-12-01,106141411234567897,9506000134352,L2,2\n\
             A1,WH1,ACME,2026-12-01,,9506000134352,L1,3\n"
        );
        let asns = parse_asns(&text).unwrap();
        let ids: Vec<(At, &str)> = asns.iter().map(|(at, a)| (*at, a.id.as_str())).collect();
        assert_eq!(ids, [(At::Line(2), "A1"), (At::Line(3), "A2")]);
        let a1 = &asns[0].1;
        assert_eq!(
            (
                a1.site.as_str(),
                a1.supplier.as_deref(),
                a1.expected_on.as_deref()
            ),
            ("WH1", Some("ACME"), Some("2026-12-01"))
        );
        let loose: Vec<(&str, Option<&str>, u64)> = a1
            .lines
            .iter()
            .map(|l| (l.gtin.as_str(), l.lot.as_deref(), l.qty))
            .collect();
        assert_eq!(
            loose,
            [
                ("09506000134352", Some("L1"), 10),
                ("09506000134352", Some("L1"), 3)
            ]
        );
        assert_eq!(a1.pallets.len(), 1);
        assert_eq!(a1.pallets[0].sscc, "106141411234567897");
        assert_eq!(a1.pallets[0].lines.len(), 2);
        assert_eq!(asns[1].1.supplier, None);
    }

    /// Rows after the header, and every `(line, column)` reported.
    #[test]
    fn csv_errors_table() {
        let cases: &[(&str, Errors<'_>)] = &[
            ("A1,WH1,,,,9506000134353,,1\n", &[(2, Some("gtin"))]),
            ("A1,WH1,,,,9506000134352,,0\n", &[(2, Some("qty"))]),
            ("A1,WH1,,,,9506000134352,,-1\n", &[(2, Some("qty"))]),
            ("A1,WH1,,,,9506000134352,,ten\n", &[(2, Some("qty"))]),
            ("A1,WH1,,,,9506000134352,,1000000001\n", &[(2, Some("qty"))]),
            ("A 1,WH1,,,,9506000134352,,1\n", &[(2, Some("asn_id"))]),
            ("A1,W/H,,,,9506000134352,,1\n", &[(2, Some("site"))]),
            ("A1,WH1,,2026-13-01,,9506000134352,,1\n", &[(2, Some("expected_on"))]),
            ("A1,WH1,,,106141411234567890,9506000134352,,1\n", &[(2, Some("sscc"))]),
            ("A1,WH1,,,,9506000134352,LLLLLLLLLLLLLLLLLLLLL,1\n", &[(2, Some("lot"))]),
            ("A1,WH1,,,,9506000134352,,1,9\n", &[(2, None)]),
            // Rows of one ASN disagreeing on its own columns: the later row is the bad one.
            (
                "A1,WH1,ACME,,,9506000134352,,1\nA1,WH2,Acme,,,9506000134352,,1\nA1,WH1,ACME,2026-12-01,,9506000134352,,1\n",
                &[(3, Some("site")), (3, Some("supplier")), (4, Some("expected_on"))],
            ),
            // Every bad cell of every row; a quoted supplier over two lines starts at its first.
            (
                "A1,WH1,\"two\nlines\",,,9506000134352,,1\n\nA2,WH1,,,,1,,0\nA3,WH1,,,,9506000134352,,5\n",
                &[(2, Some("supplier")), (5, Some("gtin")), (5, Some("qty"))],
            ),
        ];
        for (rows, want) in cases {
            let got = reported(parse_asns(&format!("{HEAD}{rows}")));
            assert_eq!(got, at_lines(want), "{rows:?}");
        }
        let header = reported(parse_asns("asn_id,gtin,qty,colour\n"));
        assert_eq!(header, at_lines(&[(1, Some("colour")), (1, Some("site"))]));
    }

    #[test]
    fn too_many_lines_is_reported_at_the_asns_first_row() {
        let mut text = String::from(HEAD);
        text.push_str("SMALL,WH1,,,,9506000134352,,1\n");
        for _ in 0..=asns::MAX_LINES {
            text.push_str("BIG,WH1,,,,9506000134352,,1\n");
        }
        let got = reported(parse_asns(&text));
        assert_eq!(got, at_lines(&[(3, None)]));
    }

    #[test]
    fn json_errors_table() {
        let ok = r#"{"id":"A1","site":"WH1","lines":[{"gtin":"9506000134352","qty":5}]}"#;
        let cases: &[(String, Errors<'_>)] = &[
            (format!("[{ok}]"), &[]),
            (
                format!(
                    r#"[{ok},{ok},{{"id":"A2","site":"WH1","lines":[{{"gtin":"9506000134352","qty":0}}]}},{{"id":"A3","site":"WH1"}},{{"id":"A4","site":"WH1","lines":[],"colour":1}},{{"id":"A5","site":"WH1","status":"closed","lines":[{{"gtin":"9506000134352","qty":1}}]}}]"#
                ),
                &[
                    (1, Some("id")),
                    (2, Some("lines[0].qty")),
                    (3, Some("lines")),
                    (4, Some("colour")),
                    (5, Some("status")),
                ],
            ),
        ];
        for (body, want) in cases {
            match asns_from_json(body.as_bytes()) {
                Ok(asns) => {
                    assert!(want.is_empty(), "{body}");
                    assert_eq!(asns[0].1.lines[0].gtin, "09506000134352", "normalised");
                }
                got => {
                    let want: Vec<(At, Option<String>)> = want
                        .iter()
                        .map(|(i, f)| (At::Index(*i), f.map(str::to_string)))
                        .collect();
                    assert_eq!(reported(got), want, "{body}");
                }
            }
        }
    }
}
