//! `dockhand-agent tui`: a terminal screen on the device's status endpoint ([`crate::status`]).
//!
//! Two background threads talk to the agent with the endpoint's blocking client: one polls `GET /status` twice a
//! second (task, backlog, sync state), one follows `GET /events` for decisions as they happen. Both re-read
//! `status.addr` on every (re)connect, so the screen survives agent restarts and shows "agent not running" in
//! between. The UI thread owns the [`Model`], applies their [`Msg`]s and redraws; [`draw`] is a pure function of
//! the model, so tests render it on ratatui's `TestBackend`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;
use serde::Deserialize;

use crate::status::{self, DecisionEvent, EventStream, Outcome, StreamItem};

/// How often the status is polled.
const POLL: Duration = Duration::from_millis(500);
/// Connect and read timeout of a status request.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Decisions kept on screen (the agent keeps as many).
const KEEP: usize = status::RECENT_DECISIONS;

/// The part of `GET /status` the screen shows.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusView {
    /// This device.
    pub device_id: String,
    /// Its site.
    pub site: String,
    /// Movements not yet acknowledged by the server.
    pub backlog: usize,
    /// Sync state.
    pub sync: SyncView,
    /// The operator's task in one line.
    pub task: Option<String>,
    /// Set when the journal failed.
    pub fatal: Option<String>,
    /// Source states.
    #[serde(default)]
    pub sources: Vec<SourceView>,
    /// The agent's last decisions, oldest first.
    #[serde(default)]
    pub last_decisions: Vec<DecisionEvent>,
}

/// Sync state as `/status` reports it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SyncView {
    /// `ok` or the error of the last attempt; `None` before the first (or without a server).
    pub last_result: Option<String>,
    /// Failures in a row.
    #[serde(default)]
    pub failures: u32,
}

/// A source as `/status` reports it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SourceView {
    /// Device path.
    #[serde(default)]
    pub path: String,
    /// Open right now.
    #[serde(default)]
    pub connected: bool,
}

/// Is the agent there?
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Link {
    /// Not known yet.
    #[default]
    Connecting,
    /// Answering at this address.
    Up(SocketAddr),
    /// Not reachable, and why.
    Down(String),
}

/// What the screen shows.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// The agent's reachability.
    pub link: Link,
    /// The last status read; `None` while the agent is not reachable.
    pub status: Option<StatusView>,
    /// The operator's task: from the newest decision, or from a status poll that has seen that decision.
    pub task: Option<String>,
    /// Decisions, newest last.
    pub decisions: VecDeque<DecisionEvent>,
    /// Decisions the event stream skipped because the screen fell behind.
    pub missed: u64,
}

/// A change from the background threads.
#[derive(Debug, Clone)]
pub enum Msg {
    /// A status poll answered.
    Status(SocketAddr, Box<StatusView>),
    /// The agent is not reachable.
    Down(String),
    /// The decisions the agent had when the event stream (re)connected.
    Seed(Vec<DecisionEvent>),
    /// A decision from the stream.
    Decision(DecisionEvent),
    /// The stream skipped this many decisions.
    Lagged(u64),
}

impl Model {
    /// Applies one message.
    pub fn apply(&mut self, msg: Msg) {
        match msg {
            Msg::Status(addr, view) => {
                self.link = Link::Up(addr);
                // A poll answered before the newest decision on screen would put an older task back.
                if self.decisions.is_empty() || view.last_decisions.last() == self.decisions.back()
                {
                    self.task = view.task.clone();
                }
                self.status = Some(*view);
            }
            Msg::Down(reason) => {
                self.link = Link::Down(reason);
                self.status = None;
                self.task = None;
            }
            Msg::Seed(list) => {
                self.decisions = list.into_iter().rev().take(KEEP).rev().collect();
            }
            Msg::Decision(ev) => {
                // The seed and the stream overlap by the decisions made between subscribing and seeding.
                if !self.decisions.contains(&ev) {
                    self.task = ev.task.clone();
                    if self.decisions.len() == KEEP {
                        self.decisions.pop_front();
                    }
                    self.decisions.push_back(ev);
                }
            }
            Msg::Lagged(n) => self.missed += n,
        }
    }
}

/// Runs the screen until `q`, Esc or Ctrl-C.
pub fn run(data_dir: &Path) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let quit = Arc::new(AtomicBool::new(false));
    for follow in [
        poll_status as fn(PathBuf, Sender<Msg>, Arc<AtomicBool>),
        follow_events,
    ] {
        let (dir, tx, quit) = (data_dir.to_path_buf(), tx.clone(), quit.clone());
        thread::Builder::new()
            .name("tui client".into())
            .spawn(move || follow(dir, tx, quit))?;
    }
    drop(tx);
    let mut terminal = ratatui::try_init()?;
    let result = ui_loop(&mut terminal, &rx);
    quit.store(true, Ordering::Relaxed);
    // The client threads end at their next read or poll; the process exits without waiting for them.
    ratatui::try_restore()?;
    result
}

fn ui_loop(terminal: &mut ratatui::DefaultTerminal, rx: &Receiver<Msg>) -> std::io::Result<()> {
    let mut model = Model::default();
    loop {
        while let Ok(msg) = rx.try_recv() {
            model.apply(msg);
        }
        terminal.draw(|f| draw(f, &model))?;
        if event::poll(Duration::from_millis(100))? {
            if let Event::Key(key) = event::read()? {
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                if key.kind == KeyEventKind::Press
                    && (matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c)
                {
                    return Ok(());
                }
            }
        }
    }
}

fn fetch(data_dir: &Path) -> Result<(SocketAddr, StatusView), String> {
    let addr = status::read_addr(data_dir).map_err(|e| e.to_string())?;
    let v = status::fetch_status(addr, TIMEOUT).map_err(|e| e.to_string())?;
    let view = serde_json::from_value(v).map_err(|e| format!("{addr}: unexpected status: {e}"))?;
    Ok((addr, view))
}

fn poll_status(data_dir: PathBuf, tx: Sender<Msg>, quit: Arc<AtomicBool>) {
    while !quit.load(Ordering::Relaxed) {
        let msg = match fetch(&data_dir) {
            Ok((addr, view)) => Msg::Status(addr, Box::new(view)),
            Err(e) => Msg::Down(e),
        };
        if tx.send(msg).is_err() {
            return;
        }
        thread::sleep(POLL);
    }
}

fn follow_events(data_dir: PathBuf, tx: Sender<Msg>, quit: Arc<AtomicBool>) {
    while !quit.load(Ordering::Relaxed) {
        if let Ok(addr) = status::read_addr(&data_dir) {
            if let Ok(mut stream) = EventStream::connect(addr, status::KEEP_ALIVE * 3) {
                // Seed after subscribing, so no decision falls between the two.
                if let Ok((_, view)) = fetch(&data_dir) {
                    if tx.send(Msg::Seed(view.last_decisions)).is_err() {
                        return;
                    }
                }
                while let Ok(Some(item)) = stream.next_item() {
                    let msg = match item {
                        StreamItem::Decision(ev) => Msg::Decision(ev),
                        StreamItem::Lagged(n) => Msg::Lagged(n),
                        StreamItem::KeepAlive => continue,
                    };
                    if tx.send(msg).is_err() || quit.load(Ordering::Relaxed) {
                        return;
                    }
                }
            }
        }
        thread::sleep(POLL);
    }
}

/// Draws the whole screen for `model`.
pub fn draw(frame: &mut Frame<'_>, model: &Model) {
    let [header, task, last, recent, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Length(11),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, header, model);
    draw_task(frame, task, model);
    draw_last(frame, last, model);
    draw_recent(frame, recent, model);
    draw_footer(frame, footer, model);
}

fn draw_header(frame: &mut Frame<'_>, area: Rect, model: &Model) {
    let mut spans = vec![Span::styled(
        " Dockhand ",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if let Some(s) = &model.status {
        spans.push(Span::raw(format!(" {} @ {} ", s.device_id, s.site)));
    }
    let link = match &model.link {
        Link::Connecting => "connecting…".to_string(),
        Link::Up(addr) => format!("agent {addr}"),
        Link::Down(_) => "agent not running".to_string(),
    };
    spans.push(Span::styled(
        format!(" {link}"),
        Style::new().fg(Color::DarkGray),
    ));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_task(frame: &mut Frame<'_>, area: Rect, model: &Model) {
    let text = match model.task.as_deref() {
        Some(task) => Span::styled(task, Style::new().add_modifier(Modifier::BOLD)),
        None => Span::styled(
            "no task: scan a DH: command",
            Style::new().fg(Color::DarkGray),
        ),
    };
    frame.render_widget(
        Paragraph::new(Line::from(text)).block(Block::bordered().title(" Task ")),
        area,
    );
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Accepted => "ACCEPTED",
        Outcome::Prompt => "NEXT",
        Outcome::Rejected => "REJECTED",
    }
}

fn outcome_style(o: Outcome) -> Style {
    match o {
        Outcome::Accepted => Style::new().fg(Color::Black).bg(Color::Green),
        Outcome::Prompt => Style::new().fg(Color::Black).bg(Color::Yellow),
        Outcome::Rejected => Style::new().fg(Color::White).bg(Color::Red),
    }
}

/// The last decision, large: a coloured box with the outcome in block letters and the message in bold.
fn draw_last(frame: &mut Frame<'_>, area: Rect, model: &Model) {
    let (word, style, message, detail) = match (&model.link, model.decisions.back()) {
        (Link::Down(reason), _) => (
            "NOT RUNNING",
            Style::new().fg(Color::White).bg(Color::DarkGray),
            "agent not running".to_string(),
            format!("{reason}; retrying"),
        ),
        (_, Some(ev)) => (
            outcome_word(ev.result),
            outcome_style(ev.result),
            ev.message.clone(),
            match &ev.scan {
                Some(scan) => format!("{}  scan {scan}", clock(&ev.at)),
                None => format!("{}  unreadable scan", clock(&ev.at)),
            },
        ),
        (_, None) => {
            let p = Paragraph::new("waiting for the first scan")
                .alignment(Alignment::Center)
                .block(Block::bordered().title(" Last scan "));
            frame.render_widget(p, area);
            return;
        }
    };
    let block = Block::bordered().title(" Last scan ").style(style);
    let inner = block.inner(area);
    let mut lines = vec![Line::raw("")];
    match banner(word, inner.width as usize) {
        Some(rows) => lines.extend(rows.into_iter().map(Line::raw)),
        None => lines.push(Line::styled(
            word,
            Style::new().add_modifier(Modifier::BOLD),
        )),
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        message,
        Style::new().add_modifier(Modifier::BOLD),
    ));
    lines.push(Line::raw(detail));
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .block(block),
        area,
    );
}

fn draw_recent(frame: &mut Frame<'_>, area: Rect, model: &Model) {
    let block = Block::bordered().title(" Recent ");
    let rows = block.inner(area).height as usize;
    let mut lines: Vec<Line<'_>> = model
        .decisions
        .iter()
        .rev()
        .take(rows)
        .map(|ev| {
            Line::from(vec![
                Span::raw(format!("{}  ", clock(&ev.at))),
                Span::styled(
                    format!("{:<8}", outcome_word(ev.result)),
                    outcome_style(ev.result),
                ),
                Span::raw(format!("  {}", ev.message)),
            ])
        })
        .collect();
    if model.missed > 0 && lines.len() == rows && rows > 0 {
        lines.pop();
    }
    if model.missed > 0 {
        lines.push(Line::styled(
            format!(
                "({} decisions missed: the screen fell behind)",
                model.missed
            ),
            Style::new().fg(Color::DarkGray),
        ));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_footer(frame: &mut Frame<'_>, area: Rect, model: &Model) {
    let red = Style::new()
        .fg(Color::White)
        .bg(Color::Red)
        .add_modifier(Modifier::BOLD);
    let mut spans = Vec::new();
    match (&model.link, &model.status) {
        (Link::Down(reason), _) => {
            spans.push(Span::styled(" agent not running ", red));
            spans.push(Span::raw(format!(" {reason}")));
        }
        (_, None) => spans.push(Span::raw(" connecting…")),
        (_, Some(s)) => {
            if let Some(fatal) = &s.fatal {
                spans.push(Span::styled(format!(" JOURNAL FAILED: {fatal} "), red));
            }
            let failed = s.sync.last_result.as_deref().is_some_and(|r| r != "ok");
            if failed {
                spans.push(Span::styled(" OFFLINE ", red));
            }
            spans.push(Span::raw(format!(" backlog {} · ", s.backlog)));
            spans.push(Span::raw(match (&s.sync.last_result, failed) {
                (None, _) => "no sync yet".to_string(),
                (Some(_), false) => "last sync ok".to_string(),
                (Some(e), true) => format!("last sync failed ({} in a row): {e}", s.sync.failures),
            }));
            if let Some(src) = s.sources.iter().find(|src| !src.connected) {
                spans.push(Span::styled(
                    format!(" · scanner {} not connected", src.path),
                    Style::new().fg(Color::Red),
                ));
            }
        }
    }
    let [left, right] = Layout::horizontal([Constraint::Min(0), Constraint::Length(8)]).areas(area);
    frame.render_widget(Paragraph::new(Line::from(spans)), left);
    frame.render_widget(Paragraph::new("q quit ").alignment(Alignment::Right), right);
}

/// `HH:MM:SS` of an RFC 3339 time (UTC as the agent writes it).
fn clock(at: &str) -> &str {
    at.get(11..19).unwrap_or(at)
}

/// Height of the block letters.
const GLYPH_ROWS: usize = 5;

/// A 5×5 block font for the few words the screen shows large.
fn glyph(c: char) -> Option<[&'static str; GLYPH_ROWS]> {
    Some(match c {
        'A' => [" ███ ", "█   █", "█████", "█   █", "█   █"],
        'C' => [" ████", "█    ", "█    ", "█    ", " ████"],
        'D' => ["████ ", "█   █", "█   █", "█   █", "████ "],
        'E' => ["█████", "█    ", "████ ", "█    ", "█████"],
        'G' => [" ████", "█    ", "█  ██", "█   █", " ████"],
        'I' => ["█████", "  █  ", "  █  ", "  █  ", "█████"],
        'J' => ["  ███", "    █", "    █", "█   █", " ███ "],
        'N' => ["█   █", "██  █", "█ █ █", "█  ██", "█   █"],
        'O' => [" ███ ", "█   █", "█   █", "█   █", " ███ "],
        'P' => ["████ ", "█   █", "████ ", "█    ", "█    "],
        'R' => ["████ ", "█   █", "████ ", "█  █ ", "█   █"],
        'T' => ["█████", "  █  ", "  █  ", "  █  ", "  █  "],
        'U' => ["█   █", "█   █", "█   █", "█   █", " ███ "],
        'X' => ["█   █", " █ █ ", "  █  ", " █ █ ", "█   █"],
        ' ' => ["  ", "  ", "  ", "  ", "  "],
        _ => return None,
    })
}

/// `word` in block letters, or `None` when it does not fit in `width` columns (or has a letter the font lacks).
fn banner(word: &str, width: usize) -> Option<Vec<String>> {
    let glyphs: Vec<_> = word.chars().map(glyph).collect::<Option<_>>()?;
    let rows: Vec<String> = (0..GLYPH_ROWS)
        .map(|r| glyphs.iter().map(|g| g[r]).collect::<Vec<_>>().join(" "))
        .collect();
    (rows[0].chars().count() <= width).then_some(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn render(model: &Model, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, model)).unwrap();
        let buf = terminal.backend().buffer();
        buf.content()
            .chunks(width as usize)
            .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
            .collect()
    }

    fn screen_has(screen: &[String], text: &str) -> bool {
        screen.iter().any(|row| row.contains(text))
    }

    fn decision(result: Outcome, message: &str, scan: Option<&str>) -> DecisionEvent {
        DecisionEvent {
            at: "2025-05-01T10:00:01Z".into(),
            source: 0,
            scan: scan.map(str::to_string),
            result,
            message: message.into(),
            seqs: vec![],
            task: None,
        }
    }

    const PICK: &str = "Pick 3 × 09506000134352 lot ABC from A-01-02";

    fn view(task: Option<&str>, backlog: usize, sync: Option<&str>, failures: u32) -> StatusView {
        StatusView {
            device_id: "hh-01".into(),
            site: "WH1".into(),
            backlog,
            sync: SyncView {
                last_result: sync.map(str::to_string),
                failures,
            },
            task: task.map(str::to_string),
            ..StatusView::default()
        }
    }

    fn addr() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    fn up(task: Option<&str>, backlog: usize, sync: Option<&str>, failures: u32) -> Model {
        let mut m = Model::default();
        m.apply(Msg::Status(
            addr(),
            Box::new(view(task, backlog, sync, failures)),
        ));
        m
    }

    #[test]
    fn pick_task_and_accepted_decision() {
        let mut m = up(None, 0, Some("ok"), 0);
        let mut ev = decision(
            Outcome::Accepted,
            "picked 2 × 05901234123457 from A-01-01",
            Some("]C10105901234123457"),
        );
        ev.task = Some(PICK.into());
        m.apply(Msg::Decision(ev.clone()));
        // A poll answered before that decision does not put the old task back; one that has seen it does.
        m.apply(Msg::Status(addr(), Box::new(view(None, 0, Some("ok"), 0))));
        assert_eq!(m.task.as_deref(), Some(PICK));
        let mut seen = view(Some(PICK), 0, Some("ok"), 0);
        seen.last_decisions = vec![ev];
        m.apply(Msg::Status(addr(), Box::new(seen)));
        assert_eq!(m.task.as_deref(), Some(PICK));

        let screen = render(&m, 100, 30);
        for want in [
            "Dockhand  hh-01 @ WH1  agent 127.0.0.1:4000",
            "│Pick 3 × 09506000134352 lot ABC from A-01-02",
            "picked 2 × 05901234123457 from A-01-01",
            "10:00:01  scan ]C10105901234123457",
            "10:00:01  ACCEPTED  picked 2",
            "backlog 0 · last sync ok",
            "q quit",
        ] {
            assert!(
                screen_has(&screen, want),
                "{want:?} missing:\n{}",
                screen.join("\n")
            );
        }
        let big = banner("ACCEPTED", 98).unwrap();
        assert!(
            big.iter().all(|row| screen_has(&screen, row)),
            "no banner:\n{}",
            screen.join("\n")
        );
        assert!(!screen_has(&screen, "OFFLINE"));
        // The big box is green; the task line is not.
        let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
        t.draw(|f| draw(f, &m)).unwrap();
        assert_eq!(t.backend().buffer()[(50, 8)].bg, Color::Green);
        assert_eq!(t.backend().buffer()[(50, 2)].bg, Color::Reset);
    }

    #[test]
    fn rejection_is_red_with_its_reason() {
        let mut m = up(None, 0, None, 0);
        m.apply(Msg::Seed(vec![decision(
            Outcome::Prompt,
            "receiving into DOCK-1: scan items",
            Some("DH:RECEIVE"),
        )]));
        m.apply(Msg::Decision(decision(
            Outcome::Rejected,
            "wrong item: expected 09506000134352, got 05901234123457",
            Some("]C10105901234123457"),
        )));
        let screen = render(&m, 100, 30);
        for want in [
            "no task: scan a DH: command",
            "wrong item: expected 09506000134352, got 05901234123457",
            "REJECTED  wrong item",
            "NEXT      receiving into DOCK-1: scan items",
            "no sync yet",
        ] {
            assert!(
                screen_has(&screen, want),
                "{want:?} missing:\n{}",
                screen.join("\n")
            );
        }
        let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
        t.draw(|f| draw(f, &m)).unwrap();
        assert_eq!(t.backend().buffer()[(50, 8)].bg, Color::Red);
    }

    #[test]
    fn offline_with_backlog() {
        let m = up(None, 42, Some("connect: connection refused"), 3);
        let screen = render(&m, 100, 30);
        let footer = &screen[29];
        for want in [
            " OFFLINE ",
            "backlog 42",
            "last sync failed (3 in a row): connect: connection refused",
        ] {
            assert!(footer.contains(want), "{want:?} missing: {footer:?}");
        }
        assert!(screen_has(&screen, "waiting for the first scan"));
    }

    #[test]
    fn agent_not_running_keeps_history_and_says_so() {
        let mut m = up(None, 0, None, 0);
        m.apply(Msg::Decision(decision(
            Outcome::Accepted,
            "received 1",
            None,
        )));
        m.apply(Msg::Down("agent not running (no /d/status.addr)".into()));
        let screen = render(&m, 100, 30);
        for want in [
            "agent not running (no /d/status.addr); retrying",
            " agent not running ",
            "ACCEPTED  received 1",
        ] {
            assert!(
                screen_has(&screen, want),
                "{want:?} missing:\n{}",
                screen.join("\n")
            );
        }
        // Small terminals get the word, not the banner.
        let screen = render(&m, 40, 20);
        assert!(screen_has(&screen, "NOT RUNNING"), "{}", screen.join("\n"));
    }

    #[test]
    fn stream_and_seed_do_not_duplicate() {
        let mut m = Model::default();
        let a = decision(Outcome::Accepted, "a", None);
        let b = decision(Outcome::Prompt, "b", None);
        m.apply(Msg::Seed(vec![a.clone()]));
        for msg in [
            Msg::Decision(a.clone()),
            Msg::Decision(b.clone()),
            Msg::Lagged(2),
        ] {
            m.apply(msg);
        }
        assert_eq!(m.decisions, [a, b]);
        assert_eq!(m.missed, 2);
    }

    #[test]
    fn banner_fits_or_falls_back() {
        for (word, width, fits) in [
            ("ACCEPTED", 100, true),
            ("ACCEPTED", 47, true),
            ("ACCEPTED", 46, false),
            ("NOT RUNNING", 98, true),
            ("OK?", 100, false),
        ] {
            assert_eq!(banner(word, width).is_some(), fits, "{word} in {width}");
        }
    }
}
