//! The email a user who left an address gets when their job is done: one plain-text message
//! with the signed result link and the delete link, as selfie2anime.com sent.
//!
//! Mail goes over plain SMTP (`--smtp smtp://HOST:PORT`) to a relay the operator runs (a local
//! Postfix, a provider's relay reached through it, a sink in tests); there is no TLS and so no
//! login here, which keeps credentials off the wire.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::notify::{Finished, Notifier, NotifyError};

/// The port plain SMTP relays listen on when the URL names none.
const DEFAULT_PORT: u16 = 25;
/// How long one delivery may take before it is given up.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why mail could not be set up or sent. Each message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("--smtp {url:?}: {reason}")]
    BadServer { url: String, reason: String },
    #[error("{address:?} is not an email address ({reason})")]
    BadAddress { address: String, reason: String },
    #[error("cannot build the message to {to:?}: {reason}")]
    Message { to: String, reason: String },
    #[error("SMTP server {server}: sending to {to:?} failed: {reason}")]
    Send {
        server: String,
        to: String,
        reason: String,
    },
}

/// Parses an address a user typed (or `--mail-from`), such as `a@example.com` or
/// `Anime Bot <bot@example.com>`.
pub fn parse_address(address: &str) -> Result<Mailbox, MailError> {
    address
        .trim()
        .parse::<Mailbox>()
        .map_err(|e| MailError::BadAddress {
            address: address.chars().take(256).collect(),
            reason: e.to_string(),
        })
}

/// Host and port of `smtp://HOST[:PORT][/]`.
fn parse_server(url: &str) -> Result<(String, u16), MailError> {
    let bad = |reason: &str| MailError::BadServer {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("smtp://")
        .ok_or_else(|| bad("use smtp://HOST:PORT (plain SMTP to a relay)"))?
        .trim_end_matches('/');
    if rest.contains('@') {
        return Err(bad(
            "no login over plain SMTP: point --smtp at a relay that accepts this host",
        ));
    }
    let (host, port) = match rest.rsplit_once(':') {
        // `[::1]` alone: the colon belongs to the address.
        Some((host, port)) if !port.ends_with(']') => {
            let port = port
                .parse::<u16>()
                .map_err(|_| bad("the port must be a number from 1 to 65535"))?;
            (host, port)
        }
        _ => (rest, DEFAULT_PORT),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || rest.contains('/') || port == 0 {
        return Err(bad("use smtp://HOST:PORT"));
    }
    Ok((host.to_string(), port))
}

/// The text of the message for `links`, sent at `now` (Unix seconds).
pub fn body(links: &Finished, now: u64) -> String {
    let days = links.expires_at.saturating_sub(now).div_ceil(86_400);
    let lasts = match days {
        0 => "a short while".to_string(),
        1 => "1 day".to_string(),
        n => format!("{n} days"),
    };
    format!(
        "Your anime portrait is ready:\n\n{}\n\n\
         The link works for {lasts}; after that the picture is deleted.\n\n\
         To delete your upload and the picture now:\n\n{}\n",
        links.result_url, links.delete_url
    )
}

/// Sends result messages through one SMTP relay.
#[derive(Clone)]
pub struct Mailer {
    server: String,
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailer(smtp://{}, from {})", self.server, self.from)
    }
}

impl Mailer {
    /// A mailer for `--smtp smtp://HOST:PORT` and `--mail-from ADDR`. Nothing is sent until the
    /// first message.
    pub fn new(smtp_url: &str, from: &str) -> Result<Self, MailError> {
        let (host, port) = parse_server(smtp_url)?;
        let from = parse_address(from)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .timeout(Some(TIMEOUT))
            .build();
        Ok(Self {
            server: format!("{host}:{port}"),
            from,
            transport,
        })
    }

    /// Sends the one message for a finished job.
    pub async fn send_result(&self, links: &Finished) -> Result<(), MailError> {
        let to = &links.to;
        let message = Message::builder()
            .from(self.from.clone())
            .to(parse_address(to)?)
            .subject("Your anime portrait is ready")
            .header(ContentType::TEXT_PLAIN)
            .body(body(links, crate::jobs::unix_now()))
            .map_err(|e| MailError::Message {
                to: to.clone(),
                reason: e.to_string(),
            })?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError::Send {
                server: self.server.clone(),
                to: to.clone(),
                reason: e.to_string(),
            })
    }
}

#[async_trait::async_trait]
impl Notifier for Mailer {
    async fn job_done(&self, message: &Finished) -> Result<(), NotifyError> {
        self.send_result(message).await.map_err(|e| NotifyError {
            to: message.to.clone(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            parse_server("smtp://127.0.0.1:2525").unwrap(),
            ("127.0.0.1".into(), 2525)
        );
        assert_eq!(
            parse_server("smtp://mail.local/").unwrap(),
            ("mail.local".into(), 25)
        );
        assert_eq!(parse_server("smtp://[::1]:26").unwrap(), ("::1".into(), 26));
        assert_eq!(parse_server("smtp://[::1]").unwrap(), ("::1".into(), 25));
        for bad in [
            "mail.local:25",
            "smtps://mail.local",
            "smtp://u:p@mail.local",
            "smtp://mail.local:x",
            "smtp://:25",
            "smtp://mail.local/x",
        ] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_are_checked() {
        assert!(parse_address("a@example.com").is_ok());
        assert!(parse_address("Bot <bot@example.com>").is_ok());
        for bad in ["", "nobody", "a@b\r\nBcc: x@y"] {
            assert!(parse_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_body_holds_both_links_and_the_lifetime() {
        let links = Finished {
            to: "a@example.com".into(),
            result_url: "http://x/r/1.png?exp=9&sig=ab".into(),
            delete_url: "http://x/d/1?token=cd".into(),
            expires_at: 7 * 86_400,
        };
        let text = body(&links, 0);
        assert!(text.contains(&links.result_url) && text.contains(&links.delete_url));
        assert!(text.contains("7 days"), "{text}");
    }
}
