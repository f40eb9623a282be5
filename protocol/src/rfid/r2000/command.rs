//! Command codes and the host commands the session sends.

use super::frame::{checksum, FrameRef, HEAD};

/// Command codes (the Cmd byte), as the vendor SDKs name them. A reader echoes the code in its responses.
pub mod cmd {
    /// `cmd_get_ant_connection_detector`: one data byte, the detector setting.
    pub const GET_ANT_CONNECTION_DETECTOR: u8 = 0x63;
    /// `cmd_get_rf_link_profile`: one data byte, 0xD0..=0xD3.
    pub const GET_RF_LINK_PROFILE: u8 = 0x6A;
    /// `cmd_reset`: the reader reboots; it answers only on failure.
    pub const RESET: u8 = 0x70;
    /// `cmd_set_uart_baudrate`.
    pub const SET_UART_BAUDRATE: u8 = 0x71;
    /// `cmd_get_firmware_version`: two data bytes, major and minor.
    pub const GET_FIRMWARE_VERSION: u8 = 0x72;
    /// `cmd_set_reader_address`.
    pub const SET_READER_ADDRESS: u8 = 0x73;
    /// `cmd_set_work_antenna`: one data byte, the 0-based port.
    pub const SET_WORK_ANTENNA: u8 = 0x74;
    /// `cmd_get_work_antenna`: one data byte, the 0-based port.
    pub const GET_WORK_ANTENNA: u8 = 0x75;
    /// `cmd_set_output_power`.
    pub const SET_OUTPUT_POWER: u8 = 0x76;
    /// `cmd_get_output_power`.
    pub const GET_OUTPUT_POWER: u8 = 0x77;
    /// `cmd_get_reader_temperature`.
    pub const GET_READER_TEMPERATURE: u8 = 0x7B;
    /// `cmd_get_rf_port_return_loss`: one data byte, the return loss in dB.
    pub const GET_RF_PORT_RETURN_LOSS: u8 = 0x7E;
    /// `cmd_inventory` (buffered; not used by the session).
    pub const INVENTORY: u8 = 0x80;
    /// `cmd_real_time_inventory`: one report per tag read, then an end-of-round report.
    pub const REAL_TIME_INVENTORY: u8 = 0x89;
    /// `cmd_fast_switch_ant_inventory`: tag reports as 0x89; its end report differs (total reads, duration).
    pub const FAST_SWITCH_ANT_INVENTORY: u8 = 0x8A;
    /// `cmd_customized_session_target_inventory`: reports as 0x89.
    pub const CUSTOMIZED_SESSION_TARGET_INVENTORY: u8 = 0x8B;
    /// `cmd_get_impinj_fast_tid`: one data byte, 0x00 or 0x8D.
    pub const GET_IMPINJ_FAST_TID: u8 = 0x8E;
}

/// A host command. Its data is at most one byte, so encoding cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// 0x70: reboot the reader.
    Reset,
    /// 0x72: ask for the firmware version.
    GetFirmwareVersion,
    /// 0x74: select the antenna port (0-based) for the next inventory.
    SetWorkAntenna {
        /// 0-based port: antenna 1 is port 0.
        port: u8,
    },
    /// 0x75: ask which port is selected.
    GetWorkAntenna,
    /// 0x89: run `repeat` inventory rounds on the work antenna, reporting each read at once.
    RealTimeInventory {
        /// Inventory rounds; 255 selects the reader's fast algorithm for few tags.
        repeat: u8,
    },
}

impl Command {
    /// The command code.
    pub fn code(self) -> u8 {
        match self {
            Command::Reset => cmd::RESET,
            Command::GetFirmwareVersion => cmd::GET_FIRMWARE_VERSION,
            Command::SetWorkAntenna { .. } => cmd::SET_WORK_ANTENNA,
            Command::GetWorkAntenna => cmd::GET_WORK_ANTENNA,
            Command::RealTimeInventory { .. } => cmd::REAL_TIME_INVENTORY,
        }
    }

    fn arg(self) -> Option<u8> {
        match self {
            Command::SetWorkAntenna { port } => Some(port),
            Command::RealTimeInventory { repeat } => Some(repeat),
            Command::Reset | Command::GetFirmwareVersion | Command::GetWorkAntenna => None,
        }
    }

    /// The frame that sends this command to the reader at `addr`.
    pub fn encode(self, addr: u8) -> Vec<u8> {
        let arg = self.arg();
        let len = if arg.is_some() { 4 } else { 3 };
        let mut out = Vec::with_capacity(6);
        out.extend_from_slice(&[HEAD, len, addr, self.code()]);
        out.extend(arg);
        out.push(checksum(&out));
        out
    }

    /// The command a host frame carries, if it is one of these; what a reader (or a fake one) does first.
    pub fn parse(frame: FrameRef<'_>) -> Option<Command> {
        let command = match (frame.cmd(), frame.data()) {
            (cmd::RESET, []) => Command::Reset,
            (cmd::GET_FIRMWARE_VERSION, []) => Command::GetFirmwareVersion,
            (cmd::SET_WORK_ANTENNA, &[port]) => Command::SetWorkAntenna { port },
            (cmd::GET_WORK_ANTENNA, []) => Command::GetWorkAntenna,
            (cmd::REAL_TIME_INVENTORY, &[repeat]) => Command::RealTimeInventory { repeat },
            _ => return None,
        };
        Some(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn encodes_like_the_captures() {
        // (command, address, bytes): the address-1 rows are published captures, the 0xFF rows computed by hand.
        let cases = [
            (
                Command::SetWorkAntenna { port: 0 },
                0x01,
                "A0 04 01 74 00 E7",
            ),
            (
                Command::SetWorkAntenna { port: 1 },
                0x01,
                "A0 04 01 74 01 E6",
            ),
            (
                Command::SetWorkAntenna { port: 3 },
                0x01,
                "A0 04 01 74 03 E4",
            ),
            (
                Command::RealTimeInventory { repeat: 1 },
                0x01,
                "A0 04 01 89 01 D1",
            ),
            (Command::GetFirmwareVersion, 0x01, "A0 03 01 72 EA"),
            (Command::Reset, 0xFF, "A0 03 FF 70 EE"),
            (
                Command::SetWorkAntenna { port: 1 },
                0xFF,
                "A0 04 FF 74 01 E8",
            ),
            (
                Command::RealTimeInventory { repeat: 1 },
                0xFF,
                "A0 04 FF 89 01 D3",
            ),
        ];
        for (command, addr, bytes) in cases {
            let encoded = command.encode(addr);
            assert_eq!(encoded, hex(bytes), "{command:?}");
            let frame = FrameRef::parse(&encoded).unwrap();
            assert_eq!(Command::parse(frame), Some(command));
        }
    }

    #[test]
    fn parse_rejects_frames_that_are_not_these_commands() {
        // A firmware-version answer (two data bytes) and an inventory without its Repeat byte.
        for bytes in ["A0 05 01 72 01 09 DE", "A0 03 01 89 D3"] {
            let bytes = hex(bytes);
            assert_eq!(
                Command::parse(FrameRef::parse(&bytes).unwrap()),
                None,
                "{bytes:02x?}"
            );
        }
    }
}
