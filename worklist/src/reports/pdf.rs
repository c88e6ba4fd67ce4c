//! The printable report as a PDF (A4), for a hospital's records system or
//! a fax gateway that takes files, not browsers: the same content as the
//! HTML page ([`Printable`]), laid out as lines of text.
//!
//! It uses the standard Helvetica of every PDF reader (no font embedded)
//! in WinAnsiEncoding, which holds French (é, è, à, ç, œ...); a character
//! outside it prints as "?". Lines are wrapped by the font's own widths
//! (its AFM metrics), so nothing runs off the page.

use super::print::Printable;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    Title,
    Heading,
    Bold,
    Body,
    Small,
}

impl Style {
    fn size(self) -> f32 {
        match self {
            Style::Title => 16.0,
            Style::Heading => 12.0,
            Style::Bold | Style::Body => 10.0,
            Style::Small => 8.0,
        }
    }

    fn bold(self) -> bool {
        matches!(self, Style::Title | Style::Heading | Style::Bold)
    }

    /// Space above a line of this style, in points.
    fn space_before(self) -> f32 {
        match self {
            Style::Title => 4.0,
            Style::Heading => 10.0,
            _ => 0.0,
        }
    }
}

/// One line, wrapped to the page, in WinAnsi bytes.
struct Line {
    style: Style,
    indent: f32,
    /// Space above it, in points.
    space_before: f32,
    bytes: Vec<u8>,
}

/// The report of `page` as PDF bytes.
pub fn render(page: &Printable) -> Vec<u8> {
    let lines = layout(page);
    let footer = format!(
        "{} · {} · {} · {}",
        page.patient_name, page.patient_id, page.accession, page.status_label
    );
    write(
        &lines,
        &format!("{} — {}", page.title, page.patient_name),
        &footer,
    )
}

fn layout(page: &Printable) -> Vec<Line> {
    let mut out = Lines::default();
    out.push(Style::Small, 0.0, &page.site);
    out.push(Style::Title, 0.0, &page.title);
    out.push(Style::Bold, 0.0, page.status_label);
    out.gap(6.0);
    let words = page.words;
    let colon = words.colon;
    for (label, value) in [
        (words.patient, &page.patient_name),
        (words.patient_id, &page.patient_id),
        (words.birth_date, &page.birth_date),
        (words.sex, &page.sex),
        (words.examination, &page.examination),
        (words.accession, &page.accession),
        (words.study_date, &page.study_date),
        (words.study_uid, &page.study_instance_uid),
    ] {
        out.push(Style::Body, 0.0, &format!("{label}{colon} {value}"));
    }
    if let Some(request) = &page.request {
        out.push(Style::Heading, 0.0, words.request);
        out.push(
            Style::Body,
            0.0,
            &format!(
                "{} — {}, {} {}",
                request.urgency,
                request.requested_examination,
                words.requested_by,
                request.requesting_physician
            ),
        );
        out.paragraphs(&request.clinical_question);
    }
    for section in &page.sections {
        out.push(Style::Heading, 0.0, &section.title);
        for (label, value) in &section.rows {
            out.push(Style::Bold, 0.0, label);
            for paragraph in value.lines() {
                out.push(Style::Body, 14.0, paragraph);
            }
        }
    }
    if !page.text.is_empty() {
        out.push(Style::Heading, 0.0, words.comment);
        out.paragraphs(&page.text);
    }
    if !page.communications.is_empty() {
        out.push(Style::Heading, 0.0, words.critical_results);
        for statement in &page.communications {
            out.paragraphs(statement);
        }
    }
    out.gap(10.0);
    out.push(Style::Bold, 0.0, &page.issued_line);
    out.push(
        Style::Small,
        0.0,
        &format!("{}{colon} {}", words.content_hash, page.content_hash),
    );
    for addendum in &page.addenda {
        out.push(
            Style::Heading,
            0.0,
            &format!("{} — {}", words.addendum, addendum.line),
        );
        out.paragraphs(&addendum.text);
        out.push(
            Style::Small,
            0.0,
            &format!("{}{colon} {}", words.content_hash, addendum.content_hash),
        );
    }
    out.gap(10.0);
    out.push(
        Style::Small,
        0.0,
        &format!(
            "{} {} · FHIR DiagnosticReport.status {} · HL7 v2 OBR-25 {}",
            words.printed, page.printed_at, page.fhir, page.hl7
        ),
    );
    out.lines
}

#[derive(Default)]
struct Lines {
    lines: Vec<Line>,
    /// Space to leave above the next line.
    gap: f32,
}

impl Lines {
    /// `text` wrapped to the width left after `indent`.
    fn push(&mut self, style: Style, indent: f32, text: &str) {
        let width = PAGE_WIDTH - 2.0 * MARGIN - indent;
        let bytes = win_ansi(text);
        for (i, bytes) in wrap(&bytes, style, width).into_iter().enumerate() {
            let space_before = if i == 0 {
                style.space_before() + std::mem::take(&mut self.gap)
            } else {
                0.0
            };
            self.lines.push(Line {
                style,
                indent,
                space_before,
                bytes,
            });
        }
    }

    fn paragraphs(&mut self, text: &str) {
        for paragraph in text.lines() {
            self.push(Style::Body, 0.0, paragraph);
        }
    }

    /// `points` of space above the next line.
    fn gap(&mut self, points: f32) {
        self.gap += points;
    }
}

/// Splits `bytes` at spaces (or anywhere, for a word longer than a line)
/// into lines no wider than `width` points; an empty text is one empty
/// line.
fn wrap(bytes: &[u8], style: Style, width: f32) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    for word in bytes.split(|b| *b == b' ') {
        let candidate_width = text_width(&line, style)
            + if line.is_empty() {
                0.0
            } else {
                char_width(b' ', style)
            }
            + text_width(word, style);
        if candidate_width <= width {
            if !line.is_empty() {
                line.push(b' ');
            }
            line.extend_from_slice(word);
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        // A word wider than the line is cut where it fills it.
        for &byte in word {
            if text_width(&line, style) + char_width(byte, style) > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            line.push(byte);
        }
    }
    lines.push(line);
    lines
}

fn text_width(bytes: &[u8], style: Style) -> f32 {
    bytes.iter().map(|b| char_width(*b, style)).sum()
}

/// Width of one WinAnsi byte in points at `style`'s size, never less
/// than the font's: Helvetica's AFM widths for ASCII, bounds for the rest
/// and for bold.
fn char_width(byte: u8, style: Style) -> f32 {
    const ASCII: [u16; 95] = [
        278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556,
        556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722,
        722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722,
        667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556,
        556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500,
        500, 334, 260, 334, 584,
    ];
    let units = match byte {
        32..=126 => ASCII[usize::from(byte - 32)],
        // Latin-1 letters, as wide as the widest of their case but one
        // (Æ, æ); Œ, the dashes and the rest as the widest characters.
        0xc6 => 1000,
        0xe6 => 889,
        0xc0..=0xde => 778,
        0xdf..=0xff => 611,
        _ => 1000,
    };
    // Helvetica-Bold is at most a quarter wider (i, l: 278 for 222).
    let bold = if style.bold() { 1.25 } else { 1.0 };
    f32::from(units) / 1000.0 * style.size() * bold
}

/// `text` in WinAnsiEncoding (Windows-1252): Latin-1 as it is, the
/// typographic characters of 0x80..0x9F at their places, anything else
/// as "?"; control characters as spaces.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            'ƒ' => 0x83,
            '†' => 0x86,
            '‡' => 0x87,
            'ˆ' => 0x88,
            '‰' => 0x89,
            'Š' => 0x8a,
            '‹' => 0x8b,
            'Œ' => 0x8c,
            'Ž' => 0x8e,
            '˜' => 0x98,
            '™' => 0x99,
            'š' => 0x9a,
            '›' => 0x9b,
            'œ' => 0x9c,
            'ž' => 0x9e,
            'Ÿ' => 0x9f,
            c if c.is_control() => b' ',
            _ => b'?',
        })
        .collect()
}

/// Room kept at the foot of each page for the running footer.
const FOOTER: f32 = 24.0;

/// `lines` cut into pages; a heading is never the last line of a page.
fn paginate(lines: &[Line]) -> Vec<Vec<(&Line, f32)>> {
    let mut pages: Vec<Vec<(&Line, f32)>> = vec![Vec::new()];
    let mut y = PAGE_HEIGHT - MARGIN;
    for (i, line) in lines.iter().enumerate() {
        let step = line.space_before + line.style.size() * 1.35;
        let next = lines
            .get(i + 1)
            .filter(|_| line.style == Style::Heading)
            .map_or(0.0, |n| n.space_before + n.style.size() * 1.35);
        let on_page = pages.last().is_some_and(|p| !p.is_empty());
        if on_page && y - step - next < MARGIN + FOOTER {
            pages.push(Vec::new());
            y = PAGE_HEIGHT - MARGIN;
        }
        y -= step;
        if let Some(page) = pages.last_mut() {
            page.push((line, y));
        }
    }
    pages
}

/// The PDF of `lines`, paged, each page's foot naming the patient and
/// the page, so that a faxed page finds its report.
fn write(lines: &[Line], title: &str, footer: &str) -> Vec<u8> {
    let laid_out = paginate(lines);
    let count = laid_out.len();
    let pages: Vec<Content> = laid_out
        .iter()
        .enumerate()
        .map(|(n, page)| {
            let mut content = Content::new();
            for (line, y) in page {
                if line.bytes.is_empty() {
                    continue;
                }
                let font = if line.style.bold() { BOLD } else { REGULAR };
                content
                    .begin_text()
                    .set_font(font, line.style.size())
                    .next_line(MARGIN + line.indent, *y)
                    .show(Str(&line.bytes))
                    .end_text();
            }
            let foot = win_ansi(&format!("{footer} · page {} / {count}", n + 1));
            content
                .begin_text()
                .set_font(REGULAR, Style::Small.size())
                .next_line(MARGIN, MARGIN)
                .show(Str(&foot))
                .end_text();
            content
        })
        .collect();

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first_page = 6;
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(first_page + 2 * i32::try_from(i).unwrap_or(i32::MAX / 4)))
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(i32::try_from(page_ids.len()).unwrap_or(i32::MAX));
    for (font, name) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
        pdf.type1_font(font)
            .base_font(Name(name.as_bytes()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    pdf.document_info(info)
        .title(TextStr(title))
        .producer(TextStr("telerad"));
    for (page_id, content) in page_ids.iter().zip(pages) {
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .parent(tree)
            .contents(content_id);
        let mut resources = page.resources();
        resources.fonts().pair(REGULAR, regular).pair(BOLD, bold);
        resources.finish();
        page.finish();
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::{FOOTER, Line, MARGIN, Style, paginate, text_width, win_ansi, wrap};

    #[test]
    fn long_reports_are_paged_with_no_heading_left_alone_at_a_foot() {
        let mut lines = Vec::new();
        for i in 0..400 {
            let style = if i % 7 == 6 {
                Style::Heading
            } else {
                Style::Body
            };
            lines.push(Line {
                style,
                indent: 0.0,
                space_before: style.space_before(),
                bytes: format!("line {i}").into_bytes(),
            });
        }
        let pages = paginate(&lines);
        assert!(pages.len() > 5, "{} pages", pages.len());
        assert_eq!(pages.iter().map(Vec::len).sum::<usize>(), lines.len());
        for page in &pages {
            assert!(page.iter().all(|(_, y)| *y >= MARGIN + FOOTER));
            let (last, _) = page.last().expect("a line");
            assert!(last.style != Style::Heading, "a heading ends a page");
        }
    }

    #[test]
    fn french_is_encoded_in_win_ansi() {
        assert_eq!(win_ansi("é è à ç œ"), b"\xe9 \xe8 \xe0 \xe7 \x9c");
        assert_eq!(win_ansi("a\u{0}b — 漢"), b"a b \x97 ?");
    }

    #[test]
    fn lines_are_wrapped_within_the_width_and_lose_nothing() {
        let text = win_ansi(
            "Hypodensité cortico-sous-corticale du territoire sylvien gauche, \
             sans transformation hémorragique; pas d'effet de masse significatif.",
        );
        let lines = wrap(&text, Style::Body, 150.0);
        assert!(lines.len() > 2, "{}", lines.len());
        for line in &lines {
            assert!(text_width(line, Style::Body) <= 150.0);
        }
        assert_eq!(lines.join(&b' '), text);
        // A word longer than a line is cut, not lost.
        let long = vec![b'W'; 100];
        let cut = wrap(&long, Style::Bold, 100.0);
        assert!(cut.len() > 1);
        assert_eq!(cut.concat(), long);
    }
}
