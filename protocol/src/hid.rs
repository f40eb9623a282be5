//! USB HID scanner reports: HID POS (usage page 0x8C) and boot-keyboard (keyboard wedge) decoding, sans-IO.
