//! How long a real card would take: a timing model for the simulated card.
//!
//! Each APDU costs a fixed round-trip latency (the card OS dispatching the
//! command, the reader's protocol overhead), the transfer of its bytes at
//! the interface's bit rate, the EEPROM pages the command writes, and, for
//! GENERATE ASYMMETRIC KEY PAIR, the key generation itself. The simulated
//! card computes the cost of every command; whoever serves the card (the
//! vpcd connector, the in-process transport) holds the answer back for it,
//! outside the card's lock, so cards in different readers run in parallel.
//!
//! Published figures the presets start from: a modern contact card takes
//! 12–60 ms per APDU round trip; ECC P-256 key generation takes 30–200 ms on
//! current Java Cards (RSA-2048: 2–26 s); EEPROM page writes take a few
//! milliseconds; whole-card personalization usually takes 5–20 s.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A card's timing. All times in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// Fixed cost of every APDU round trip.
    pub apdu_latency_us: u64,
    /// Interface speed in bits per second; a byte costs 10 bits (start,
    /// 8 data bits, stop/guard time).
    pub baud: u32,
    /// EEPROM page size in bytes.
    pub page_bytes: u32,
    /// Time to write one EEPROM page.
    pub page_write_us: u64,
    /// Time to generate one key pair.
    pub keygen_us: u64,
}

impl Timing {
    /// A typical contact card at a personalization machine: 20 ms per APDU,
    /// 115,200 bit/s, 64-byte pages written in 3 ms, P-256 keys in 120 ms.
    pub const TYPICAL: Timing = Timing {
        apdu_latency_us: 20_000,
        baud: 115_200,
        page_bytes: 64,
        page_write_us: 3_000,
        keygen_us: 120_000,
    };

    /// The slow end of the published ranges: 60 ms per APDU, 9,600 bit/s
    /// (the ISO 7816-3 default rate at 3.57 MHz), 5 ms pages, 200 ms keys.
    pub const SLOW: Timing = Timing {
        apdu_latency_us: 60_000,
        baud: 9_600,
        page_bytes: 64,
        page_write_us: 5_000,
        keygen_us: 200_000,
    };

    /// The fast end: 12 ms per APDU, 230,400 bit/s, 2 ms pages, 30 ms keys.
    pub const FAST: Timing = Timing {
        apdu_latency_us: 12_000,
        baud: 230_400,
        page_bytes: 64,
        page_write_us: 2_000,
        keygen_us: 30_000,
    };

    /// Parse a preset (`typical`, `slow`, `fast`, `none`) or a list such as
    /// `latency=20ms,baud=115200,page=64,page-write=3ms,keygen=120ms`
    /// (starting from `typical`; times take `us`, `ms` or `s`).
    /// `none` gives `Ok(None)`.
    pub fn parse(spec: &str) -> Result<Option<Timing>, String> {
        let spec = spec.trim();
        match spec {
            "none" | "off" | "" => return Ok(None),
            "typical" => return Ok(Some(Timing::TYPICAL)),
            "slow" => return Ok(Some(Timing::SLOW)),
            "fast" => return Ok(Some(Timing::FAST)),
            _ => {}
        }
        let mut t = Timing::TYPICAL;
        for part in spec.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                format!("timing {part:?}: expected key=value (latency, baud, page, page-write, keygen) or a preset (typical, slow, fast, none)")
            })?;
            let v = v.trim();
            match k.trim() {
                "latency" => t.apdu_latency_us = micros(v)?,
                "page-write" => t.page_write_us = micros(v)?,
                "keygen" => t.keygen_us = micros(v)?,
                "baud" => {
                    t.baud = v
                        .parse()
                        .ok()
                        .filter(|b| *b > 0)
                        .ok_or_else(|| format!("timing baud={v}: expected a positive whole number of bits per second"))?
                }
                "page" => {
                    t.page_bytes = v
                        .parse()
                        .ok()
                        .filter(|b| *b > 0)
                        .ok_or_else(|| format!("timing page={v}: expected a positive page size in bytes"))?
                }
                other => {
                    return Err(format!(
                        "timing: unknown key {other:?}; expected latency, baud, page, page-write or keygen"
                    ))
                }
            }
        }
        Ok(Some(t))
    }

    /// Time to move `bytes` over the interface.
    pub fn transfer(&self, bytes: usize) -> Duration {
        let bits = (bytes as u64).saturating_mul(10);
        Duration::from_micros(bits.saturating_mul(1_000_000) / u64::from(self.baud.max(1)))
    }

    /// Time to write `bytes` of EEPROM (whole pages; at least one page when
    /// anything is written).
    pub fn eeprom(&self, bytes: usize) -> Duration {
        if bytes == 0 {
            return Duration::ZERO;
        }
        let pages = (bytes as u64).div_ceil(u64::from(self.page_bytes.max(1)));
        Duration::from_micros(pages.saturating_mul(self.page_write_us))
    }

    /// The cost of one APDU: `command` in, `response_len` bytes out (data
    /// and SW), `written` bytes of EEPROM changed, `keygen` key pairs made.
    pub fn cost(
        &self,
        command_len: usize,
        response_len: usize,
        written: usize,
        keygen: u32,
    ) -> Duration {
        Duration::from_micros(self.apdu_latency_us)
            + self.transfer(command_len.saturating_add(response_len))
            + self.eeprom(written)
            + Duration::from_micros(self.keygen_us.saturating_mul(u64::from(keygen)))
    }
}

impl Timing {
    /// The cost of one APDU as the card sees it: the command bytes, the
    /// response (data and SW) of `response_len` bytes with status `sw`.
    /// The EEPROM written and the key generation follow from the command
    /// ([`written_bytes`]; GENERATE ASYMMETRIC KEY PAIR makes a key only
    /// with P1 = 00, P1 = 81 reads the public key back and writes nothing).
    /// The simulated card charges this; a benchmark computes a floor with it.
    pub fn apdu_cost(&self, apdu: &[u8], response_len: usize, sw: u16) -> Duration {
        let ins = apdu.get(1).copied().unwrap_or(0);
        let p1 = apdu.get(2).copied().unwrap_or(0);
        // 61xx is success with data still to fetch (T=0, GET RESPONSE).
        let ok = sw == 0x9000 || sw >> 8 == 0x61;
        let reads_key = ins == 0x46 && p1 != 0x00;
        let written = if reads_key {
            0
        } else {
            written_bytes(ins, apdu.len().saturating_sub(5), ok)
        };
        let keygen = u32::from(ins == 0x46 && !reads_key && ok);
        self.cost(apdu.len(), response_len, written, keygen)
    }
}

fn micros(v: &str) -> Result<u64, String> {
    let (num, mul) = if let Some(n) = v.strip_suffix("us") {
        (n, 1)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1_000)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1_000_000)
    } else {
        return Err(format!(
            "timing {v:?}: expected a time with a unit (us, ms or s), e.g. 20ms"
        ));
    };
    let n: f64 = num
        .trim()
        .parse()
        .ok()
        .filter(|x: &f64| x.is_finite() && *x >= 0.0 && *x < 3.6e9)
        .ok_or_else(|| format!("timing {v:?}: expected a non-negative number before the unit"))?;
    Ok((n * f64::from(mul)).round() as u64)
}

/// EEPROM bytes a successful command writes, estimated from the command:
/// the data it stores, or one page for counters and state bytes.
pub fn written_bytes(ins: u8, data_len: usize, sw_ok: bool) -> usize {
    // Failed VERIFY still decrements a retry counter in EEPROM.
    match ins {
        0x20 | 0x21 => 1,
        _ if !sw_ok => 0,
        // UPDATE BINARY, PUT DATA, STORE DATA, CREATE FILE: the data itself.
        0xD6 | 0xD7 | 0xDA | 0xDB | 0xE2 | 0xE0 => data_len.max(1),
        // CHANGE/RESET RETRY COUNTER, life-cycle changes, key pair: a page.
        0x24 | 0x2C | 0x44 | 0x04 | 0xE6 | 0xE8 | 0xFE | 0xE4 | 0x46 | 0x82 => 1,
        _ => 0,
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_lists_parse() {
        assert_eq!(Timing::parse("none"), Ok(None));
        assert_eq!(Timing::parse("typical"), Ok(Some(Timing::TYPICAL)));
        let t = Timing::parse("latency=12ms, baud=9600,keygen=1.5s,page=32,page-write=500us")
            .expect("parse")
            .expect("some");
        assert_eq!(t.apdu_latency_us, 12_000);
        assert_eq!(t.baud, 9_600);
        assert_eq!(t.keygen_us, 1_500_000);
        assert_eq!(t.page_bytes, 32);
        assert_eq!(t.page_write_us, 500);
        for bad in [
            "latency=12",
            "baud=0",
            "speed=1",
            "latency",
            "keygen=-1ms",
            "page=x",
        ] {
            let e = Timing::parse(bad).expect_err(bad);
            assert!(e.starts_with("timing"), "{bad}: {e}");
        }
    }

    #[test]
    fn costs_add_up() {
        let t = Timing {
            apdu_latency_us: 10_000,
            baud: 10_000,
            page_bytes: 64,
            page_write_us: 3_000,
            keygen_us: 100_000,
        };
        // 100 bytes at 10,000 bit/s = 100 ms; 65 bytes = 2 pages = 6 ms.
        assert_eq!(t.transfer(100), Duration::from_millis(100));
        assert_eq!(t.eeprom(65), Duration::from_millis(6));
        assert_eq!(t.eeprom(0), Duration::ZERO);
        assert_eq!(
            t.cost(60, 40, 65, 1),
            Duration::from_millis(10 + 100 + 6 + 100)
        );
        assert_eq!(written_bytes(0xD6, 200, true), 200);
        assert_eq!(written_bytes(0xD6, 200, false), 0);
        assert_eq!(written_bytes(0x20, 4, false), 1);
        assert_eq!(written_bytes(0xB0, 0, true), 0);
    }
}
