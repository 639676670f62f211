//! TensorBoard event files: scalars and PNG images, each an `Event` (see [`super::proto`]) in a
//! TFRecord (see [`super::tfrecord`]).
//!
//! TensorBoard reads every `*tfevents*` file of a folder, in the order of their names, and
//! assumes a file is never written again once a later one exists. A writer shared with the
//! bucket mirror therefore starts a new file whenever the mirror asks (each upload interval),
//! completing the old one first, so that the mirror uploads each closed file once, whole.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use super::proto::{event::What, session_log::SessionStatus, summary, Event, SessionLog, Summary};
use super::tfrecord::write_record;

/// The `file_version` every file starts with (the current one of `event.proto`).
const FILE_VERSION: &str = "brain.Event:2";
/// `Summary.Image.colorspace` of RGB.
const RGB: i32 = 3;

/// A request, shared across threads, that an [`EventWriter`] start a new file.
#[derive(Clone, Debug, Default)]
pub struct RollSignal(Arc<AtomicBool>);

impl RollSignal {
    /// Asks for a new file at the writer's next [`EventWriter::flush`].
    pub fn request(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// Appends events to `events.out.tfevents.*` files in a folder.
pub struct EventWriter {
    dir: PathBuf,
    host: String,
    out: BufWriter<File>,
    path: PathBuf,
    /// Whether the current file holds more than its `file_version` event.
    has_events: bool,
    /// Whether the `SessionLog.START` that opens this writer's events is written.
    started: bool,
    rolls: Option<RollSignal>,
}

fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidInput, what)
}

/// The host name as TensorFlow puts it in event file names, kept to characters safe in a file
/// name and a bucket key.
fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// Creates the next event file of `dir`: TensorFlow's `events.out.tfevents.<unix
/// seconds>.<host>.<n>`, where `n` counts the files this host started within that second, so
/// that sorting by name gives the order the files were started in (across processes too).
fn new_file(dir: &Path, host: &str) -> std::io::Result<(PathBuf, File)> {
    let prefix = format!("events.out.tfevents.{:010}.{host}.", wall_time() as u64);
    let mut n = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.strip_prefix(&prefix)?.parse::<u32>().ok())
        .max()
        .map_or(0, |n| n + 1);
    loop {
        let path = dir.join(format!("{prefix}{n:04}"));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e),
        }
    }
}

impl EventWriter {
    /// Starts a new event file in `dir` (a resumed run adds its own files to the folder's).
    /// With `rolls`, each request starts another file at the next [`flush`](Self::flush).
    pub fn create(dir: &Path, rolls: Option<RollSignal>) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let host = host_name();
        let (path, file) = new_file(dir, &host)?;
        let mut w = Self {
            dir: dir.to_path_buf(),
            host,
            out: BufWriter::new(file),
            path,
            has_events: false,
            started: false,
            rolls,
        };
        w.file_version()?;
        Ok(w)
    }

    /// The file events are appended to now.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A scalar summary (`Summary.Value.simple_value`).
    pub fn scalar(&mut self, tag: &str, step: u64, value: f32) -> std::io::Result<()> {
        self.summary(tag, step, summary::value::Value::SimpleValue(value))
    }

    /// An image summary of an encoded RGB PNG (`Summary.Image`).
    pub fn image(
        &mut self,
        tag: &str,
        step: u64,
        png: &[u8],
        height: u32,
        width: u32,
    ) -> std::io::Result<()> {
        let side = |v: u32| {
            i32::try_from(v)
                .map_err(|_| invalid(format!("{tag}: image side {v} exceeds TensorBoard's int32")))
        };
        let image = summary::Image {
            height: side(height)?,
            width: side(width)?,
            colorspace: RGB,
            encoded_image_string: png.to_vec(),
        };
        self.summary(tag, step, summary::value::Value::Image(image))
    }

    /// Writes out what is buffered, then starts a new file if one was asked for and this one
    /// holds events.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        if self.has_events && self.rolls.as_ref().is_some_and(RollSignal::take) {
            // The new file is created only once the old one is complete: a reader may take
            // every file but the newest as closed.
            let (path, file) = new_file(&self.dir, &self.host)?;
            self.out = BufWriter::new(file);
            self.path = path;
            self.has_events = false;
            self.file_version()?;
        }
        Ok(())
    }

    fn file_version(&mut self) -> std::io::Result<()> {
        self.write(0, What::FileVersion(FILE_VERSION.into()))?;
        self.out.flush()
    }

    fn summary(
        &mut self,
        tag: &str,
        step: u64,
        value: summary::value::Value,
    ) -> std::io::Result<()> {
        let step = i64::try_from(step)
            .map_err(|_| invalid(format!("{tag}: step {step} exceeds int64")))?;
        if !self.started {
            // As TensorFlow's Supervisor does on (re)start: TensorBoard then drops what a crashed
            // run wrote from this step on, which this run writes again.
            let start = SessionLog {
                status: SessionStatus::Start as i32,
            };
            self.write(step, What::SessionLog(start))?;
            self.started = true;
        }
        let summary = Summary {
            value: vec![summary::Value {
                tag: tag.into(),
                value: Some(value),
            }],
        };
        self.write(step, What::Summary(summary))?;
        self.has_events = true;
        Ok(())
    }

    fn write(&mut self, step: i64, what: What) -> std::io::Result<()> {
        let event = Event {
            wall_time: wall_time(),
            step,
            what: Some(what),
        };
        write_record(&mut self.out, &event.encode_to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tfrecord::read_records;
    use super::summary::value::Value as Kind;
    use super::*;

    fn events(path: &Path) -> Vec<Event> {
        read_records(&std::fs::read(path).unwrap())
            .iter()
            .map(|r| Event::decode(r.as_slice()).unwrap())
            .collect()
    }

    fn event_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn written_records_decode_back_with_prost() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(tmp.path(), None).unwrap();
        w.scalar("d_loss", 3, 0.0).unwrap();
        w.image("samples/train_a2b", 3, b"png bytes", 224, 160)
            .unwrap();
        w.flush().unwrap();
        let got = events(w.path());
        let what: Vec<&What> = got.iter().map(|e| e.what.as_ref().unwrap()).collect();
        assert_eq!(what[0], &What::FileVersion("brain.Event:2".into()));
        let start = SessionLog {
            status: SessionStatus::Start as i32,
        };
        assert_eq!(what[1], &What::SessionLog(start));
        let value = |w: &What| match w {
            What::Summary(s) => s.value[0].clone(),
            other => panic!("not a summary: {other:?}"),
        };
        // A zero is written, not left out as proto3's default.
        let scalar = value(what[2]);
        assert_eq!(
            (scalar.tag.as_str(), scalar.value),
            ("d_loss", Some(Kind::SimpleValue(0.0)))
        );
        let Some(Kind::Image(image)) = value(what[3]).value else {
            panic!("not an image");
        };
        assert_eq!(
            (image.height, image.width, image.colorspace),
            (224, 160, RGB)
        );
        assert_eq!(image.encoded_image_string, b"png bytes");
        assert_eq!(got.iter().map(|e| e.step).collect::<Vec<_>>(), [0, 3, 3, 3]);
        assert!(got.iter().all(|e| e.wall_time > 1.6e9));
    }

    #[test]
    fn a_requested_roll_completes_the_file_and_starts_one_named_after_it() {
        let tmp = tempfile::tempdir().unwrap();
        let rolls = RollSignal::default();
        let mut w = EventWriter::create(tmp.path(), Some(rolls.clone())).unwrap();
        // Nothing written yet: no empty file is started.
        rolls.request();
        w.flush().unwrap();
        assert_eq!(event_files(tmp.path()).len(), 1);
        for step in 1..=3 {
            w.scalar("g_loss", step, step as f32).unwrap();
            rolls.request();
            w.flush().unwrap();
        }
        // Without a request, the file goes on.
        w.scalar("g_loss", 4, 4.0).unwrap();
        w.flush().unwrap();
        let files = event_files(tmp.path());
        assert_eq!(files.len(), 4);
        assert_eq!(files.last().unwrap(), w.path());
        let steps: Vec<Vec<i64>> = files
            .iter()
            .map(|f| {
                let got = events(f);
                assert_eq!(got[0].what, Some(What::FileVersion(FILE_VERSION.into())));
                got.iter()
                    .filter(|e| matches!(e.what, Some(What::Summary(_))))
                    .map(|e| e.step)
                    .collect()
            })
            .collect();
        assert_eq!(steps, [vec![1], vec![2], vec![3], vec![4]]);
        // Only the writer's first events open with a SessionLog.START.
        let starts = files
            .iter()
            .flat_map(|f| events(f))
            .filter(|e| matches!(e.what, Some(What::SessionLog(_))))
            .count();
        assert_eq!(starts, 1);
    }

    #[test]
    fn a_second_writer_in_the_same_second_names_its_file_after_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let first = EventWriter::create(tmp.path(), None).unwrap();
        let second = EventWriter::create(tmp.path(), None).unwrap();
        assert!(second.path() > first.path());
        let name = first.path().file_name().unwrap().to_string_lossy();
        let parts: Vec<&str> = name.split('.').collect();
        assert_eq!(&parts[..3], ["events", "out", "tfevents"]);
        assert_eq!(parts[3].len(), 10, "{name}");
    }
}
