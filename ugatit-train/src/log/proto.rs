//! The TensorBoard messages an event file holds, as prost messages. Field numbers and types are
//! those of TensorFlow's `tensorflow/core/util/event.proto` (`Event`, `SessionLog`) and
//! `tensorflow/core/framework/summary.proto` (`Summary`, `Summary.Value`, `Summary.Image`); names
//! follow prost-build's (`event::What`, `summary::value::Value`), so each is a lookup in the
//! `.proto`. Only the fields this writer sets are declared: a reader skips any other.

/// `tensorflow.Event`: one record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(oneof = "event::What", tags = "3, 5, 7")]
    pub what: Option<event::What>,
}

pub mod event {
    /// `Event.what`: the one thing an event carries.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum What {
        /// The first event of every file: `"brain.Event:2"`.
        #[prost(string, tag = "3")]
        FileVersion(String),
        #[prost(message, tag = "5")]
        Summary(super::Summary),
        #[prost(message, tag = "7")]
        SessionLog(super::SessionLog),
    }
}

/// `tensorflow.SessionLog`: a `START` at step `s` tells TensorBoard that the run (re)started
/// there, so it drops the events at or after `s` that came before (a crashed run's tail).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionLog {
    #[prost(enumeration = "session_log::SessionStatus", tag = "1")]
    pub status: i32,
}

pub mod session_log {
    /// `SessionLog.SessionStatus` (`STOP = 2` and `CHECKPOINT = 3` are never written here).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum SessionStatus {
        StatusUnspecified = 0,
        Start = 1,
    }
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<summary::Value>,
}

pub mod summary {
    /// `Summary.Value`: one tagged value.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        #[prost(string, tag = "1")]
        pub tag: String,
        #[prost(oneof = "value::Value", tags = "2, 4")]
        pub value: Option<value::Value>,
    }

    pub mod value {
        /// `Summary.Value.value`.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            /// A scalar, as TensorBoard's scalar dashboard reads it.
            #[prost(float, tag = "2")]
            SimpleValue(f32),
            #[prost(message, tag = "4")]
            Image(super::Image),
        }
    }

    /// `Summary.Image`: an encoded image.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Image {
        #[prost(int32, tag = "1")]
        pub height: i32,
        #[prost(int32, tag = "2")]
        pub width: i32,
        /// 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
        #[prost(int32, tag = "3")]
        pub colorspace: i32,
        /// The PNG (or JPEG) file's bytes.
        #[prost(bytes = "vec", tag = "4")]
        pub encoded_image_string: Vec<u8>,
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::summary::value::Value as Kind;
    use super::*;

    #[test]
    fn the_tensorboard_packages_encoding_decodes_and_reencodes_byte_for_byte() {
        let record = include_bytes!("../../tests/fixtures/tensorboard/scalar_event.tfrecord");
        let data = &record[12..record.len() - 4];
        let event = Event::decode(data).unwrap();
        let expected = Event {
            wall_time: 1_700_000_000.25,
            step: 7,
            what: Some(event::What::Summary(Summary {
                value: vec![summary::Value {
                    tag: "g_loss".into(),
                    value: Some(Kind::SimpleValue(0.5)),
                }],
            })),
        };
        assert_eq!(event, expected);
        assert_eq!(expected.encode_to_vec(), data);
    }
}
