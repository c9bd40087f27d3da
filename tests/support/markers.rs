//! Finding a test file's lines by marker comments (`// NAME` at the end of a line), so that the
//! real-bug tests can check that a report names the very lines of the bug.

/// A test file's source and its name, as sites print it (`file.rs:LINE:COL`).
#[derive(Clone, Copy)]
pub struct Markers {
    file: &'static str,
    src: &'static str,
}

impl Markers {
    /// `file`'s name and its text (`include_str!` of it).
    pub const fn new(file: &'static str, src: &'static str) -> Markers {
        Markers { file, src }
    }

    /// The line of the file that ends with the comment `// MARKER`.
    pub fn line_of(&self, marker: &str) -> u32 {
        let needle = format!("// {marker}");
        self.src
            .lines()
            .position(|l| l.trim_end().ends_with(&needle) && !l.contains("needle"))
            .map(|i| i as u32 + 1)
            .unwrap_or_else(|| panic!("marker {marker} not in {}", self.file))
    }

    /// `file.rs:LINE:` of `marker` (sites are `file:line:col`).
    pub fn at(&self, marker: &str) -> String {
        format!("{}:{}:", self.file, self.line_of(marker))
    }

    /// The findings one of whose sites (or, for unnamed locks, classes: their construction
    /// sites) is at `marker`'s line.
    pub fn found_at(&self, marker: &str) -> Vec<lockcheck::Violation> {
        let at = self.at(marker);
        lockcheck::violations()
            .into_iter()
            .filter(|v| {
                v.edges.iter().any(|e| {
                    e.site.contains(&at)
                        || e.held_site.contains(&at)
                        || e.held.class.contains(&at)
                        || e.acquired.class.contains(&at)
                })
            })
            .collect()
    }

    /// Asserts that every marker's line is among `v`'s sites (acquisition or held).
    #[track_caller]
    pub fn assert_sites(&self, v: &lockcheck::Violation, markers: &[&str]) {
        let s = sites(v);
        for m in markers {
            assert!(
                s.iter().any(|s| s.contains(&self.at(m))),
                "{m} not in {s:?}"
            );
        }
    }
}

/// Every site (acquisition and held) of `v`.
pub fn sites(v: &lockcheck::Violation) -> Vec<String> {
    v.edges
        .iter()
        .flat_map(|e| [e.site.clone(), e.held_site.clone()])
        .collect()
}
