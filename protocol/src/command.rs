//! Command barcodes (`DH:...`) and location barcodes (`LOC:...`), DESIGN §6.
//!
//! A handheld may have no screen, so the operator drives workflows by scanning these. Keywords are matched without
//! regard to case because keyboard-wedge scanners follow the host's Caps Lock; arguments are kept as scanned.

/// A command barcode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    /// `DH:RECEIVE` (blind) or `DH:RECEIVE:<asn>` (against an expected receipt).
    Receive {
        /// The ASN to receive against.
        asn: Option<String>,
    },
    /// `DH:PUTAWAY`.
    Putaway,
    /// `DH:PICK:<pick list>`.
    Pick {
        /// The pick list id.
        list: String,
    },
    /// `DH:MOVE`.
    Move,
    /// `DH:COUNT`.
    Count,
    /// `DH:QTY:<n>`: the next item scan counts n units.
    Qty(u64),
    /// `DH:DONE`.
    Done,
    /// `DH:CANCEL`.
    Cancel,
    /// `DH:SHORT`.
    Short,
    /// `DH:OP:<operator>`: sign the following movements with this operator id.
    Op(String),
}

impl Command {
    /// The command's lowercase name, as in JSON output (`receive`, `qty`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Receive { .. } => "receive",
            Command::Putaway => "putaway",
            Command::Pick { .. } => "pick",
            Command::Move => "move",
            Command::Count => "count",
            Command::Qty(_) => "qty",
            Command::Done => "done",
            Command::Cancel => "cancel",
            Command::Short => "short",
            Command::Op(_) => "op",
        }
    }

    /// The command's argument as scanned, if it has one.
    pub fn argument(&self) -> Option<String> {
        match self {
            Command::Receive { asn } => asn.clone(),
            Command::Pick { list } => Some(list.clone()),
            Command::Qty(n) => Some(n.to_string()),
            Command::Op(op) => Some(op.clone()),
            _ => None,
        }
    }
}

/// The largest quantity `DH:QTY` accepts; anything bigger is a misprint, not a delivery.
pub const MAX_QTY: u64 = 1_000_000;

/// The longest argument or location code we accept.
pub const MAX_CODE_LEN: usize = 64;

/// Why a `DH:` or `LOC:` barcode was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// `DH:` with nothing after it.
    #[error("empty command: DH: must be followed by a command such as DH:RECEIVE")]
    Empty,
    /// A keyword we do not know.
    #[error("unknown command DH:{0}")]
    Unknown(String),
    /// A command that needs an argument scanned without one.
    #[error("DH:{command} needs an argument: {usage}")]
    MissingArgument {
        /// The command keyword.
        command: &'static str,
        /// How to write it, e.g. `DH:PICK:<pick list>`.
        usage: &'static str,
    },
    /// A command that takes no argument scanned with one.
    #[error("DH:{command} takes no argument, got {argument:?}")]
    UnexpectedArgument {
        /// The command keyword.
        command: &'static str,
        /// The argument found.
        argument: String,
    },
    /// A `DH:QTY` argument that is not a whole number.
    #[error("DH:QTY: {0:?} is not a whole number")]
    QtyNotANumber(String),
    /// A `DH:QTY` argument outside 1..=1,000,000.
    #[error("DH:QTY: quantity must be between 1 and 1000000, got {0}")]
    QtyOutOfRange(String),
    /// An argument that is empty, too long or has characters other than printable ASCII without spaces.
    #[error(
        "{what} {value:?} is not valid: use 1 to 64 printable ASCII characters without spaces"
    )]
    BadCode {
        /// What the code is, e.g. `location` or `DH:PICK pick list`.
        what: &'static str,
        /// The code as scanned.
        value: String,
    },
}

/// Parses a `DH:` command barcode; `None` when `s` does not start with `DH:`.
pub fn parse_command(s: &str) -> Option<Result<Command, CommandError>> {
    let rest = s.strip_prefix("DH:")?;
    Some(parse_command_body(rest))
}

fn parse_command_body(rest: &str) -> Result<Command, CommandError> {
    if rest.is_empty() {
        return Err(CommandError::Empty);
    }
    let (keyword, arg) = match rest.split_once(':') {
        Some((k, a)) => (k, Some(a)),
        None => (rest, None),
    };
    let keyword = keyword.to_ascii_uppercase();
    let no_arg = |command: &'static str, cmd: Command| match arg {
        None => Ok(cmd),
        Some(a) => Err(CommandError::UnexpectedArgument {
            command,
            argument: a.to_owned(),
        }),
    };
    let need_arg = |command: &'static str, usage: &'static str, what: &'static str| match arg {
        None => Err(CommandError::MissingArgument { command, usage }),
        Some(a) => check_code(a, what),
    };
    match keyword.as_str() {
        "RECEIVE" => match arg {
            None => Ok(Command::Receive { asn: None }),
            Some(a) => Ok(Command::Receive {
                asn: Some(check_code(a, "DH:RECEIVE ASN")?),
            }),
        },
        "PUTAWAY" => no_arg("PUTAWAY", Command::Putaway),
        "PICK" => need_arg("PICK", "DH:PICK:<pick list>", "DH:PICK pick list")
            .map(|list| Command::Pick { list }),
        "MOVE" => no_arg("MOVE", Command::Move),
        "COUNT" => no_arg("COUNT", Command::Count),
        "DONE" => no_arg("DONE", Command::Done),
        "CANCEL" => no_arg("CANCEL", Command::Cancel),
        "SHORT" => no_arg("SHORT", Command::Short),
        "OP" => need_arg("OP", "DH:OP:<operator>", "DH:OP operator").map(Command::Op),
        "QTY" => {
            let Some(a) = arg else {
                return Err(CommandError::MissingArgument {
                    command: "QTY",
                    usage: "DH:QTY:<n>",
                });
            };
            // `u64::from_str` accepts a leading `+`, which no quantity barcode should carry.
            if a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CommandError::QtyNotANumber(a.to_owned()));
            }
            match a.parse::<u64>() {
                Ok(n) if (1..=MAX_QTY).contains(&n) => Ok(Command::Qty(n)),
                _ => Err(CommandError::QtyOutOfRange(a.to_owned())),
            }
        }
        _ => Err(CommandError::Unknown(rest.to_owned())),
    }
}

/// Parses a `LOC:<code>` location barcode; `None` when `s` does not start with `LOC:`.
pub fn parse_location(s: &str) -> Option<Result<String, CommandError>> {
    let code = s.strip_prefix("LOC:")?;
    Some(check_code(code, "location"))
}

fn check_code(code: &str, what: &'static str) -> Result<String, CommandError> {
    let ok = (1..=MAX_CODE_LEN).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(code.to_owned())
    } else {
        Err(CommandError::BadCode {
            what,
            value: code.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        use Command::*;
        let cases: &[(&str, Option<Result<Command, &str>>)] = &[
            ("DH:RECEIVE", Some(Ok(Receive { asn: None }))),
            ("DH:RECEIVE:ASN-1", Some(Ok(Receive { asn: Some("ASN-1".into()) }))),
            ("DH:receive:asn-1", Some(Ok(Receive { asn: Some("asn-1".into()) }))),
            ("DH:PUTAWAY", Some(Ok(Putaway))),
            ("DH:PICK:PL-7", Some(Ok(Pick { list: "PL-7".into() }))),
            ("DH:MOVE", Some(Ok(Move))),
            ("DH:COUNT", Some(Ok(Count))),
            ("DH:QTY:12", Some(Ok(Qty(12)))),
            ("DH:QTY:1000000", Some(Ok(Qty(1_000_000)))),
            ("DH:DONE", Some(Ok(Done))),
            ("DH:CANCEL", Some(Ok(Cancel))),
            ("DH:SHORT", Some(Ok(Short))),
            ("DH:OP:alice", Some(Ok(Op("alice".into())))),
            ("LOC:A-01", None),
            ("0109506000134352", None),
            ("", None),
            ("DH:", Some(Err("empty command: DH: must be followed by a command such as DH:RECEIVE"))),
            ("DH:FOO", Some(Err("unknown command DH:FOO"))),
            ("DH:FOO:1", Some(Err("unknown command DH:FOO:1"))),
            ("DH:QTY:0", Some(Err("DH:QTY: quantity must be between 1 and 1000000, got 0"))),
            ("DH:QTY:1000001", Some(Err("DH:QTY: quantity must be between 1 and 1000000, got 1000001"))),
            (
                "DH:QTY:99999999999999999999999",
                Some(Err("DH:QTY: quantity must be between 1 and 1000000, got 99999999999999999999999")),
            ),
            ("DH:QTY:abc", Some(Err("DH:QTY: \"abc\" is not a whole number"))),
            ("DH:QTY:+5", Some(Err("DH:QTY: \"+5\" is not a whole number"))),
            ("DH:QTY:", Some(Err("DH:QTY: \"\" is not a whole number"))),
            ("DH:QTY", Some(Err("DH:QTY needs an argument: DH:QTY:<n>"))),
            ("DH:PICK", Some(Err("DH:PICK needs an argument: DH:PICK:<pick list>"))),
            ("DH:OP", Some(Err("DH:OP needs an argument: DH:OP:<operator>"))),
            ("DH:DONE:x", Some(Err("DH:DONE takes no argument, got \"x\""))),
            (
                "DH:RECEIVE:",
                Some(Err("DH:RECEIVE ASN \"\" is not valid: use 1 to 64 printable ASCII characters without spaces")),
            ),
            (
                "DH:PICK:a b",
                Some(Err("DH:PICK pick list \"a b\" is not valid: use 1 to 64 printable ASCII characters without spaces")),
            ),
        ];
        for (s, want) in cases {
            let got = parse_command(s).map(|r| r.map_err(|e| e.to_string()));
            let want = want.clone().map(|r| r.map_err(str::to_owned));
            assert_eq!(got, want, "{s:?}");
        }
    }

    #[test]
    fn locations() {
        let long = format!("LOC:{}", "A".repeat(65));
        let max = format!("LOC:{}", "A".repeat(64));
        let cases: &[(&str, Option<Result<&str, ()>>)] = &[
            ("LOC:A-01-02", Some(Ok("A-01-02"))),
            ("LOC:DOCK-1", Some(Ok("DOCK-1"))),
            (&max, Some(Ok(&max[4..]))),
            ("LOC:", Some(Err(()))),
            ("LOC:A 1", Some(Err(()))),
            ("LOC:Ä", Some(Err(()))),
            ("LOC:A\t1", Some(Err(()))),
            (&long, Some(Err(()))),
            ("DH:MOVE", None),
            ("loc:A", None),
        ];
        for &(s, want) in cases {
            let got = parse_location(s).map(|r| r.map_err(|_| ()));
            assert_eq!(got, want.map(|r| r.map(str::to_owned)), "{s:?}");
        }
    }

    #[test]
    fn names_and_arguments() {
        assert_eq!(Command::Qty(3).argument().as_deref(), Some("3"));
        assert_eq!(Command::Receive { asn: None }.argument(), None);
        assert_eq!(Command::Pick { list: "P".into() }.name(), "pick");
    }
}
