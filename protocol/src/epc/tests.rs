//! EPC tests: known-answer vectors both ways, every partition of every scheme, errors, garbage, and round-trip
//! property tests for all ten schemes.

use super::bits::BitWriter;
use super::*;
use proptest::prelude::*;

/// A known answer: hex ↔ tag URI, with the pure identity URI and the GS1 element string (`None` for GID).
struct Vector {
    hex: &'static str,
    tag: &'static str,
    pure: &'static str,
    hri: Option<&'static str>,
}

const fn v(
    hex: &'static str,
    tag: &'static str,
    pure: &'static str,
    hri: Option<&'static str>,
) -> Vector {
    Vector {
        hex,
        tag,
        pure,
        hri,
    }
}

/// Sources:
/// - TDS: GS1 EPC Tag Data Standard, Appendix E (1.x, SGTIN-96 worked example) and Appendix E.3 of TDS 2.3 (one
///   example per scheme), the latter as transcribed in dannyhaak/TagDataTranslation,
///   TagDataTranslationUnitTest/TDS23Tests.cs.
/// - epcpy: nedap/retail-epcpy, tests/epc_schemes/test_<scheme>.py (TagEncodable cases). Where epcpy writes
///   `(254)0` for an SGLN extension of 0 we follow TDS §7.4 (0 = no extension) and omit AI 254.
#[rustfmt::skip]
const VECTORS: &[Vector] = &[
    // TDS Appendix E: the SGTIN-96 worked example.
    v("3074257BF7194E4000001A85", "urn:epc:tag:sgtin-96:3.0614141.812345.6789", "urn:epc:id:sgtin:0614141.812345.6789", Some("(01)80614141123458(21)6789")),
    // TDS 2.3 E.3, one per scheme.
    v("3066C4409047E140075BCD15", "urn:epc:tag:sgtin-96:3.95060001343.05.123456789", "urn:epc:id:sgtin:95060001343.05.123456789", Some("(01)09506000134352(21)123456789")),
    v("3666C4409047E159B2C2BF100000000000000000000000000000", "urn:epc:tag:sgtin-198:3.95060001343.05.32a%2Fb", "urn:epc:id:sgtin:95060001343.05.32a%2Fb", Some("(01)09506000134352(21)32a/b")),
    v("311BA1B300CE0A6A83000000", "urn:epc:tag:sscc-96:0.952012.03456789123", "urn:epc:id:sscc:952012.03456789123", Some("(00)095201234567891235")),
    v("3276451FD46072000000162E", "urn:epc:tag:sgln-96:3.9521141.12345.5678", "urn:epc:id:sgln:9521141.12345.5678", Some("(414)9521141123454(254)5678")),
    v("3976451FD46072CD9615F8800000000000000000000000000000", "urn:epc:tag:sgln-195:3.9521141.12345.32a%2Fb", "urn:epc:id:sgln:9521141.12345.32a%2Fb", Some("(414)9521141123454(254)32a/b")),
    v("3376451FD40C0E400000162E", "urn:epc:tag:grai-96:3.9521141.12345.5678", "urn:epc:id:grai:9521141.12345.5678", Some("(8003)095211411234545678")),
    v("3776451FD40C0E59B2C2BF1000000000000000000000", "urn:epc:tag:grai-170:3.9521141.12345.32a%2Fb", "urn:epc:id:grai:9521141.12345.32a%2Fb", Some("(8003)0952114112345432a/b")),
    v("3476451FD40000000000162E", "urn:epc:tag:giai-96:3.9521141.5678", "urn:epc:id:giai:9521141.5678", Some("(8004)95211415678")),
    v("3876451FD59B2C2BF10000000000000000000000000000000000", "urn:epc:tag:giai-202:3.9521141.32a%2Fb", "urn:epc:id:giai:9521141.32a%2Fb", Some("(8004)952114132a/b")),
    v("3500E86F8000A9E000000586", "urn:epc:tag:gid-96:952056.2718.1414", "urn:epc:id:gid:952056.2718.1414", None),
    // epcpy: SGTIN.
    v("362579D5D4ADB6172574B98B34C0000000000000000000000000", "urn:epc:tag:sgtin-198:1.50712192365.88..%25:.13%26", "urn:epc:id:sgtin:50712192365.88..%25:.13%26", Some("(01)85071219236581(21).%:.13&")),
    v("36A579D5D4ADB6172574B98B34C0000000000000000000000000", "urn:epc:tag:sgtin-198:5.50712192365.88..%25:.13%26", "urn:epc:id:sgtin:50712192365.88..%25:.13%26", Some("(01)85071219236581(21).%:.13&")),
    v("30C579D5D4ADB60000000000", "urn:epc:tag:sgtin-96:6.50712192365.88.0", "urn:epc:id:sgtin:50712192365.88.0", Some("(01)85071219236581(21)0")),
    v("36C579D5D4ADB618000000000000000000000000000000000000", "urn:epc:tag:sgtin-198:6.50712192365.88.0", "urn:epc:id:sgtin:50712192365.88.0", Some("(01)85071219236581(21)0")),
    // epcpy: SSCC.
    v("3154257BF4499602D2000000", "urn:epc:tag:sscc-96:2.0614141.1234567890", "urn:epc:id:sscc:0614141.1234567890", Some("(00)106141412345678908")),
    v("31583BF982DFDC1C35000000", "urn:epc:tag:sscc-96:2.061414.12345678901", "urn:epc:id:sscc:061414.12345678901", Some("(00)106141423456789018")),
    v("31003932449F003039000000", "urn:epc:tag:sscc-96:0.061414123456.12345", "urn:epc:id:sscc:061414123456.12345", Some("(00)106141412345623458")),
    v("31A03932449F000000000000", "urn:epc:tag:sscc-96:5.061414123456.00000", "urn:epc:id:sscc:061414123456.00000", Some("(00)006141412345600001")),
    // epcpy: SGLN.
    v("3234257BF460720000000190", "urn:epc:tag:sgln-96:1.0614141.12345.400", "urn:epc:id:sgln:0614141.12345.400", Some("(414)0614141123452(254)400")),
    v("3934257BF46072C0000000000000000000000000000000000000", "urn:epc:tag:sgln-195:1.0614141.12345.0", "urn:epc:id:sgln:0614141.12345.0", Some("(414)0614141123452")),
    v("3914257BF46072C1880000000000000000000000000000000000", "urn:epc:tag:sgln-195:0.0614141.12345.01", "urn:epc:id:sgln:0614141.12345.01", Some("(414)0614141123452(254)01")),
    v("39183BF8C06072C1880000000000000000000000000000000000", "urn:epc:tag:sgln-195:0.061411.012345.01", "urn:epc:id:sgln:061411.012345.01", Some("(414)0614110123452(254)01")),
    v("390039318D8400C1880000000000000000000000000000000000", "urn:epc:tag:sgln-195:0.061411123456..01", "urn:epc:id:sgln:061411123456..01", Some("(414)0614111234560(254)01")),
    v("390039318D8401057AD850E2458D1E449952E64D9D3E851A4000", "urn:epc:tag:sgln-195:0.061411123456..A%2F-BCDEFGHIJKLMNOPQR", "urn:epc:id:sgln:061411123456..A%2F-BCDEFGHIJKLMNOPQR", Some("(414)0614111234560(254)A/-BCDEFGHIJKLMNOPQR")),
    v("320039318D8401FFFFFFFFFF", "urn:epc:tag:sgln-96:0.061411123456..2199023255551", "urn:epc:id:sgln:061411123456..2199023255551", Some("(414)0614111234560(254)2199023255551")),
    v("390039318D8400C98B972C193364D5AB56AC8000000000000000", "urn:epc:tag:sgln-195:0.061411123456..2199023255552", "urn:epc:id:sgln:061411123456..2199023255552", Some("(414)0614111234560(254)2199023255552")),
    // epcpy: GRAI.
    v("33B4257BF40C0E4000000190", "urn:epc:tag:grai-96:5.0614141.12345.400", "urn:epc:id:grai:0614141.12345.400", Some("(8003)00614141123452400")),
    v("3714257BF40C0E5A3060C183060C183060C183060C00", "urn:epc:tag:grai-170:0.0614141.12345.4000000000000000", "urn:epc:id:grai:0614141.12345.4000000000000000", Some("(8003)006141411234524000000000000000")),
    v("3300393243FF740000000000", "urn:epc:tag:grai-96:0.061414113245..0", "urn:epc:id:grai:061414113245..0", Some("(8003)006141411324540")),
    v("3700393243FF74183100000000000000000000000000", "urn:epc:tag:grai-170:0.061414113245..01", "urn:epc:id:grai:061414113245..01", Some("(8003)0061414113245401")),
    v("3714257BF40C0E60C287118B266D1780000000000000", "urn:epc:tag:grai-170:0.0614141.12345.ABCD1234%2F", "urn:epc:id:grai:0614141.12345.ABCD1234%2F", Some("(8003)00614141123452ABCD1234/")),
    v("3300393243FF743FFFFFFFFF", "urn:epc:tag:grai-96:0.061414113245..274877906943", "urn:epc:id:grai:061414113245..274877906943", Some("(8003)00614141132454274877906943")),
    v("3714257BF40C0E60C287122C68F224CA97326CE9F400", "urn:epc:tag:grai-170:0.0614141.12345.ABCDEFGHIJKLMNOP", "urn:epc:id:grai:0614141.12345.ABCDEFGHIJKLMNOP", Some("(8003)00614141123452ABCDEFGHIJKLMNOP")),
    // epcpy: GIAI.
    v("3834257BF58B266D1AB460C00000000000000000000000000000", "urn:epc:tag:giai-202:1.0614141.12345400", "urn:epc:id:giai:0614141.12345400", Some("(8004)061414112345400")),
    v("3434257BF400000000000000", "urn:epc:tag:giai-96:1.0614141.0", "urn:epc:id:giai:0614141.0", Some("(8004)06141410")),
    v("3814257BF58C1858D7C400000000000000000000000000000000", "urn:epc:tag:giai-202:0.0614141.1ABc%2FD", "urn:epc:id:giai:0614141.1ABc%2FD", Some("(8004)06141411ABc/D")),
    v("38983BF8D831830B1AF880000000000000000000000000000000", "urn:epc:tag:giai-202:4.061411.01ABc%2FD", "urn:epc:id:giai:061411.01ABc%2FD", Some("(8004)06141101ABc/D")),
    v("38380C0E583164CDA356CDDC3960C593368D5B3770E583164CC0", "urn:epc:tag:giai-202:1.012345.012345678901234567890123", "urn:epc:id:giai:012345.012345678901234567890123", Some("(8004)012345012345678901234567890123")),
    v("3434257BF400000000BC6038", "urn:epc:tag:giai-96:1.0614141.12345400", "urn:epc:id:giai:0614141.12345400", Some("(8004)061414112345400")),
    v("3834257BF5832000000000000000000000000000000000000000", "urn:epc:tag:giai-202:1.0614141.02", "urn:epc:id:giai:0614141.02", Some("(8004)061414102")),
    // epcpy: GID.
    v("355AB1C60003039000000190", "urn:epc:tag:gid-96:95100000.12345.400", "urn:epc:id:gid:95100000.12345.400", None),
    v("350000000000000000000000", "urn:epc:tag:gid-96:0.0.0", "urn:epc:id:gid:0.0.0", None),
    v("35FFFFFFFFFFFFFFFFFFFFFF", "urn:epc:tag:gid-96:268435455.16777215.68719476735", "urn:epc:id:gid:268435455.16777215.68719476735", None),
];

#[test]
fn vectors_decode() {
    for t in VECTORS {
        let epc = decode_hex(t.hex).unwrap_or_else(|e| panic!("{}: {e}", t.hex));
        assert_eq!(epc.tag_uri(), t.tag, "{}", t.hex);
        assert_eq!(epc.pure_identity_uri(), t.pure, "{}", t.hex);
        assert_eq!(epc.hri().as_deref(), t.hri, "{}", t.hex);
        assert_eq!(
            epc.hex(),
            t.hex.to_ascii_lowercase(),
            "canonical bytes of {}",
            t.hex
        );
        assert_eq!(epc.scheme(), t.tag.split(':').nth(3).unwrap_or(""));
    }
}

#[test]
fn vectors_encode() {
    for t in VECTORS {
        let want = parse_hex(t.hex).unwrap();
        assert_eq!(
            encode_tag_uri(t.tag).map(|b| lower_hex(&b)),
            Ok(lower_hex(&want)),
            "{}",
            t.tag
        );
        // The pure identity and the tag URI's scheme and filter give the same bits through `encode`.
        let (scheme, filter, _) = uri::parse_tag(t.tag).unwrap();
        let id = parse_pure_identity_uri(t.pure).unwrap_or_else(|e| panic!("{}: {e}", t.pure));
        assert_eq!(encode(&id, scheme, filter), Ok(want.clone()), "{}", t.pure);
        assert_eq!(Epc::new(id, scheme, filter).map(|e| e.bytes), Ok(want));
    }
}

#[test]
fn vectors_hri_is_valid_gs1() {
    // Our element strings pass the GS1 layer's own checks (check digits, lengths, character sets, pairings).
    for t in VECTORS {
        let Some(hri) = t.hri else { continue };
        let els = crate::gs1::parse_bracketed(hri).unwrap_or_else(|e| panic!("{hri}: {e}"));
        assert_eq!(els, decode_hex(t.hex).unwrap().elements(), "{hri}");
    }
}

#[test]
fn accessors() {
    let epc = decode_hex("3074257BF7194E4000001A85").unwrap();
    assert_eq!(epc.gs1_scheme(), Some(Scheme::Sgtin96));
    assert_eq!(epc.filter(), Some(3));
    assert_eq!(epc.gtin().as_deref(), Some("80614141123458"));
    assert_eq!(epc.serial().as_deref(), Some("6789"));
    assert_eq!(epc.sscc(), None);
    assert_eq!(epc.bit_len(), 96);
    let epc = decode_hex("3154257BF4499602D2000000").unwrap();
    assert_eq!(epc.sscc().as_deref(), Some("106141412345678908"));
    assert_eq!(epc.gtin(), None);
    let gid = decode_hex("355AB1C60003039000000190").unwrap();
    assert_eq!(
        (gid.filter(), gid.hri(), gid.serial().as_deref()),
        (None, None, Some("400"))
    );
    let sgln = decode_hex("3234257BF460720000000190").unwrap();
    assert_eq!(sgln.gln().as_deref(), Some("0614141123452"));
}

#[test]
fn constructors_for_the_simulator() {
    let a = Epc::sgtin96("0614141", "812345", 6789, 3).unwrap();
    assert_eq!(a.hex(), "3074257bf7194e4000001a85");
    assert_eq!(Epc::sgtin96_from_gtin("80614141123458", 7, 6789, 3), Ok(a));
    let s = Epc::sscc96("0614141", "1234567890", 2).unwrap();
    assert_eq!(s.hex(), "3154257bf4499602d2000000");
    assert_eq!(Epc::sscc96_from_sscc("106141412345678908", 7, 2), Ok(s));
    assert_eq!(
        Epc::sgtin96("0614141", "812345", 1 << 38, 3).map_err(|e| e.to_string()),
        Err("sgtin-96: serial 274877906944 does not fit in 38 bits".into())
    );
    assert_eq!(
        Epc::sscc96_from_sscc("106141412345678909", 7, 2).map_err(|e| e.to_string()),
        Err("sscc-96: SSCC check digit should be 8, found 9".into())
    );
}

#[test]
fn unknown_headers_pass_through() {
    // (hex, message): E2... is a factory EPC (the TID's class identifier), 2D is GSRN-96, which we do not decode.
    let cases = [
        ("E2801160600002054B1C2D7A", "not a GS1 EPC: header 0xe2"),
        (
            "2D76451FD4499602D2000000",
            "GS1 EPC scheme gsrn-96 (header 0x2d) is not supported: kept as raw hex",
        ),
        (
            "F73795211411234538566CB0AFC4",
            "GS1 EPC scheme sgtin+ (header 0xf7) is not supported: kept as raw hex",
        ),
        (
            "000000000000000000000000",
            "not a GS1 EPC: header 0x00 (unprogrammed tag)",
        ),
        ("AB", "not a GS1 EPC: header 0xab"),
    ];
    for (hex, msg) in cases {
        let epc = decode_hex(hex).unwrap();
        assert_eq!(epc.scheme(), "unknown");
        assert_eq!(epc.message().as_deref(), Some(msg));
        assert_eq!(
            epc.tag_uri(),
            format!("urn:epc:raw:{}.x{hex}", hex.len() * 4)
        );
        assert_eq!(epc.pure_identity_uri(), epc.tag_uri());
        assert_eq!(epc.hex(), hex.to_ascii_lowercase());
        assert_eq!(
            (epc.hri(), epc.filter(), epc.identity()),
            (None, None, None)
        );
    }
}

#[test]
fn json_shapes() {
    let epc = decode_hex("3074257BF7194E4000001A85").unwrap();
    assert_eq!(
        epc.to_json(),
        json!({
            "scheme": "sgtin-96",
            "pure_identity_uri": "urn:epc:id:sgtin:0614141.812345.6789",
            "tag_uri": "urn:epc:tag:sgtin-96:3.0614141.812345.6789",
            "hri": "(01)80614141123458(21)6789",
            "filter": 3,
            "hex": "3074257bf7194e4000001a85",
            "bits": 96,
            "company_prefix": "0614141",
            "gtin": "80614141123458",
            "serial": "6789",
            "elements": [{"ai": "01", "value": "80614141123458"}, {"ai": "21", "value": "6789"}],
        })
    );
    let unknown = decode_hex("E2801160600002054B1C2D7A").unwrap();
    assert_eq!(
        unknown.to_json(),
        json!({
            "scheme": "unknown",
            "pure_identity_uri": "urn:epc:raw:96.xE2801160600002054B1C2D7A",
            "tag_uri": "urn:epc:raw:96.xE2801160600002054B1C2D7A",
            "hri": null,
            "filter": null,
            "hex": "e2801160600002054b1c2d7a",
            "bits": 96,
            "message": "not a GS1 EPC: header 0xe2",
            "elements": [],
        })
    );
    assert_eq!(
        epc.to_text(),
        "scheme: sgtin-96\npure_identity_uri: urn:epc:id:sgtin:0614141.812345.6789\n\
         tag_uri: urn:epc:tag:sgtin-96:3.0614141.812345.6789\nhri: (01)80614141123458(21)6789\nfilter: 3\n\
         hex: 3074257bf7194e4000001a85\nbits: 96\ncompany_prefix: 0614141\ngtin: 80614141123458\nserial: 6789\n"
    );
    let err = decode_hex("307C257BF7194E4000001A85").unwrap_err();
    assert_eq!(
        err.to_json(),
        json!({"error": {"message": "sgtin-96: partition value 7 is invalid (valid: 0 to 6)", "rule": "partition", "scheme": "sgtin-96"}})
    );
}

#[test]
fn padding() {
    // A 128-bit EPC bank holding a 96-bit EPC: zero padding is fine, anything else is not.
    let epc = decode_hex("3074257BF7194E4000001A8500000000").unwrap();
    assert_eq!(epc.hex(), "3074257bf7194e4000001a85");
    // SGTIN-198 in 25 bytes (no word padding) decodes to the word-padded canonical form.
    let epc = decode_hex("3666C4409047E159B2C2BF1000000000000000000000000000").unwrap();
    assert_eq!(epc.as_bytes().len(), 26);
}

#[test]
fn invalid_encodings() {
    // (hex, message)
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        ("", "empty EPC"),
        ("3074257BF7194E4000001A", "sgtin-96: too short: 88 bits, the scheme needs 96"),
        ("30", "sgtin-96: too short: 8 bits, the scheme needs 96"),
        ("3666C4409047E159B2C2BF10000000000000000000000000", "sgtin-198: too short: 192 bits, the scheme needs 198"),
        ("3074257BF7194E4000001A8500000001", "sgtin-96: non-zero bits after the 96-bit EPC"),
        ("3666C4409047E159B2C2BF100000000000000000000000000040", "sgtin-198: non-zero bits after the 198-bit EPC"),
        ("307C257BF7194E4000001A85", "sgtin-96: partition value 7 is invalid (valid: 0 to 6)"),
        ("311F A1B300CE0A6A83000000", "sscc-96: partition value 7 is invalid (valid: 0 to 6)"),
        // SSCC-96 with a bit set in its 24 reserved bits.
        ("3154257BF4499602D2000001", "sscc-96: the 24 reserved bits are not all zero"),
        // SGTIN-96, partition 6: 20 company prefix bits all ones, 1048575 > 999999.
        ("307BFFFFC000000000000000", "sgtin-96: company prefix 1048575 does not fit in 6 digits"),
        // SGLN-96, partition 0: the 1-bit location reference set (0 digits).
        ("3200000000000200000000000", "odd number of hex digits (25): an EPC is whole bytes"),
        ("320000000000020000000000", "sgln-96: location reference 1 does not fit in 0 digits"),
        // SGTIN-198 serial: '#' (0x23) is not CS82; a character after the terminating zero.
        ("3674257BF7194E51800000000000000000000000000000000000", "sgtin-198: serial: character '#' at position 0 is not in GS1 character set 82"),
        ("3674257BF7194E60808400000000000000000000000000000000", "sgtin-198: serial: non-zero bits after the terminating zero character"),
        ("3674257BF7194E40000000000000000000000000000000000000", "sgtin-198: serial is empty"),
        ("30 74 zz", "not a hex digit at position 6: 'z'"),
    ];
    for &(hex, want) in cases {
        let got = decode_hex(hex)
            .map(|e| e.tag_uri())
            .map_err(|e| e.to_string());
        assert_eq!(got, Err(want.to_string()), "{hex}");
    }
}

#[test]
fn encode_errors() {
    // (tag URI, message)
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        // nedap/retail-epcpy invalid TagEncodable cases.
        ("urn:epc:tag:sgtin-96:1.50712192365.88..%25:.13%26", "sgtin-96: serial \".%:.13&\" is not a number, which a numeric-serial scheme needs"),
        ("urn:epc:tag:sgtin-96:1.50712192365.88.0123", "sgtin-96: serial \"0123\" has leading zeros, which an integer field cannot keep"),
        ("urn:epc:tag:sgtin-96:1.50712192365.88.1123456789012", "sgtin-96: serial 1123456789012 does not fit in 38 bits"),
        ("urn:epc:tag:sgln-96:0.0614141.12345.01", "sgln-96: extension \"01\" has leading zeros, which an integer field cannot keep"),
        ("urn:epc:tag:sgln-96:0.061411123456..2199023255552", "sgln-96: extension 2199023255552 does not fit in 41 bits"),
        ("urn:epc:tag:grai-96:0.0614141.12345.ABCD1234%2F", "grai-96: serial \"ABCD1234/\" is not a number, which a numeric-serial scheme needs"),
        ("urn:epc:tag:grai-96:0.061414113245..274877906944", "grai-96: serial 274877906944 does not fit in 38 bits"),
        ("urn:epc:tag:giai-96:1.0614141.02", "giai-96: individual asset reference \"02\" has leading zeros, which an integer field cannot keep"),
        ("urn:epc:tag:giai-96:4.061411.11ABc%2FD", "giai-96: individual asset reference \"11ABc/D\" is not a number, which a numeric-serial scheme needs"),
        // GIAI-96 partition 6 (6-digit prefix): 62 bits.
        ("urn:epc:tag:giai-96:0.061411.4611686018427387904", "giai-96: individual asset reference 4611686018427387904 does not fit in 62 bits"),
        ("urn:epc:tag:sgtin-198:3.0614141.812345.ABCDEFGHIJKLMNOPQRSTU", "sgtin-198: serial has 21 characters, at most 20 fit"),
    ];
    for &(uri, want) in cases {
        let got = encode_tag_uri(uri)
            .map(|b| lower_hex(&b))
            .map_err(|e| e.to_string());
        assert_eq!(got, Err(want.to_string()), "{uri}");
    }
    let id = parse_pure_identity_uri("urn:epc:id:sscc:0614141.1234567890").unwrap();
    assert_eq!(
        encode(&id, Scheme::Sgtin96, 0).map_err(|e| e.to_string()),
        Err("sgtin-96: cannot encode an identity of kind sscc".into())
    );
    assert_eq!(
        encode(&id, Scheme::Sscc96, 8).map_err(|e| e.to_string()),
        Err("sscc-96: filter value 8 is out of range (0 to 7)".into())
    );
    // GID-96 has no filter: the argument is ignored.
    let gid = parse_pure_identity_uri("urn:epc:id:gid:1.2.3").unwrap();
    assert_eq!(
        encode(&gid, Scheme::Gid96, 5),
        encode(&gid, Scheme::Gid96, 0)
    );
}

/// The partition tables transcribed once more from the TDS, independently of `partition.rs`: for each scheme, the
/// (bits, digits or characters) of the field after the company prefix at partitions 0 to 6. The company prefix has
/// (40, 37, 34, 30, 27, 24, 20) bits and 12 - P digits everywhere.
const CP_BITS: [u32; 7] = [40, 37, 34, 30, 27, 24, 20];

fn other_field(scheme: Scheme) -> [(u32, usize); 7] {
    match scheme {
        Scheme::Sgtin96 | Scheme::Sgtin198 => {
            [(4, 1), (7, 2), (10, 3), (14, 4), (17, 5), (20, 6), (24, 7)]
        }
        Scheme::Sscc96 => [
            (18, 5),
            (21, 6),
            (24, 7),
            (28, 8),
            (31, 9),
            (34, 10),
            (38, 11),
        ],
        Scheme::Sgln96 | Scheme::Sgln195 => {
            [(1, 0), (4, 1), (7, 2), (11, 3), (14, 4), (17, 5), (21, 6)]
        }
        Scheme::Grai96 | Scheme::Grai170 => {
            [(4, 0), (7, 1), (10, 2), (14, 3), (17, 4), (20, 5), (24, 6)]
        }
        Scheme::Giai96 => [
            (42, 13),
            (45, 14),
            (48, 15),
            (52, 16),
            (55, 17),
            (58, 18),
            (62, 19),
        ],
        Scheme::Giai202 => [
            (148, 18),
            (151, 19),
            (154, 20),
            (158, 21),
            (161, 22),
            (164, 23),
            (168, 24),
        ],
        Scheme::Gid96 => [(0, 0); 7],
    }
}

/// Builds a tag bit by bit (independently of the encoder): header, filter 1, partition `p`, the largest company
/// prefix of its digits, the largest value of the second field (or a 7-bit string of its maximum length), then the
/// scheme's tail. Returns the bytes and the expected tag URI.
fn constructed(scheme: Scheme, p: u8) -> (Vec<u8>, String) {
    let mut w = BitWriter::new();
    w.push(u64::from(scheme.header()), 8);
    w.push(1, 3);
    w.push(u64::from(p), 3);
    let i = usize::from(p.min(6));
    let cp_digits = 12 - i;
    w.push(10u64.pow(cp_digits as u32) - 1, CP_BITS[i]);
    let cp = "9".repeat(cp_digits);
    let (bits, digits) = other_field(scheme)[i];
    let second = match scheme {
        Scheme::Giai96 => {
            let max = (1u64 << bits) - 1;
            w.push(max, bits);
            max.to_string()
        }
        Scheme::Giai202 => {
            let s = "Z".repeat(digits);
            for _ in 0..digits {
                w.push(u64::from(b'Z'), 7);
            }
            w.push_zeros(bits - 7 * digits as u32);
            s
        }
        _ => {
            w.push(10u64.pow(digits as u32) - 1, bits);
            "9".repeat(digits)
        }
    };
    let tail = match scheme {
        Scheme::Sgtin96 | Scheme::Grai96 => {
            w.push((1 << 38) - 1, 38);
            Some("274877906943".to_owned())
        }
        Scheme::Sgln96 => {
            w.push((1 << 41) - 1, 41);
            Some("2199023255551".to_owned())
        }
        Scheme::Sgtin198 | Scheme::Sgln195 | Scheme::Grai170 => {
            let (bits, n) = if scheme == Scheme::Grai170 {
                (112, 16)
            } else {
                (140, 20)
            };
            for k in 0..n {
                w.push(u64::from(b'a' + (k % 26) as u8), 7);
            }
            w.push_zeros(bits - 7 * n as u32);
            Some((0..n).map(|k| char::from(b'a' + (k % 26) as u8)).collect())
        }
        Scheme::Sscc96 => {
            w.push_zeros(24);
            None
        }
        _ => None,
    };
    let body = match tail {
        Some(t) => format!("{cp}.{second}.{t}"),
        None => format!("{cp}.{second}"),
    };
    (w.into_words(), format!("urn:epc:tag:{scheme}:1.{body}"))
}

#[test]
fn every_partition_of_every_scheme() {
    let mut checked = 0;
    for scheme in Scheme::ALL.into_iter().filter(|s| s.has_filter()) {
        for p in 0..=6 {
            let (bytes, tag) = constructed(scheme, p);
            assert_eq!(
                bytes.len() * 8,
                scheme.bits().div_ceil(16) * 16,
                "{scheme} p{p}: test builder length"
            );
            let epc = decode(&bytes).unwrap_or_else(|e| panic!("{scheme} partition {p}: {e}"));
            assert_eq!(epc.tag_uri(), tag, "{scheme} partition {p}");
            assert_eq!(
                encode_tag_uri(&tag),
                Ok(bytes.clone()),
                "{scheme} partition {p}"
            );
            if let Some(hri) = epc.hri() {
                crate::gs1::parse_bracketed(&hri).unwrap_or_else(|e| panic!("{hri}: {e}"));
            }
            checked += 1;
        }
        let (mut bytes, _) = constructed(scheme, 6);
        // The partition is EPC bits 11-13: bits 4-2 of the second byte.
        bytes[1] |= 0b0001_1100;
        assert_eq!(
            decode(&bytes).map_err(|e| e.to_string()),
            Err(format!(
                "{scheme}: partition value 7 is invalid (valid: 0 to 6)"
            ))
        );
    }
    assert_eq!(checked, 9 * 7);
}

#[test]
fn garbage_never_panics() {
    // Every header, every length up to 40 bytes, three fill patterns.
    for header in 0..=255u8 {
        for len in 0..40 {
            for fill in [0x00, 0xFF, 0x5A] {
                let mut data = vec![fill; len];
                if let Some(first) = data.first_mut() {
                    *first = header;
                }
                if let Ok(epc) = decode(&data) {
                    let _ = (
                        epc.tag_uri(),
                        epc.pure_identity_uri(),
                        epc.hri(),
                        epc.to_json(),
                        epc.to_text(),
                    );
                    if epc.gs1_scheme().is_some() {
                        assert_eq!(encode_tag_uri(&epc.tag_uri()), Ok(epc.as_bytes().to_vec()));
                    }
                }
            }
        }
    }
    for text in [
        "",
        "urn:",
        "urn:epc:tag:",
        "urn:epc:tag:sgtin-96:",
        "urn:epc:tag:sgtin-96:3.",
        "urn:epc:tag:gid-96:..",
        "urn:epc:id:giai:.",
        "urn:epc:id:giai:0614141.%",
        "urn:epc:id:giai:0614141.%4",
        "urn:epc:id:sgtin:é.é.é",
    ] {
        assert!(encode_tag_uri(text).is_err(), "{text}");
        assert!(parse_pure_identity_uri(text).is_err(), "{text}");
    }
}

// Property tests: generated valid identities, encode → decode → encode, for all ten schemes.

fn digits(n: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(0u8..10, n)
        .prop_map(|v| v.into_iter().map(|d| char::from(b'0' + d)).collect())
}

/// A company prefix of 6-12 digits and another field of `total - prefix` digits.
fn prefix_and(total: usize) -> impl Strategy<Value = (String, String)> {
    (6usize..=12).prop_flat_map(move |l| (digits(l), digits(total - l)))
}

fn cs82(max: usize) -> impl Strategy<Value = String> {
    let chars: Vec<char> = (0u8..128)
        .filter(|&b| escape::is_cs82(b))
        .map(char::from)
        .collect();
    proptest::collection::vec(proptest::sample::select(chars), 1..=max)
        .prop_map(|v| v.into_iter().collect())
}

fn integer_text(bits: u32) -> impl Strategy<Value = String> {
    (0u64..(1u64 << bits)).prop_map(|v| v.to_string())
}

/// A (scheme, identity) pair the scheme can encode.
fn encodable() -> impl Strategy<Value = (Scheme, Identity)> {
    let sgtin = |serial: BoxedStrategy<String>, scheme| {
        (prefix_and(13), serial).prop_map(move |((cp, item), s)| {
            (scheme, Identity::Sgtin(Sgtin::new(&cp, &item, &s).unwrap()))
        })
    };
    let sgln = |ext: BoxedStrategy<String>, scheme| {
        (prefix_and(12), ext).prop_map(move |((cp, loc), e)| {
            (scheme, Identity::Sgln(Sgln::new(&cp, &loc, &e).unwrap()))
        })
    };
    let grai = |serial: BoxedStrategy<String>, scheme| {
        (prefix_and(12), serial).prop_map(move |((cp, at), s)| {
            (scheme, Identity::Grai(Grai::new(&cp, &at, &s).unwrap()))
        })
    };
    prop_oneof![
        sgtin(integer_text(38).boxed(), Scheme::Sgtin96),
        sgtin(cs82(20).boxed(), Scheme::Sgtin198),
        prefix_and(17)
            .prop_map(|(cp, sr)| (Scheme::Sscc96, Identity::Sscc(Sscc::new(&cp, &sr).unwrap()))),
        sgln(integer_text(41).boxed(), Scheme::Sgln96),
        sgln(cs82(20).boxed(), Scheme::Sgln195),
        grai(integer_text(38).boxed(), Scheme::Grai96),
        grai(cs82(16).boxed(), Scheme::Grai170),
        (6usize..=12)
            .prop_flat_map(|l| (
                digits(l),
                integer_text(partition::GIAI96[12 - l].other_bits)
            ))
            .prop_map(|(cp, r)| (Scheme::Giai96, Identity::Giai(Giai::new(&cp, &r).unwrap()))),
        (6usize..=12)
            .prop_flat_map(|l| (digits(l), cs82(30 - l)))
            .prop_map(|(cp, r)| (Scheme::Giai202, Identity::Giai(Giai::new(&cp, &r).unwrap()))),
        (
            0..=Gid::MAX_MANAGER,
            0..=Gid::MAX_CLASS,
            0..=Gid::MAX_SERIAL
        )
            .prop_map(|(m, c, s)| (Scheme::Gid96, Identity::Gid(Gid::new(m, c, s).unwrap()))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encode_decode_encode((scheme, id) in encodable(), filter in 0u8..8) {
        let bytes = encode(&id, scheme, filter).unwrap();
        prop_assert_eq!(bytes.len(), scheme.bits().div_ceil(16) * 2);
        let epc = decode(&bytes).unwrap();
        prop_assert_eq!(epc.gs1_scheme(), Some(scheme));
        prop_assert_eq!(epc.identity(), Some(&id));
        prop_assert_eq!(epc.filter(), scheme.has_filter().then_some(filter));
        prop_assert_eq!(epc.as_bytes(), &bytes[..]);
        // Again through both URIs.
        prop_assert_eq!(encode_tag_uri(&epc.tag_uri()), Ok(bytes.clone()));
        prop_assert_eq!(parse_pure_identity_uri(&epc.pure_identity_uri()), Ok(id.clone()));
        // The element string is valid GS1 and says the same.
        if let Some(hri) = epc.hri() {
            let els = crate::gs1::parse_bracketed(&hri);
            prop_assert_eq!(els.as_ref().ok(), Some(&id.elements()), "{}", hri);
        }
    }

    #[test]
    fn decode_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..40), header in 0x30u8..=0x39) {
        let mut data = data;
        if let Some(first) = data.first_mut() {
            *first = header;
        }
        if let Ok(epc) = decode(&data) {
            let bytes = encode_tag_uri(&epc.tag_uri()).unwrap();
            let mut padded = data.clone();
            padded.resize(padded.len().max(bytes.len()), 0);
            let mut b = bytes.clone();
            b.resize(padded.len(), 0);
            prop_assert_eq!(b, padded);
        }
    }
}
