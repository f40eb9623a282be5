//! EPCIS 2.0 export: stored movements as GS1 EPCIS 2.0 `ObjectEvent`s of an `EPCISDocument` (JSON-LD).
//!
//! Pure mapping, no store and no clock: [`object_event`] turns one [`StoredMovement`] and the master data it names
//! ([`MasterData`]) into an event, [`document`] wraps events in a document created at a given time. The handler in
//! `routes/epcis.rs` reads the store, pages, and serves `GET /v1/epcis/events`.
//!
//! # Event shape
//!
//! Every movement is one EPCIS 2.0 `ObjectEvent` with the bare CBV 2.0 words that EPCIS 2.0 JSON allows:
//!
//! ```text
//! kind            action   bizStep         disposition              readPoint  bizLocation
//! receive         OBSERVE  receiving       sellable_not_accessible  to         to
//! putaway, move   OBSERVE  storing         sellable_not_accessible  to         to
//! pick            OBSERVE  picking         -                        from       -
//! ship            OBSERVE  shipping        in_transit               from       -
//! count           OBSERVE  cycle_counting  -                        to         to
//! adjust (in)     OBSERVE  stock_taking    sellable_not_accessible  to         to
//! adjust (out)    OBSERVE  stock_taking    unknown                  from       -
//! ```
//!
//! Why these (definitions quoted from the CBV 2.0 ontology, `cbv:BizStep-*` and `cbv:Disp-*`):
//!
//! - **OBSERVE everywhere.** EPCIS 2.0 gives `ADD` the meaning "commissioned as part of this event" and `DELETE`
//!   "decommissioned": the identifiers start or stop existing. Dockhand never commissions anything: goods arrive
//!   already carrying their maker's GTIN, serials and SSCC, and an adjust corrects the book, it does not create
//!   or destroy goods. A receipt sent as `ADD` would tell a trading partner that our dock minted their serials.
//! - **receive → `receiving`**: "an object is being received at a location and is added to the receiver's
//!   inventory". Disposition `sellable_not_accessible` ("can be sold as is, but customer cannot access"), which
//!   CBV lists for `receiving` and `storing`: stock in a warehouse. Not `active` (only for a commissioned object
//!   "just introduced into the supply chain") and not `in_progress` (CBV: "omission of disposition is generally
//!   recommended instead of `in_progress`, which adds little value").
//! - **putaway, move → `storing`**: "an object is moved into and out of storage within a location"; CBV's own
//!   example is moving a pallet from the receiving area to a rack. There is no `relocating` in CBV 2.0.
//! - **pick → `picking`**: "the selecting of objects to fill an order". No disposition (EPCIS: omitted means the
//!   business condition is unchanged) and no bizLocation (omitted means unknown: the goods are on their way to
//!   packing or staging, which Dockhand does not record).
//! - **ship → `shipping`**, disposition `in_transit` ("being shipped between two trading partners"), no
//!   bizLocation: the goods have left every location we know.
//! - **count → `cycle_counting`**: "counting objects within a location in order to obtain an accurate inventory
//!   for business needs other than accounting purposes", which is what `DH:COUNT` does. A count changes nothing
//!   about the goods, so no disposition. A count of zero ("none here") is exported with quantity 0.
//! - **adjust → `stock_taking`**: "counting objects within a location ... to serve as a basis for accounting
//!   purposes". An adjust is the book correction that settles a counted difference (the office's resolution of
//!   a count mismatch or negative stock). `inspecting` ("reviewing objects to address potential physical or
//!   documentation defects") describes quality checks, not quantity corrections. Units booked in are stock again
//!   (`sellable_not_accessible`, as a receipt); units booked out are gone for reasons nobody recorded, so
//!   `unknown` ("an object's condition is not known").
//!
//! # Identifiers
//!
//! EPCIS 2.0 accepts GS1 Digital Link URIs wherever EPC URIs may appear, and we use their canonical form on
//! `https://id.gs1.org` (written by [`dockhand_protocol::gs1::to_digital_link`]):
//!
//! ```text
//! serial        epcList       https://id.gs1.org/01/{gtin}/21/{serial}
//! SSCC          epcList       https://id.gs1.org/00/{sscc}          (the pallet was seen with the goods)
//! lot           epcClass      https://id.gs1.org/01/{gtin}/10/{lot}
//! no lot        epcClass      https://id.gs1.org/01/{gtin}
//! GLN location  readPoint...  https://id.gs1.org/414/{gln}
//! other         readPoint...  {base}/loc/{site}/{code}             (a private location URI, see below)
//! ```
//!
//! Not the EPC URNs (`urn:epc:id:sgtin:...`, `urn:epc:id:sgln:...`, `urn:epc:class:lgtin:...`): those split a key
//! at the end of its GS1 Company Prefix, whose length is not part of the key and is not in our master data.
//! Guessing it would mint identifiers that name nothing; a Digital Link URI carries the whole key and needs no
//! split.
//!
//! A location without a GLN has no GS1 identity. EPCIS 2.0 allows any URI as a read point or business location,
//! so it gets a private one under [`PRIVATE_BASE`]: an `https` URI in the `.example` domain, which RFC 2606 keeps
//! for documentation, so it can never collide with an identifier some real party issued. Documents the ASN or pick
//! list a movement names (`bizTransactionList`) get `{base}/doc/{id}` the same way. A deployment that owns a domain
//! should replace the base (a `server.toml` key is the natural next step; today it is this constant).
//!
//! # Quantities
//!
//! Units named by a serial are in `epcList`; the rest of the movement's `qty` (all of it when there are no
//! serials) is one `quantityList` entry. EPCIS reads a quantity without `uom` as a count of instances, which is
//! what a Dockhand quantity is: trade items of the GTIN. Only when the item's master-data unit is a UN/ECE Rec 20
//! code of a physical measure ([`MEASURE_UNITS`]: kilograms, litres, metres...) is the quantity a measure, and then
//! it carries that `uom`. `EA`, `PCE`, boxes and anything unrecognised stay counts.
//!
//! # Times and identity
//!
//! `eventTime` is the device's time with the device's own offset, which is also `eventTimeZoneOffset`. EPCIS only
//! allows offsets from -14:00 to +14:00 in whole minutes; a device clock outside that (a misconfigured zone) is
//! exported in UTC with `+00:00`: the instant stays right, only the local-zone hint is lost. `recordTime` is when
//! the server applied the movement.
//!
//! `eventID` is a `urn:uuid:` name-based UUID (RFC 9562 §5.8 version 8, built with SHA-256 as in its Appendix B.2)
//! of the movement's identity `(device_id, seq)` and its device time. A stored movement never changes (a
//! different body for a stored seq is a 409), so the ID is the same on every call, every node and both
//! backends, and a partner can deduplicate on it. The EPCIS 2.0 event hash (`ni:///sha-256;...`) would also be
//! stable, but its canonicalisation rules are long and easy to get subtly wrong; a mistake there would silently
//! give two IDs to one event.
//!
//! # Dockhand extension fields
//!
//! Each event also carries, under the `dh:` prefix declared in the document's `@context`, what an ERP needs to
//! map an event back to the movement: `dh:site`, `dh:deviceID`, `dh:seq`, `dh:movementKind`, and the site-local
//! `dh:fromLocation` / `dh:toLocation` codes. Operators are not exported: partners have no use for who scanned.

use std::collections::HashMap;

use dockhand_protocol::gs1::check::verify_check_digit;
use dockhand_protocol::gs1::digital_link::percent_encode;
use dockhand_protocol::gs1::{to_digital_link, Element};
use dockhand_protocol::sync::{Item, Location, Movement, MovementKind};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::store::StoredMovement;

/// The EPCIS 2.0 JSON-LD context every document names first.
pub const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";

/// Where private identifiers live: locations without a GLN, document references, the `dh:` extension namespace.
/// See the module docs for why `.example`.
pub const PRIVATE_BASE: &str = "https://dockhand.example";

/// The namespace UUID of [`event_id`] (random, fixed forever: changing it changes every event's ID).
const EVENT_ID_NAMESPACE: [u8; 16] = [
    0x1c, 0x7b, 0x19, 0xd8, 0xba, 0x08, 0x47, 0x6c, 0x99, 0xa4, 0xdf, 0x05, 0x54, 0x7b, 0x61, 0x92,
];

/// UN/ECE Recommendation 20 codes of physical measures (mass, volume, length, area). A master-data unit among
/// these makes the quantity a measure with that `uom`; any other unit means a count (see the module docs).
pub const MEASURE_UNITS: &[&str] = &[
    "GRM", "KGM", "MGM", "TNE", "LBR", "ONZ", // mass
    "MLT", "CLT", "LTR", "MTQ", "GLL", // volume
    "MMT", "CMT", "MTR", "KMT", "INH", "FOT", // length
    "MTK", "FTK", // area
];

/// Why a movement could not be exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EpcisError {
    /// A time could not be written as RFC 3339 (a year outside 0..=9999).
    #[error("movement {device_id}/{seq}: {field} cannot be written as RFC 3339: {source}")]
    Time {
        /// The movement's device.
        device_id: String,
        /// The movement's seq.
        seq: u64,
        /// The event field at fault.
        field: &'static str,
        /// The formatting error.
        source: time::error::Format,
    },
}

/// The master data an export looks up: each location's GLN and each item's unit.
#[derive(Debug, Clone, Default)]
pub struct MasterData {
    glns: HashMap<(String, String), String>,
    units: HashMap<String, String>,
}

impl MasterData {
    /// Adds the locations of `site`.
    pub fn add_locations(&mut self, site: &str, locations: &[Location]) {
        for loc in locations {
            if let Some(gln) = &loc.gln {
                self.glns
                    .insert((site.to_string(), loc.code.clone()), gln.clone());
            }
        }
    }

    /// Adds an item.
    pub fn add_item(&mut self, item: &Item) {
        self.units.insert(item.gtin.clone(), item.unit.clone());
    }

    fn gln(&self, site: &str, code: &str) -> Option<&str> {
        self.glns
            .get(&(site.to_string(), code.to_string()))
            .map(String::as_str)
    }
}

/// An `EPCISDocument` (EPCIS 2.0 §9, JSON binding).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpcisDocument {
    /// The EPCIS context, then the `dh:` prefix.
    #[serde(rename = "@context")]
    pub context: (&'static str, DockhandContext),
    /// Always `EPCISDocument`.
    #[serde(rename = "type")]
    pub doc_type: &'static str,
    /// Always `2.0`.
    #[serde(rename = "schemaVersion")]
    pub schema_version: &'static str,
    /// When the document was made (RFC 3339, UTC).
    #[serde(rename = "creationDate")]
    pub creation_date: String,
    /// The events.
    #[serde(rename = "epcisBody")]
    pub epcis_body: EpcisBody,
}

/// The `@context` entry declaring the `dh:` prefix of Dockhand's extension fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockhandContext {
    /// The namespace IRI.
    pub dh: String,
}

/// `epcisBody`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpcisBody {
    /// The events, in server commit order.
    #[serde(rename = "eventList")]
    pub event_list: Vec<ObjectEvent>,
}

/// One EPCIS 2.0 `ObjectEvent`, the export of one movement. Field order is the one the standard's examples use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectEvent {
    /// Always `ObjectEvent`.
    #[serde(rename = "type")]
    pub event_type: &'static str,
    /// Stable per movement; see [`event_id`].
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// The device time.
    pub event_time: String,
    /// The device's offset, `+00:00` when EPCIS cannot express it.
    pub event_time_zone_offset: String,
    /// When the server applied the movement.
    pub record_time: String,
    /// Serialised units and the pallet.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub epc_list: Vec<String>,
    /// The units not named by a serial.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quantity_list: Vec<QuantityElement>,
    /// Always `OBSERVE` (see the module docs).
    pub action: Action,
    /// The CBV business step.
    pub biz_step: BizStep,
    /// The CBV disposition, when the step sets one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// Where the scan confirmed the movement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_point: Option<Place>,
    /// Where the goods are after the movement, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biz_location: Option<Place>,
    /// The ASN or pick list the movement belongs to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub biz_transaction_list: Vec<BizTransaction>,
    /// Extension: the site of the recording device.
    #[serde(rename = "dh:site")]
    pub site: String,
    /// Extension: the recording device.
    #[serde(rename = "dh:deviceID")]
    pub device_id: String,
    /// Extension: the movement's seq on that device.
    #[serde(rename = "dh:seq")]
    pub seq: u64,
    /// Extension: the Dockhand movement kind.
    #[serde(rename = "dh:movementKind")]
    pub movement_kind: MovementKind,
    /// Extension: the site-local code of the location the goods left.
    #[serde(rename = "dh:fromLocation", skip_serializing_if = "Option::is_none")]
    pub from_location: Option<String>,
    /// Extension: the site-local code of the location the goods reached (or were counted at).
    #[serde(rename = "dh:toLocation", skip_serializing_if = "Option::is_none")]
    pub to_location: Option<String>,
}

/// An EPCIS action. Only `OBSERVE` is ever exported: see the module docs for why not `ADD` or `DELETE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    /// The objects were seen; nothing was commissioned or decommissioned.
    Observe,
}

/// The CBV 2.0 business steps the export uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BizStep {
    /// receive.
    Receiving,
    /// putaway, move.
    Storing,
    /// pick.
    Picking,
    /// ship.
    Shipping,
    /// count.
    CycleCounting,
    /// adjust.
    StockTaking,
}

/// The CBV 2.0 dispositions the export uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Stock in the warehouse.
    SellableNotAccessible,
    /// Shipped.
    InTransit,
    /// Booked out by an adjust.
    Unknown,
}

/// A `readPoint` or `bizLocation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    /// The location URI.
    pub id: String,
}

/// One `quantityList` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuantityElement {
    /// The GTIN, with the lot when there is one.
    pub epc_class: String,
    /// Units (or the measure in `uom`).
    pub quantity: u64,
    /// Set only for measured items (see the module docs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uom: Option<String>,
}

/// One `bizTransactionList` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BizTransaction {
    /// The CBV transaction type (`desadv` for an ASN); omitted when CBV has none (pick lists).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// The document's URI.
    #[serde(rename = "bizTransaction")]
    pub uri: String,
}

/// Which location of a movement an event field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    From,
    To,
}

/// What a movement's `reference` becomes in `bizTransactionList`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reference {
    /// A business transaction of this CBV type: a receipt's ASN is a `desadv` (despatch advice).
    Typed(&'static str),
    /// A business transaction CBV has no type for: a pick list.
    Untyped,
    /// Not exported: a count's id or a note on an internal move is no business transaction.
    Ignored,
}

/// The CBV meaning of a movement: the table in the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Semantics {
    biz_step: BizStep,
    disposition: Option<Disposition>,
    read_point: Side,
    biz_location: Option<Side>,
    reference: Reference,
}

fn semantics(m: &Movement) -> Semantics {
    use Disposition::{InTransit, SellableNotAccessible, Unknown};
    // Goods that are (again) stock at `to_location`.
    let stocked = |biz_step, reference| Semantics {
        biz_step,
        disposition: Some(SellableNotAccessible),
        read_point: Side::To,
        biz_location: Some(Side::To),
        reference,
    };
    // Goods that left `from_location` for somewhere we do not record.
    let left = |biz_step, disposition, reference| Semantics {
        biz_step,
        disposition,
        read_point: Side::From,
        biz_location: None,
        reference,
    };
    match m.kind {
        MovementKind::Receive => stocked(BizStep::Receiving, Reference::Typed("desadv")),
        MovementKind::Putaway | MovementKind::Move => stocked(BizStep::Storing, Reference::Ignored),
        MovementKind::Pick => left(BizStep::Picking, None, Reference::Untyped),
        MovementKind::Ship => left(BizStep::Shipping, Some(InTransit), Reference::Untyped),
        MovementKind::Count => Semantics {
            disposition: None,
            ..stocked(BizStep::CycleCounting, Reference::Ignored)
        },
        // Into a location, or out of one (`Movement::validate` allows exactly one of the two).
        MovementKind::Adjust if m.to_location.is_some() => {
            stocked(BizStep::StockTaking, Reference::Ignored)
        }
        MovementKind::Adjust => left(BizStep::StockTaking, Some(Unknown), Reference::Ignored),
    }
}

/// The `ObjectEvent` of one stored movement (see the module docs for every choice).
pub fn object_event(
    stored: &StoredMovement,
    master: &MasterData,
    base: &str,
) -> Result<ObjectEvent, EpcisError> {
    let m = &stored.movement;
    let sem = semantics(m);
    let place = |side: Side| {
        let code = match side {
            Side::From => m.from_location.as_deref(),
            Side::To => m.to_location.as_deref(),
        };
        code.map(|code| Place {
            id: location_uri(base, &stored.site, code, master.gln(&stored.site, code)),
        })
    };
    let time_err = |field| {
        move |source| EpcisError::Time {
            device_id: m.device_id.clone(),
            seq: m.seq,
            field,
            source,
        }
    };
    let (event_time, event_time_zone_offset) = event_time(m.at).map_err(time_err("eventTime"))?;
    let record_time = stored
        .received_at
        .to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(time_err("recordTime"))?;

    let mut epc_list: Vec<String> = Vec::with_capacity(m.serials.len() + 1);
    for serial in &m.serials {
        let uri = link(&[Element::new("01", &m.gtin), Element::new("21", serial)]);
        // epcList is a set (`uniqueItems`); a serial scanned twice in one movement is one object.
        if !epc_list.contains(&uri) {
            epc_list.push(uri);
        }
    }
    if let Some(sscc) = &m.sscc {
        epc_list.push(link(&[Element::new("00", sscc)]));
    }
    // A count of zero has no serials and still says "0 here"; otherwise only units without a serial.
    let unnamed = m.qty.saturating_sub(m.serials.len() as u64);
    let quantity_list = if m.serials.is_empty() || unnamed > 0 {
        let mut class = vec![Element::new("01", &m.gtin)];
        if let Some(lot) = &m.lot {
            class.push(Element::new("10", lot));
        }
        vec![QuantityElement {
            epc_class: link(&class),
            quantity: unnamed,
            uom: master
                .units
                .get(&m.gtin)
                .and_then(|unit| measure_uom(unit))
                .map(str::to_string),
        }]
    } else {
        Vec::new()
    };
    let kind = match sem.reference {
        Reference::Typed(kind) => Some(Some(kind)),
        Reference::Untyped => Some(None),
        Reference::Ignored => None,
    };
    let biz_transaction_list = match (kind, &m.reference) {
        (Some(kind), Some(reference)) => vec![BizTransaction {
            kind,
            uri: format!("{base}/doc/{}", percent_encode(reference)),
        }],
        _ => Vec::new(),
    };
    Ok(ObjectEvent {
        event_type: "ObjectEvent",
        event_id: event_id(m),
        event_time,
        event_time_zone_offset,
        record_time,
        epc_list,
        quantity_list,
        action: Action::Observe,
        biz_step: sem.biz_step,
        disposition: sem.disposition,
        read_point: place(sem.read_point),
        biz_location: sem.biz_location.and_then(place),
        biz_transaction_list,
        site: stored.site.clone(),
        device_id: m.device_id.clone(),
        seq: m.seq,
        movement_kind: m.kind,
        from_location: m.from_location.clone(),
        to_location: m.to_location.clone(),
    })
}

/// The document holding `events`, created at `now`.
pub fn document(
    events: Vec<ObjectEvent>,
    now: OffsetDateTime,
    base: &str,
) -> Result<EpcisDocument, time::error::Format> {
    Ok(EpcisDocument {
        context: (
            EPCIS_CONTEXT,
            DockhandContext {
                dh: format!("{base}/epcis/"),
            },
        ),
        doc_type: "EPCISDocument",
        schema_version: "2.0",
        creation_date: now.to_offset(UtcOffset::UTC).format(&Rfc3339)?,
        epcis_body: EpcisBody { event_list: events },
    })
}

/// The movement's `eventID`: `urn:uuid:` of an RFC 9562 version 8 UUID, the first 128 bits of
/// SHA-256(namespace ‖ device_id ‖ 0x00 ‖ seq as u64 BE ‖ device time as i128 Unix nanoseconds BE) with the
/// version and variant bits set, as RFC 9562 Appendix B.2 builds a name-based UUID from SHA-256.
pub fn event_id(m: &Movement) -> String {
    let mut hash = Sha256::new();
    hash.update(EVENT_ID_NAMESPACE);
    hash.update(m.device_id.as_bytes());
    // Device ids never contain NUL, so the name splits only one way.
    hash.update([0]);
    hash.update(m.seq.to_be_bytes());
    hash.update(m.at.unix_timestamp_nanos().to_be_bytes());
    let digest = hash.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // variant 10
    let h = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `eventTime` and `eventTimeZoneOffset` for a device time (see the module docs for offsets EPCIS cannot hold).
fn event_time(at: OffsetDateTime) -> Result<(String, String), time::error::Format> {
    match epcis_offset(at.offset()) {
        Some(offset) => Ok((at.format(&Rfc3339)?, offset)),
        None => Ok((
            at.to_offset(UtcOffset::UTC).format(&Rfc3339)?,
            "+00:00".to_string(),
        )),
    }
}

/// `±hh:mm` when EPCIS's pattern allows the offset (-14:00..=+14:00, whole minutes), else `None`.
fn epcis_offset(offset: UtcOffset) -> Option<String> {
    let (h, m, s) = offset.as_hms();
    let (h, m) = (h.unsigned_abs(), m.unsigned_abs());
    if s != 0 || h > 14 || (h == 14 && m > 0) {
        return None;
    }
    let sign = if offset.is_negative() { '-' } else { '+' };
    Some(format!("{sign}{h:02}:{m:02}"))
}

/// The `uom` of a master-data unit: the unit itself when it is a measure in [`MEASURE_UNITS`], else `None`.
fn measure_uom(unit: &str) -> Option<&str> {
    MEASURE_UNITS.iter().copied().find(|u| *u == unit)
}

/// The URI of a location: its GLN as a Digital Link when it has a valid one, else the private URI.
fn location_uri(base: &str, site: &str, code: &str, gln: Option<&str>) -> String {
    match gln {
        Some(gln) if gln.len() == 13 && verify_check_digit(gln) => {
            link(&[Element::new("414", gln)])
        }
        _ => format!(
            "{base}/loc/{}/{}",
            percent_encode(site),
            percent_encode(code)
        ),
    }
}

/// The canonical Digital Link of `elements`, whose first element is always a primary key (01, 00, 414) followed
/// by its own qualifiers, so [`to_digital_link`] always has an answer; the fallback writes the same form by hand
/// rather than panic should that ever change.
fn link(elements: &[Element]) -> String {
    to_digital_link(elements).unwrap_or_else(|| {
        let mut uri = dockhand_protocol::gs1::digital_link::GS1_RESOLVER.to_string();
        for e in elements {
            uri.push_str(&format!("/{}/{}", e.ai, percent_encode(&e.value)));
        }
        uri
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockhand_protocol::sync::MovementSource;
    use time::macros::{datetime, offset};

    const GTIN: &str = "09506000134352";
    const GLN: &str = "9506000000015";

    fn movement(kind: MovementKind, from: Option<&str>, to: Option<&str>) -> Movement {
        Movement {
            device_id: "hh-01".into(),
            seq: 7,
            at: datetime!(2026-11-26 10:15:00 +01:00),
            kind,
            gtin: GTIN.into(),
            lot: None,
            expiry: None,
            serials: vec![],
            qty: 3,
            from_location: from.map(Into::into),
            to_location: to.map(Into::into),
            sscc: None,
            reference: None,
            operator: None,
            source: MovementSource::Manual,
        }
    }

    fn stored(m: Movement) -> StoredMovement {
        StoredMovement {
            server_seq: 1,
            site: "WH1".into(),
            received_at: datetime!(2026-11-26 09:15:02.5 UTC),
            movement: m,
        }
    }

    #[test]
    fn semantics_table() {
        use BizStep as B;
        use Disposition as D;
        use MovementKind as K;
        use Reference::{Ignored, Typed, Untyped};
        use Side::{From, To};
        let row = |biz_step, disposition, read_point, biz_location, reference| Semantics {
            biz_step,
            disposition,
            read_point,
            biz_location,
            reference,
        };
        let stock = Some(D::SellableNotAccessible);
        let cases: &[(K, Option<&str>, Option<&str>, Semantics)] = &[
            (
                K::Receive,
                None,
                Some("DOCK"),
                row(B::Receiving, stock, To, Some(To), Typed("desadv")),
            ),
            (
                K::Putaway,
                Some("DOCK"),
                Some("A-01"),
                row(B::Storing, stock, To, Some(To), Ignored),
            ),
            (
                K::Move,
                Some("A-01"),
                Some("A-02"),
                row(B::Storing, stock, To, Some(To), Ignored),
            ),
            (
                K::Pick,
                Some("A-01"),
                None,
                row(B::Picking, None, From, None, Untyped),
            ),
            (
                K::Ship,
                Some("DOCK"),
                None,
                row(B::Shipping, Some(D::InTransit), From, None, Untyped),
            ),
            (
                K::Count,
                None,
                Some("A-01"),
                row(B::CycleCounting, None, To, Some(To), Ignored),
            ),
            (
                K::Adjust,
                None,
                Some("A-01"),
                row(B::StockTaking, stock, To, Some(To), Ignored),
            ),
            (
                K::Adjust,
                Some("A-01"),
                None,
                row(B::StockTaking, Some(D::Unknown), From, None, Ignored),
            ),
        ];
        for &(kind, from, to, want) in cases {
            assert_eq!(
                semantics(&movement(kind, from, to)),
                want,
                "{kind:?} {from:?} -> {to:?}"
            );
        }
    }

    #[test]
    fn offset_table() {
        let cases: &[(UtcOffset, Option<&str>)] = &[
            (offset!(UTC), Some("+00:00")),
            (offset!(+01:00), Some("+01:00")),
            (offset!(-05:30), Some("-05:30")),
            (offset!(-00:30), Some("-00:30")),
            (offset!(+13:59), Some("+13:59")),
            (offset!(+14:00), Some("+14:00")),
            (offset!(-14:00), Some("-14:00")),
            (offset!(+14:01), None),
            (offset!(-15:00), None),
            (offset!(+01:00:30), None),
        ];
        for &(off, want) in cases {
            assert_eq!(epcis_offset(off).as_deref(), want, "{off}");
        }
    }

    #[test]
    fn event_time_keeps_the_device_offset_or_falls_back_to_utc() {
        let cases: &[(OffsetDateTime, &str, &str)] = &[
            (
                datetime!(2026-11-26 10:15:00 +01:00),
                "2026-11-26T10:15:00+01:00",
                "+01:00",
            ),
            (
                datetime!(2026-11-26 10:15:00.25 -03:00),
                "2026-11-26T10:15:00.25-03:00",
                "-03:00",
            ),
            // Out of EPCIS's range: the same instant in UTC.
            (
                datetime!(2026-11-26 20:00:00 +15:00),
                "2026-11-26T05:00:00Z",
                "+00:00",
            ),
        ];
        for &(at, time, offset) in cases {
            assert_eq!(
                event_time(at).unwrap(),
                (time.to_string(), offset.to_string()),
                "{at}"
            );
        }
    }

    #[test]
    fn uom_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("EA", None),
            ("PCE", None),
            ("box", None),
            ("", None),
            ("KGM", Some("KGM")),
            ("LTR", Some("LTR")),
            ("MTR", Some("MTR")),
            ("kgm", None),
        ];
        for &(unit, want) in cases {
            assert_eq!(measure_uom(unit), want, "{unit:?}");
        }
    }

    #[test]
    fn location_uri_table() {
        let base = PRIVATE_BASE;
        let cases: &[(&str, &str, Option<&str>, &str)] = &[
            (
                "WH1",
                "A-01",
                Some(GLN),
                "https://id.gs1.org/414/9506000000015",
            ),
            ("WH1", "A-01", None, "https://dockhand.example/loc/WH1/A-01"),
            // A GLN that fails its check digit or length names nothing: private URI.
            (
                "WH1",
                "A-01",
                Some("9506000000016"),
                "https://dockhand.example/loc/WH1/A-01",
            ),
            (
                "WH1",
                "A-01",
                Some("950600000001"),
                "https://dockhand.example/loc/WH1/A-01",
            ),
            (
                "WH.2",
                "Bay 7 #2",
                None,
                "https://dockhand.example/loc/WH.2/Bay%207%20%232",
            ),
        ];
        for &(site, code, gln, want) in cases {
            assert_eq!(
                location_uri(base, site, code, gln),
                want,
                "{site} {code} {gln:?}"
            );
        }
    }

    #[test]
    fn identifiers_are_canonical_digital_links() {
        let mut m = movement(MovementKind::Receive, None, Some("DOCK"));
        m.serials = vec!["S/1".into(), "S2".into(), "S/1".into()];
        m.qty = 4;
        m.lot = Some("L 1".into());
        m.sscc = Some("106141411234567897".into());
        let e = object_event(&stored(m), &MasterData::default(), PRIVATE_BASE).unwrap();
        assert_eq!(
            e.epc_list,
            [
                "https://id.gs1.org/01/09506000134352/21/S%2F1",
                "https://id.gs1.org/01/09506000134352/21/S2",
                "https://id.gs1.org/00/106141411234567897",
            ]
        );
        // Four units, two distinct serials named three times: the movement's qty minus its serials is unnamed.
        assert_eq!(
            e.quantity_list,
            [QuantityElement {
                epc_class: "https://id.gs1.org/01/09506000134352/10/L%201".into(),
                quantity: 1,
                uom: None,
            }]
        );
    }

    #[test]
    fn quantity_table() {
        // (serials, qty, unit, expected quantityList as (class suffix, quantity, uom))
        type Want = Option<(u64, Option<&'static str>)>;
        let cases: &[(&[&str], u64, Option<&str>, Want)] = &[
            (&[], 3, None, Some((3, None))),
            (&[], 3, Some("EA"), Some((3, None))),
            (&[], 12, Some("KGM"), Some((12, Some("KGM")))),
            (&["A", "B"], 2, None, None),
            (&["A"], 3, None, Some((2, None))),
            (&[], 0, None, Some((0, None))),
        ];
        for &(serials, qty, unit, want) in cases {
            let mut m = movement(MovementKind::Count, None, Some("A-01"));
            m.serials = serials.iter().map(|s| s.to_string()).collect();
            m.qty = qty;
            let mut master = MasterData::default();
            if let Some(unit) = unit {
                master.add_item(&Item {
                    gtin: GTIN.into(),
                    description: "Widget".into(),
                    unit: unit.into(),
                    lot_tracked: false,
                    expiry_tracked: false,
                    serial_tracked: false,
                    active: true,
                    unit_cost: None,
                });
            }
            let e = object_event(&stored(m), &master, PRIVATE_BASE).unwrap();
            let got = e
                .quantity_list
                .first()
                .map(|q| (q.quantity, q.uom.as_deref()));
            assert_eq!(got, want, "{serials:?} {qty} {unit:?}");
            assert_eq!(e.epc_list.len(), serials.len(), "{serials:?}");
            assert!(e.quantity_list.len() <= 1);
        }
    }

    #[test]
    fn references_become_business_transactions_where_cbv_has_one() {
        use MovementKind as K;
        // (kind, from, to, exported?, CBV type)
        type Row = (
            K,
            Option<&'static str>,
            Option<&'static str>,
            bool,
            Option<&'static str>,
        );
        let cases: &[Row] = &[
            (K::Receive, None, Some("DOCK"), true, Some("desadv")),
            (K::Pick, Some("A-01"), None, true, None),
            (K::Ship, Some("DOCK"), None, true, None),
            (K::Count, None, Some("A-01"), false, None),
            (K::Putaway, Some("DOCK"), Some("A-01"), false, None),
        ];
        for &(kind, from, to, exported, want_type) in cases {
            let mut m = movement(kind, from, to);
            m.reference = Some("DOC 1".into());
            let e = object_event(&stored(m), &MasterData::default(), PRIVATE_BASE).unwrap();
            let got: Vec<(Option<&str>, &str)> = e
                .biz_transaction_list
                .iter()
                .map(|t| (t.kind, t.uri.as_str()))
                .collect();
            let want: Vec<(Option<&str>, &str)> = if exported {
                vec![(want_type, "https://dockhand.example/doc/DOC%201")]
            } else {
                vec![]
            };
            assert_eq!(got, want, "{kind:?}");
        }
    }

    #[test]
    fn event_id_is_a_version_8_uuid_of_the_movement_identity() {
        let m = movement(MovementKind::Receive, None, Some("DOCK"));
        let id = event_id(&m);
        let hex = id.strip_prefix("urn:uuid:").expect("urn:uuid:");
        let groups: Vec<usize> = hex.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert_eq!(&hex[14..15], "8", "version nibble: {id}");
        assert!(
            matches!(&hex[19..20], "8" | "9" | "a" | "b"),
            "variant: {id}"
        );

        // Content other than the identity does not matter; the identity and the device time do.
        let same = Movement {
            qty: 99,
            lot: Some("L".into()),
            ..m.clone()
        };
        assert_eq!(event_id(&same), id);
        // The same instant written with another offset is the same movement time.
        let same_instant = Movement {
            at: m.at.to_offset(offset!(UTC)),
            ..m.clone()
        };
        assert_eq!(event_id(&same_instant), id);
        for other in [
            Movement {
                seq: 8,
                ..m.clone()
            },
            Movement {
                device_id: "hh-02".into(),
                ..m.clone()
            },
            Movement {
                at: m.at + time::Duration::nanoseconds(1),
                ..m.clone()
            },
        ] {
            assert_ne!(event_id(&other), id, "{other:?}");
        }
    }

    /// Regression pin: trading partners deduplicate on eventID, so the derivation (namespace, name layout, hash)
    /// must never change. If this fails, every event ever exported would look new to them.
    #[test]
    fn event_id_derivation_is_frozen() {
        let m = movement(MovementKind::Receive, None, Some("DOCK"));
        assert_eq!(event_id(&m), FROZEN_EVENT_ID);
    }

    /// Computed independently of this code (Python's hashlib and uuid) from the layout in [`event_id`]'s docs.
    const FROZEN_EVENT_ID: &str = "urn:uuid:bc02fc3e-ab7e-8acc-9e66-a4cb0f22d824";
}
