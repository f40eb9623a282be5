//! Hand-built LLRP messages, byte by byte from the LLRP 1.0.1 layouts (LTK `llrp-1x0-def.xml`), so that the codec
//! is tested against the specification and not only against itself. `#` starts a comment. The same bytes are the
//! seeds of the `llrp` fuzz target (`fuzz/seeds/llrp/`).

/// The bytes of a fixture: hex pairs, comments after `#` ignored.
pub fn bytes(fixture: &str) -> Vec<u8> {
    fixture
        .lines()
        .flat_map(|line| line.split('#').next().unwrap_or("").split_whitespace())
        .map(|b| u8::from_str_radix(b, 16).expect("fixture byte"))
        .collect()
}

/// The reader accepts the connection (reader → client, first message on every connection).
pub const CONNECTION_ATTEMPT_SUCCESS: &str = "
04 3f                     # rsvd 000, version 001, type 63 READER_EVENT_NOTIFICATION
00 00 00 20               # length 32
00 00 00 00               # message id 0
00 f6 00 16               #   ReaderEventNotificationData (246), length 22
00 80 00 0c               #     UTCTimestamp (128), length 12
00 06 4d 0b 7d 27 c0 00   #       1773561600000000 us = 2026-03-15T08:00:00Z
01 00 00 06               #     ConnectionAttemptEvent (256), length 6
00 00                     #       Status 0 = Success
";

/// Another client holds the reader (status 2 = Failed_A_Client_Initiated_Connection_Already_Exists).
pub const CONNECTION_ATTEMPT_REFUSED: &str = "
04 3f 00 00 00 20 00 00 00 00   # READER_EVENT_NOTIFICATION, length 32, id 0
00 f6 00 16                     #   ReaderEventNotificationData, length 22
00 80 00 0c 00 06 4d 0b 7d 27 c0 00   # UTCTimestamp
01 00 00 06 00 02               #     ConnectionAttemptEvent, Status 2
";

/// ADD_ROSPEC_RESPONSE, success.
pub const ADD_ROSPEC_RESPONSE_OK: &str = "
04 1e                     # version 1, type 30 ADD_ROSPEC_RESPONSE
00 00 00 12               # length 18
00 00 00 03               # message id 3 (the ADD_ROSPEC's)
01 1f 00 08               #   LLRPStatus (287), length 8
00 00                     #     StatusCode 0 = M_Success
00 00                     #     ErrorDescription: 0 bytes
";

/// ADD_ROSPEC_RESPONSE, refused, with the parameter and field at fault.
pub const ADD_ROSPEC_RESPONSE_ERROR: &str = "
04 1e                     # version 1, type 30 ADD_ROSPEC_RESPONSE
00 00 00 2c               # length 44
00 00 00 03               # message id 3
01 1f 00 22               #   LLRPStatus (287), length 34
00 64                     #     StatusCode 100 = M_ParameterError
00 0a                     #     ErrorDescription: 10 bytes
62 61 64 20 52 4f 53 70 65 63   # 'bad ROSpec'
01 21 00 10               #     ParameterError (289), length 16
00 b1                     #       ParameterType 177 = ROSpec
00 c9                     #       ErrorCode 201 = P_FieldError
01 20 00 08               #       FieldError (288), length 8
00 02                     #         FieldNum 2
01 2d                     #         ErrorCode 301 = A_OutOfRange
";

/// Two tags: an EPC-96 (TV) and a 128-bit EPCData (TLV) followed by an Impinj Custom parameter.
pub const RO_ACCESS_REPORT: &str = "
04 3d                     # version 1, type 61 RO_ACCESS_REPORT
00 00 00 68               # length 104
00 00 00 2a               # message id 42
00 f0 00 25               #   TagReportData (240), length 37
8d                        #     EPC-96 (TV 13)
30 14 25 1a 3c 00 00 40 00 00 00 01
81 00 01                  #     AntennaID (TV 1): 1
86 c9                     #     PeakRSSI (TV 6): -55 dBm
82 00 06 4d 0b 7d 2b 90 90   # FirstSeenTimestampUTC (TV 2): 1773561600250000 us
88 00 03                  #     TagSeenCount (TV 8): 3
8c 30 00                  #     C1G2_PC (TV 12): 0x3000
00 f0 00 39               #   TagReportData (240), length 57
00 f1 00 16               #     EPCData (241), length 22
00 80                     #       EPC length: 128 bits
e2 00 68 06 00 00 00 00 00 00 00 00 12 34 56 78
81 00 02                  #     AntennaID (TV 1): 2
86 c4                     #     PeakRSSI (TV 6): -60 dBm
82 00 06 4d 0b 7d 2c 53 e0   # FirstSeenTimestampUTC (TV 2): 1773561600300000 us
88 00 01                  #     TagSeenCount (TV 8): 1
03 ff 00 0e               #     Custom (1023), length 14
00 00 65 1a               #       VendorIdentifier 25882 = Impinj
00 00 00 38               #       ParameterSubtype 56
ff c4                     #       data
";

/// KEEPALIVE (reader → client).
pub const KEEPALIVE: &str = "
04 3e                     # version 1, type 62 KEEPALIVE
00 00 00 0a               # length 10: header only
00 00 00 07               # message id 7
";

/// The reader is closing the connection.
pub const CONNECTION_CLOSE: &str = "
04 3f 00 00 00 1e 00 00 00 00   # READER_EVENT_NOTIFICATION, length 30, id 0
00 f6 00 14                     #   ReaderEventNotificationData (246), length 20
00 80 00 0c 00 06 4d 0b 7d 27 c0 00   # UTCTimestamp
01 01 00 04                     #     ConnectionCloseEvent (257), length 4, no fields
";

/// KEEPALIVE_ACK (client → reader) answering KEEPALIVE id 7.
pub const KEEPALIVE_ACK: &str = "
04 48                     # version 1, type 72 KEEPALIVE_ACK
00 00 00 0a               # length 10
00 00 00 07               # message id 7, the KEEPALIVE's
";

/// SET_READER_CONFIG with a periodic 5 s KeepaliveSpec (client → reader).
pub const SET_READER_CONFIG: &str = "
04 03                     # version 1, type 3 SET_READER_CONFIG
00 00 00 14               # length 20
00 00 00 01               # message id 1
00                        # ResetToFactoryDefault 0, 7 reserved bits
00 dc 00 09               #   KeepaliveSpec (220), length 9
01                        #     KeepaliveTriggerType 1 = Periodic
00 00 13 88               #     PeriodicTriggerValue 5000 ms
";

/// DELETE_ROSPEC of every ROSpec (client → reader).
pub const DELETE_ROSPEC_ALL: &str = "
04 15                     # version 1, type 21 DELETE_ROSPEC
00 00 00 0e               # length 14
00 00 00 02               # message id 2
00 00 00 00               # ROSpecID 0 = all
";

/// ADD_ROSPEC of `LlrpConfig::default().rospec()` (client → reader).
pub const ADD_ROSPEC: &str = "
04 14                     # version 1, type 20 ADD_ROSPEC
00 00 00 50               # length 80
00 00 00 03               # message id 3
00 b1 00 46               #   ROSpec (177), length 70
00 00 00 01               #     ROSpecID 1
00                        #     Priority 0
00                        #     CurrentState 0 = Disabled
00 b2 00 12               #     ROBoundarySpec (178), length 18
00 b3 00 05               #       ROSpecStartTrigger (179), length 5
00                        #         ROSpecStartTriggerType 0 = Null (START_ROSPEC starts it)
00 b6 00 09               #       ROSpecStopTrigger (182), length 9
00                        #         ROSpecStopTriggerType 0 = Null
00 00 00 00               #         DurationTriggerValue 0
00 b7 00 18               #     AISpec (183), length 24
00 01 00 00               #       AntennaIDs: 1 antenna, id 0 = all
00 b8 00 09               #       AISpecStopTrigger (184), length 9
00                        #         AISpecStopTriggerType 0 = Null
00 00 00 00               #         DurationTrigger 0
00 ba 00 07               #       InventoryParameterSpec (186), length 7
00 01                     #         InventoryParameterSpecID 1
01                        #         ProtocolID 1 = EPCGlobalClass1Gen2
00 ed 00 12               #     ROReportSpec (237), length 18
01                        #       ROReportTrigger 1 = Upon_N_Tags_Or_End_Of_AISpec
00 01                     #       N 1
00 ee 00 0b               #       TagReportContentSelector (238), length 11
16 80                     #         0001 0110 1000 0000: AntennaID, PeakRSSI, FirstSeen, TagSeenCount
01 5c 00 05               #         C1G2EPCMemorySelector (348), length 5
40                        #           EnableCRC 0, EnablePCBits 1, 6 reserved bits
";

/// CLOSE_CONNECTION (client → reader).
pub const CLOSE_CONNECTION: &str = "
04 0e                     # version 1, type 14 CLOSE_CONNECTION
00 00 00 0a               # length 10
00 00 00 09               # message id 9
";

/// Every fixture, named, for the split tests and the fuzz seeds.
pub const ALL: &[(&str, &str)] = &[
    ("connection-attempt-success", CONNECTION_ATTEMPT_SUCCESS),
    ("connection-attempt-refused", CONNECTION_ATTEMPT_REFUSED),
    ("add-rospec-response-ok", ADD_ROSPEC_RESPONSE_OK),
    ("add-rospec-response-error", ADD_ROSPEC_RESPONSE_ERROR),
    ("ro-access-report", RO_ACCESS_REPORT),
    ("keepalive", KEEPALIVE),
    ("connection-close", CONNECTION_CLOSE),
    ("keepalive-ack", KEEPALIVE_ACK),
    ("set-reader-config", SET_READER_CONFIG),
    ("delete-rospec-all", DELETE_ROSPEC_ALL),
    ("add-rospec", ADD_ROSPEC),
    ("close-connection", CLOSE_CONNECTION),
];
