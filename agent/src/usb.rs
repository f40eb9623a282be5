//! USB scanner sources: `usb-hid-pos` (HID POS, usage page 0x8C) and `usb-keyboard` (keyboard wedge read as a boot
//! keyboard), through rusb.
//!
//! Thin by design: this module finds the device, claims its interface and moves input reports into the sans-IO
//! decoders of [`dockhand_protocol::hid`]; decoded scans take the same path as serial scans
//! ([`source::decode_input`], one [`ScanEvent`] each).
//!
//! One OS thread per source, because rusb is blocking:
//!
//! - A `rusb::Context` is created per connection attempt. Never rusb's global helpers (`rusb::devices()`): they panic
//!   when libusb cannot initialise (no USB bus, libusb built without udev), see BUILD-NOTES. An init error and a
//!   missing device are the same state for the operator: "no USB device"; it is logged once and retried every 2 s.
//! - The device is matched by vendor/product id; the kernel driver (usbhid) is detached from the interface while we
//!   hold it and re-attached when we let go, so the scanner types again as a keyboard after the agent stops.
//! - Reads use a 100 ms timeout so the shutdown flag is checked often; a timeout is also the "device went quiet"
//!   signal the HID POS decoder needs to end scans that have no continuation flag.
//! - Unplugging shows up as a read error (`NoDevice`): the partial scan is dropped and the device is looked for
//!   again until it is plugged back.
//!
//! Feedback: USB scanners get no good-read/bad-read bytes in this version (HID POS output reports are vendor
//! specific). Decisions are still received and counted by the same feedback logic as serial sources, so the status
//! file's confirmed/rejected/recent stay right and durability is still awaited before counting a scan confirmed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dockhand_protocol::hid::{Continuation, HidError, HidPosDecoder, KeyboardDecoder};
use dockhand_protocol::scan::{split_aim, RawScan};
use tokio::sync::mpsc;

use crate::config::{SourceConfig, KIND_USB_KEYBOARD};
use crate::source::{self, Feedback, ScanEvent, SourceStatus};
use crate::workflow::ScanInput;

/// How long a read waits; also the quiet gap that ends a HID POS scan without a continuation flag.
const READ_TIMEOUT: Duration = Duration::from_millis(100);
/// Quiet reads after which a flagged HID POS scan whose last report never came is given up (1 s): far longer
/// than the few milliseconds between the reports of one scan, so a busy USB bus does not split scans.
const FLAGGED_QUIET_READS: u32 = 10;
/// How often a missing device is looked for again.
const RETRY: Duration = Duration::from_secs(2);

/// Why a USB device could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsbError {
    /// libusb could not start (no USB bus, or built without device access).
    #[error("no USB device: USB is not available on this machine ({0})")]
    NoUsb(rusb::Error),
    /// No device with these ids is plugged in.
    #[error("no USB device {vendor_id:04x}:{product_id:04x} found")]
    NotFound {
        /// Vendor id looked for.
        vendor_id: u16,
        /// Product id looked for.
        product_id: u16,
    },
    /// The device is there but could not be opened or claimed.
    #[error("USB device {vendor_id:04x}:{product_id:04x}: cannot {what}: {source}{hint}")]
    Open {
        /// Vendor id.
        vendor_id: u16,
        /// Product id.
        product_id: u16,
        /// The step that failed.
        what: &'static str,
        /// libusb's error.
        source: rusb::Error,
        /// What the operator can do about it.
        hint: &'static str,
    },
    /// The interface has no interrupt IN endpoint (wrong `interface`, or not a HID interface).
    #[error("USB interface {interface} has no interrupt IN endpoint; check `interface`")]
    NoEndpoint {
        /// The interface.
        interface: u8,
    },
    /// The device was unplugged.
    #[error("USB device unplugged")]
    Disconnected,
    /// Any other read error.
    #[error("USB read: {0}")]
    Read(rusb::Error),
}

/// A source of input reports: the seam between the read loop and rusb, so the loop can be tested with a fake.
pub trait ReportDevice {
    /// Reads one input report into `buf`: `Ok(Some(len))`, or `Ok(None)` when nothing came within `timeout`.
    fn read_report(&mut self, buf: &mut [u8], timeout: Duration)
        -> Result<Option<usize>, UsbError>;
}

/// An opened, claimed USB HID interface.
pub struct UsbDevice {
    handle: rusb::DeviceHandle<rusb::Context>,
    interface: u8,
    endpoint: u8,
    reattach: bool,
}

impl std::fmt::Debug for UsbDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsbDevice")
            .field("interface", &self.interface)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl UsbDevice {
    /// Finds the device by vendor/product id, detaches the kernel driver, claims `interface` and finds its interrupt
    /// IN endpoint. With `boot_keyboard`, asks the interface for the 8-byte boot protocol.
    pub fn open(
        vendor_id: u16,
        product_id: u16,
        interface: u8,
        boot_keyboard: bool,
    ) -> Result<UsbDevice, UsbError> {
        use rusb::UsbContext;
        let ctx = rusb::Context::new().map_err(UsbError::NoUsb)?;
        let devices = ctx.devices().map_err(UsbError::NoUsb)?;
        let device = devices
            .iter()
            .find(|d| {
                d.device_descriptor().is_ok_and(|desc| {
                    desc.vendor_id() == vendor_id && desc.product_id() == product_id
                })
            })
            .ok_or(UsbError::NotFound {
                vendor_id,
                product_id,
            })?;
        let fail = |what: &'static str, source: rusb::Error| UsbError::Open {
            vendor_id,
            product_id,
            what,
            hint: match source {
                rusb::Error::Access => {
                    " (permission denied: add a udev rule giving the agent's user the device)"
                }
                rusb::Error::Busy => " (another program holds the interface)",
                _ => "",
            },
            source,
        };
        let endpoint = interrupt_in_endpoint(&device, interface)?;
        let handle = device.open().map_err(|e| fail("open", e))?;
        // Linux binds usbhid to scanners; it must let go of the interface before we can claim it.
        let reattach = match handle.kernel_driver_active(interface) {
            Ok(true) => {
                handle
                    .detach_kernel_driver(interface)
                    .map_err(|e| fail("detach the kernel driver", e))?;
                true
            }
            // NotSupported on platforms without kernel drivers to detach.
            Ok(false) | Err(_) => false,
        };
        let dev = UsbDevice {
            handle,
            interface,
            endpoint,
            reattach,
        };
        dev.handle
            .claim_interface(interface)
            .map_err(|e| fail("claim the interface", e))?;
        if boot_keyboard {
            // HID SET_PROTOCOL(boot): report protocol may prefix a report id or pack keys differently. Devices that
            // only speak boot protocol stall this request, which is harmless.
            let _ = dev.handle.write_control(
                0x21,
                0x0B,
                0,
                u16::from(interface),
                &[],
                Duration::from_millis(200),
            );
        }
        Ok(dev)
    }
}

fn interrupt_in_endpoint(
    device: &rusb::Device<rusb::Context>,
    interface: u8,
) -> Result<u8, UsbError> {
    let config = device.active_config_descriptor().map_err(UsbError::Read)?;
    config
        .interfaces()
        .filter(|i| i.number() == interface)
        .flat_map(|i| i.descriptors())
        .flat_map(|d| d.endpoint_descriptors().collect::<Vec<_>>())
        .find(|e| {
            e.direction() == rusb::Direction::In
                && e.transfer_type() == rusb::TransferType::Interrupt
        })
        .map(|e| e.address())
        .ok_or(UsbError::NoEndpoint { interface })
}

impl ReportDevice for UsbDevice {
    fn read_report(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<Option<usize>, UsbError> {
        match self.handle.read_interrupt(self.endpoint, buf, timeout) {
            Ok(n) => Ok(Some(n)),
            Err(rusb::Error::Timeout | rusb::Error::Interrupted) => Ok(None),
            Err(rusb::Error::NoDevice) => Err(UsbError::Disconnected),
            Err(rusb::Error::Overflow) => {
                // A report longer than our buffer: garbage for every profile, not a reason to reconnect.
                tracing::warn!("USB report longer than the read buffer; ignored");
                Ok(None)
            }
            Err(e) => Err(UsbError::Read(e)),
        }
    }
}

impl Drop for UsbDevice {
    fn drop(&mut self) {
        let _ = self.handle.release_interface(self.interface);
        if self.reattach {
            let _ = self.handle.attach_kernel_driver(self.interface);
        }
    }
}

/// The protocol decoder of a USB source.
#[derive(Debug)]
pub enum UsbDecoder {
    /// HID POS scanned data reports, and the quiet reads seen since the last report.
    HidPos(HidPosDecoder, u32),
    /// Boot keyboard reports.
    Keyboard(KeyboardDecoder),
}

impl UsbDecoder {
    /// The decoder a source's config asks for.
    pub fn for_config(cfg: &SourceConfig) -> UsbDecoder {
        if cfg.kind == KIND_USB_KEYBOARD {
            UsbDecoder::Keyboard(KeyboardDecoder::new(
                cfg.keyboard_layout(),
                cfg.key_terminator(),
            ))
        } else {
            UsbDecoder::HidPos(HidPosDecoder::new(cfg.hid_pos_profile()), 0)
        }
    }

    /// Decodes one report (`Some`) or the device going quiet (`None`) into scans and errors, in order.
    fn step(&mut self, report: Option<&[u8]>) -> Vec<Result<RawScan, HidError>> {
        let mut out = Vec::new();
        match (self, report) {
            (UsbDecoder::HidPos(d, quiet), Some(r)) => {
                *quiet = 0;
                out.extend(d.push_report(r).transpose());
            }
            (UsbDecoder::HidPos(d, quiet), None) => {
                *quiet = quiet.saturating_add(1);
                let needed = match d.profile().continuation {
                    Continuation::QuietGap => 1,
                    Continuation::Flag { .. } => FLAGGED_QUIET_READS,
                };
                if *quiet >= needed {
                    out.extend(d.finish().transpose());
                }
            }
            (UsbDecoder::Keyboard(d), Some(r)) => {
                out.extend(d.push_report(r).transpose().map(|r| r.map(typed_scan)));
                out.extend(std::iter::from_fn(|| d.next_scan()).map(|s| Ok(typed_scan(s))));
            }
            (UsbDecoder::Keyboard(_), None) => {}
        }
        out
    }

    fn reset(&mut self) {
        match self {
            UsbDecoder::HidPos(d, quiet) => {
                d.reset();
                *quiet = 0;
            }
            UsbDecoder::Keyboard(d) => d.reset(),
        }
    }
}

/// A keyboard wedge types the AIM id (if enabled) in front of the data.
fn typed_scan(bytes: Vec<u8>) -> RawScan {
    let (symbology, data) = split_aim(&bytes);
    RawScan {
        symbology,
        data: data.to_vec(),
    }
}

/// Starts a USB scanner source (`usb-hid-pos` or `usb-keyboard`). The thread ends when `shutdown` is set.
pub fn spawn_usb(
    cfg: SourceConfig,
    events: mpsc::Sender<ScanEvent>,
    status: Arc<Mutex<SourceStatus>>,
    shutdown: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    let (vid, pid) = cfg.usb_ids();
    thread::Builder::new()
        .name(format!("usb {vid:04x}:{pid:04x}"))
        .spawn(move || usb_loop(cfg, events, status, shutdown))
        .expect("spawn USB source thread")
}

fn set_status(status: &Mutex<SourceStatus>, f: impl FnOnce(&mut SourceStatus)) {
    if let Ok(mut s) = status.lock() {
        f(&mut s);
    }
}

fn sleep_unless(shutdown: &AtomicBool, total: Duration) {
    let end = Instant::now() + total;
    while !shutdown.load(Ordering::Relaxed) && Instant::now() < end {
        thread::sleep(Duration::from_millis(50));
    }
}

fn usb_loop(
    cfg: SourceConfig,
    events: mpsc::Sender<ScanEvent>,
    status: Arc<Mutex<SourceStatus>>,
    shutdown: Arc<AtomicBool>,
) {
    let (vid, pid) = cfg.usb_ids();
    let name = format!("{} {vid:04x}:{pid:04x}", cfg.kind);
    set_status(&status, |s| s.path = name.clone());
    // One feedback thread for the source's life: there is no port to reopen, and decisions stay in scan order
    // across reconnects.
    let (fb_tx, fb_rx) = std_mpsc::channel::<Feedback>();
    let fb_thread = {
        let status = status.clone();
        thread::spawn(move || {
            source::feedback_loop(None::<std::io::Sink>, fb_rx, Vec::new(), Vec::new(), status)
        })
    };
    let mut decoder = UsbDecoder::for_config(&cfg);
    let mut logged_down = false;
    while !shutdown.load(Ordering::Relaxed) {
        let dev = UsbDevice::open(vid, pid, cfg.usb_interface(), cfg.kind == KIND_USB_KEYBOARD);
        let mut dev = match dev {
            Ok(d) => d,
            Err(e) => {
                if !logged_down {
                    tracing::warn!(source = %name, error = %e, "USB scanner not available; retrying every 2 s");
                    logged_down = true;
                }
                set_status(&status, |s| {
                    s.connected = false;
                    s.last_error = Some(e.to_string());
                });
                sleep_unless(&shutdown, RETRY);
                continue;
            }
        };
        logged_down = false;
        tracing::info!(source = %name, "USB scanner connected");
        set_status(&status, |s| {
            s.connected = true;
            s.last_error = None;
        });
        let err = read_reports(&mut dev, &mut decoder, &cfg, &events, &fb_tx, &shutdown);
        drop(dev);
        decoder.reset();
        if let Some(e) = err {
            tracing::warn!(source = %name, error = %e, "USB scanner disconnected; looking for it again");
            set_status(&status, |s| {
                s.connected = false;
                s.last_error = Some(e.to_string());
            });
            sleep_unless(&shutdown, Duration::from_millis(500));
        }
    }
    drop(fb_tx);
    let _ = fb_thread.join();
    set_status(&status, |s| s.connected = false);
}

/// Reads and decodes reports until shutdown or the workflow stops (`None`) or a device error (returned).
pub fn read_reports(
    dev: &mut dyn ReportDevice,
    decoder: &mut UsbDecoder,
    cfg: &SourceConfig,
    events: &mpsc::Sender<ScanEvent>,
    feedback: &std_mpsc::Sender<Feedback>,
    shutdown: &AtomicBool,
) -> Option<UsbError> {
    // Larger than any report we accept, so an overlong one reaches the decoder and is rejected there.
    let mut buf = [0u8; 128];
    while !shutdown.load(Ordering::Relaxed) {
        let report = match dev.read_report(&mut buf, READ_TIMEOUT) {
            Ok(Some(n)) => Some(&buf[..n.min(buf.len())]),
            Ok(None) => None,
            Err(e) => return Some(e),
        };
        for result in decoder.step(report) {
            let input = match result {
                Ok(raw) => source::decode_input(raw, cfg),
                Err(HidError::WrongReportId { found, .. }) => {
                    // Scanners interleave status and other reports with scanned data: not an operator's problem.
                    tracing::debug!(report_id = found, "USB report of another type ignored");
                    continue;
                }
                Err(e) => ScanInput::Invalid {
                    reason: e.to_string(),
                },
            };
            let ev = ScanEvent {
                input,
                feedback: feedback.clone(),
            };
            if events.blocking_send(ev).is_err() {
                return None; // the workflow has stopped: shutting down
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    /// Plays reports, then quiet periods, then an unplug.
    struct FakeDevice(VecDeque<Result<Option<Vec<u8>>, UsbError>>);

    impl ReportDevice for FakeDevice {
        fn read_report(
            &mut self,
            buf: &mut [u8],
            _timeout: Duration,
        ) -> Result<Option<usize>, UsbError> {
            match self.0.pop_front().unwrap_or(Err(UsbError::Disconnected))? {
                Some(r) => {
                    buf[..r.len()].copy_from_slice(&r);
                    Ok(Some(r.len()))
                }
                None => Ok(None),
            }
        }
    }

    fn source_cfg(extra: &str) -> SourceConfig {
        let text = format!("device_id='hh-01'\nsite='WH1'\ndata_dir='/d'\n[[sources]]\n{extra}");
        Config::parse(&text, Path::new("/x/agent.toml"), Path::new("/x"))
            .unwrap()
            .sources
            .remove(0)
    }

    fn honeywell(len: u8, aim: &[u8; 3], data: &[u8], more: bool) -> Vec<u8> {
        let mut r = vec![0u8; 64];
        r[0] = 2;
        r[1] = len;
        r[2..5].copy_from_slice(aim);
        r[5..5 + data.len()].copy_from_slice(data);
        r[63] = u8::from(more);
        r
    }

    fn inputs(
        cfg: &SourceConfig,
        reports: Vec<Result<Option<Vec<u8>>, UsbError>>,
    ) -> (Vec<ScanInput>, Option<UsbError>) {
        let (tx, mut rx) = mpsc::channel(64);
        let (fb_tx, _fb_rx) = std_mpsc::channel();
        let mut dev = FakeDevice(reports.into());
        let mut decoder = UsbDecoder::for_config(cfg);
        let err = read_reports(
            &mut dev,
            &mut decoder,
            cfg,
            &tx,
            &fb_tx,
            &AtomicBool::new(false),
        );
        drop(tx);
        let mut out = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            out.push(ev.input);
        }
        (out, err)
    }

    #[test]
    fn hid_pos_reports_become_decoded_scans_then_unplug_ends_the_loop() {
        let cfg = source_cfg(
            "kind='usb-hid-pos'\nvendor_id='0x0c2e'\nproduct_id='0x0b61'\nprofile='honeywell'\n",
        );
        let data = b"0109506000134352\x1d10ABC123";
        let (inputs, err) = inputs(
            &cfg,
            vec![
                Ok(Some(honeywell(10, b"]C1", &data[..10], true))),
                Ok(None),
                Ok(Some(honeywell(15, b"]C1", &data[10..], false))),
                Ok(Some(vec![0x04, 1, 2, 3])), // another report type: ignored
                Ok(Some(honeywell(200, b"]C1", b"", false))), // garbage: one rejected scan
                Ok(Some(honeywell(1, b"]C1", b"9", true))),
            ]
            .into_iter()
            .chain((0..FLAGGED_QUIET_READS).map(|_| Ok(None))) // its last report never comes
            .collect(),
        );
        assert!(matches!(err, Some(UsbError::Disconnected)), "{err:?}");
        assert_eq!(inputs.len(), 3, "{inputs:?}");
        assert!(
            matches!(&inputs[2], ScanInput::Invalid { reason } if reason.contains("incomplete"))
        );
        match &inputs[0] {
            ScanInput::Decoded { symbology, raw, .. } => {
                assert_eq!(symbology.as_deref(), Some("]C1"));
                assert_eq!(raw.as_bytes(), data);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&inputs[1], ScanInput::Invalid { reason } if reason.contains("length byte 200"))
        );
    }

    #[test]
    fn keyboard_wedge_reports_become_decoded_scans() {
        let cfg = source_cfg("kind='usb-keyboard'\nvendor_id=1\nproduct_id=2\n");
        // "]E0" + EAN-13 9506000134352 typed on a US layout, then Enter.
        let mut keys: Vec<(u8, u8)> = vec![(0, 0x30), (0x02, 0x08), (0, 0x27)];
        for c in b"9506000134352" {
            keys.push((0, if *c == b'0' { 0x27 } else { 0x1E + (c - b'1') }));
        }
        keys.push((0, 0x28));
        let mut reports = Vec::new();
        for (m, k) in keys {
            reports.push(Ok(Some(vec![m, 0, k, 0, 0, 0, 0, 0])));
            reports.push(Ok(Some(vec![0; 8])));
        }
        reports.push(Ok(Some(vec![0, 0, 0x3A, 0, 0, 0, 0, 0]))); // F1: unknown
        let (inputs, _) = inputs(&cfg, reports);
        assert_eq!(inputs.len(), 2, "{inputs:?}");
        assert!(
            matches!(&inputs[0], ScanInput::Decoded { symbology, raw, .. }
                if symbology.as_deref() == Some("]E0") && raw == "9506000134352"),
            "{:?}",
            inputs[0]
        );
        assert!(
            matches!(&inputs[1], ScanInput::Invalid { reason } if reason.contains("unknown keycode 0x3a"))
        );
    }

    #[test]
    fn open_without_a_usb_device_is_a_clean_error() {
        // This machine has no USB bus: either libusb fails to start or it lists no devices. Both read "no USB device".
        let err = UsbDevice::open(0x0c2e, 0x0b61, 0, false).unwrap_err();
        assert!(err.to_string().starts_with("no USB device"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn agent_with_a_missing_usb_scanner_starts_and_reports_it() {
        let tmp = tempfile::tempdir().unwrap();
        let text = "device_id='hh-01'\nsite='WH1'\ndata_dir='data'\n\
            [[sources]]\nkind='usb-hid-pos'\nvendor_id='0x0c2e'\nproduct_id='0x0b61'\nprofile='honeywell'\n";
        let cfg = Config::parse(text, &tmp.path().join("agent.toml"), tmp.path()).unwrap();
        let data_dir = cfg.data_dir.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let agent = tokio::spawn(crate::run(cfg, async move {
            let _ = stop_rx.await;
        }));
        let deadline = Instant::now() + Duration::from_secs(10);
        let source = loop {
            if let Ok(status) = crate::read_status(&data_dir) {
                let src = status["sources"][0].clone();
                if src["last_error"].is_string() {
                    break src;
                }
            }
            assert!(Instant::now() < deadline, "no source status written");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(source["connected"], false);
        assert_eq!(source["path"], "usb-hid-pos 0c2e:0b61");
        let error = source["last_error"].as_str().unwrap();
        assert!(error.starts_with("no USB device"), "{error}");
        // Still running: the status file keeps being rewritten, and the agent stops cleanly when asked.
        let first = crate::read_status(&data_dir).unwrap()["updated"].clone();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(!agent.is_finished());
        assert_ne!(crate::read_status(&data_dir).unwrap()["updated"], first);
        stop_tx.send(()).unwrap();
        agent.await.unwrap().unwrap();
    }
}
