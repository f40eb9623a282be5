//! RFID reader simulators for the gate tests and the demo: an Impinj R2000 module on a pseudo-terminal and an
//! LLRP 1.0.1 reader on a TCP port, both playing a scripted set of pallet passes.
//!
//! - [`script`]: passes (tags, direction, antennas, read counts, RSSI curve, overlap), strays from neighbouring
//!   doors and noise, turned deterministically (from a seed) into a time-ordered read schedule with its ground
//!   truth.
//! - [`r2000`]: the `0xA0` serial protocol, reader side: answers antenna selection and real-time inventory with
//!   tag frames for the reads due on the selected antenna; can go silent or be reset.
//! - [`llrp`]: the LLRP reader side: connection event, ROSpec life cycle, RO_ACCESS_REPORTs, keepalives; can drop
//!   the connection mid-stream or go silent.
//!
//! Both speak their protocol through their own small byte builders and parsers written from the published
//! layouts, never through `dockhand_protocol::rfid`: the simulators exist to check those codecs, not to agree with
//! them by construction.
//!
//! ```no_run
//! use dockhand_tests::rfidsim::{LlrpSim, R2000Sim, Script};
//! # fn main() -> anyhow::Result<()> {
//! let script = Script::pallet_gate(50, 1000, 7);
//! let r2000 = R2000Sim::start(&script)?; // give r2000.path() to the agent
//! let llrp = LlrpSim::start(&script, 1000)?; // or 127.0.0.1:llrp.port()
//! assert_eq!(llrp.truth().passes.len(), 50);
//! # drop(r2000); Ok(()) }
//! ```

pub mod llrp;
pub mod r2000;
pub mod script;

pub use llrp::{LlrpOptions, LlrpSim, LlrpStats};
pub use r2000::{EmptyRound, R2000Options, R2000Sim, R2000Stats};
pub use script::{
    epc_hex, pallet_sscc, sscc18, sscc96, Direction, GroundTruth, Pass, PassTruth, Read,
    ReadSource, Schedule, Script,
};
